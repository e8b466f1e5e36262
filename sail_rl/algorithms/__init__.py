"""The math of PPO/GRPO-family RL on tensors: no Ray, no model.

advantages.py (estimators), policy_loss.py (ppo_clip, gspo), value_loss.py, kl.py,
entropy.py, tis.py, aggregation.py (agg_loss), registry.py, config.py (AlgorithmConfig),
compute.py (what the trainer calls).
"""

from sail_rl.algorithms.registry import (  # noqa: I001  (registry first: the modules below register into it)
    advantage_names,
    get_advantage,
    get_policy_loss,
    policy_loss_names,
    register_advantage,
    register_policy_loss,
)
from sail_rl.algorithms.advantages import (
    dr_grpo_advantages,
    gae_advantages,
    group_stats,
    grpo_advantages,
    outcome_to_token_rewards,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
)
from sail_rl.algorithms.aggregation import LOSS_AGG_MODES, agg_loss, agg_loss_for, masked_mean, masked_whiten
from sail_rl.algorithms.compute import compute_advantages, compute_policy_loss, compute_token_rewards
from sail_rl.algorithms.config import AlgorithmConfig
from sail_rl.algorithms.entropy import entropy_from_logits
from sail_rl.algorithms.kl import KL_ESTIMATORS, apply_kl_penalty, kl_penalty
from sail_rl.algorithms.policy_loss import gspo_loss, gspo_sequence_log_ratio, ppo_clip_loss
from sail_rl.algorithms.tis import rollout_mismatch_metrics, tis_weights
from sail_rl.algorithms.value_loss import value_loss

__all__ = [
    "AlgorithmConfig",
    "KL_ESTIMATORS",
    "LOSS_AGG_MODES",
    "advantage_names",
    "agg_loss",
    "agg_loss_for",
    "apply_kl_penalty",
    "compute_advantages",
    "compute_policy_loss",
    "compute_token_rewards",
    "dr_grpo_advantages",
    "entropy_from_logits",
    "gae_advantages",
    "get_advantage",
    "get_policy_loss",
    "group_stats",
    "grpo_advantages",
    "gspo_loss",
    "gspo_sequence_log_ratio",
    "kl_penalty",
    "masked_mean",
    "masked_whiten",
    "outcome_to_token_rewards",
    "policy_loss_names",
    "ppo_clip_loss",
    "register_advantage",
    "register_policy_loss",
    "reinforce_pp_advantages",
    "reinforce_pp_baseline_advantages",
    "rloo_advantages",
    "rollout_mismatch_metrics",
    "tis_weights",
    "value_loss",
]
