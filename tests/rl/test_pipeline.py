"""`sail-rl pipeline`: the five SAIL-VL2 stages chained on the tiny preset, resumable per stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_pipeline_runs_all_stages_then_skips_them(tmp_path, tiny_dir):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "24", "--split-eval", "4",
                    "--families", "shape_colour"], check=True)
    rl = ["run.total_steps=1", "run.prompts_per_step=2", "rollout.rollouts_per_prompt=2", "trainer.mini_batch_size=4",
          "trainer.micro_batch_size=4", "run.eval_max_samples=2", "run.eval_samples_per_prompt=0", "run.progress_bar=false",
          "run.mode=local", "rollout.engine=hf", "rollout.max_response_tokens=48",
          f"data.train_files=[{data}/data.jsonl]", f"data.eval_files=[{data}/eval.jsonl]"]
    sft = ["train.max_steps=3", "train.save_steps=0", "format_eval.samples_per_mode=0", f"format_eval.data_file={data}/eval.jsonl"]
    stages = [
        {"name": "longcot_sft", "kind": "sft", "recipe": str(REPO / "recipes/longcot_sft.yaml"),
         "overrides": sft + [f"data.sources=[{{path: {data}/data.jsonl, mode: think, ratio: 1.0}}]"]},
        {"name": "rl_verifiable", "kind": "rl", "recipe": str(REPO / "recipes/mathvista_grpo.yaml"), "overrides": rl},
        {"name": "rejection_sampling", "kind": "rejection_sample", "data": f"{data}/data.jsonl", "k": 2, "engine": "hf",
         "max_response_tokens": 48},
        {"name": "think_fusion_sft", "kind": "sft", "recipe": str(REPO / "recipes/thinking_fusion_sft.yaml"),
         "overrides": sft + [f"data.sources=[{{path: {data}/data.jsonl, mode: direct, ratio: 0.9}}, {{path: {data}/data.jsonl, mode: think, ratio: 0.1}}]"]},
        {"name": "rl_mixed", "kind": "rl", "recipe": str(REPO / "recipes/mathvista_grpo.yaml"),
         "overrides": rl + ["reward_combine=sail_rl_product", "data.prompt_mode=auto",
                            "rewards=[{name: accuracy, role: answer}, {name: judging, role: judge}, {name: format, role: format, kwargs: {mode: auto}}]"]},
    ]
    recipe = tmp_path / "pipeline.yaml"
    recipe.write_text(json.dumps({"output_dir": str(tmp_path / "p"), "initial_model": str(tiny_dir), "stages": stages}))
    first = subprocess.run([sys.executable, "-m", "sail_rl.cli", "pipeline", str(recipe)], capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    outputs = json.loads((tmp_path / "p" / "outputs.json").read_text())
    assert list(outputs) == [s["name"] for s in stages]
    assert Path(outputs["rejection_sampling"]).is_file()
    for name in ("longcot_sft", "rl_verifiable", "think_fusion_sft", "rl_mixed"):
        assert (Path(outputs[name]) / "config.json").is_file(), name
    again = subprocess.run([sys.executable, "-m", "sail_rl.cli", "pipeline", str(recipe)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("already done") == len(stages)
