"""The thin Ray layer: place trainer, rollout and reward actors; forward calls. No math here.

Colocated (default): each trainer rank and its rollout worker share one placement-group
bundle (one GPU on a cluster, the same cores on a laptop). Split: separate bundles, so the
trainer and vLLM hold different GPUs.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import torch

from sail_rl.rl.config import RunRecipe

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    from rollouts.engine import IN_PROCESS_ENV

    env = {"env_vars": dict(IN_PROCESS_ENV)}
    if address:
        # a joined cluster's workers start from the nodes' environment: point them at this checkout
        # (the same path on every node, e.g. a shared filesystem; a pip-installed sail-rl needs nothing)
        env["env_vars"]["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(address=address, runtime_env=env, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, runtime_env=env,
                 log_to_driver=True, configure_logging=True, logging_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))  # reachable from the other nodes of a cluster
        return s.getsockname()[1]


class TrainerHost:
    """One data-parallel rank: joins the process group, then hosts a PolicyTrainer."""

    def __init__(self, model_dir: str, recipe: RunRecipe, rank: int, world_size: int, master: tuple[str, int]):
        from sail_rl.trainer.parallel import join_process_group
        from sail_rl.trainer.policy_trainer import PolicyTrainer

        torch.set_num_threads(recipe.trainer.torch_threads or os.cpu_count() or 1)
        join_process_group(rank, world_size, init_method=f"tcp://{master[0]}:{master[1]}")
        self.trainer = PolicyTrainer(model_dir, recipe.trainer, recipe.algorithm, total_steps=recipe.run.total_steps,
                                     dtype=recipe.model.dtype, rank=rank, world_size=world_size, attn_implementation=recipe.model.attn_implementation)
        self.rank = rank
        self.weight_group = None

    def call(self, method: str, *args, **kwargs) -> Any:
        return getattr(self.trainer, method)(*args, **kwargs)

    # weights to the rollout workers over a collective group (rank 0 sends; see weight_transfer.py)

    def weight_group_address(self) -> tuple[str, int]:
        """(this node's IP, a free port) for the weight group's rendezvous."""
        import ray

        return ray.util.get_node_ip_address(), _free_port()

    def join_weight_group(self, host: str, port: int, world_size: int, backend: str) -> int:
        from rollouts.collective import WeightGroup

        if self.weight_group is not None:
            self.weight_group.close()
        self.weight_group = WeightGroup(host, port, 0, world_size, backend)
        return 0

    def send_weights(self, bucket_bytes: int, dtype: str) -> int:
        """Broadcast the weights the rollouts need (LoRA merged); returns bytes sent. Under FSDP2
        every rank gathers (a collective) and rank 0 sends."""
        weights = self.trainer.weights_for_sync()
        if self.rank != 0:
            return 0
        return self.weight_group.send(iter(weights.items()), bucket_bytes, getattr(torch, dtype))


class RayTrainerGroup:
    """The trainer handle over N rank actors: log-probs split by rows, updates on all ranks."""

    def __init__(self, recipe: RunRecipe, model_dir: str, placement: list[dict]):
        import ray

        n = recipe.resources.num_trainer_workers
        master = (ray.util.get_node_ip_address(), _free_port())
        actor = ray.remote(TrainerHost)
        self.actors = [
            actor.options(**placement[r]).remote(model_dir, recipe, r, n, master) for r in range(n)
        ]
        self.world_size = n
        # under FSDP2 the full weights are gathered by a collective: every rank takes part
        self.gather_on_all = recipe.trainer.strategy == "fsdp2" and n > 1

    def _all(self, method: str, *args):
        import ray

        return ray.get([a.call.remote(method, *args) for a in self.actors])

    def _rank0(self, method: str, *args):
        """rank 0's answer; with FSDP2 every rank runs the call (it is a collective)."""
        import ray

        if self.gather_on_all:
            return self._all(method, *args)[0]
        return ray.get(self.actors[0].call.remote(method, *args))

    def compute_log_probs(self, batch, old: bool = True) -> None:
        import ray

        ref = ray.put(batch)
        rows = [list(range(len(batch)))[r :: self.world_size] for r in range(self.world_size)]
        parts = ray.get([a.call.remote("compute_log_probs", ref, rows[r], old) for r, a in enumerate(self.actors)])
        for key in parts[0]:
            full = torch.zeros((len(batch),) + tuple(parts[0][key].shape[1:]))
            for r, part in enumerate(parts):
                full[rows[r]] = part[key]
            setattr(batch, key, full)

    def update(self, batch) -> dict:
        import ray

        ref = ray.put(batch)
        return ray.get([a.call.remote("update", ref) for a in self.actors])[0]

    def weights_for_sync(self):
        return self._rank0("weights_for_sync")

    def save_state(self, out_dir) -> None:
        """Every rank writes its own shard into `out_dir`; nothing passes through the driver."""
        self._all("save_state", str(out_dir))

    def send_weights(self, bucket_bytes: int, dtype: str) -> list:
        """Refs of rank 0's broadcast to the weight group (every rank's under FSDP2)."""
        actors = self.actors if self.gather_on_all else self.actors[:1]
        return [a.send_weights.remote(bucket_bytes, dtype) for a in actors]

    def load_state(self, in_dir) -> None:
        self._all("load_state", str(in_dir))

    def save_pretrained(self, out_dir) -> None:
        self._rank0("save_pretrained", str(out_dir))


class RayRewardPool:
    """Reward actors; `submit` returns a concurrent future, round-robin over the actors."""

    def __init__(self, recipe: RunRecipe):
        from rewards.pool import RewardActor

        config = recipe.rewards_config()
        remote = RewardActor.as_remote(num_cpus=recipe.resources.reward_cpus)
        self.actors = [remote.remote(config) for _ in range(max(1, recipe.resources.reward_workers))]
        self._next = 0

    def submit(self, inputs):
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        from rewards.pool import one_line_errors

        return one_line_errors(actor.score.remote(inputs).future())


def placement(recipe: RunRecipe) -> tuple[list[dict], list[dict]]:
    """Actor options (trainer ranks, rollout workers) from `resources:` via one placement group
    (sail_rl/rl/placement.py); a plan the cluster cannot hold is refused before any actor starts."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from sail_rl.rl.placement import check_cluster, plan_placement

    plan = plan_placement(recipe.resources, recipe.rollout)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    check_cluster(plan, ray.cluster_resources(), [n["Resources"].get("GPU", 0.0) for n in nodes])
    pg = placement_group(plan.bundles, strategy="PACK")
    ray.get(pg.ready(), timeout=120)
    _write_node_map(pg, plan, Path(recipe.run.output_dir) / "placement.json")

    def opts(slot) -> dict:
        strategy = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=slot.bundle)
        return {"num_cpus": slot.cpus, "num_gpus": slot.gpus, "scheduling_strategy": strategy}

    return [opts(s) for s in plan.trainer], [opts(s) for s in plan.rollout]


def _write_node_map(pg, plan, path: Path) -> None:
    """placement.json: the Ray node id of each trainer rank and rollout worker (multi-node runs)."""
    from ray.util.placement_group import placement_group_table

    nodes = placement_group_table(pg)["bundles_to_node_id"]
    where = {"trainer": [nodes[s.bundle] for s in plan.trainer], "rollout": [nodes[s.bundle] for s in plan.rollout]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(where, indent=1))
