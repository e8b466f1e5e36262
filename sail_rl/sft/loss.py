"""The SFT loss of one micro-batch: summed next-token cross-entropy over the supervised tokens,
from right-padded rows or with the rows packed into one sequence (`train.packing`).

Both return (loss summed over supervised tokens, their number, how many argmax predicts right,
model output); the trainer divides by the supervised tokens of the whole step on all ranks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sail_rl.model.attention import packed_attention_kwargs
from sail_rl.sft.masks import IGNORE_INDEX
from sail_rl.trainer.batch import pack_rows


def masked_lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """logits [batch, seq, vocab], labels [batch, seq] (-100: ignored): (loss sum, tokens, correct)."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    loss = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")
    mask = shift_labels != IGNORE_INDEX
    correct = int(((shift_logits.argmax(-1) == shift_labels) & mask).sum())
    return loss, int(mask.sum()), correct


def padded_loss(model, batch: dict[str, torch.Tensor], labels: torch.Tensor, **extra):
    out = model(**batch, **extra)
    return (*masked_lm_loss_sum(out.logits, labels), out)


def packed_loss(model, batch: dict[str, torch.Tensor], labels: torch.Tensor, **extra):
    """The rows as one [1, T] sequence with per-row positions (no pad tokens), the LM head on the
    N supervised positions only. Exact: each token attends to the same tokens at the same positions
    as in its padded row, and the same (position, target) pairs enter the loss."""
    flat_ids, positions, row_starts = pack_rows(batch["input_ids"], batch["attention_mask"])  # [T], [T], [B]
    shifted = labels[:, 1:]  # [B, L-1]: entry t is the label of token t + 1, predicted at position t
    rows, cols = (shifted != IGNORE_INDEX).nonzero(as_tuple=True)  # [N]
    targets = shifted[rows, cols]  # [N]
    attention = packed_attention_kwargs(batch["attention_mask"].sum(dim=1))
    out = model(input_ids=flat_ids[None], position_ids=positions[None], **attention,
                pixel_values=batch["pixel_values"], image_tiles_per_sample=batch["image_tiles_per_sample"].sum().view(1),
                use_cache=False, logits_to_keep=row_starts[rows] + cols, **extra)
    logits = out.logits[0].float()  # [N, vocab]
    loss = F.cross_entropy(logits, targets, reduction="sum")
    return loss, len(targets), int((logits.argmax(-1) == targets).sum()), out
