"""`sail_rl.rundir`: an output folder is used only when it is this job's; writes are atomic and readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sail_rl.errors import ConfigError
from sail_rl.rundir import (DiskSpaceError, MARKER, atomic_write_text, check_free_space, claim_output_dir,
                            make_readable, read_marker, unlock_dir)

RECIPE = {"train": {"learning_rate": 1e-3, "logging_steps": 10}, "data": {"path": "a.jsonl"}}


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_whole_file_world_readable_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_make_readable_fixes_safetensors_0600(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    assert _mode(tmp_path / "model.safetensors") == 0o600  # safetensors' own writer: why the fix exists
    make_readable(tmp_path)
    assert _mode(tmp_path / "model.safetensors") == 0o644


def test_empty_folder_is_taken_and_records_the_recipe(tmp_path):
    out = claim_output_dir(tmp_path / "run", "sft", RECIPE, flag="train.output_dir")
    assert read_marker(out) == {"command": "sft", "recipe": RECIPE}


def test_foreign_files_are_refused_and_kept_then_overwrite_empties(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.safetensors").write_text("trained weights")
    with pytest.raises(ConfigError, match=r"already holds files \(model.safetensors\).*--overwrite"):
        claim_output_dir(out, "init-model", {}, flag="--out")
    assert (out / "model.safetensors").read_text() == "trained weights"
    claim_output_dir(out, "init-model", {}, flag="--out", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, ".sail-rl.lock"])


def test_another_job_of_the_same_command_is_refused_without_resume(tmp_path):
    claim_output_dir(tmp_path / "run", "sft", RECIPE, flag="train.output_dir")
    (tmp_path / "run" / "log.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="--resume to continue it, --overwrite"):
        claim_output_dir(tmp_path / "run", "sft", RECIPE, flag="train.output_dir")


def test_resume_with_a_changed_recipe_names_the_keys_unless_allowed(tmp_path):
    out = claim_output_dir(tmp_path / "run", "sft", RECIPE, flag="train.output_dir")
    (out / "checkpoint-2").mkdir()
    changed = {"train": {"learning_rate": 1e-5, "logging_steps": 3}, "data": {"path": "b.jsonl"}}
    with pytest.raises(ConfigError, match=r"data.path: 'a.jsonl' -> 'b.jsonl', train.learning_rate: 0.001 -> 1e-05"):
        claim_output_dir(out, "sft", changed, flag="train.output_dir", resume=True, ignore_keys=["train.logging_steps"])
    only_logging = {"train": {"learning_rate": 1e-3, "logging_steps": 3}, "data": {"path": "a.jsonl"}}
    claim_output_dir(out, "sft", only_logging, flag="train.output_dir", resume=True, ignore_keys=["train.logging_steps"])
    claim_output_dir(out, "sft", changed, flag="train.output_dir", resume=True, allow_recipe_change=True)
    assert read_marker(out)["recipe"] == changed


def test_same_job_rerun_replaces_only_when_recipes_match(tmp_path):
    out = claim_output_dir(tmp_path / "ev", "eval", {"k": 1}, flag="eval.output_dir", same_job_reuse=True)
    (out / "results.jsonl").write_text("x\n")
    claim_output_dir(out, "eval", {"k": 1}, flag="eval.output_dir", same_job_reuse=True)
    with pytest.raises(ConfigError, match="another job"):
        claim_output_dir(out, "eval", {"k": 4}, flag="eval.output_dir", same_job_reuse=True)


def test_output_that_is_the_input_or_a_file_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ConfigError, match="own input"):
        claim_output_dir(data, "data synth", {}, flag="--out", overwrite=True, inputs=[data / "x.jsonl"])
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        claim_output_dir(tmp_path / "f", "eval", {}, flag="eval.output_dir")


def test_overwrite_never_empties_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="working directory"):
        claim_output_dir(".", "init-model", {}, flag="--out", overwrite=True)
    assert (tmp_path / "keep.txt").is_file()
    unlock_dir(".")


def _claim_in_child(out: Path) -> tuple[int, str]:
    """Claim `out` from a forked process (its own lock file description, no re-import)."""
    import sail_rl.rundir as rundir

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        rundir._HELD_LOCKS.clear()
        code, message = 0, ""
        try:
            claim_output_dir(out, "eval", {}, flag="eval.output_dir", same_job_reuse=True)
        except ConfigError as exc:
            code, message = 2, str(exc)
        os.write(write, message.encode())
        os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    message = os.read(read, 4096).decode()
    os.close(read)
    return os.waitstatus_to_exitcode(status), message


def test_a_second_process_writing_the_same_folder_is_refused(tmp_path):
    claim_output_dir(tmp_path / "ev", "eval", {}, flag="eval.output_dir", same_job_reuse=True)
    code, message = _claim_in_child(tmp_path / "ev")
    assert code == 2 and f"another sail-rl process (pid {os.getpid()})" in message
    unlock_dir(tmp_path / "ev")
    assert _claim_in_child(tmp_path / "ev") == (0, "")


def test_free_space_check_refuses_before_writing(tmp_path):
    with pytest.raises(DiskSpaceError, match="GiB free"):
        check_free_space(tmp_path, 1 << 60, "a checkpoint")
    check_free_space(tmp_path, 1, "a checkpoint")
