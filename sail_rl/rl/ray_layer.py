"""The thin Ray layer: place trainer, rollout and reward actors; forward calls. No math here.

Colocated (default): each trainer rank and its rollout worker share one placement-group
bundle (one GPU on a cluster, the same cores on a laptop). Split: separate bundles, so the
trainer and vLLM hold different GPUs.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch

from sail_rl.rl.config import RunRecipe


def start_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}}
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, runtime_env=env,
                 log_to_driver=True, configure_logging=True, logging_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrainerHost:
    """One data-parallel rank: joins the process group, then hosts a PolicyTrainer."""

    def __init__(self, model_dir: str, recipe: RunRecipe, rank: int, world_size: int, master: tuple[str, int]):
        from sail_rl.trainer.parallel import join_process_group
        from sail_rl.trainer.worker import PolicyTrainer

        torch.set_num_threads(recipe.trainer.torch_threads or os.cpu_count() or 1)
        join_process_group(rank, world_size, init_method=f"tcp://{master[0]}:{master[1]}")
        self.trainer = PolicyTrainer(model_dir, recipe.trainer, recipe.algorithm, total_steps=recipe.run.total_steps,
                                     dtype=recipe.model.dtype, rank=rank, world_size=world_size, attn_implementation=recipe.model.attn_implementation)

    def call(self, method: str, *args, **kwargs) -> Any:
        return getattr(self.trainer, method)(*args, **kwargs)


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
    """Actor options (trainer ranks, rollout workers) from `resources:` via one placement group."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    res = recipe.resources
    n_train, n_roll = res.num_trainer_workers, recipe.rollout.num_workers
    if res.colocate:
        n = max(n_train, n_roll)
        bundles = [{"CPU": res.trainer_cpus + res.rollout_cpus, **({"GPU": max(res.trainer_gpus, res.rollout_gpus)} if res.trainer_gpus or res.rollout_gpus else {})} for _ in range(n)]
        train_idx, roll_idx = list(range(n_train)), list(range(n_roll))
        gpu_share = 0.5 if res.trainer_gpus and res.rollout_gpus else None
    else:
        bundles = [{"CPU": res.trainer_cpus, **({"GPU": res.trainer_gpus} if res.trainer_gpus else {})} for _ in range(n_train)]
        bundles += [{"CPU": res.rollout_cpus, **({"GPU": res.rollout_gpus} if res.rollout_gpus else {})} for _ in range(n_roll)]
        train_idx, roll_idx = list(range(n_train)), list(range(n_train, n_train + n_roll))
        gpu_share = None
    pg = placement_group(bundles, strategy="PACK")
    ray.get(pg.ready(), timeout=120)

    def opts(index: int, cpus: float, gpus: float) -> dict:
        strategy = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=index)
        return {"num_cpus": cpus, "num_gpus": (gpu_share or gpus) if gpus else 0, "scheduling_strategy": strategy}

    return ([opts(i, res.trainer_cpus, res.trainer_gpus) for i in train_idx],
            [opts(i, res.rollout_cpus, res.rollout_gpus) for i in roll_idx])
