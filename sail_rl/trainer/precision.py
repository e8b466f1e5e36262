"""Mixed precision as the peers do it: fp32 master weights, compute in `model.dtype`.

Parameters, gradients and optimizer state stay float32; forwards and backwards run in the
recipe's compute dtype (`model.dtype`, bfloat16 on GPUs). Why: an AdamW step at lr 1e-6 is
far below bf16's resolution (8 bits of mantissa: a weight of 0.02 moves in steps of ~1e-4),
so bf16-held weights round most updates away (ten steps changed ~2% of a bf16 weight's
entries against ~100% in fp32).

    ddp / one process   fp32 parameters; forwards under `torch.autocast(dtype=compute)`.
    fsdp2               `MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=float32)`: the
                        all-gathered layer is cast to the compute dtype, gradients are
                        reduce-scattered in fp32 into the fp32 shards; forwards still run under
                        autocast, which keeps softmax / norms / losses in fp32 as on one process.

The optimizer of every trainer is `adamw`: torch's fused AdamW, one kernel over all parameters
(CPU and CUDA), its state in fp32 beside the fp32 weights.

Frozen copies (the RL reference model) have no optimizer and are held in the compute dtype.
The rollout engine receives the fp32 weights and casts them to its own dtype at sync.
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_dtype(name: str) -> torch.dtype:
    """`model.dtype` of a recipe -> the torch dtype forwards and backwards run in."""
    return DTYPES[name]


def autocast(device_type: str, dtype: torch.dtype):
    """The forward's precision context: autocast to `dtype`, or nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def fsdp_policy(dtype: torch.dtype):
    """FSDP2's policy for `fully_shard`: unsharded layers in `dtype`, gradient reduction in fp32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)


def adamw(params: list[torch.nn.Parameter], **kwargs) -> torch.optim.AdamW:
    """AdamW over fp32 `params`, fused: on the tiny model 1 ms a step against 5 ms for torch's
    per-tensor default on one CPU thread (the same update up to float rounding)."""
    return torch.optim.AdamW(params, fused=True, **kwargs)
