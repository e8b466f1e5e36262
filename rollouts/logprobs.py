"""Trainer-side log-probs of sampled tokens, and how far they are from the engine's.

The importance ratio of PPO/GRPO needs log pi(token) under the SAME distribution the engine
sampled from. vLLM runs with `logprobs_mode="processed_logprobs"`: its log-probs are
log_softmax((logits with placeholder tokens banned) / temperature). `sequence_logprobs`
computes exactly that from a SAIL-VL forward; pass the engine's `banned_token_ids` as
`suppress_token_ids` (without them the difference is log(1 - p(banned)), ~0 for a trained
model). top-k / top-p truncation is not reproduced: keep them off for RL.

>>> import torch
>>> lp = torch.tensor([[0.0, -1.0, -2.0]]); m = torch.tensor([[0, 1, 1]])
>>> round(mismatch_metrics(lp, lp + 0.5, m)["mismatch/mean_abs_logprob_diff"], 6)
0.5
"""

from __future__ import annotations

from typing import Sequence

import torch

from rollouts.types import Rollout


def sequence_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    pixel_values: torch.Tensor | None,
    image_tiles_per_sample: torch.Tensor | None,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    suppress_token_ids: Sequence[int] | None = None,
) -> torch.Tensor:
    """log p(token_s | tokens_<s) at response positions, 0 elsewhere. Differentiable.

    input_ids, attention_mask, response_mask: [batch, seq] (prompt + response, right-padded);
    pixel_values [tiles, 3, S, S] for the images of the batch in order; image_tiles_per_sample
    [batch]. temperature 0 (greedy) counts as 1. Returns [batch, seq] float32.
    """
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
        image_tiles_per_sample=image_tiles_per_sample, use_cache=False,
    )
    return logprobs_from_logits(out.logits, input_ids, response_mask, temperature, suppress_token_ids)


def logprobs_from_logits(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    suppress_token_ids: Sequence[int] | None = None,
) -> torch.Tensor:
    """logits [batch, seq, vocab] (position s predicts token s+1) -> [batch, seq] log-probs of input_ids.

    The trainer's own `token_log_probs`, one row at a time (the float32 copy is [seq, vocab]),
    so the parity tests check the function the RL update uses.
    """
    from sail_rl.trainer.logprobs import token_log_probs

    temperature = temperature if temperature > 0 else 1.0
    suppress = list(suppress_token_ids) if suppress_token_ids else None
    rows = []
    for b in range(logits.shape[0]):
        lp = token_log_probs(logits[b : b + 1, :-1], input_ids[b : b + 1, 1:], temperature, suppress)[0]  # [seq-1]
        rows.append(torch.cat([lp.new_zeros(1), lp]))
    out = torch.stack(rows)
    return torch.where(response_mask.bool(), out, torch.zeros_like(out))


def collate_rollouts(rollouts: list[Rollout], pad_token_id: int) -> dict[str, torch.Tensor | None]:
    """Rollouts -> a right-padded training batch.

    Returns input_ids, attention_mask, response_mask, rollout_logprobs [batch, seq];
    pixel_values [tiles, 3, S, S] (None without images); image_tiles_per_sample [batch].
    """
    seq = max(len(r.prompt_token_ids) + len(r.response_token_ids) for r in rollouts)
    batch = len(rollouts)
    input_ids = torch.full((batch, seq), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros(batch, seq, dtype=torch.long)
    response_mask = torch.zeros(batch, seq, dtype=torch.long)
    rollout_logprobs = torch.zeros(batch, seq, dtype=torch.float32)
    pixels = []
    for i, r in enumerate(rollouts):
        p, n = len(r.prompt_token_ids), len(r.response_token_ids)
        input_ids[i, : p + n] = torch.tensor(r.prompt_token_ids + r.response_token_ids, dtype=torch.long)
        attention_mask[i, : p + n] = 1
        response_mask[i, p : p + n] = 1
        if len(r.response_logprobs) == n:  # empty when the engine ran with return_logprobs: false
            rollout_logprobs[i, p : p + n] = torch.tensor(r.response_logprobs, dtype=torch.float32)
        if r.pixel_values is not None and r.num_image_tiles:
            pixels.append(r.pixel_values)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "response_mask": response_mask,
        "rollout_logprobs": rollout_logprobs,
        "pixel_values": torch.cat(pixels) if pixels else None,
        "image_tiles_per_sample": torch.tensor([r.num_image_tiles for r in rollouts], dtype=torch.long),
    }


@torch.no_grad()
def mismatch_metrics(trainer_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How far the trainer's log-probs are from the engine's on the sampled tokens.

    All [batch, seq]. `mismatch/kl` is the k3 estimate of KL(rollout || trainer) per token
    (samples come from the rollout policy): E[r - 1 - log r], r = p_trainer / p_rollout.
    """
    mask = mask.bool()
    tokens = max(int(mask.sum()), 1)
    diff = (trainer_logprobs.float() - rollout_logprobs.float()).masked_fill(~mask, 0.0)
    k3 = (torch.exp(diff) - 1 - diff).masked_fill(~mask, 0.0)
    return {
        "mismatch/mean_abs_logprob_diff": float(diff.abs().sum() / tokens),
        "mismatch/max_abs_logprob_diff": float(diff.abs().max()) if mask.any() else 0.0,
        "mismatch/kl": float(k3.sum() / tokens),
    }


__all__ = ["sequence_logprobs", "logprobs_from_logits", "collate_rollouts", "mismatch_metrics"]
