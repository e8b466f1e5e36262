"""Data parallel over N ranks, two ways, one contract.

    ddp    every rank holds the whole model; gradients are SUM all-reduced after the backward passes.
    fsdp2  parameters, gradients and optimizer state are sharded across ranks (torch's
           `fully_shard` on every decoder layer of the vision tower and the LLM, then the
           root); forwards all-gather a layer at a time, backwards reduce-scatter.

Either way the loss of a micro-batch is divided by the GLOBAL token/sequence count of its
mini-batch, so gradients are summed over ranks (never averaged): N ranks take the step one
process takes on the whole mini-batch. FSDP2's collectives run once per forward, so every
rank must run the same number of forwards (`forwards_per_rank`); a rank with fewer rows
runs the rest on a stand-in row with zero weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def join_process_group(rank: int | None = None, world_size: int | None = None, init_method: str | None = None) -> tuple[int, int]:
    """(rank, world_size), joining the process group once: NCCL on GPU, gloo on CPU.

    Without arguments the launch is torchrun's (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT
    in the environment); the RL Ray layer passes them explicitly with a tcp:// init_method.
    """
    import os

    import torch.distributed as dist

    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world_size > 1:
        if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    return rank, world_size


def forwards_per_rank(n_rows: int, world_size: int, micro_batch_size: int) -> int:
    """Micro-batches of the largest strided share of `n_rows` (rank r takes rows r, r+N, ...).

    >>> forwards_per_rank(5, 2, 1)  # rank 0 has rows 0, 2, 4; rank 1 has 1, 3 and a stand-in
    3
    """
    return math.ceil(math.ceil(n_rows / world_size) / micro_batch_size)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a SAIL-VL model (or the critic / PEFT model around one), vision then text.

    The one place that names the model's layout: FSDP2 wraps each of these blocks.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base = getattr(base, "backbone", base)  # ValueModel wraps the SAIL-VL backbone
    return [*base.model.vision_tower.encoder.layers, *base.model.language_model.layers]


def shard_fsdp2(model: nn.Module, world_size: int, device_type: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Shard a SAIL-VL model (or the critic around one) in place with FSDP2; gradients SUM over ranks.

    `dtype` is the compute dtype (see `sail_rl.trainer.precision`): the shards stay in their
    own dtype (fp32 master weights), the gathered layers run in `dtype`, reductions in fp32.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, fully_shard

    from sail_rl.trainer.precision import fsdp_policy

    mesh = init_device_mesh(device_type, (world_size,))
    policy = fsdp_policy(dtype)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)  # a plain SUM: the loss already divides by global counts
            module.set_force_sum_reduction_for_comms(True)  # else a PREMUL_SUM, which gloo lacks
    return model


def all_reduce_grads(params: list[nn.Parameter]) -> None:
    """ddp: SUM every gradient over ranks (a missing one counts as zero)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def sum_over_ranks(value: float, world_size: int, device: torch.device) -> float:
    """A float summed over ranks (a collective when world_size > 1; NCCL needs `device` to be the GPU)."""
    if world_size == 1:
        return value
    import torch.distributed as dist

    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total)


def full_value(tensor: torch.Tensor) -> float:
    """A float from a plain tensor or a (replicated) DTensor, e.g. FSDP2's gradient norm."""
    return float(tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """fsdp2: the unsharded state dict on CPU on rank 0 ({} on other ranks). A collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_training_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """fsdp2: (model, optimizer) state dicts unsharded on rank 0 ({} elsewhere). A collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

