"""Prompt sampler and atomic checkpoints: exact resume, epoch boundaries, no half-written step."""

from __future__ import annotations

import json

import torch

from sail_rl.rl.sampler import PromptSampler
from sail_rl.trainer.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint


def test_sampler_covers_each_epoch_once_and_resumes_at_boundary():
    s = PromptSampler(size=6, seed=3)
    first = s.next(6)
    assert sorted(first) == list(range(6))
    state = s.state_dict()  # exactly at the epoch boundary
    straight = s.next(9)
    t = PromptSampler(size=6, seed=3)
    t.load_state_dict(state)
    assert t.next(9) == straight
    assert sorted(straight[:6]) == list(range(6))  # the next epoch, not an empty draw
    assert straight[:6] != first  # a fresh permutation


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"w": torch.tensor([float(step)])}, {"sampler": {"cursor": step}}, keep_last=2)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_2", "step_3"]
    # a crash mid-save leaves a .tmp folder, which is never taken for a checkpoint
    (tmp_path / "checkpoints" / "step_4.tmp").mkdir()
    (tmp_path / "checkpoints" / "step_4.tmp" / "state.json").write_text(json.dumps({"step": 4}))
    assert latest_checkpoint(tmp_path).name == "step_3"
    trainer_state, state = load_checkpoint(latest_checkpoint(tmp_path))
    assert trainer_state["w"].item() == 3.0 and state["step"] == 3 and state["sampler"]["cursor"] == 3


def test_checkpoint_restores_rng(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path, 1, {}, {})
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_checkpoint(latest_checkpoint(tmp_path))
    assert torch.equal(torch.rand(3), expected)


def test_checkpoint_refuses_a_full_disk_and_cleans_its_tmp(tmp_path, monkeypatch):
    import errno

    import pytest

    from sail_rl import rundir
    from sail_rl.rundir import DiskSpaceError

    save_checkpoint(tmp_path, 1, {"w": torch.zeros(1000)}, {})

    def full(model_dir):
        (model_dir).mkdir(parents=True)
        (model_dir / "model.safetensors").write_bytes(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskSpaceError, match="no space left.*run.keep_last_checkpoints"):
        save_checkpoint(tmp_path, 2, {}, {}, save_model=full)
    assert not (tmp_path / "checkpoints" / "step_2.tmp").exists()  # the half-written save does not hold the space
    assert latest_checkpoint(tmp_path).name == "step_1"
    # before writing: the next save needs about as much as the last one
    monkeypatch.setattr(rundir, "free_bytes", lambda path: 10)
    with pytest.raises(DiskSpaceError, match="checkpoint step_3"):
        save_checkpoint(tmp_path, 3, {}, {})
    assert not (tmp_path / "checkpoints" / "step_3.tmp").exists()
