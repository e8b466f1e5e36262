"""Score batches off the generation path: `ScoringPool.submit(inputs) -> Future[ScoreResult]`.

A thread pool by default: rewards that wait on a judge endpoint or on the sympy sandbox
release the GIL, and one scorer (with its judge cache) is shared. `kind="process"` runs
CPU-heavy Python rewards in spawned processes, each with its own scorer built from the
same config. In every kind the scorer bounds each reward call by its `timeout_s` (see
rewards/scorer.py), so a stuck reward never holds a pool worker. No Ray here;
`RewardActor` is the thin wrapper Ray places, and `one_line_errors` turns a reward error
raised inside an actor back into the one-line error it was:

    RemoteScorer = ray.remote(RewardActor)       # or RewardActor.as_remote(num_cpus=1)
    actor = RemoteScorer.remote(rewards_config)
    result = one_line_errors(actor.score.remote(inputs).future()).result()
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from sail_rl.errors import ConfigError, SailRLError

from rewards.contract import RewardInput
from rewards.registry import RewardsConfig, RewardSpec
from rewards.scorer import RewardScorer, ScoreResult

_WORKER_SCORER: RewardScorer | None = None


def _as_config(config: RewardsConfig | list[RewardSpec] | dict) -> RewardsConfig:
    if isinstance(config, RewardsConfig):
        return config
    if isinstance(config, dict):
        from sail_rl.config import from_dict

        return from_dict(RewardsConfig, config)
    return RewardsConfig(rewards=list(config))


def _init_worker(config: RewardsConfig) -> None:
    global _WORKER_SCORER
    _WORKER_SCORER = RewardScorer(config)


def _score_in_worker(inputs: list[RewardInput]) -> ScoreResult:
    assert _WORKER_SCORER is not None, "scoring worker started without its initializer"
    return _WORKER_SCORER.score(inputs)


class ScoringPool:
    """Asynchronous batch scoring: each `submit` is scored independently by a pool worker."""

    def __init__(self, config: RewardsConfig | list[RewardSpec] | dict, max_workers: int = 2,
                 kind: str = "thread") -> None:
        self.config = _as_config(config)
        self.kind = kind
        if kind == "thread":
            self.scorer = RewardScorer(self.config)  # built here so config errors surface now
            self._executor: Executor = ThreadPoolExecutor(max_workers, thread_name_prefix="reward")
        elif kind == "process":
            RewardScorer(self.config)  # validate and load once in this process, for early errors
            self._executor = ProcessPoolExecutor(
                max_workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.config,))
        else:
            raise ConfigError(f"scoring pool kind must be 'thread' or 'process', got {kind!r}")

    def submit(self, inputs: list[RewardInput]) -> "Future[ScoreResult]":
        """Start scoring `inputs` [batch]; the future's result is a ScoreResult."""
        if self.kind == "thread":
            return self._executor.submit(self.scorer.score, list(inputs))
        return self._executor.submit(_score_in_worker, list(inputs))

    def close(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self) -> "ScoringPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RewardActor:
    """Holds a RewardScorer and forwards `score`; `ray.remote(RewardActor)` makes it an actor."""

    def __init__(self, config: RewardsConfig | list[RewardSpec] | dict) -> None:
        self.scorer = RewardScorer(_as_config(config))

    def score(self, inputs: list[RewardInput]) -> ScoreResult:
        return self.scorer.score(inputs)

    @staticmethod
    def as_remote(**options: Any) -> Any:
        """`ray.remote(**options)(RewardActor)`; ray is imported only here."""
        import ray

        return ray.remote(**options)(RewardActor) if options else ray.remote(RewardActor)


def one_line_errors(future: "Future[ScoreResult]") -> "Future[ScoreResult]":
    """A future that raises the user-facing error (RewardError, ...) a Ray task raised, as itself.

    Ray wraps an actor's exception in a RayTaskError whose message is the remote traceback;
    the CLI prints a SailRLError as one line, so the cause is re-raised with the Ray error
    chained (shown with --debug). Other errors pass through unchanged.
    """
    out: Future = Future()

    def relay(done: Future) -> None:
        exc = done.exception()
        if exc is None:
            out.set_result(done.result())
            return
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SailRLError):
            plain = type(cause)(str(cause))
            plain.__cause__ = exc
            out.set_exception(plain)
        else:
            out.set_exception(exc)

    future.add_done_callback(relay)
    return out
