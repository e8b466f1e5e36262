"""Registries, AlgorithmConfig validation, and the compute_* entry points."""

import math

import pytest
import torch

from sail_rl.algorithms import (
    AlgorithmConfig,
    advantage_names,
    compute_advantages,
    compute_policy_loss,
    compute_token_rewards,
    get_advantage,
    get_policy_loss,
    policy_loss_names,
    register_advantage,
)
from sail_rl.algorithms.registry import ADVANTAGES, Registry
from sail_rl.config import from_dict
from sail_rl.errors import ConfigError


def test_builtin_names():
    assert advantage_names() == ["dr_grpo", "gae", "grpo", "reinforce_pp", "reinforce_pp_baseline", "rloo"]
    assert policy_loss_names() == ["gspo", "ppo_clip"]


def test_unknown_name_lists_valid_and_suggests():
    expected = r"unknown advantage_estimator 'grop'; did you mean 'grpo'\? valid: dr_grpo, gae"
    with pytest.raises(ConfigError, match=expected):
        get_advantage("grop")
    with pytest.raises(ConfigError, match=r"valid: gspo, ppo_clip$"):
        get_policy_loss("zzz")


def test_duplicate_registration_rejected():
    registry = Registry("policy_loss")
    registry.register("mine")(lambda: None)
    with pytest.raises(ConfigError, match="'mine' is already registered"):
        registry.register("mine")(lambda: None)
    with pytest.raises(ConfigError, match="already registered"):
        register_advantage("grpo")(lambda rewards: None)


def test_custom_estimator_gets_only_the_arguments_it_names():
    @register_advantage("test_raw_reward")
    def raw(rewards, response_mask, gamma):
        adv = rewards[:, None] * response_mask * gamma
        return adv, adv

    try:
        cfg = AlgorithmConfig(advantage_estimator="test_raw_reward", gamma=0.5)
        cfg.validate()
        adv, _ = compute_advantages(cfg, torch.tensor([2.0, 4.0]), torch.tensor([0, 0]), torch.ones(2, 1))
        torch.testing.assert_close(adv, torch.tensor([[1.0], [2.0]]))
    finally:
        del ADVANTAGES._fns["test_raw_reward"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"clip_ratio_high": 1.5}, "clip_ratio_high must be in \\(0, 1\\)"),
        ({"clip_ratio_c": 0.9}, "clip_ratio_c must be > 1"),
        ({"advantage_estimator": "gpro"}, "did you mean 'grpo'"),
        ({"policy_loss": "gspo"}, "gspo needs loss_agg_mode seq-mean-token-mean"),
        ({"seq_sum_divisor_tokens": 512}, "only applies to loss_agg_mode seq-mean-token-sum"),
        ({"lam": 1.2}, "lam must be in \\[0, 1\\]"),
        ({"tis_cap": 0.5}, "tis_cap must be >= 1"),
    ],
)
def test_validate_rejects(fields, message):
    with pytest.raises(ConfigError, match=message):
        AlgorithmConfig(**fields).validate()


def test_recipe_section_builds_and_checks_literals():
    section = {"policy_loss": "gspo", "loss_agg_mode": "seq-mean-token-mean", "clip_ratio_low": 3e-4}
    cfg = from_dict(AlgorithmConfig, section)
    assert cfg.clip_ratio_low == 3e-4
    with pytest.raises(ConfigError, match="did you mean 'token-mean'"):
        from_dict(AlgorithmConfig, {"loss_agg_mode": "token_mean"})


def test_compute_advantages_gae_needs_values():
    cfg = AlgorithmConfig(advantage_estimator="gae")
    with pytest.raises(ConfigError, match="'gae' needs values"):
        compute_advantages(cfg, torch.tensor([1.0]), torch.tensor([0]), torch.ones(1, 2))
    adv, returns = compute_advantages(
        AlgorithmConfig(advantage_estimator="gae", whiten_advantages=False),
        torch.tensor([1.0]), torch.tensor([0]), torch.ones(1, 2), values=torch.tensor([[0.25, 0.5]]),
    )
    torch.testing.assert_close(returns, torch.tensor([[1.0, 1.0]]))
    torch.testing.assert_close(adv, torch.tensor([[0.75, 0.5]]))


def test_kl_reward_penalty_flows_into_grpo_scores():
    cfg = AlgorithmConfig(kl_coef=0.5, kl_estimator="k1")
    mask = torch.tensor([[1, 1], [1, 0]])
    log_probs = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    ref = torch.tensor([[-1.0, 0.0], [0.0, 0.0]])  # row 0 has KL 1 on its first token
    rewards = torch.tensor([1.0, 1.0])
    token_rewards, metrics = compute_token_rewards(cfg, rewards, mask, log_probs=log_probs, ref_log_probs=ref)
    torch.testing.assert_close(token_rewards, torch.tensor([[-0.5, 1.0], [1.0, 0.0]]))
    assert metrics["kl_penalty"] == pytest.approx(1 / 3)
    adv, _ = compute_advantages(cfg, None, torch.tensor([0, 0]), mask, token_level_rewards=token_rewards)
    s = 1 / math.sqrt(2)  # scores 0.5 vs 1.0
    torch.testing.assert_close(adv, torch.tensor([[-s, -s], [s, 0.0]]), atol=1e-4, rtol=0)
    with pytest.raises(ConfigError, match="kl_coef > 0 needs reference log-probs"):
        compute_token_rewards(cfg, torch.tensor([1.0]), torch.ones(1, 1))


def test_compute_policy_loss_adds_kl_entropy_and_tis():
    cfg = AlgorithmConfig(kl_loss_coef=0.1, kl_estimator="k1", entropy_coef=0.01, tis_cap=2.0)
    log_probs = torch.zeros(1, 2)
    old = torch.zeros(1, 2)  # ratio 1: pg loss per token = -A * tis weight
    adv = torch.tensor([[1.0, 1.0]])
    ref = torch.tensor([[-1.0, -3.0]])  # k1 KL per token 1, 3
    entropy = torch.tensor([[2.0, 4.0]])
    rollout = torch.tensor([[0.0, -5.0]])  # weights 1, 2 (capped)
    loss, m = compute_policy_loss(
        cfg, log_probs, old, adv, torch.ones(1, 2), ref_log_probs=ref, entropy=entropy, rollout_log_probs=rollout
    )
    assert m["pg_loss"] == pytest.approx(-(1 + 2) / 2)
    assert m["kl_loss"] == pytest.approx(2.0)
    assert m["entropy"] == pytest.approx(3.0)
    assert m["tis_weight_mean"] == pytest.approx(1.5) and m["tis_capped_frac"] == pytest.approx(0.5)
    assert m["mismatch_abs_logprob_diff"] == pytest.approx(2.5)
    assert loss.item() == pytest.approx(-1.5 + 0.1 * 2.0 - 0.01 * 3.0)
    assert m["loss"] == pytest.approx(loss.item())


def test_compute_policy_loss_missing_inputs_are_config_errors():
    args = (torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    with pytest.raises(ConfigError, match="kl_loss_coef"):
        compute_policy_loss(AlgorithmConfig(kl_loss_coef=0.1), *args)
    with pytest.raises(ConfigError, match="tis_cap"):
        compute_policy_loss(AlgorithmConfig(tis_cap=2.0), *args)
    with pytest.raises(ConfigError, match="entropy_coef"):
        compute_policy_loss(AlgorithmConfig(entropy_coef=0.01), *args)
