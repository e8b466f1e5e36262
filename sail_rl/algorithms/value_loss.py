"""Critic loss for PPO with GAE."""

from __future__ import annotations

import torch

from sail_rl.algorithms.aggregation import agg_loss, masked_mean


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    value_clip: float = 0.2,
    loss_agg_mode: str = "token-mean",
    global_token_count: float | torch.Tensor | None = None,
    global_seq_count: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped value loss: 0.5 * agg(max((V - R)^2, (V_clipped - R)^2)).

    values [batch, resp_len] are the critic's current predictions (with grad); old_values the
    predictions at rollout time; returns the GAE targets. V_clipped keeps the new prediction
    within `value_clip` of the old one, so the critic cannot move far in one update.

    >>> loss, m = value_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.ones(1, 1))
    >>> round(loss.item(), 4), m["vf_clipfrac"]   # clipped pred 0.2: 0.5 * 0.8^2
    (0.32, 1.0)
    """
    old_values = old_values.detach()
    returns = returns.detach()
    clipped = old_values + (values - old_values).clamp(-value_clip, value_clip)
    loss_unclipped = (values - returns).square()
    loss_clipped = (clipped - returns).square()
    loss_mat = torch.maximum(loss_unclipped, loss_clipped)
    loss = 0.5 * agg_loss(
        loss_mat, response_mask, loss_agg_mode, global_token_count=global_token_count, global_seq_count=global_seq_count
    )
    metrics = {
        "vf_loss": loss.item(),
        "vf_clipfrac": masked_mean((loss_clipped > loss_unclipped).float(), response_mask).item(),
        "vpred_mean": masked_mean(values.detach(), response_mask).item(),
    }
    return loss, metrics
