"""Rollout workers on Ray: a plain worker class, a thin actor around it, and a manager.

    RolloutWorker          an engine + its bookkeeping; runs and is tested without Ray
    RolloutManager         N actors of RolloutWorker; shards prompts, gathers rollouts in
                           request order, restarts a dead worker (re-synced with the latest
                           weights) and resubmits its unfinished prompts

Weights reach the workers from trainer rank 0 over a collective group (`join_weight_group`,
`receive_weights`; sail_rl/rl/weight_transfer.py drives both ends), or, where no group can
be formed, through Ray's object store (`update_weights`).

The actor sets VLLM_ENABLE_V1_MULTIPROCESSING=0 so vLLM's engine core runs inside it.

>>> shard([1, 2, 3, 4, 5], 2)
[[1, 2, 3], [4, 5]]
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from rollouts.engine import IN_PROCESS_ENV, make_engine
from rollouts.types import GenerationRequest, Rollout, RolloutConfig, SamplingConfig
from rollouts.weight_sync import named_weights
from sail_rl.errors import SailRLError

log = logging.getLogger(__name__)
REPO_ROOT = str(Path(__file__).resolve().parents[1])


class RolloutWorker:
    """One rollout engine (a prompt over rollout.max_prompt_tokens gets no rollouts, logged by the engine)."""

    def __init__(self, cfg: RolloutConfig, model_dir: str, worker_index: int = 0):
        self.cfg = cfg
        self.worker_index = worker_index
        self.engine = make_engine(cfg, model_dir)
        self.weights_version = 0
        self.weight_group = None  # rollouts.collective.WeightGroup once trainer rank 0's group is joined

    def ready(self) -> int:
        return self.worker_index

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[Rollout]:
        return self.engine.generate(requests, sampling)

    def update_weights(self, weights, version: int | None = None) -> int:
        self.engine.update_weights(weights)
        self.weights_version = self.weights_version + 1 if version is None else version
        return self.weights_version

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int, backend: str) -> int:
        """Join trainer rank 0's weight group (rollouts/collective.py) as `rank`."""
        from rollouts.collective import WeightGroup

        if self.weight_group is not None:
            self.weight_group.close()
        self.weight_group = WeightGroup(host, port, rank, world_size, backend)
        return rank

    def receive_weights(self, version: int) -> int:
        """Take the weights trainer rank 0 broadcasts, streamed straight into the engine."""
        stream = self.weight_group.receive()
        self.engine.update_weights(stream)
        leftover = sum(1 for _ in stream)  # the sender waits for every rank: always drain
        if leftover:
            raise SailRLError(f"weight sync: the engine left {leftover} received tensors unread")
        self.weights_version = version
        return version

    def sleep(self) -> None:
        self.engine.sleep()

    def wake(self, tags: tuple[str, ...] | None = None) -> None:
        self.engine.wake(tags)

    def close(self) -> None:
        self.engine.close()


def shard(items: list, parts: int) -> list[list]:
    """Contiguous, near-equal chunks, in order (concatenating them gives `items` back)."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


class RolloutManager:
    """Rollout workers as Ray actors. Call after `ray.init()`.

    worker_cls lets tests (or users) wrap the worker; it must be importable by the actors.
    """

    def __init__(self, cfg: RolloutConfig, model_dir: str, worker_cls=RolloutWorker, max_retries: int = 2,
                 actor_options: list[dict] | None = None):
        self.cfg, self.model_dir, self.worker_cls = cfg, str(model_dir), worker_cls
        self.actor_options = actor_options  # per worker: num_cpus / num_gpus / scheduling_strategy (placement)
        self.max_retries = max_retries
        self.restarts = 0
        self._weights_ref = None
        self._weights_version = 0
        self.on_restart = None  # set by a weight transfer that must re-sync a restarted worker itself
        self.workers = [self._start(i) for i in range(cfg.num_workers)]
        self._wait_ready(self.workers)

    def _start(self, index: int):
        import ray

        env = {
            **IN_PROCESS_ENV,
            # per-sync INFO lines (and a harmless rotary-embedding warning) would flood the driver's console
            "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "ERROR"),
            "PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p),
        }
        gpus = self.cfg.tensor_parallel_size if torch.cuda.is_available() else 0
        # Ray gives a num_cpus=0 actor OMP_NUM_THREADS=1; a CPU engine should use its share of the cores
        threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // self.cfg.num_workers))
        env["OMP_NUM_THREADS"] = threads
        actor_cls = ray.remote(self.worker_cls)
        options = {"num_cpus": 0, "num_gpus": gpus}
        if self.actor_options:
            options.update(self.actor_options[index % len(self.actor_options)])
        return actor_cls.options(**options, runtime_env={"env_vars": env}).remote(self.cfg, self.model_dir, index)

    def _wait_ready(self, workers) -> None:
        import ray

        ray.get([w.ready.remote() for w in workers])

    def _restart(self, index: int) -> None:
        import ray

        log.warning("rollout worker %d died; restarting it", index)
        try:
            ray.kill(self.workers[index])
        except Exception:  # already gone
            pass
        worker = self._start(index)
        self._wait_ready([worker])
        if self._weights_ref is not None:
            ray.get(worker.update_weights.remote(self._weights_ref, self._weights_version))
        self.workers[index] = worker
        self.restarts += 1
        if self.on_restart is not None:  # weights over a group: the group is re-formed with the new worker
            self.on_restart()

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[Rollout]:
        """All rollouts of `requests`, in request order (then sample order)."""
        shards = shard(list(requests), len(self.workers))
        results: list[list[Rollout]] = [[] for _ in shards]
        for index, rollouts in self._run_shards(shards, sampling):
            results[index] = rollouts
        return [r for part in results for r in part]

    def generate_iter(self, requests: list[GenerationRequest], sampling: SamplingConfig, chunks_per_worker: int = 2):
        """Yield rollouts chunk by chunk as they finish (all n samples of a request in one chunk),
        so the caller can score finished groups while the rest still generate."""
        shards = shard(list(requests), len(self.workers) * chunks_per_worker)
        for _, rollouts in self._run_shards(shards, sampling):
            yield rollouts

    def _run_shards(self, shards: list[list[GenerationRequest]], sampling: SamplingConfig):
        """(shard index, rollouts) as shards finish; shard j runs on worker j % workers. A dead
        worker is restarted (and re-synced) once per death and its shards resubmitted."""
        import ray
        from ray.exceptions import RayActorError

        n = len(self.workers)
        attempts = [0] * len(shards)
        pending = {}
        for j, part in enumerate(shards):
            if part:
                worker = self.workers[j % n]
                pending[worker.generate.remote(part, sampling)] = (j, worker)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            j, worker = pending.pop(done[0])
            try:
                rollouts = ray.get(done[0])
            except RayActorError as exc:
                attempts[j] += 1
                if attempts[j] > self.max_retries:
                    raise SailRLError(f"rollout worker {j % n} died {attempts[j]} times on the same prompts; last error: {exc}") from None
                if self.workers[j % n] is worker:  # not restarted yet for this death
                    self._restart(j % n)
                pending[self.workers[j % n].generate.remote(shards[j], sampling)] = (j, self.workers[j % n])
                continue
            yield j, rollouts

    def join_weight_group(self, host: str, port: int, backend: str) -> list:
        """Refs of every worker joining trainer rank 0's weight group (ranks 1..N); the caller
        gets them together with rank 0's own join."""
        world = len(self.workers) + 1
        self._weights_ref = None  # from now on weights come over the group, never through here
        return [w.join_weight_group.remote(host, port, i + 1, world, backend) for i, w in enumerate(self.workers)]

    def receive_weights(self) -> list:
        """Refs of every worker receiving the next broadcast (the caller starts rank 0's send)."""
        self._weights_version += 1
        return [w.receive_weights.remote(self._weights_version) for w in self.workers]

    def update_weights(self, weights) -> None:
        """Send new weights to every worker through Ray's object store (one copy, kept for restarts).
        The path where no weight group could be formed (sail_rl/rl/weight_transfer.py)."""
        import ray

        state = {name: t.detach().cpu() for name, t in named_weights(weights)}
        self._weights_version += 1
        self._weights_ref = ray.put(state)
        ray.get([w.update_weights.remote(self._weights_ref, self._weights_version) for w in self.workers])

    def sleep(self) -> None:
        import ray

        ray.get([w.sleep.remote() for w in self.workers])

    def wake(self, tags: tuple[str, ...] | None = None) -> None:
        import ray

        ray.get([w.wake.remote(tags) for w in self.workers])

    def close(self) -> None:
        import ray

        for w in self.workers:
            try:
                ray.get(w.close.remote(), timeout=60)
            except Exception:  # a dead worker has nothing to close
                pass
            ray.kill(w)
        self.workers = []


__all__ = ["RolloutWorker", "RolloutManager", "shard"]
