"""Atomic checkpoints: write `step_N.tmp/`, fsync, rename to `step_N/`, keep the last K.

A run killed at any moment leaves either a complete checkpoint or a `.tmp` folder that the
next save or resume ignores; never a half-written `step_N/`.

    step_N/state.json     the loop's JSON state (sampler, step)
    step_N/trainer.pt     small driver-side state and the RNGs
    step_N/shards/        weights + optimizer state, `torch.distributed.checkpoint`: every trainer
                          rank writes its own shard (nothing goes through rank 0 or the driver), and
                          a resume reshards them to any world size and strategy (ddp, fsdp2, 1 process)
    step_N/model/         a full HF export (`save_pretrained`), written at the end of a run only

With several nodes, `run.output_dir` must be on a filesystem every trainer rank can write.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sail_rl.rundir import check_free_space, tree_bytes, write_or_clean

STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"
SHARDS_DIR = "shards"
SHARDS_META = "trainer_meta.pt"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    save_shards: Callable[[Path], None] | None = None,
    keep_key: str = "run.keep_last_checkpoints",
    first_bytes: int = 0,
) -> Path:
    """Write step `step` atomically. `state` is JSON (sampler, metrics); `save_shards(dir)` has every
    trainer rank write its shard (see `save_sharded`); `save_model(dir)` writes HF files. `keep_key`
    names the recipe key of `keep_last` (in the full-disk error); `first_bytes` estimates the first
    checkpoint's size (the free-space check before it; later ones take the last one's size)."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f"step_{step}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    previous = latest_checkpoint(run_dir)
    # the next one is about as large as the last (the final export adds a model)
    needed = tree_bytes(previous) if previous is not None else first_bytes
    if needed:
        check_free_space(root, needed, f"checkpoint step_{step}")
    tmp.mkdir()

    def write() -> None:
        torch.save({"trainer": trainer_state, "rng": rng_state()}, tmp / TRAINER_FILE)
        if save_shards is not None:
            save_shards(tmp / SHARDS_DIR)
        if save_model is not None:
            save_model(tmp / "model")
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=1))
        _fsync_tree(tmp)

    write_or_clean(tmp, write, root, f"older checkpoints: {keep_key}")
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


def _state_dicts(pairs: dict) -> dict:
    """{name: model state, name_optimizer: optimizer state} keyed by parameter names (sharded under
    fsdp2); an optimizer of None leaves its state out (loading weights alone)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    state = {}
    for name, (module, optimizer) in pairs.items():
        if optimizer is None:
            state[name] = get_model_state_dict(module)
        else:
            state[name], state[f"{name}_optimizer"] = get_state_dict(module, optimizer)
    return state


def save_sharded(out_dir: str | Path, pairs: dict, meta: dict, rank: int) -> None:
    """Every rank writes its own shard of each (module, optimizer) in `pairs`; rank 0 adds `meta`.

    A collective under data parallel: call it on every rank. Replicated (ddp) tensors are
    written once; fsdp2's DTensor shards each by their owner.
    """
    import torch.distributed.checkpoint as dcp

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _one_process_quiet():
        dcp.save(_state_dicts(pairs), checkpoint_id=str(out_dir))
    if rank == 0:
        torch.save(meta, out_dir / SHARDS_META)


def load_sharded(in_dir: str | Path, pairs: dict) -> dict:
    """Load `save_sharded`'s files into `pairs` (resharded to this world size); returns `meta`. A collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

    state = _state_dicts(pairs)  # the targets: their shapes and shardings say what each rank reads
    with _one_process_quiet():
        dcp.load(state, checkpoint_id=str(in_dir))
    for name, (module, optimizer) in pairs.items():
        if optimizer is None:
            set_model_state_dict(module, state[name])
        else:
            set_state_dict(module, optimizer, model_state_dict=state[name], optim_state_dict=state[f"{name}_optimizer"])
    return torch.load(Path(in_dir) / SHARDS_META, map_location="cpu", weights_only=False)


@contextlib.contextmanager
def _one_process_quiet():
    """DCP warns on every call without a process group; one process is a supported case here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
