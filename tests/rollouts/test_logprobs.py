"""Trainer-side log-probs and mismatch metrics."""

from __future__ import annotations

import math

import torch

from rollouts.logprobs import collate_rollouts, logprobs_from_logits, mismatch_metrics
from rollouts.types import Rollout


def test_logprobs_from_logits_matches_manual_softmax():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    ids = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])
    out = logprobs_from_logits(logits, ids, mask, temperature=0.5, suppress_token_ids=[6])
    scaled = (logits / 0.5).clone()
    scaled[..., 6] = float("-inf")
    expected = torch.log_softmax(scaled, -1)[0, 2, ids[0, 3]]
    assert torch.isclose(out[0, 3], expected) and out[1, 3] == 0 and out[0, 0] == 0


def test_mismatch_metrics_values():
    lp = torch.tensor([[-1.0, -2.0, -3.0]])
    mask = torch.tensor([[1, 1, 0]])
    m = mismatch_metrics(lp, lp, mask)
    assert m["mismatch/mean_abs_logprob_diff"] == 0 and m["mismatch/kl"] == 0
    m = mismatch_metrics(lp + torch.tensor([[0.2, -0.2, 5.0]]), lp, mask)
    assert math.isclose(m["mismatch/mean_abs_logprob_diff"], 0.2, rel_tol=1e-6)  # the masked 5.0 is ignored
    k3 = ((math.exp(0.2) - 1 - 0.2) + (math.exp(-0.2) - 1 + 0.2)) / 2
    assert math.isclose(m["mismatch/kl"], k3, rel_tol=1e-5)


def test_collate_rollouts_right_pads_and_aligns_logprobs():
    pix = torch.zeros(2, 3, 4, 4)
    rs = [
        Rollout("a", 0, [5, 6, 7], [8, 9], [-0.5, -0.25], "x", "stop", num_image_tiles=2, pixel_values=pix),
        Rollout("b", 0, [5], [8], [-1.0], "y", "length"),
    ]
    b = collate_rollouts(rs, pad_token_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 8, 0, 0, 0]]
    assert b["response_mask"].tolist() == [[0, 0, 0, 1, 1], [0, 1, 0, 0, 0]]
    assert b["rollout_logprobs"][0, 4] == -0.25 and b["pixel_values"].shape[0] == 2
    assert b["image_tiles_per_sample"].tolist() == [2, 0]
