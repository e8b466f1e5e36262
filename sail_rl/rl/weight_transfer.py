"""How the trainer's new weights reach the rollout engines: the loop calls `transfer.push()`.

    DirectTransfer        the trainer's weights handed to `rollout.update_weights` here: in one
                          process (run.mode: local) a stream into the engine; under Ray the path
                          trainer -> driver -> object store -> workers, used only where no group
                          can be formed (said once in the log)
    CollectiveTransfer    Ray: trainer rank 0 broadcasts to the rollout workers over a gloo /
                          NCCL group (rollouts/collective.py); the driver only starts the calls
                          and never holds a tensor (OpenRLHF's broadcast_to_vllm, vLLM's RLHF example)

`rollout.weight_sync`: `collective` (default) picks NCCL when the trainer and the rollouts
hold GPUs and gloo otherwise, and falls back to the object store, with a warning, when the
group cannot be formed; `nccl` insists on NCCL and fails instead; `object_store` skips the group.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sail_rl.errors import SailRLError

log = logging.getLogger(__name__)


class WeightTransfer(Protocol):
    def push(self) -> None:
        """Put the trainer's current weights into every rollout engine."""


class DirectTransfer:
    """`rollout.update_weights(trainer.weights_for_sync())` in this process. With a RolloutManager
    the weights pass through the driver into one object-store copy (which a restarted worker reloads)."""

    def __init__(self, trainer, rollout):
        self.trainer, self.rollout = trainer, rollout

    def push(self) -> None:
        self.rollout.update_weights(self.trainer.weights_for_sync())


class CollectiveTransfer:
    """Trainer rank 0 -> rollout workers over one group; `connect` forms it (again after a worker
    restart, which also re-sends the weights). `trainer` is a RayTrainerGroup, `rollout` a
    RolloutManager."""

    def __init__(self, trainer, rollout, backend: str, bucket_bytes: int, dtype: str):
        self.trainer, self.rollout = trainer, rollout
        self.backend, self.bucket_bytes, self.dtype = backend, bucket_bytes, dtype
        self.bytes_sent = 0

    def connect(self) -> None:
        import ray

        rank0 = self.trainer.actors[0]
        host, port = ray.get(rank0.weight_group_address.remote())
        world = len(self.rollout.workers) + 1
        joins = [rank0.join_weight_group.remote(host, port, world, self.backend)]
        ray.get(joins + self.rollout.join_weight_group(host, port, self.backend))
        self.rollout.on_restart = self._reconnect

    def _reconnect(self) -> None:
        log.warning("weight sync: re-forming the %s group with the restarted rollout worker", self.backend)
        self.connect()
        self.push()

    def push(self) -> None:
        import ray

        receives = self.rollout.receive_weights()
        sent = ray.get(self.trainer.send_weights(self.bucket_bytes, self.dtype))
        ray.get(receives)
        self.bytes_sent = int(sent[0])


def ray_transfer(recipe, trainer, rollout) -> WeightTransfer:
    """The transfer for a Ray run: a collective group if one can be formed (see the module doc)."""
    cfg, res = recipe.rollout, recipe.resources
    if cfg.weight_sync == "object_store":
        return DirectTransfer(trainer, rollout)
    backend = "nccl" if cfg.weight_sync == "nccl" or (res.trainer_gpus > 0 and res.rollout_gpus > 0) else "gloo"
    transfer = CollectiveTransfer(trainer, rollout, backend, cfg.weight_sync_bucket_mb << 20, cfg.dtype)
    try:
        transfer.connect()
    except Exception as exc:  # noqa: BLE001 - any failure to form the group
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if cfg.weight_sync == "nccl":
            raise SailRLError(f"rollout.weight_sync: nccl could not form the group between trainer rank 0 and the rollout workers ({reason})") from None
        log.warning("weight sync: no %s group between trainer rank 0 and the rollout workers (%s); "
                    "weights go through the driver and Ray's object store instead", backend, reason)
        rollout.on_restart = None
        return DirectTransfer(trainer, rollout)
    log.info("weight sync: trainer rank 0 -> %d rollout worker(s) over %s", len(rollout.workers), backend)
    return transfer


__all__ = ["WeightTransfer", "DirectTransfer", "CollectiveTransfer", "ray_transfer"]
