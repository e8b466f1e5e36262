"""`AlgorithmConfig`: the `algorithm:` section of a recipe.

    algorithm:
      advantage_estimator: grpo        # grpo | dr_grpo | rloo | reinforce_pp | reinforce_pp_baseline | gae
      policy_loss: ppo_clip            # ppo_clip | gspo
      clip_ratio_low: 0.2
      clip_ratio_high: 0.28            # clip-higher (DAPO)
      loss_agg_mode: token-mean

Recipes: DAPO = grpo + ppo_clip [0.2, 0.28] + token-mean; GSPO = grpo + gspo with clip
3e-4 / 4e-4 + seq-mean-token-mean; Dr. GRPO = dr_grpo + seq-mean-token-sum with
seq_sum_divisor_tokens = max_response_tokens; PPO = gae + ppo_clip + a critic (value_clip).
"""

from __future__ import annotations

from dataclasses import dataclass

from sail_rl.algorithms.aggregation import LOSS_AGG_MODES, LossAggMode
from sail_rl.algorithms.kl import KL_ESTIMATORS, KlEstimator
from sail_rl.algorithms.registry import ADVANTAGES, POLICY_LOSSES
from sail_rl.config import check_bounds
from sail_rl.errors import ConfigError


@dataclass
class AlgorithmConfig:
    advantage_estimator: str = "grpo"
    norm_adv_by_std: bool = True  # grpo: divide by the group std
    adv_std_eps: float = 1e-6  # grpo: r - mean / (std + eps)
    whiten_advantages: bool = True  # gae, reinforce_pp: whiten over the batch's valid tokens
    policy_loss: str = "ppo_clip"
    clip_ratio_low: float = 0.2  # ratio clipped below at 1 - low
    clip_ratio_high: float = 0.28  # ratio clipped above at 1 + high (clip-higher)
    clip_ratio_c: float | None = None  # dual-clip bound for negative advantages (e.g. 3.0); None: off
    loss_agg_mode: LossAggMode = "token-mean"
    seq_sum_divisor_tokens: int | None = None  # Dr. GRPO: divide seq token-sums by this constant
    kl_coef: float = 0.0  # KL as a reward penalty (before advantages)
    kl_loss_coef: float = 0.0  # KL as a loss term
    kl_estimator: KlEstimator = "k3"
    entropy_coef: float = 0.0  # entropy bonus: loss -= entropy_coef * agg(entropy)
    gamma: float = 1.0  # discount (gae, reinforce_pp)
    lam: float = 1.0  # GAE lambda
    value_clip: float = 0.2  # critic: max change of a value prediction per update
    tis_cap: float | None = None  # truncated importance sampling cap (e.g. 2.0); None: off

    def validate(self) -> None:
        for key, registry in (("advantage_estimator", ADVANTAGES), ("policy_loss", POLICY_LOSSES)):
            try:
                registry.get(getattr(self, key))  # raises with the valid names
            except ConfigError as exc:
                raise ConfigError(str(exc), key=key) from None
        clip_hint = "e.g. 0.2 (PPO) or 3e-4 (GSPO)"
        check_bounds(self, "algorithm", {
            "clip_ratio_low": ("(0, 1)", clip_hint), "clip_ratio_high": ("(0, 1)", clip_hint),
            "clip_ratio_c": ("> 1", "e.g. 3.0, or null for off"), "kl_coef": ">= 0", "kl_loss_coef": ">= 0",
            "entropy_coef": ">= 0", "adv_std_eps": ">= 0", "gamma": "[0, 1]", "lam": "[0, 1]", "value_clip": "> 0",
            "tis_cap": (">= 1", "e.g. 2.0, or null for off"), "seq_sum_divisor_tokens": ("> 0", "e.g. max_response_tokens"),
        })
        if self.loss_agg_mode not in LOSS_AGG_MODES:
            raise ConfigError(f"algorithm.loss_agg_mode must be one of {', '.join(LOSS_AGG_MODES)}", key="loss_agg_mode")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ConfigError(f"algorithm.kl_estimator must be one of {', '.join(KL_ESTIMATORS)}", key="kl_estimator")
        self._validate_combinations()

    def _validate_combinations(self) -> None:
        if self.seq_sum_divisor_tokens is not None and self.loss_agg_mode != "seq-mean-token-sum":
            raise ConfigError(
                "algorithm.seq_sum_divisor_tokens only applies to loss_agg_mode seq-mean-token-sum; "
                f"got {self.loss_agg_mode}: set the mode or remove the divisor", key="seq_sum_divisor_tokens"
            )
        if self.policy_loss == "gspo" and self.loss_agg_mode != "seq-mean-token-mean":
            raise ConfigError(
                f"algorithm.policy_loss gspo needs loss_agg_mode seq-mean-token-mean, got {self.loss_agg_mode}; "
                "set algorithm.loss_agg_mode=seq-mean-token-mean", key="loss_agg_mode"
            )
