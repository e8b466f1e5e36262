"""Advantage estimators: pure tensor functions, registered by name.

Outcome estimators (grpo, dr_grpo, rloo, reinforce_pp_baseline) take one scalar reward per
sequence and broadcast the advantage over its valid tokens. Token estimators (gae,
reinforce_pp) take per-token rewards (the outcome reward on the last valid token, minus an
optional per-token KL penalty; see `outcome_to_token_rewards` and `kl.apply_kl_penalty`).

Shapes: rewards [batch]; group_ids [batch] int, equal for the rollouts of one prompt (not
necessarily contiguous); response_mask, token_rewards, values [batch, resp_len].
Every estimator returns (advantages, returns), both [batch, resp_len] and 0 on padding.

`compute.compute_advantages` calls an estimator with the arguments its signature names, out
of: rewards, group_ids, response_mask, token_rewards, values, gamma, lam, norm_by_std, eps,
whiten. A new estimator only has to name the ones it uses.
"""

from __future__ import annotations

import torch

from sail_rl.algorithms.aggregation import masked_whiten
from sail_rl.algorithms.registry import register_advantage


def group_stats(rewards: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-sequence statistics of its group: (group mean, unbiased group std, group size), each [batch].

    The std of a group of one is 0.

    >>> group_stats(torch.tensor([1.0, 0.0, 5.0]), torch.tensor([7, 7, 3]))
    (tensor([0.5000, 0.5000, 5.0000]), tensor([0.7071, 0.7071, 0.0000]), tensor([2., 2., 1.]))
    """
    rewards = rewards.float()
    _, inverse = torch.unique(group_ids, return_inverse=True)  # [batch] dense group index
    n_groups = int(inverse.max().item()) + 1 if inverse.numel() else 0
    zeros = rewards.new_zeros(n_groups)
    size = zeros.scatter_add(0, inverse, torch.ones_like(rewards))
    mean = zeros.scatter_add(0, inverse, rewards) / size
    sq_dev = zeros.scatter_add(0, inverse, (rewards - mean[inverse]) ** 2)
    std = (sq_dev / (size - 1).clamp(min=1)).sqrt()
    return mean[inverse], std[inverse], size[inverse]


def broadcast_to_tokens(per_seq: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """[batch] -> [batch, resp_len]: the value on every valid token, 0 on padding."""
    return per_seq.float().unsqueeze(-1) * response_mask.float()


def outcome_to_token_rewards(rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Place each sequence's reward on its last valid token: [batch] -> [batch, resp_len].

    >>> outcome_to_token_rewards(torch.tensor([2.0]), torch.tensor([[1, 1, 0]]))
    tensor([[0., 2., 0.]])
    """
    mask = response_mask.float()
    positions = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    last = torch.where(mask > 0, positions, -1).max(-1).values  # [batch], -1 if empty
    token_rewards = torch.zeros_like(mask)
    has_token = last >= 0
    rows = torch.arange(mask.shape[0], device=mask.device)[has_token]
    token_rewards[rows, last[has_token]] = rewards.float()[has_token]
    return token_rewards


@register_advantage("grpo", group_relative=True)
def grpo_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    response_mask: torch.Tensor,
    norm_by_std: bool = True,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO: (r - group mean) / (group std + eps); without std scaling if `norm_by_std=False`.

    The std is unbiased (as torch.std and verl). A group of one has advantage 0.

    >>> adv, _ = grpo_advantages(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), torch.ones(2, 1))
    >>> adv.squeeze(-1)
    tensor([ 0.7071, -0.7071])
    """
    mean, std, size = group_stats(rewards, group_ids)
    scores = rewards.float() - mean
    if norm_by_std:
        scores = scores / (std + eps)
    scores = torch.where(size > 1, scores, torch.zeros_like(scores))
    advantages = broadcast_to_tokens(scores, response_mask)
    return advantages, advantages


@register_advantage("dr_grpo", group_relative=True)
def dr_grpo_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dr. GRPO: r - group mean, no std scaling (which favours too-easy and too-hard prompts).

    Dr. GRPO also removes the per-sequence length normalisation: pair it with
    loss_agg_mode="seq-mean-token-sum" and seq_sum_divisor_tokens = max_response_tokens.
    """
    return grpo_advantages(rewards, group_ids, response_mask, norm_by_std=False)


@register_advantage("rloo", group_relative=True)
def rloo_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """RLOO: r_i - mean_{j != i} r_j over the group, i.e. (r_i - mean) * n / (n - 1); 0 for n = 1.

    >>> adv, _ = rloo_advantages(torch.tensor([3.0, 0.0, 0.0]), torch.tensor([1, 1, 1]), torch.ones(3, 1))
    >>> adv.squeeze(-1)
    tensor([ 3.0000, -1.5000, -1.5000])
    """
    mean, _, size = group_stats(rewards, group_ids)
    scores = (rewards.float() - mean) * size / (size - 1).clamp(min=1)
    scores = torch.where(size > 1, scores, torch.zeros_like(scores))
    advantages = broadcast_to_tokens(scores, response_mask)
    return advantages, advantages


@register_advantage("reinforce_pp_baseline", group_relative=True)
def reinforce_pp_baseline_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE++ with baseline (verl's reinforce_plus_plus_baseline): subtract the group mean,
    then whiten over all valid tokens of the batch (so the scale is the batch std, not the group's).

    `rewards` may already include a summed KL penalty (compute_advantages sums token_rewards).
    """
    mean, _, _ = group_stats(rewards, group_ids)
    scores = broadcast_to_tokens(rewards.float() - mean, response_mask)
    advantages = masked_whiten(scores, response_mask)
    return advantages, advantages


@register_advantage("reinforce_pp")
def reinforce_pp_advantages(
    token_rewards: torch.Tensor, response_mask: torch.Tensor, gamma: float = 1.0, whiten: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE++: discounted token-level returns G_t = r_t + gamma * G_{t+1} (a per-token KL
    penalty goes into token_rewards), whitened over the valid tokens of the batch, whose
    mean is the baseline.

    >>> rewards, mask = torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[1, 1, 0]])
    >>> adv, ret = reinforce_pp_advantages(rewards, mask, gamma=0.5, whiten=False)
    >>> ret
    tensor([[0.5000, 1.0000, 0.0000]])
    """
    mask = response_mask.float()
    returns = torch.zeros_like(mask)
    running = torch.zeros_like(mask[:, 0])
    for t in reversed(range(mask.shape[-1])):
        running = (token_rewards[:, t].float() + gamma * running) * mask[:, t]
        returns[:, t] = running
    advantages = masked_whiten(returns, mask) if whiten else returns
    return advantages, returns


@register_advantage("gae")
def gae_advantages(
    token_rewards: torch.Tensor,
    values: torch.Tensor,
    response_mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 1.0,
    whiten: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (PPO with a critic).

    delta_t = r_t + gamma * V_{t+1} - V_t;  A_t = delta_t + gamma * lam * A_{t+1}, where t+1 is
    the next VALID token (masked positions are skipped, and the value after the last valid
    token is 0: the episode ends there). returns = A + V (before whitening); advantages are
    whitened over valid tokens when `whiten`.

    >>> rewards, values = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]])
    >>> adv, ret = gae_advantages(rewards, values, torch.ones(1, 2), whiten=False)
    >>> adv, ret
    (tensor([[0.5000, 0.5000]]), tensor([[1., 1.]]))
    """
    mask = response_mask.float()
    values = values.detach().float()
    advantages = torch.zeros_like(mask)
    next_value = torch.zeros_like(mask[:, 0])
    next_adv = torch.zeros_like(mask[:, 0])
    for t in reversed(range(mask.shape[-1])):
        delta = token_rewards[:, t].float() + gamma * next_value - values[:, t]
        adv_t = delta + gamma * lam * next_adv
        valid = mask[:, t]
        # carry the next valid token's value and advantage across padding
        next_value = valid * values[:, t] + (1 - valid) * next_value
        next_adv = valid * adv_t + (1 - valid) * next_adv
        advantages[:, t] = adv_t * valid
    returns = (advantages + values) * mask
    if whiten:
        advantages = masked_whiten(advantages, mask)
    return advantages, returns
