"""KL estimators, entropy from logits, truncated importance sampling."""

import math

import pytest
import torch

from sail_rl.algorithms import (
    apply_kl_penalty,
    entropy_from_logits,
    kl_penalty,
    rollout_mismatch_metrics,
    tis_weights,
)

LOGP = torch.tensor([[0.0, -1.0]])
REF = torch.tensor([[-1.0, 0.0]])  # log ratio [1, -1]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("k1", [1.0, -1.0]),
        ("abs", [1.0, 1.0]),
        ("k2", [0.5, 0.5]),
        ("k3", [math.exp(-1) + 1 - 1, math.exp(1) - 1 - 1]),
        ("low_var_kl", [math.exp(-1), math.e - 2]),
    ],
)
def test_kl_estimators(kind, expected):
    torch.testing.assert_close(kl_penalty(LOGP, REF, kind), torch.tensor([expected]))


def test_k3_is_clamped_and_nonnegative():
    kl = kl_penalty(torch.tensor([[0.0, -100.0, -0.3]]), torch.tensor([[-100.0, 0.0, -0.3]]), "k3")
    torch.testing.assert_close(kl, torch.tensor([[10.0, 10.0, 0.0]]))


def test_kl_unknown_kind():
    with pytest.raises(ValueError, match="k3"):
        kl_penalty(LOGP, REF, "k4")


def test_apply_kl_penalty():
    token_rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = apply_kl_penalty(token_rewards, torch.full((2, 3), 0.5), 0.1, mask)
    torch.testing.assert_close(out, torch.tensor([[-0.05, -0.05, 0.95], [-0.05, 0.95, 0.0]]))


def test_entropy_from_logits_values():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [0.0, math.log(3.0), -math.inf, -math.inf]]])
    expected = [math.log(4), -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))]
    # the -inf logits (a masked vocabulary) must count as probability 0, not give nan
    torch.testing.assert_close(entropy_from_logits(logits), torch.tensor([expected]))


def test_entropy_stable_for_large_logits_and_matches_torch():
    big = entropy_from_logits(torch.tensor([[[1e4, 0.0, -1e4]]]))
    assert torch.isfinite(big).all() and big.abs().item() < 1e-6
    torch.manual_seed(0)
    logits = 5 * torch.randn(2, 3, 11)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(entropy_from_logits(logits), expected)


def test_tis_weights_truncated_and_detached():
    old = torch.tensor([[0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    rollout = torch.tensor([[0.0, -0.1, -5.0, 0.3]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = tis_weights(old, rollout, mask, cap=2.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, math.exp(0.1), 2.0, 0.0]]))
    assert not w.requires_grad


def test_rollout_mismatch_metrics():
    old, rollout = torch.tensor([[-1.0, -2.0, 7.0]]), torch.tensor([[-1.5, -2.0, 0.0]])
    m = rollout_mismatch_metrics(old, rollout, torch.tensor([[1, 1, 0]]))
    assert m["mismatch_abs_logprob_diff"] == pytest.approx(0.25)
    assert m["mismatch_kl_k1"] == pytest.approx(-0.25)
    assert m["mismatch_kl_k3"] == pytest.approx((math.exp(0.5) - 1.5) / 2)
