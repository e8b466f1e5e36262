"""Per-token KL estimators between the policy and a reference, from sampled-token log-probs.

Used two ways: as a reward penalty (`apply_kl_penalty`, scaled by `kl_coef`, before the
advantage) or as a loss term (scaled by `kl_loss_coef`, see compute.compute_policy_loss).
With log_ratio = log_probs - ref_log_probs, samples drawn from the policy (Schulman's notes):

  k1          log_ratio                                   unbiased, high variance, can be < 0
  abs         |log_ratio|
  k2          0.5 * log_ratio^2                            biased, low variance
  k3          exp(-log_ratio) + log_ratio - 1              unbiased, >= 0, low variance
  low_var_kl  the same as k3 (verl's name for it)

k3 clamps the log-ratio to [-20, 20] before exp and the result to [-10, 10], so one token far
off the reference cannot blow up the loss.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

KlEstimator = Literal["k1", "k2", "k3", "abs", "low_var_kl"]
KL_ESTIMATORS: tuple[str, ...] = get_args(KlEstimator)


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token KL estimate [batch, resp_len] from two [batch, resp_len] log-prob tensors.

    >>> lp, ref = torch.tensor([[0.0]]), torch.tensor([[-1.0]])
    >>> [round(kl_penalty(lp, ref, k).item(), 4) for k in ("k1", "k2", "k3", "abs")]
    [1.0, 0.5, 0.3679, 1.0]
    """
    log_ratio = log_probs.float() - ref_log_probs.float()
    if kind == "k1":
        return log_ratio
    if kind == "abs":
        return log_ratio.abs()
    if kind == "k2":
        return 0.5 * log_ratio.square()
    if kind in ("k3", "low_var_kl"):
        neg = (-log_ratio).clamp(-20.0, 20.0)  # ref - logp
        return (neg.exp() - neg - 1).clamp(-10.0, 10.0)
    raise ValueError(f"kl_estimator must be one of {', '.join(KL_ESTIMATORS)}, got {kind!r}")


def apply_kl_penalty(
    token_rewards: torch.Tensor,
    kl: torch.Tensor,
    kl_coef: float,
    response_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """token_rewards - kl_coef * kl, all [batch, resp_len]; padding set to 0 when a mask is given.

    The KL is treated as a reward (no gradient flows through it).

    >>> apply_kl_penalty(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), 0.1)
    tensor([[-0.0500,  0.9500]])
    """
    penalised = token_rewards.float() - kl_coef * kl.detach().float()
    if response_mask is not None:
        penalised = penalised * response_mask.float()
    return penalised
