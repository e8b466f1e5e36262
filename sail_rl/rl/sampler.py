"""A prompt sampler that resumes exactly: epochs of seeded permutations and a cursor.

Its whole state is the epoch, the cursor, the seed and the dataset size, saved with every checkpoint, so a resumed run draws the
prompts the interrupted one would have drawn: none lost, none repeated. Crossing an epoch
boundary (including resuming exactly at one) just starts the next permutation.
"""

from __future__ import annotations

import random


class PromptSampler:
    """Draws indices into a dataset of `size` items, epoch after epoch.

    >>> s = PromptSampler(size=3, seed=0)
    >>> a = s.next(2); state = s.state_dict(); b = s.next(4)
    >>> t = PromptSampler(size=3, seed=0); t.load_state_dict(state); t.next(4) == b
    True
    >>> sorted(a + b[:1])
    [0, 1, 2]
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True):
        if size <= 0:
            raise ValueError("the training set is empty")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch, self.cursor = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.size))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def next(self, n: int) -> list[int]:
        out = []
        while len(out) < n:
            if self.cursor >= self.size:
                self.epoch += 1
                self.cursor = 0
                self._order = self._permutation(self.epoch)
            take = min(n - len(out), self.size - self.cursor)
            out.extend(self._order[self.cursor : self.cursor + take])
            self.cursor += take
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"the checkpoint's dataset had {state['size']} prompts, this one has {self.size}")
        self.epoch, self.cursor = state["epoch"], state["cursor"]
        self._order = self._permutation(self.epoch)
