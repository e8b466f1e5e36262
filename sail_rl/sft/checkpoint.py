"""The HF export of an SFT run: the model `load_model` / `load_processor` read, written atomically.

    output_dir/
      config.json, model.safetensors, tokenizer + processor files   the final model (LoRA merged)
      checkpoints/step_N/                                            sharded checkpoints (`sail_rl.trainer.checkpoint`,
                                                                     the RL layout; `sail-rl export` makes a model of one)
      sft_recipe.yaml, log.jsonl                                     the recipe; one line of metrics per logging step

The final model goes to a temporary folder and its files are moved into `output_dir` one by
one (`os.replace`, atomic per file), `config.json` last: `load_model` never sees a config
without its weights; free space is checked before and a failed write removes the temporary
folder. With LoRA the saved weights are base + B @ A (merged), computed without touching the
live model, so training (and resume) stays bit-exact.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional


from sail_rl.rundir import check_free_space, make_readable, write_or_clean


def save_model_files(model, processor, out_dir: Path) -> None:
    """HF layout: config + safetensors (merged), processor, tokenizer."""
    from peft import PeftModel

    from sail_rl.model.lora import is_peft, merged_lora_weights

    plain = model.get_base_model() if isinstance(model, PeftModel) else model
    state = dict(merged_lora_weights(model)) if is_peft(model) else model.state_dict()
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
