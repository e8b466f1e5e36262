"""`sail-rl sft`: config errors are one line; the shipped recipe runs end to end (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _sft(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sail_rl.cli", "sft", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_packing_resolves_and_negative_workers_are_a_config_error(capsys):
    from sail_rl.cli import main

    assert main(["sft", "recipes/thinking_fusion_sft.yaml", "train.packing=true", "--print-config"]) == 0
    assert "packing: true" in capsys.readouterr().out
    assert main(["sft", "recipes/thinking_fusion_sft.yaml", "train.dataloader_num_workers=-1", "--print-config"]) == 2
    assert "train.dataloader_num_workers must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", ["recipes/thinking_fusion_sft.yaml", "recipes/longcot_sft.yaml"])
def test_shipped_recipes_resolve(recipe, capsys):
    from sail_rl.cli import main

    assert main(["sft", recipe, "--print-config"]) == 0
    assert "per_device_train_batch_size" in capsys.readouterr().out


@pytest.mark.slow
def test_thinking_fusion_recipe_end_to_end(tmp_path):
    data = tmp_path / "synth" / "data.jsonl"
    sources = f"data.sources=[{{path: {data}, mode: direct, ratio: 0.5}}, {{path: {data}, mode: think, ratio: 0.5}}]"
    result = _sft("recipes/thinking_fusion_sft.yaml", f"model.path={tmp_path / 'init'}", sources,
                  f"train.output_dir={tmp_path / 'out'}", "train.max_steps=6", "train.save_steps=3",
                  "train.logging_steps=2", f"bootstrap.model_path={tmp_path / 'init'}", f"bootstrap.synth_dir={tmp_path / 'synth'}",
                  "bootstrap.synth_n=32", "bootstrap.synth_eval_n=4",
                  f"format_eval.data_file={tmp_path / 'synth' / 'eval.jsonl'}", "format_eval.samples_per_mode=4",
                  "format_eval.max_new_tokens=8")
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out"
    assert (out / "config.json").is_file() and (out / "checkpoints" / "step_3" / "shards").is_dir()
    report = json.loads((out / "format_eval.json").read_text())
    assert report["think"]["n"] == report["direct"]["n"] == 4
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6] and {"loss", "grad_norm", "learning_rate", "mean_token_accuracy"} <= log[0].keys()
    resumed = _sft("recipes/thinking_fusion_sft.yaml", f"model.path={tmp_path / 'init'}", sources,
                   f"train.output_dir={out}", "train.max_steps=8", "train.save_steps=3", "format_eval.data_file=null",
                   "--resume")
    assert resumed.returncode == 2 and "train.max_steps: 6 -> 8" in resumed.stderr  # a longer schedule is another run
    resumed = _sft("recipes/thinking_fusion_sft.yaml", f"model.path={tmp_path / 'init'}", sources,
                   f"train.output_dir={out}", "train.max_steps=8", "train.save_steps=3", "format_eval.data_file=null",
                   "--resume", "--allow-recipe-change")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {out / 'checkpoints' / 'step_3'} (step 3," in resumed.stdout  # the newest complete checkpoint
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == 8
