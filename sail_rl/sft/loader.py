"""The SFT data stream: plan entries -> tokenised, collated micro-batches, on the fly.

Nothing is cached: every epoch reads its records again (`SourceData`), decodes the images and
tokenises (`masks.tokenize_example`), so memory stays flat however large the data set is. With
`train.dataloader_num_workers` > 0 (TRL/HF's name) torch `DataLoader` workers build the
micro-batches ahead of the training step; the order is the plan's either way (a map-style
dataset, read in order), so the batches are the same with 0 or N workers.

    MicroBatches(features, chunks)[k] -> collated micro-batch of chunks[k]   (a torch Dataset)
    chunks[k]: the (source, index) pairs of this rank's share of global micro-batch k
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from sail_rl.sft.masks import SFTCollator, tokenize_example


class Features:
    """(source, index) -> a tokenised example (`tokenize_example`'s dict). Picklable: the sources
    hold line offsets, the processor its tokenizer files."""

    def __init__(self, sources: Sequence, processor, assistant_turns: str, completion_only_loss: bool,
                 max_length: int, max_tiles: Optional[int]):
        self.sources, self.processor = sources, processor
        self.assistant_turns, self.completion_only_loss = assistant_turns, completion_only_loss
        self.max_length, self.max_tiles = max_length, max_tiles
        self.collator = SFTCollator(processor.tokenizer.pad_token_id)

    def __call__(self, source: int, index: int) -> dict:
        return tokenize_example(self.sources[source][index], self.processor, self.assistant_turns,
                                self.completion_only_loss, self.max_length, max_tiles=self.max_tiles)

    def batch(self, pairs: Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """The collated micro-batch of `pairs` (see `SFTCollator` for the shapes)."""
        return self.collator([self(s, i) for s, i in pairs])


class MicroBatches(torch.utils.data.Dataset):
    def __init__(self, features: Features, chunks: list[list[tuple[int, int]]]):
        self.features, self.chunks = features, chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return self.features.batch(self.chunks[k])


def micro_batch_loader(features: Features, chunks: list[list[tuple[int, int]]], num_workers: int):
    """An iterator over the collated micro-batches of `chunks`, in order; built by `num_workers`
    processes ahead of use (0: in this process, when asked for)."""
    if num_workers == 0:
        return (features.batch(chunk) for chunk in chunks)
    return iter(torch.utils.data.DataLoader(MicroBatches(features, chunks), batch_size=None, shuffle=False,
                                            num_workers=num_workers, collate_fn=_identity))


def _identity(batch):
    return batch  # the dataset returns whole collated micro-batches
