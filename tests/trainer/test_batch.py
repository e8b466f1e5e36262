"""The one collate (rollouts -> TrainBatch) and the trainer's token log-probs, on hand-made values."""

from __future__ import annotations

import torch

from sail_rl.trainer.batch import collate
from sail_rl.trainer.logprobs import token_log_probs


def test_token_log_probs_match_a_manual_softmax_with_suppressed_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 6, (2, 5))
    out = token_log_probs(logits, targets, temperature=0.5, suppress_ids=[6])
    scaled = logits / 0.5
    scaled[..., 6] = float("-inf")
    expected = torch.log_softmax(scaled, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(out, expected)
    # a suppressed target (an image placeholder in the prompt) is 0, not -inf
    assert token_log_probs(logits, torch.full((2, 5), 6), 1.0, [6]).abs().sum() == 0


def test_collate_right_pads_and_shifts_the_response_mask():
    pix = torch.zeros(2, 3, 4, 4)
    samples = [
        dict(prompt_ids=[5, 6, 7], response_ids=[8, 9], response_logprobs=[-0.5, -0.25], pixel_values=pix, group_id=0, reward=1.0),
        dict(prompt_ids=[5], response_ids=[8], response_logprobs=[-1.0], pixel_values=None, group_id=1, reward=0.0),
    ]
    b = collate(samples, pad_token_id=0, image_size=4)
    assert b.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 8, 0, 0, 0]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    # entry t scores token t + 1: row 0's response tokens are ids 3 and 4, row 1's is id 1
    assert b.response_mask.tolist() == [[0, 0, 1, 1], [1, 0, 0, 0]]
    assert b.rollout_log_probs[0, 3] == -0.25 and b.rollout_log_probs[1, 0] == -1.0
    assert b.pixel_values.shape[0] == 2 and b.image_tiles_per_sample.tolist() == [2, 0]
    assert b.group_ids.tolist() == [0, 1] and b.rewards.tolist() == [1.0, 0.0]
