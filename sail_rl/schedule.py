"""Learning-rate schedules shared by the SFT and RL trainers (a LambdaLR factor)."""

from __future__ import annotations

import math
from typing import Callable


def lr_lambda(kind: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine / linear decay to 0 or constant (as transformers' schedulers)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        if kind == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return factor
