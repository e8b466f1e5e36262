"""The LoRA merge, once: a PEFT model's weights with each adapter folded in, under plain names.

Every consumer of merged weights reads them here: the weight sync to the rollout engines
(`rollouts/weight_sync.named_weights`), the trainer's `weights_for_sync` / `save_pretrained`
and `sail-rl export` (through the trainer). The live model is never modified (no
`merge_adapter` / `unmerge_adapter` round trip), so training stays bit-exact.
"""

from __future__ import annotations

import re
from typing import Iterator

import torch
from torch import nn


def is_peft(model) -> bool:
    """A module with LoRA adapters (PEFT's `lora_A` parameters)."""
    return isinstance(model, nn.Module) and any("lora_A" in n for n, _ in model.named_parameters())


@torch.no_grad()
def merged_lora_weights(peft_model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of a PEFT LoRA model with each active adapter merged: W + scaling * (B @ A).

    Names are the plain model's (`base_model.model.` and `.base_layer` dropped, no `lora_`
    tensors). Lazy, one layer at a time (memory: one extra weight matrix); a merged weight is a
    new tensor, every other one is the live parameter.
    """
    adapted = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer"):
            adapted[name] = module
    for name, tensor in peft_model.state_dict().items():
        if ".lora_" in name or "lora_embedding" in name:
            continue
        owner = name.rsplit(".base_layer.", 1)[0] if ".base_layer." in name else None
        module = adapted.get(owner) if owner else None
        if module is not None and name.endswith("base_layer.weight"):
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A)
            tensor = tensor + delta.to(tensor.dtype) if torch.is_tensor(delta) else tensor
        yield _plain_name(name), tensor


def _plain_name(name: str) -> str:
    name = re.sub(r"^base_model\.model\.", "", name)
    return name.replace(".base_layer.", ".")


__all__ = ["is_peft", "merged_lora_weights"]
