"""Rollout/trainer mismatch: truncated importance sampling (TIS) and mismatch metrics.

The rollout engine (vLLM) and the trainer compute slightly different probabilities for the
same tokens (kernels, precision, MoE routing), so "on-policy" samples are really drawn from
pi_rollout. TIS ("Your efficient RL framework secretly brings you off-policy RL training",
Yao et al. 2025) reweights each token's policy loss by min(pi_old / pi_rollout, cap), with the
weight detached.
"""

from __future__ import annotations

import math

import torch

from sail_rl.algorithms.aggregation import masked_mean


def tis_weights(
    old_log_probs: torch.Tensor,
    rollout_log_probs: torch.Tensor,
    mask: torch.Tensor,
    cap: float = 2.0,
) -> torch.Tensor:
    """min(exp(old - rollout), cap) per token, detached, 0 on padding: [batch, resp_len].

    >>> tis_weights(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[0.0, -0.1, -5.0]]), torch.tensor([[1, 1, 0]]))
    tensor([[1.0000, 1.1052, 0.0000]])
    """
    log_ratio = (old_log_probs.detach().float() - rollout_log_probs.detach().float()).clamp(max=math.log(cap))
    return log_ratio.exp() * mask.float()


def rollout_mismatch_metrics(
    old_log_probs: torch.Tensor, rollout_log_probs: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """How far the trainer's log-probs are from the rollout engine's, on the sampled tokens.

    mismatch_abs_logprob_diff: mean |old - rollout|;
    mismatch_kl_k1 / mismatch_kl_k3: KL(pi_rollout || pi_old) estimated from tokens sampled by
    the rollout engine (k1 = rollout - old, k3 = exp(old - rollout) - (old - rollout) - 1).

    >>> m = rollout_mismatch_metrics(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -2.0]]), torch.ones(1, 2))
    >>> m["mismatch_abs_logprob_diff"], m["mismatch_kl_k1"]
    (0.25, -0.25)
    """
    diff = old_log_probs.detach().float() - rollout_log_probs.detach().float()  # log(pi_old / pi_rollout)
    k3 = diff.clamp(-20.0, 20.0).exp() - diff - 1
    return {
        "mismatch_abs_logprob_diff": masked_mean(diff.abs(), mask).item(),
        "mismatch_kl_k1": masked_mean(-diff, mask).item(),
        "mismatch_kl_k3": masked_mean(k3, mask).item(),
    }
