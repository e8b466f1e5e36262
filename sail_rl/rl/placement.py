"""Where the Ray actors go (pure arithmetic on `resources:`), and the rollout settings refused at load.

    plan_placement(resources, rollout)  -> Plan: placement-group bundles, and per actor its
                                           bundle, CPUs and GPUs
    check_cluster(plan, totals, nodes)  -> a one-line error naming the numbers when the Ray
                                           cluster cannot hold the plan (before any actor starts)
    check_rollout_settings(recipe)      -> refuses sleep mode / NCCL / TP>1 placements the
                                           platform or the placement cannot honour

Colocated: trainer rank i and rollout worker i share bundle i (one GPU each: half to each
actor). Split: every trainer rank and every rollout worker has its own bundle; a rollout
worker with `tensor_parallel_size` k gets k whole GPUs (`rollout_gpus` is per TP rank).

>>> from sail_rl.rl.config import ResourcesConfig
>>> from rollouts.types import RolloutConfig
>>> p = plan_placement(ResourcesConfig(colocate=False, num_trainer_workers=2, trainer_gpus=1, rollout_gpus=1),
...                    RolloutConfig(num_workers=1, tensor_parallel_size=2))
>>> p.totals()["GPU"], [s.gpus for s in p.rollout]
(4.0, [2.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sail_rl.errors import ConfigError


@dataclass
class Slot:
    """One actor's share: the bundle it runs in, and the CPUs and GPUs it asks for."""

    bundle: int
    cpus: float
    gpus: float


@dataclass
class Plan:
    bundles: list[dict[str, float]]
    trainer: list[Slot]
    rollout: list[Slot]
    explain: dict[str, str] = field(default_factory=dict)  # resource -> how the total is made up

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for bundle in self.bundles:
            for key, amount in bundle.items():
                out[key] = out.get(key, 0.0) + amount
        return out


def _bundle(cpus: float, gpus: float, custom: dict[str, float]) -> dict[str, float]:
    return {"CPU": float(cpus), **({"GPU": float(gpus)} if gpus else {}), **{k: float(v) for k, v in custom.items()}}


def plan_placement(res, rollout) -> Plan:
    """Bundles and actor shares for `resources:` (ResourcesConfig) and `rollout:` (RolloutConfig)."""
    n_train, n_roll, tp = res.num_trainer_workers, rollout.num_workers, rollout.tensor_parallel_size
    roll_gpus = float(res.rollout_gpus * tp)  # whole GPUs per worker when tp > 1 (rollout_gpus is then 1)
    if res.colocate:
        custom = {k: res.trainer_resources.get(k, 0) + res.rollout_resources.get(k, 0)
                  for k in {**res.trainer_resources, **res.rollout_resources}}
        share = 0.5 if res.trainer_gpus and res.rollout_gpus else 1.0
        n = max(n_train, n_roll)
        gpus = max(res.trainer_gpus, roll_gpus)
        bundles = [_bundle(res.trainer_cpus + res.rollout_cpus, gpus, custom) for _ in range(n)]
        trainer = [Slot(i, res.trainer_cpus, res.trainer_gpus * share) for i in range(n_train)]
        roll = [Slot(i, res.rollout_cpus, roll_gpus * share) for i in range(n_roll)]
        explain = {"GPU": f"{n} colocated bundles x {gpus:g} GPU", "CPU": f"{n} colocated bundles x {res.trainer_cpus + res.rollout_cpus:g} CPUs"}
    else:
        bundles = [_bundle(res.trainer_cpus, res.trainer_gpus, res.trainer_resources) for _ in range(n_train)]
        bundles += [_bundle(res.rollout_cpus, roll_gpus, res.rollout_resources) for _ in range(n_roll)]
        trainer = [Slot(i, res.trainer_cpus, res.trainer_gpus) for i in range(n_train)]
        roll = [Slot(n_train + i, res.rollout_cpus, roll_gpus) for i in range(n_roll)]
        explain = {
            "GPU": f"{n_train} trainer ranks x {res.trainer_gpus:g} + {n_roll} rollout workers x {roll_gpus:g} "
                   f"(tensor_parallel_size {tp})",
            "CPU": f"{n_train} trainer ranks x {res.trainer_cpus:g} + {n_roll} rollout workers x {res.rollout_cpus:g}",
        }
    return Plan(bundles, trainer, roll, explain)


def check_cluster(plan: Plan, cluster: dict[str, float], node_gpus: list[float]) -> None:
    """Refuse a plan the cluster cannot hold: totals per resource, and the largest GPU bundle per node."""
    for key, need in sorted(plan.totals().items()):
        have = float(cluster.get(key, 0.0))
        if need > have + 1e-9:
            how = f" ({plan.explain[key]})" if key in plan.explain else ""
            raise ConfigError(
                f"resources: the placement needs {need:g} {key}{how} but the Ray cluster has {have:g}; "
                "lower the worker counts or their resources, or add nodes"
            )
    biggest = max((b.get("GPU", 0.0) for b in plan.bundles), default=0.0)
    if biggest > max(node_gpus, default=0.0) + 1e-9:
        raise ConfigError(
            f"resources: one actor needs {biggest:g} GPUs on one node (rollout.tensor_parallel_size) but the "
            f"largest node has {max(node_gpus, default=0.0):g}; lower tensor_parallel_size"
        )


def rollouts_on_gpu(recipe) -> bool:
    """Whether the rollout engines run on GPUs: Ray runs by `resources.rollout_gpus`, local runs by this machine."""
    if recipe.run.mode == "local":
        import torch

        return torch.cuda.is_available()
    return recipe.resources.rollout_gpus > 0


def check_rollout_settings(recipe) -> None:
    """Refuse, at recipe load, rollout settings that could not act (one line each)."""
    rollout, res = recipe.rollout, recipe.resources
    ray_run = recipe.run.mode == "ray"
    if rollout.enable_sleep_mode:
        if rollout.engine != "vllm":
            raise ConfigError(f"rollout.enable_sleep_mode frees vLLM memory; rollout.engine {rollout.engine} has none to free: set it to false")
        if not rollouts_on_gpu(recipe):
            where = "this machine has no CUDA GPU" if not ray_run else "resources.rollout_gpus is 0"
            raise ConfigError(f"rollout.enable_sleep_mode needs the rollouts on GPUs ({where}; vLLM on the CPU cannot sleep): set it to false")
        if ray_run and not res.colocate:
            raise ConfigError("rollout.enable_sleep_mode frees the rollouts' GPUs for a colocated trainer; with resources.colocate: false "
                              "nothing uses them: set it to false")
    if not ray_run and rollout.weight_sync != "collective":
        raise ConfigError(f"rollout.weight_sync: {rollout.weight_sync} applies to Ray runs; run.mode: local hands the weights "
                          "to the engine in one process: leave weight_sync at collective")
    if ray_run and rollout.weight_sync == "nccl" and not (res.trainer_gpus > 0 and res.rollout_gpus > 0):
        raise ConfigError(f"rollout.weight_sync: nccl needs GPUs on both ends (resources.trainer_gpus {res.trainer_gpus:g}, "
                          f"rollout_gpus {res.rollout_gpus:g}); use collective (gloo on CPUs) or object_store")
    tp = rollout.tensor_parallel_size
    if ray_run and tp > 1 and res.rollout_gpus > 0:
        if res.rollout_gpus != 1:
            raise ConfigError(f"resources.rollout_gpus is per tensor-parallel rank and must be 1 when rollout.tensor_parallel_size "
                              f"is {tp} (each worker gets {tp} whole GPUs), got {res.rollout_gpus:g}")
        if res.colocate:
            raise ConfigError(f"rollout.tensor_parallel_size {tp} with resources.colocate: true: a colocated bundle holds one GPU "
                              f"per trainer rank, a TP engine needs {tp} whole GPUs; set colocate: false or tensor_parallel_size: 1")


__all__ = ["Plan", "Slot", "plan_placement", "check_cluster", "check_rollout_settings", "rollouts_on_gpu"]
