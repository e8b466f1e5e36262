"""Policy losses, registered by name (the `policy_loss` recipe key).

Contract of a registered policy loss:

    loss_fn(log_probs, old_log_probs, advantages, response_mask, cfg, *,
            token_weights=None, global_token_count=None, global_seq_count=None)
        -> (loss: scalar tensor, metrics: dict[str, float])

log_probs [batch, resp_len] are the current policy's log-probs of the sampled tokens (with
grad); old_log_probs [batch, resp_len] those of the policy that the ratio is taken against
(no grad); advantages, response_mask [batch, resp_len]. `cfg` is an AlgorithmConfig (clip
ratios, loss_agg_mode). token_weights [batch, resp_len] (e.g. TIS weights, detached) multiply
the per-token loss before `agg_loss`; the global counts are passed through to `agg_loss`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sail_rl.algorithms.aggregation import agg_loss_for, masked_mean
from sail_rl.algorithms.registry import register_policy_loss

if TYPE_CHECKING:
    from sail_rl.algorithms.config import AlgorithmConfig

MAX_LOG_RATIO = 20.0  # exp(20) ~ 5e8: keeps a stale token from overflowing the ratio


def _aggregate(loss_mat, mask, cfg, token_weights, global_token_count, global_seq_count) -> torch.Tensor:
    if token_weights is not None:
        loss_mat = loss_mat * token_weights.detach()
    return agg_loss_for(
        cfg, loss_mat, mask, global_token_count=global_token_count, global_seq_count=global_seq_count
    )


@register_policy_loss("ppo_clip")
def ppo_clip_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cfg: AlgorithmConfig,
    *,
    token_weights: torch.Tensor | None = None,
    global_token_count: float | torch.Tensor | None = None,
    global_seq_count: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped surrogate with asymmetric clip-higher (DAPO) and optional dual-clip.

    ratio = exp(log_probs - old_log_probs), per token;
    loss  = max(-A * ratio, -A * clip(ratio, 1 - clip_ratio_low, 1 + clip_ratio_high)).
    Dual-clip (clip_ratio_c, > 1): for A < 0 the loss is also capped at -A * clip_ratio_c, so a
    huge ratio on a bad token cannot dominate the update.

    Metrics: pg_loss, pg_clipfrac (share of valid tokens where the clipped term is active),
    pg_clipfrac_lower (share where the dual-clip cap is active), ppo_kl (mean old - new
    log-prob, a k1 estimate of KL(old || new)), ratio_mean, ratio_max.
    """
    mask = response_mask.float()
    log_ratio = (log_probs - old_log_probs.detach()).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    ratio = log_ratio.exp()  # [batch, resp_len]
    adv = advantages.detach()
    loss_unclipped = -adv * ratio
    loss_clipped = -adv * ratio.clamp(1 - cfg.clip_ratio_low, 1 + cfg.clip_ratio_high)
    loss_mat = torch.maximum(loss_unclipped, loss_clipped)
    clipfrac_lower = torch.zeros((), device=mask.device)
    if cfg.clip_ratio_c is not None:
        cap = -adv * cfg.clip_ratio_c
        dual = torch.minimum(loss_mat, cap)
        clipfrac_lower = masked_mean(((loss_mat > cap) & (adv < 0)).float(), mask)
        loss_mat = torch.where(adv < 0, dual, loss_mat)
    loss = _aggregate(loss_mat, mask, cfg, token_weights, global_token_count, global_seq_count)
    metrics = {
        "pg_loss": loss.item(),
        "pg_clipfrac": masked_mean((loss_clipped > loss_unclipped).float(), mask).item(),
        "pg_clipfrac_lower": clipfrac_lower.item(),
        "ppo_kl": masked_mean(-log_ratio.detach(), mask).item(),
        "ratio_mean": masked_mean(ratio.detach(), mask).item(),
        "ratio_max": (ratio.detach() * mask).max().item() if mask.any() else 0.0,
    }
    return loss, metrics


def gspo_sequence_log_ratio(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """log s_i = mean over valid tokens of (log_probs - old_log_probs): [batch, resp_len] -> [batch].

    >>> gspo_sequence_log_ratio(torch.tensor([[0.2, 0.4, 9.0]]), torch.zeros(1, 3), torch.tensor([[1, 1, 0]]))
    tensor([0.3000])
    """
    return masked_mean(log_probs - old_log_probs.detach(), response_mask, dim=-1)


@register_policy_loss("gspo")
def gspo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    cfg: AlgorithmConfig,
    *,
    token_weights: torch.Tensor | None = None,
    global_token_count: float | torch.Tensor | None = None,
    global_seq_count: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GSPO (Zheng et al. 2025): clip a sequence-level ratio instead of per-token ratios.

    s_i = exp(mean_t(log_probs - old_log_probs)) over the valid tokens of sequence i. In the
    token-level form s_i,t = sg[s_i] * pi_t / sg[pi_t] the value is s_i on every token and the
    gradient is s_i * grad log pi_t, so with seq-mean-token-mean this is the paper's objective
    (config.validate requires that mode). The paper's clip ranges are tiny: clip_ratio_low 3e-4,
    clip_ratio_high 4e-4.
    """
    mask = response_mask.float()
    seq_log_ratio = gspo_sequence_log_ratio(log_probs, old_log_probs, mask).detach()  # [batch]
    log_ratio = log_probs - log_probs.detach() + seq_log_ratio.unsqueeze(-1)
    ratio = log_ratio.clamp(max=MAX_LOG_RATIO).exp()  # [batch, resp_len], value s_i
    adv = advantages.detach()
    loss_unclipped = -adv * ratio
    loss_clipped = -adv * ratio.clamp(1 - cfg.clip_ratio_low, 1 + cfg.clip_ratio_high)
    loss_mat = torch.maximum(loss_unclipped, loss_clipped)
    loss = _aggregate(loss_mat, mask, cfg, token_weights, global_token_count, global_seq_count)
    seq_mask = mask.sum(-1) > 0
    seq_ratio = seq_log_ratio.exp()
    metrics = {
        "pg_loss": loss.item(),
        "pg_clipfrac": masked_mean((loss_clipped > loss_unclipped).float(), mask).item(),
        "pg_clipfrac_lower": 0.0,
        "ppo_kl": masked_mean(-(log_probs - old_log_probs).detach(), mask).item(),
        "ratio_mean": seq_ratio[seq_mask].mean().item() if seq_mask.any() else 1.0,
        "ratio_max": seq_ratio[seq_mask].max().item() if seq_mask.any() else 1.0,
    }
    return loss, metrics
