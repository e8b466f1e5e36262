"""What the RL loop calls: its four handles, as Protocols.

`PolicyTrainer` (sail_rl/trainer/policy_trainer.py) and `RayTrainerGroup` are trainers; the engines
(rollouts/) and `RolloutManager` are rollouts; `ScoringPool` and `RayRewardPool` are scorers;
sail_rl/rl/weight_transfer.py has the transfers. The loop is written against these alone, so
it runs the same in one process, on Ray, and with the fakes of tests/rl/test_loop.py.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Iterator, Protocol

from rewards import RewardInput
from rollouts.types import GenerationRequest, Rollout, SamplingConfig
from sail_rl.trainer.batch import TrainBatch


class Trainer(Protocol):
    def compute_log_probs(self, batch: TrainBatch, old: bool = True) -> object:
        """Fill batch.old_log_probs (when `old`), ref_log_probs and old_values as the algorithm needs."""

    def update(self, batch: TrainBatch) -> dict[str, float]:
        """PPO epochs over the batch (advantages filled in); returns metrics."""

    def save_state(self, out_dir: str) -> None:
        """Every rank writes its own shard of weights and optimizer state into `out_dir`."""

    def load_state(self, in_dir: str) -> None: ...

    def save_pretrained(self, out_dir: str) -> None:
        """A full HF checkpoint (the export)."""


class RolloutHandle(Protocol):
    def generate_iter(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> Iterator[list[Rollout]]:
        """The rollouts of `requests`, in chunks as they finish (every rollout of a request in one chunk).
        A request skipped for its length yields no rollout."""

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[Rollout]: ...

    def sleep(self) -> None:
        """Free accelerator memory for the update (rollout.enable_sleep_mode)."""

    def wake(self, tags: tuple[str, ...] | None = None) -> None:
        """Make `tags` resident again: "weights" before the sync, "kv_cache" after it."""


class Scorer(Protocol):
    def submit(self, inputs: list[RewardInput]) -> Future:
        """A future of rewards.ScoreResult for one prompt's rollouts."""


class WeightTransfer(Protocol):
    def push(self) -> None:
        """The trainer's current weights into every rollout engine."""


__all__ = ["Trainer", "RolloutHandle", "Scorer", "WeightTransfer"]
