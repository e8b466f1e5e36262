"""What the trainer calls: rewards -> advantages, and log-probs -> total policy loss.

    token_rewards, kl_metrics = compute_token_rewards(cfg, rewards, mask, log_probs=old_lp, ref_log_probs=ref_lp)
    advantages, returns = compute_advantages(cfg, rewards, group_ids, mask, token_level_rewards=token_rewards)
    loss, metrics = compute_policy_loss(cfg, log_probs, old_lp, advantages, mask, ref_log_probs=ref_lp,
                                        entropy=entropy, rollout_log_probs=vllm_lp, global_token_count=n)
"""

from __future__ import annotations

import inspect

import torch

from sail_rl.algorithms.advantages import outcome_to_token_rewards
from sail_rl.algorithms.aggregation import agg_loss_for, masked_mean
from sail_rl.algorithms.config import AlgorithmConfig
from sail_rl.algorithms.kl import apply_kl_penalty, kl_penalty
from sail_rl.algorithms.registry import get_advantage, get_policy_loss
from sail_rl.algorithms.tis import rollout_mismatch_metrics, tis_weights
from sail_rl.errors import ConfigError


def compute_token_rewards(
    cfg: AlgorithmConfig,
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    log_probs: torch.Tensor | None = None,
    ref_log_probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Outcome rewards [batch] -> token rewards [batch, resp_len], minus kl_coef * KL when kl_coef > 0.

    log_probs / ref_log_probs [batch, resp_len]: the rollout policy's and the reference's
    log-probs of the sampled tokens, needed only for the KL penalty.
    """
    token_rewards = outcome_to_token_rewards(rewards, response_mask)
    if cfg.kl_coef == 0.0:
        return token_rewards, {}
    if log_probs is None or ref_log_probs is None:
        raise ConfigError("algorithm.kl_coef > 0 needs reference log-probs; enable the reference model or set 0")
    kl = kl_penalty(log_probs, ref_log_probs, cfg.kl_estimator)
    metrics = {"kl_penalty": masked_mean(kl, response_mask).item()}
    return apply_kl_penalty(token_rewards, kl, cfg.kl_coef, response_mask), metrics


def compute_advantages(
    cfg: AlgorithmConfig,
    rewards: torch.Tensor | None,
    group_ids: torch.Tensor,
    response_mask: torch.Tensor,
    values: torch.Tensor | None = None,
    token_level_rewards: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `cfg.advantage_estimator`: (advantages, returns), both [batch, resp_len].

    rewards [batch] outcome rewards; token_level_rewards [batch, resp_len] (e.g. with a KL
    penalty) take precedence: outcome estimators then use their per-sequence sum. values
    [batch, resp_len] are the critic's, for gae. The estimator gets the arguments its
    signature names (see advantages.py).
    """
    if rewards is None and token_level_rewards is None:
        raise ValueError("compute_advantages needs rewards or token_level_rewards")
    if token_level_rewards is not None:
        seq_rewards = (token_level_rewards.float() * response_mask.float()).sum(-1)
        token_rewards = token_level_rewards
    else:
        seq_rewards = rewards
        token_rewards = outcome_to_token_rewards(rewards, response_mask)
    available = {
        "rewards": seq_rewards,
        "group_ids": group_ids,
        "response_mask": response_mask,
        "token_rewards": token_rewards,
        "values": values,
        "gamma": cfg.gamma,
        "lam": cfg.lam,
        "norm_by_std": cfg.norm_adv_by_std,
        "eps": cfg.adv_std_eps,
        "whiten": cfg.whiten_advantages,
    }
    name = cfg.advantage_estimator
    estimator = get_advantage(name)
    kwargs = {}
    for param in inspect.signature(estimator).parameters.values():
        required = param.default is inspect.Parameter.empty
        if param.name not in available:
            if required:
                raise ConfigError(
                    f"advantage_estimator '{name}' asks for '{param.name}'; estimators may take: {', '.join(available)}"
                )
            continue
        if available[param.name] is None:
            if required:
                raise ConfigError(f"advantage_estimator '{name}' needs {param.name} (a critic); add one or use grpo")
            continue
        kwargs[param.name] = available[param.name]
    return estimator(**kwargs)


def compute_policy_loss(
    cfg: AlgorithmConfig,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ref_log_probs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    rollout_log_probs: torch.Tensor | None = None,
    global_token_count: float | torch.Tensor | None = None,
    global_seq_count: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total actor loss = policy loss (x TIS weights) + kl_loss_coef * KL - entropy_coef * entropy.

    All tensors [batch, resp_len]: log_probs (current, with grad), old_log_probs (trainer,
    before this update), advantages, mask, ref_log_probs (reference model, for kl_loss_coef),
    entropy (of the current policy, with grad, for entropy_coef), rollout_log_probs (the
    rollout engine's, for TIS and mismatch metrics). Each term is aggregated by `agg_loss`
    with cfg.loss_agg_mode and the global counts (see aggregation.py).
    """
    metrics: dict[str, float] = {}
    token_weights = None
    if rollout_log_probs is not None:
        metrics.update(rollout_mismatch_metrics(old_log_probs, rollout_log_probs, mask))
        if cfg.tis_cap is not None:
            token_weights = tis_weights(old_log_probs, rollout_log_probs, mask, cfg.tis_cap)
            metrics["tis_weight_mean"] = masked_mean(token_weights, mask).item()
            metrics["tis_capped_frac"] = masked_mean((token_weights >= cfg.tis_cap).float(), mask).item()
    elif cfg.tis_cap is not None:
        raise ConfigError("algorithm.tis_cap is set but the rollout gave no log-probs; enable them or set null")
    counts = {"global_token_count": global_token_count, "global_seq_count": global_seq_count}
    loss_fn = get_policy_loss(cfg.policy_loss)
    loss, pg_metrics = loss_fn(log_probs, old_log_probs, advantages, mask, cfg, token_weights=token_weights, **counts)
    metrics.update(pg_metrics)
    if cfg.kl_loss_coef > 0:
        if ref_log_probs is None:
            raise ConfigError("algorithm.kl_loss_coef > 0 needs reference log-probs; enable the reference or set 0")
        kl_loss = agg_loss_for(cfg, kl_penalty(log_probs, ref_log_probs, cfg.kl_estimator), mask, **counts)
        loss = loss + cfg.kl_loss_coef * kl_loss
        metrics["kl_loss"] = kl_loss.item()
    if entropy is not None:
        entropy_term = agg_loss_for(cfg, entropy, mask, **counts)
        metrics["entropy"] = entropy_term.item()
        if cfg.entropy_coef > 0:
            loss = loss - cfg.entropy_coef * entropy_term
    elif cfg.entropy_coef > 0:
        raise ConfigError("algorithm.entropy_coef > 0 needs the policy entropy; the trainer must pass entropy=")
    metrics["loss"] = loss.item()
    return loss, metrics
