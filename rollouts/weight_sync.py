"""Moving the trainer's weights into a rollout engine, in bounded-memory buckets.

A SAIL-VL state dict has three parts; each goes where the rollout worker runs it:

    model.language_model.*, lm_head.weight
                            -> vLLM's Qwen3 model (`model.layers.0...`, `lm_head.weight`)
    model.vision_tower.*, model.multi_modal_projector.*, model.language_model.embed_tokens.weight
                            -> the worker's torch copy that builds `prompt_embeds` for image prompts

vLLM 0.32's `reload_weights` (model_executor/model_loader/reload/inplace.py) loads layer by
layer: a layer's weights are buffered until all of them arrived, then processed and copied
into the live tensors. A call that leaves a layer out puts its old tensors back, but a call
that brings only part of a fused layer (q without k, v) would process it half-loaded. So:

- in-process engines (VLLM_ENABLE_V1_MULTIPROCESSING=0, tp=1) get ONE call with a lazy
  iterator: tensors are produced (cast, LoRA-merged) one bucket at a time, never all at once;
- engines behind a process boundary get one call per bucket, and a bucket never splits a
  layer (`layer_of`): each call is a complete set of layers.

LoRA: a PEFT model is merged on the fly (`sail_rl.model.lora.merged_lora_weights`: W + scale *
B @ A per adapted layer), leaving the trainer's model untouched.

>>> layer_of("model.layers.3.self_attn.q_proj.weight"), layer_of("lm_head.weight")
('model.layers.3', 'lm_head')
>>> [len(b) for b in iter_buckets([(f"w{i}", torch.zeros(256)) for i in range(5)], bucket_bytes=2048)]
[2, 2, 1]
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from sail_rl.errors import SailRLError
from sail_rl.model.lora import is_peft, merged_lora_weights

TEXT_PREFIX = "model.language_model."  # -> "model." in the Qwen3ForCausalLM vLLM serves
HEAD_NAME = "lm_head.weight"
EMBED_NAME = "model.language_model.embed_tokens.weight"
NamedTensors = Iterable[tuple[str, torch.Tensor]]


def named_weights(source) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs of a SAIL-VL model, in SAIL-VL naming, from any weight source.

    source: a state dict, an iterable of (name, tensor), an `nn.Module`, or a PEFT model (merged
    on the fly). Names of a PEFT wrapper (`base_model.model.`) are mapped back.
    """
    if is_peft(source):
        yield from merged_lora_weights(source)
    elif isinstance(source, nn.Module):
        yield from source.state_dict().items()
    elif isinstance(source, dict):
        yield from source.items()
    else:
        yield from source


@torch.no_grad()
def route_weights(items: NamedTensors, vision_module: nn.Module | None) -> Iterator[tuple[str, torch.Tensor]]:
    """Copy the vision-side tensors into `vision_module` as they pass; yield the text ones in Qwen3 naming.

    Lazy: a tensor is held only while it passes. The input embedding table goes to both (vLLM
    embeds generated tokens, the worker embeds prompts). Names `vision_module` lacks are skipped.
    """
    own = {} if vision_module is None else dict(vision_module.named_parameters())
    for name, tensor in items:
        target = own.get(name)
        if target is not None:
            if target.shape != tensor.shape:
                raise SailRLError(f"weight sync: {name} has shape {tuple(tensor.shape)}, the rollout model expects {tuple(target.shape)}")
            target.copy_(tensor.detach())
        if name.startswith(TEXT_PREFIX):
            yield "model." + name[len(TEXT_PREFIX):], tensor
        elif name == HEAD_NAME:
            yield name, tensor


def layer_of(name: str) -> str:
    """The unit a bucket must not split: `model.layers.N` for decoder layers, else the module."""
    match = re.match(r"^(.*?layers\.\d+)\.", name)
    return match.group(1) if match else name.rsplit(".", 1)[0]


def iter_buckets(
    items: NamedTensors, bucket_bytes: int, group_of: Callable[[str], str] | None = None
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Group (name, tensor) pairs into lists of at most `bucket_bytes` each.

    With `group_of`, names of one group (consecutive in `items`) stay in one bucket; a single
    group or tensor larger than the bucket makes a bucket of its own.
    """
    bucket, size = [], 0
    for group in _consecutive_groups(items, group_of):
        group_size = sum(t.numel() * t.element_size() for _, t in group)
        if bucket and size + group_size > bucket_bytes:
            yield bucket
            bucket, size = [], 0
        bucket += group
        size += group_size
    if bucket:
        yield bucket


def _consecutive_groups(items: NamedTensors, group_of) -> Iterator[list[tuple[str, torch.Tensor]]]:
    if group_of is None:  # no look-ahead: each tensor is its own group
        yield from ([item] for item in items)
        return
    group, current = [], object()
    for name, tensor in items:
        key = group_of(name)
        if key != current and group:
            yield group
            group = []
        current = key
        group.append((name, tensor))
    if group:
        yield group


def stream_tensors(
    items: NamedTensors, bucket_bytes: int, dtype: torch.dtype | None = None, device: str | torch.device | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """Lazily yield (name, tensor) cast to `dtype`/`device`, one bucket materialised at a time."""
    for bucket in iter_buckets(items, bucket_bytes):
        moved = [(n, t.detach().to(device=device or t.device, dtype=dtype or t.dtype)) for n, t in bucket]
        yield from moved
        del moved


def reload_vllm_weights(llm, text_items: NamedTensors, bucket_bytes: int, in_process: bool, dtype=None) -> int:
    """Load Qwen3-named tensors into a `vllm.LLM` through `reload_weights`. Returns tensors sent."""
    count = 0

    def counted(items):
        nonlocal count
        for item in items:
            count += 1
            yield item

    if in_process:
        stream = counted(stream_tensors(text_items, bucket_bytes, dtype=dtype))
        llm.collective_rpc("reload_weights", kwargs={"weights_iterator": stream, "is_checkpoint_format": True})
        return count
    for bucket in iter_buckets(text_items, bucket_bytes, group_of=layer_of):
        batch = [(n, t.detach().to(dtype=dtype or t.dtype).cpu()) for n, t in bucket]
        count += len(batch)
        llm.collective_rpc("reload_weights", kwargs={"weights_iterator": batch, "is_checkpoint_format": True})
    return count


@torch.no_grad()
def load_into_module(module: nn.Module, items: NamedTensors, bucket_bytes: int) -> int:
    """Copy named tensors into `module`'s parameters/buffers of the same name; others are ignored.

    Returns how many were copied; a shape mismatch is an error naming the tensor.
    """
    own = dict(module.named_parameters())
    own.update(dict(module.named_buffers()))
    copied = 0
    for name, tensor in stream_tensors(items, bucket_bytes):
        target = own.get(name)
        if target is None:
            continue
        if target.shape != tensor.shape:
            raise SailRLError(f"weight sync: {name} has shape {tuple(tensor.shape)}, the rollout model expects {tuple(target.shape)}")
        target.copy_(tensor)
        copied += 1
    return copied


__all__ = [
    "named_weights", "route_weights", "iter_buckets", "layer_of", "stream_tensors",
    "reload_vllm_weights", "load_into_module",
]
