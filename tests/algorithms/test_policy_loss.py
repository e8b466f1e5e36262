"""ppo_clip (clip-higher, dual-clip), gspo and the critic's value loss."""

import math

import pytest
import torch

from sail_rl.algorithms import AlgorithmConfig, gspo_loss, gspo_sequence_log_ratio, ppo_clip_loss, value_loss


def per_token(cfg, ratios, advantages):
    """One token per row; returns per-token losses and d loss_i / d log_prob_i."""
    n = len(ratios)
    log_probs = torch.tensor(ratios).log().unsqueeze(-1).requires_grad_(True)
    adv = torch.tensor(advantages).unsqueeze(-1)
    loss, metrics = ppo_clip_loss(log_probs, torch.zeros(n, 1), adv, torch.ones(n, 1), cfg)
    loss.backward()
    return loss.item() * n, log_probs.grad.squeeze(-1) * n, metrics  # token-mean -> sums


def test_clip_higher_is_asymmetric():
    cfg = AlgorithmConfig(clip_ratio_low=0.2, clip_ratio_high=0.28)
    # A > 0: ratio 1.25 is inside 1 + 0.28 (gradient flows), 1.3 is clipped at 1.28 (no gradient)
    # A < 0: ratio 0.75 is clipped at 0.8, 0.85 is not
    ratios = [1.25, 1.3, 0.75, 0.85]
    advantages = [1.0, 1.0, -1.0, -1.0]
    total, grads, metrics = per_token(cfg, ratios, advantages)
    assert total == pytest.approx(-1.25 - 1.28 + 0.8 + 0.85, abs=1e-5)
    torch.testing.assert_close(grads, torch.tensor([-1.25, 0.0, 0.0, 0.85]))
    assert metrics["pg_clipfrac"] == pytest.approx(0.5)
    assert metrics["pg_clipfrac_lower"] == 0.0


def test_pessimistic_side_is_never_clipped():
    # A > 0 with a low ratio and A < 0 with a high ratio keep the unclipped (worse) term
    cfg = AlgorithmConfig()
    total, grads, metrics = per_token(cfg, [0.5, 1.5], [1.0, -1.0])
    assert total == pytest.approx(-0.5 + 1.5, abs=1e-5)
    torch.testing.assert_close(grads, torch.tensor([-0.5, 1.5]))
    assert metrics["pg_clipfrac"] == 0.0


def test_dual_clip_caps_negative_advantage_loss():
    ratios, advantages = [5.0, 5.0, 2.0], [-1.0, 1.0, -1.0]
    total, grads, metrics = per_token(AlgorithmConfig(clip_ratio_c=3.0), ratios, advantages)
    # ratio 5, A=-1: max(5, 1.28) = 5, capped at 3 * 1 = 3, no gradient;
    # ratio 5, A=+1: clipped at -1.28; ratio 2, A=-1: loss 2 < 3, gradient 2
    assert total == pytest.approx(3.0 - 1.28 + 2.0, abs=1e-5)
    torch.testing.assert_close(grads, torch.tensor([0.0, 0.0, 2.0]))
    assert metrics["pg_clipfrac_lower"] == pytest.approx(1 / 3)
    total_off, grads_off, _ = per_token(AlgorithmConfig(), ratios, advantages)
    assert total_off == pytest.approx(5.0 - 1.28 + 2.0, abs=1e-5)
    assert grads_off[0].item() == pytest.approx(5.0)


def test_ppo_kl_metric_and_token_weights():
    cfg = AlgorithmConfig()
    log_probs = torch.tensor([[-1.0, -2.0]])
    old = torch.tensor([[-1.1, -1.9]])
    adv = torch.tensor([[1.0, 1.0]])
    loss, metrics = ppo_clip_loss(log_probs, old, adv, torch.ones(1, 2), cfg)
    assert metrics["ppo_kl"] == pytest.approx(((-1.1 + 1.0) + (-1.9 + 2.0)) / 2, abs=1e-6)
    weighted, _ = ppo_clip_loss(log_probs, old, adv, torch.ones(1, 2), cfg, token_weights=torch.tensor([[2.0, 0.0]]))
    assert weighted.item() == pytest.approx(-2 * math.exp(0.1) / 2, abs=1e-5)
    assert loss.item() == pytest.approx(-(math.exp(0.1) + math.exp(-0.1)) / 2, abs=1e-5)


GSPO_CFG = dict(policy_loss="gspo", loss_agg_mode="seq-mean-token-mean")


def test_gspo_sequence_ratio_is_exp_mean_log_ratio():
    log_probs = torch.tensor([[0.1, 0.3, 5.0], [-0.2, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    old = torch.zeros(2, 3)
    seq = gspo_sequence_log_ratio(log_probs, old, mask)
    torch.testing.assert_close(seq, torch.tensor([0.2, -0.2 / 3]))
    cfg = AlgorithmConfig(clip_ratio_low=0.5, clip_ratio_high=0.5, **GSPO_CFG)  # wide: nothing clipped
    adv = torch.tensor([[1.0], [-1.0]]).expand(2, 3)
    loss, metrics = gspo_loss(log_probs, old, adv, mask, cfg)
    s0, s1 = math.exp(0.2), math.exp(-0.2 / 3)
    assert loss.item() == pytest.approx((-s0 + s1) / 2, abs=1e-6)
    assert metrics["ratio_mean"] == pytest.approx((s0 + s1) / 2, abs=1e-6)
    assert metrics["ratio_max"] == pytest.approx(s0, abs=1e-6)
    loss.backward()
    # d/d logp_t: -A * s_i / (2 sequences * |y_i| tokens); padding gets nothing
    expected = torch.tensor([[-s0 / 4, -s0 / 4, 0.0], [s1 / 6, s1 / 6, s1 / 6]])
    torch.testing.assert_close(log_probs.grad, expected)


def test_gspo_tiny_clip_range_is_per_sequence():
    cfg = AlgorithmConfig(clip_ratio_low=3e-4, clip_ratio_high=4e-4, **GSPO_CFG)
    # row 0: tokens move a lot but cancel (s = 1): not clipped even though token ratios are far off
    # row 1: s = exp(0.01) > 1 + 4e-4 with A > 0: clipped, no gradient
    log_probs = torch.tensor([[0.5, -0.5], [0.01, 0.01]], requires_grad=True)
    loss, metrics = gspo_loss(log_probs, torch.zeros(2, 2), torch.ones(2, 2), torch.ones(2, 2), cfg)
    loss.backward()
    torch.testing.assert_close(log_probs.grad, torch.tensor([[-0.25, -0.25], [0.0, 0.0]]))
    assert metrics["pg_clipfrac"] == pytest.approx(0.5)


def test_value_loss_clipped():
    values = torch.tensor([[1.0, 0.5]], requires_grad=True)
    old = torch.tensor([[0.0, 0.4]])
    returns = torch.tensor([[1.0, 0.0]])
    loss, metrics = value_loss(values, old, returns, torch.ones(1, 2), value_clip=0.2)
    # token 0: unclipped 0, clipped (0.2 - 1)^2 = .64 -> .64; token 1: both (0.5)^2 = .25
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.25) / 2)
    assert metrics["vf_clipfrac"] == pytest.approx(0.5)
    loss.backward()
    # token 0 uses the clipped prediction: no gradient; token 1: 0.5 * 2 * 0.5 / 2
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 0.25]]))
