"""Checkpoints in the layout `load_model` / `load_processor` read, written atomically.

    output_dir/
      config.json, model.safetensors, tokenizer + processor files   the final model (LoRA merged)
      checkpoint-STEP/                                               same layout, plus trainer_state.pt
      log.jsonl                                                      one line of metrics per logging step

A checkpoint is written to `checkpoint-STEP.tmp` and renamed when complete, so a crash
leaves either the whole checkpoint or a `.tmp` that `latest_checkpoint` ignores; free space
is checked before (the size of the last checkpoint) and a failed write removes its `.tmp`. The final
model goes to a temporary folder too and its files are moved into `output_dir` one by one
(`os.replace`, atomic per file), `config.json` last: `load_model` never sees a
config without its weights. With LoRA the saved weights are base + B @ A (merged), computed
without touching the live model, so training (and resume) stays bit-exact.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import torch

from sail_rl.rundir import check_free_space, make_readable, tree_bytes, write_or_clean

_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.pt"


def merged_state_dict(model) -> dict[str, torch.Tensor]:
    """The plain model's state dict: LoRA layers folded into their base weights; no `lora_` keys.

    Works for a plain model (returned as is) and a PEFT `PeftModel` (adapter "default").
    """
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    if not isinstance(model, PeftModel):
        return model.state_dict()
    base = model.get_base_model()
    state = {k: v for k, v in base.state_dict().items() if "lora_" not in k}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer) and module.active_adapters:
            weight_key = f"{name}.base_layer.weight"
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A)
            state[weight_key] = (state[weight_key] + delta).detach()
    return {k.replace(".base_layer.", "."): v for k, v in state.items()}


def save_model_files(model, processor, out_dir: Path) -> None:
    """HF layout: config + safetensors (merged), processor, tokenizer."""
    from peft import PeftModel

    plain = model.get_base_model() if isinstance(model, PeftModel) else model
    state = merged_state_dict(model)
    # the tied lm_head is dropped by save_pretrained's tie handling when it shares storage;
    # the merged dict has fresh tensors, so drop it explicitly when the config ties it
    if getattr(plain.config.get_text_config(), "tie_word_embeddings", False):
        state = {k: v for k, v in state.items() if not k.endswith("lm_head.weight")}
    plain.save_pretrained(out_dir, state_dict=state)
    processor.save_pretrained(out_dir)
    processor.tokenizer.save_pretrained(out_dir)
    make_readable(out_dir)  # safetensors leaves 0600 files; teammates on a shared machine must read them


def estimated_bytes(model, trainer_state_bytes: int = 0) -> int:
    """What one more model copy (+ trainer state) will take on disk: parameters and buffers as stored."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) + trainer_state_bytes


def _write_or_clean(tmp: Path, write, out_dir: Path) -> None:
    write_or_clean(tmp, write, out_dir, "older checkpoints: train.save_total_limit")


def save_checkpoint(out_dir: Path, step: int, model, processor, trainer_state: dict[str, Any], keep_last: int) -> Path:
    """Write `out_dir/checkpoint-STEP` atomically; delete all but the newest `keep_last`."""
    final = out_dir / f"checkpoint-{step}"
    tmp = out_dir / f"checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    previous = latest_checkpoint(out_dir)
    needed = tree_bytes(previous) if previous else estimated_bytes(model) * 3  # weights + two Adam moments
    check_free_space(out_dir, needed, f"checkpoint {step}")
    tmp.mkdir(parents=True)

    def write() -> None:
        save_model_files(model, processor, tmp)
        torch.save(trainer_state, tmp / TRAINER_STATE)
        make_readable(tmp)

    _write_or_clean(tmp, write, out_dir)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(out_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_final(out_dir: Path, model, processor, extra_files: Optional[dict[str, str]] = None) -> Path:
    """The final model into `out_dir` itself, file by file, config.json last."""
    tmp = out_dir / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    check_free_space(out_dir, estimated_bytes(model), "the final model")
    tmp.mkdir(parents=True)

    def write() -> None:
        save_model_files(model, processor, tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        make_readable(tmp)

    _write_or_clean(tmp, write, out_dir)
    files = sorted(p for p in tmp.iterdir() if p.is_file())
    for path in sorted(files, key=lambda p: p.name == "config.json"):
        os.replace(path, out_dir / path.name)
    shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (no `.tmp`), oldest first."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := _CKPT_RE.match(p.name)) and (p / TRAINER_STATE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: Path) -> Optional[Path]:
    ckpts = list_checkpoints(out_dir)
    return ckpts[-1] if ckpts else None


def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
