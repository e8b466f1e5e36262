"""agg_loss modes and gradient accumulation with global counts."""

import pytest
import torch

from sail_rl.algorithms import AlgorithmConfig, agg_loss, compute_policy_loss

LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])  # lengths 3, 1, 0


def test_modes_differ_on_unequal_lengths():
    assert agg_loss(LOSS, MASK, "token-mean").item() == pytest.approx(10 / 4)
    assert agg_loss(LOSS, MASK, "seq-mean-token-sum").item() == pytest.approx((6 + 4) / 2)
    assert agg_loss(LOSS, MASK, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)


def test_dr_grpo_constant_divisor():
    loss = agg_loss(LOSS, MASK, "seq-mean-token-sum", seq_sum_divisor_tokens=4)
    assert loss.item() == pytest.approx((6 / 4 + 4 / 4) / 2)


def test_global_counts_replace_local_ones():
    assert agg_loss(LOSS, MASK, "token-mean", global_token_count=20).item() == pytest.approx(10 / 20)
    assert agg_loss(LOSS, MASK, "seq-mean-token-mean", global_seq_count=4).item() == pytest.approx(6 / 4)


def test_empty_mask_gives_zero_not_nan():
    assert agg_loss(LOSS, torch.zeros_like(MASK), "token-mean").item() == 0.0
    assert agg_loss(LOSS, torch.zeros_like(MASK), "seq-mean-token-mean").item() == 0.0


def test_unknown_mode():
    with pytest.raises(ValueError, match="token-mean"):
        agg_loss(LOSS, MASK, "token_mean")


def _grad(cfg, log_probs, old, adv, ref, mask, row_slices, counts):
    log_probs = log_probs.clone().requires_grad_(True)
    for rows in row_slices:
        loss, _ = compute_policy_loss(
            cfg, log_probs[rows], old[rows], adv[rows], mask[rows], ref_log_probs=ref[rows], **counts
        )
        loss.backward()
    return log_probs.grad


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batches_with_global_counts_equal_full_batch_gradient(mode):
    torch.manual_seed(0)
    batch, length = 6, 5
    lengths = torch.tensor([5, 1, 2, 5, 3, 1])  # unequal: local token-means would weigh rows wrongly
    mask = (torch.arange(length) < lengths[:, None]).long()
    old = -torch.rand(batch, length)
    log_probs = old + 0.3 * torch.randn(batch, length)
    adv = torch.randn(batch, 1).expand(batch, length) * mask
    ref = -torch.rand(batch, length)
    cfg = AlgorithmConfig(loss_agg_mode=mode, kl_loss_coef=0.1, clip_ratio_c=3.0)
    full = _grad(cfg, log_probs, old, adv, ref, mask, [slice(0, batch)], {})
    micro = [slice(0, 2), slice(2, 3), slice(3, 6)]
    counts = {"global_token_count": mask.sum(), "global_seq_count": (mask.sum(-1) > 0).sum()}
    accumulated = _grad(cfg, log_probs, old, adv, ref, mask, micro, counts)
    torch.testing.assert_close(accumulated, full)
    # and the counts matter: per-micro-batch normalisation (then averaged) gives another gradient
    local = _grad(cfg, log_probs, old, adv, ref, mask, micro, {}) / len(micro)
    assert not torch.allclose(local, full)
