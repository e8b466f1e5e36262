"""Rollouts -> padded training tensors, and the split into mini- and micro-batches.

A sequence is prompt + response, right-padded to the longest in the batch. Token `t`'s
log-prob comes from the logits at `t - 1`, so every per-token tensor is [batch, seq - 1]
and `response_mask[b, t]` is 1 where token `t + 1` of row b is a response token.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class TrainBatch:
    input_ids: torch.Tensor  # [B, L] long
    attention_mask: torch.Tensor  # [B, L] long
    response_mask: torch.Tensor  # [B, L-1] float, 1 on response tokens (shifted)
    pixel_values: torch.Tensor  # [tiles, 3, S, S] for all rows, in row order
    image_tiles_per_sample: torch.Tensor  # [B] long
    group_ids: torch.Tensor  # [B] long: rollouts of one prompt share an id
    rewards: torch.Tensor  # [B] float
    rollout_log_probs: torch.Tensor  # [B, L-1] engine log-probs on response tokens, 0 elsewhere
    old_log_probs: torch.Tensor | None = None  # [B, L-1]
    ref_log_probs: torch.Tensor | None = None  # [B, L-1]
    old_values: torch.Tensor | None = None  # [B, L-1]
    advantages: torch.Tensor | None = None  # [B, L-1]
    returns: torch.Tensor | None = None  # [B, L-1]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def num_response_tokens(self) -> int:
        return int(self.response_mask.sum().item())

    def select(self, rows: list[int] | torch.Tensor) -> "TrainBatch":
        """The rows `rows` (and their image tiles), as a new batch."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        tile_start = torch.cat([torch.zeros(1, dtype=torch.long), self.image_tiles_per_sample.cumsum(0)])
        tile_index = [torch.arange(tile_start[r], tile_start[r + 1]) for r in rows.tolist()]
        tiles = torch.cat(tile_index) if tile_index else torch.zeros(0, dtype=torch.long)
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pixel_values":
                out[f.name] = value[tiles]
            elif isinstance(value, torch.Tensor):
                out[f.name] = value[rows]
            else:
                out[f.name] = value
        return TrainBatch(**out)

    def to(self, device: torch.device | str) -> "TrainBatch":
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to(device) if isinstance(value, torch.Tensor) else value
        return TrainBatch(**out)

    def trimmed(self) -> "TrainBatch":
        """Drop trailing columns that are padding in every row (cheaper micro-batches)."""
        length = int(self.attention_mask.sum(dim=1).max().item())
        if length == self.input_ids.shape[1]:
            return self
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor) and value.dim() == 2 and f.name in ("input_ids", "attention_mask"):
                out[f.name] = value[:, :length]
            elif isinstance(value, torch.Tensor) and value.dim() == 2:
                out[f.name] = value[:, : length - 1]
            else:
                out[f.name] = value
        return TrainBatch(**out)


def collate(samples: list[dict], pad_token_id: int, image_size: int) -> TrainBatch:
    """Samples -> TrainBatch. Each sample: prompt_ids, response_ids, response_logprobs, pixel_values
    [tiles, 3, S, S] (or None), group_id, reward."""
    lengths = [len(s["prompt_ids"]) + len(s["response_ids"]) for s in samples]
    width = max(lengths)
    batch = len(samples)
    input_ids = torch.full((batch, width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    response_mask = torch.zeros((batch, width - 1))
    rollout_lp = torch.zeros((batch, width - 1))
    pixels, tiles = [], []
    for i, s in enumerate(samples):
        p, r = len(s["prompt_ids"]), len(s["response_ids"])
        input_ids[i, : p + r] = torch.tensor(list(s["prompt_ids"]) + list(s["response_ids"]), dtype=torch.long)
        attention[i, : p + r] = 1
        response_mask[i, p - 1 : p + r - 1] = 1.0
        if s.get("response_logprobs") is not None and r:
            rollout_lp[i, p - 1 : p + r - 1] = torch.tensor(s["response_logprobs"], dtype=torch.float)
        pv = s.get("pixel_values")
        n_tiles = 0 if pv is None else int(pv.shape[0])
        if n_tiles:
            pixels.append(pv)
        tiles.append(n_tiles)
    return TrainBatch(
        input_ids=input_ids,
        attention_mask=attention,
        response_mask=response_mask,
        pixel_values=torch.cat(pixels) if pixels else torch.zeros(0, 3, image_size, image_size),
        image_tiles_per_sample=torch.tensor(tiles, dtype=torch.long),
        group_ids=torch.tensor([s["group_id"] for s in samples], dtype=torch.long),
        rewards=torch.tensor([float(s["reward"]) for s in samples]),
        rollout_log_probs=rollout_lp,
    )


def packing_pays(attn_implementation: str, length_grouped: bool = False) -> bool:
    """The default of packing rows into one sequence (SFT's train.packing, RL's trainer.padding_free).

    On with a kernel that reads the rows' bounds: flash-attention's varlen kernel, and sdpa (loaded
    as `sdpa_varlen`, model/attention.py: one attention per row) unless the rows are already
    grouped by length. Off on eager, whose packed block-diagonal mask is dense. Measured on CPU
    (README, Results): packing pays in SFT (`sail-rl bench sft --packing`); RL's length-grouped
    micro-batches (trainer.group_by_length) gain nothing more from it (`sail-rl bench update`),
    so RL keeps them padded.
    """
    if "flash" in attn_implementation:
        return True
    return attn_implementation == "sdpa" and not length_grouped


def pack_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded rows -> one sequence: (flat_ids [T], position_ids [T], row_starts [B]).

    input_ids / attention_mask [B, L]; T = the real tokens of all rows, row after row. Positions
    restart at 0 on every row, which transformers turns into a block-diagonal causal mask (the
    varlen kernel under flash-attention): each token sees the tokens it sees in its padded row.
    Token t of row b sits at flat index row_starts[b] + t.

    >>> ids, pos, starts = pack_rows(torch.tensor([[5, 6, 0], [7, 8, 9]]), torch.tensor([[1, 1, 0], [1, 1, 1]]))
    >>> ids.tolist(), pos.tolist(), starts.tolist()
    ([5, 6, 7, 8, 9], [0, 1, 0, 1, 2], [0, 2])
    """
    lengths = attention_mask.sum(dim=1)
    flat_ids = input_ids[attention_mask.bool()]
    positions = torch.cat([torch.arange(int(n), device=input_ids.device) for n in lengths])
    return flat_ids, positions, lengths.cumsum(0) - lengths


def split_rows(n_rows: int, size: int, generator: torch.Generator | None = None, shuffle: bool = False) -> list[list[int]]:
    """Row indices in chunks of `size` (the last may be shorter), optionally shuffled."""
    order = torch.randperm(n_rows, generator=generator).tolist() if shuffle else list(range(n_rows))
    return [order[i : i + size] for i in range(0, n_rows, size)]
