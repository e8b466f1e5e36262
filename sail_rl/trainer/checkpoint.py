"""Atomic checkpoints: write `step_N.tmp/`, fsync, rename to `step_N/`, keep the last K.

A run killed at any moment leaves either a complete checkpoint or a `.tmp` folder that the
next save or resume ignores; never a half-written `step_N/`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch

STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp") and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    trainer_state: dict,
    state: dict,
    save_model: Callable[[Path], None] | None = None,
    keep_last: int = 2,
) -> Path:
    """Write step `step` atomically. `state` is JSON (sampler, metrics); `save_model(dir)` writes HF files."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f"step_{step}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    torch.save({"trainer": trainer_state, "rng": rng_state()}, tmp / TRAINER_FILE)
    if save_model is not None:
        save_model(tmp / "model")
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=1))
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(trainer_state, state) of a checkpoint folder; restores the RNGs."""
    path = Path(path)
    blob = torch.load(path / TRAINER_FILE, map_location="cpu", weights_only=False)
    set_rng_state(blob["rng"])
    return blob["trainer"], json.loads((path / STATE_FILE).read_text())


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
