"""`sail-rl sft` never loses work and refuses before training: typo'd paths, another run's folder,
a resume with another recipe, think sources that do not think, a full disk, unknown LoRA targets."""

from __future__ import annotations

import errno
import json
import stat
from pathlib import Path

import pytest
import yaml

from sail_rl.cli import main
from sail_rl.errors import ConfigError, DataError


def _recipe_file(tmp_path: Path, tiny_dir: Path, synth_dir: Path, **train) -> Path:
    data = str(synth_dir / "data.jsonl")
    spec = {
        "model": {"path": str(tiny_dir)},
        "data": {"sources": [{"path": data, "mode": "direct", "ratio": 0.5}, {"path": data, "mode": "think", "ratio": 0.5}]},
        "train": {"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 4, "max_steps": 2, "save_steps": 1,
                  "warmup_steps": 1, "logging_steps": 1, "max_length": 512, "torch_num_threads": 1, **train},
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "error:" in line]
    assert len(err) == 1, err
    return err[0]


def test_typo_in_model_path_is_an_error_not_a_fresh_model(tmp_path, synth_dir, capsys):
    typo = tmp_path / "tiny-inti"
    assert main(["sft", "recipes/thinking_fusion_sft.yaml", f"model.path={typo}", f"train.output_dir={tmp_path / 'o'}",
                 f"data.sources=[{{path: {synth_dir / 'data.jsonl'}}}]", "format_eval.data_file=null"]) == 2
    assert "bootstrap.model_path" in _error(capsys) and not typo.exists() and not (tmp_path / "o").exists()


def test_typo_in_a_data_path_is_an_error_not_synthetic_data(tmp_path, tiny_dir, capsys):
    typo = tmp_path / "dta" / "data.jsonl"
    assert main(["sft", "recipes/thinking_fusion_sft.yaml", f"model.path={tiny_dir}", f"train.output_dir={tmp_path / 'o'}",
                 f"data.sources=[{{path: {typo}}}]", "format_eval.data_file=null"]) == 2
    assert "data.sources[0].path: data file not found" in _error(capsys) and not typo.parent.exists()


def test_bootstrap_creates_only_the_paths_it_names(tmp_path):
    from sail_rl.config import from_dict
    from sail_rl.sft.config import SFTRecipe
    from sail_rl.sft.prepare import check_inputs

    with pytest.raises(ConfigError, match="go together"):
        from_dict(SFTRecipe, {"bootstrap": {"model_preset": "tiny"}})
    named = from_dict(SFTRecipe, {"model": {"path": str(tmp_path / "m")},
                                  "data": {"sources": [{"path": str(tmp_path / "d" / "data.jsonl")}]},
                                  "bootstrap": {"model_path": str(tmp_path / "m"), "model_preset": "tiny",
                                                "synth_dir": str(tmp_path / "d"), "synth_n": 8}})
    check_inputs(named)  # both missing paths are the bootstrap's to create


def test_a_folder_holding_another_run_is_refused_before_training(tmp_path, tiny_dir, synth_dir, capsys):
    recipe = _recipe_file(tmp_path, tiny_dir, synth_dir)
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_text("someone's trained model")
    assert main(["sft", str(recipe)]) == 2
    assert "--overwrite" in _error(capsys) and (out / "model.safetensors").read_text() == "someone's trained model"


def test_resume_with_another_recipe_is_refused_naming_the_keys(tmp_path, tiny_dir, synth_dir, capsys):
    recipe = _recipe_file(tmp_path, tiny_dir, synth_dir)
    out = tmp_path / "out"
    assert main(["sft", str(recipe)]) == 0
    weights = out / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) & 0o044 == 0o044  # teammates can read it (safetensors wrote 0600)
    assert main(["sft", str(recipe)]) == 2  # a second run into the same folder
    assert "--resume to continue it" in _error(capsys)
    before = weights.read_bytes()
    assert main(["sft", str(recipe), "--resume", "train.learning_rate=1e-5", "train.logging_steps=5"]) == 2  # flags before overrides
    line = _error(capsys)
    assert "train.learning_rate: 0.002 -> 1e-05" in line and "logging_steps" not in line and weights.read_bytes() == before
    assert main(["sft", str(recipe), "train.max_steps=3", "--resume", "--allow-recipe-change"]) == 0
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # resumed from step_2, each step logged once


def test_overwrite_starts_over_in_an_emptied_folder(tmp_path, tiny_dir, synth_dir):
    recipe = _recipe_file(tmp_path, tiny_dir, synth_dir)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("x")
    assert main(["sft", str(recipe), "--overwrite"]) == 0
    assert not (out / "stale.txt").exists() and (out / "config.json").is_file()


def test_think_source_without_think_targets_is_refused_at_load(tmp_path, synth_dir):
    from sail_rl.sft.examples import SourceData

    records = [json.loads(x) for x in (synth_dir / "data.jsonl").read_text().splitlines()]
    for r in records:
        r["think_target"] = r["direct_target"]
        r["image"] = str(synth_dir / r["image"])
    path = tmp_path / "no_think.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DataError, match="none of its 24 targets has <think>"):
        SourceData(str(path), "think")
    records[0]["think_target"] = "<think>\nlook\n</think>\n\\boxed{1}"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.warns(UserWarning, match="23 of 24 think-mode targets have no <think>"):
        SourceData(str(path), "think")
    assert len(SourceData(str(path), "direct")) == 24  # direct mode does not read think targets


def test_empty_source_names_its_file(tmp_path):
    from sail_rl.sft.examples import SourceData

    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match=r"empty.jsonl: no samples in this data source"):
        SourceData(str(tmp_path / "empty.jsonl"), "direct")


def test_unknown_lora_target_among_good_ones_is_refused(make_recipe):
    from sail_rl.sft.trainer import SFTTrainer

    with pytest.raises(ConfigError, match="'qproj' is no linear layer"):
        SFTTrainer(make_recipe(lora={"enabled": True, "target_modules": ["q_proj", "qproj"]}), log=lambda m: None)


def test_disk_full_while_checkpointing_is_one_error_and_leaves_no_tmp(make_recipe, monkeypatch):
    from sail_rl.rundir import DiskSpaceError
    from sail_rl.sft.trainer import SFTTrainer
    from sail_rl.trainer import checkpoint as ckpt

    trainer = SFTTrainer(make_recipe(), log=lambda m: None)
    trainer.output_dir.mkdir(parents=True)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full)
    with pytest.raises(DiskSpaceError, match="no space left"):
        trainer.save_checkpoint()
    assert not list((trainer.output_dir / "checkpoints").iterdir())  # no .tmp left
    monkeypatch.setattr("sail_rl.rundir.free_bytes", lambda path: 1000)
    with pytest.raises(DiskSpaceError, match="GiB free"):
        trainer.save_checkpoint()  # refused before writing anything
    assert not list((trainer.output_dir / "checkpoints").iterdir())
