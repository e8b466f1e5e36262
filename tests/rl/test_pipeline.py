"""`sail-rl pipeline`: the five SAIL-VL2 stages chained on the tiny preset, resumable per stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _recipe(tmp_path, tiny_dir, stage3_overrides=(), lr="2e-3"):
    from sail_rl.config import from_dict
    from sail_rl.pipeline import PipelineRecipe

    data = str(tmp_path / "data.jsonl")
    stages = [
        {"name": "cold", "kind": "sft", "recipe": str(REPO / "recipes/longcot_sft.yaml"),
         "overrides": [f"train.learning_rate={lr}", f"data.sources=[{{path: {data}}}]"]},
        {"name": "rl", "kind": "rl", "recipe": str(REPO / "recipes/mathvista_grpo.yaml"), "overrides": ["run.total_steps=2"]},
        {"name": "fusion", "kind": "sft", "recipe": str(REPO / "recipes/thinking_fusion_sft.yaml"),
         "overrides": ["data.sources=[{path: '{stages.cold}'}]", *stage3_overrides]},
    ]
    return from_dict(PipelineRecipe, {"output_dir": str(tmp_path / "p"), "initial_model": str(tiny_dir), "stages": stages})


def _mark_done(plan) -> None:
    """What a finished stage leaves: its output and DONE with the inputs it ran with."""
    from sail_rl.pipeline import fingerprint

    out = Path(plan.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text("{}")
    plan.stage_dir.mkdir(parents=True, exist_ok=True)
    done = {"inputs": plan.inputs, "output": plan.output, "output_fingerprint": fingerprint(out)}
    (plan.stage_dir / "DONE").write_text(json.dumps(done))


def test_a_typo_in_the_last_stage_is_found_before_the_first_runs(tmp_path, tiny_dir, capsys):
    from sail_rl.cli import main
    from sail_rl.config import dump_yaml

    recipe = _recipe(tmp_path, tiny_dir, stage3_overrides=["train.learnin_rate=1e-4"])
    path = tmp_path / "pipeline.yaml"
    path.write_text(dump_yaml(recipe))
    assert main(["pipeline", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pipeline stage 3 'fusion'" in err and "did you mean 'learning_rate'" in err
    assert not (tmp_path / "p").exists()  # nothing ran


def test_an_edited_stage_reruns_and_so_do_the_stages_after_it(tmp_path, tiny_dir):
    from sail_rl.pipeline import make_plan

    plans = make_plan(_recipe(tmp_path, tiny_dir))
    assert [(p.action, p.reason) for p in plans] == [("run", "not run yet"), ("run", "an earlier stage (cold) reruns"),
                                                    ("run", "an earlier stage (cold) reruns")]
    for i in range(3):  # as run_pipeline does: plan with the upstream outputs in place, run, record
        _mark_done(make_plan(_recipe(tmp_path, tiny_dir))[i])
        plan_now = make_plan(_recipe(tmp_path, tiny_dir))[i]
        assert plan_now.action == "reuse", plan_now.reason
    edited = make_plan(_recipe(tmp_path, tiny_dir, lr="1e-3"))
    assert edited[0].action == "run" and "train.learning_rate: 0.002 -> 0.001" in edited[0].reason
    assert [p.action for p in edited[1:]] == ["run", "run"]
    (Path(plans[1].output) / "config.json").write_text('{"changed": 1}')  # an output replaced behind the pipeline's back
    replaced = make_plan(_recipe(tmp_path, tiny_dir))
    assert [p.action for p in replaced] == ["reuse", "run", "run"] and "changed on disk" in replaced[1].reason


def test_a_missing_initial_model_is_an_error_unless_a_preset_is_named(tmp_path, tiny_dir):
    from sail_rl.errors import ConfigError
    from sail_rl.pipeline import run_pipeline

    recipe = _recipe(tmp_path, tiny_dir)
    recipe.initial_model = str(tmp_path / "tiny-inti")
    with pytest.raises(ConfigError, match="initial_model_preset"):
        run_pipeline(recipe, log=lambda m: None)
    assert not (tmp_path / "tiny-inti").exists()


@pytest.mark.slow
def test_pipeline_runs_all_stages_then_skips_them(tmp_path, tiny_dir, tiny_judge):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "24", "--split-eval", "4",
                    "--families", "shape_colour"], check=True)
    rl = ["run.total_steps=1", "run.prompts_per_step=2", "rollout.rollouts_per_prompt=2", "trainer.mini_batch_size=4",
          "trainer.micro_batch_size=4", "run.eval_max_samples=2", "run.eval_samples_per_prompt=0", "run.progress_bar=false",
          "run.mode=local", "rollout.engine=hf", "rollout.max_response_tokens=48",
          f"data.train_files=[{data}/data.jsonl]", f"data.eval_files=[{data}/eval.jsonl]"]
    sft = ["train.max_steps=3", "train.save_steps=0", "format_eval.data_file=null"]
    stages = [
        {"name": "longcot_sft", "kind": "sft", "recipe": str(REPO / "recipes/longcot_sft.yaml"),
         "overrides": sft + [f"data.sources=[{{path: {data}/data.jsonl, mode: think, ratio: 1.0}}]"]},
        {"name": "rl_verifiable", "kind": "rl", "recipe": str(REPO / "recipes/mathvista_grpo.yaml"), "overrides": rl},
        {"name": "rejection_sampling", "kind": "rejection_sample", "data": f"{data}/data.jsonl", "k": 2, "engine": "hf",
         "max_response_tokens": 48},
        {"name": "think_fusion_sft", "kind": "sft", "recipe": str(REPO / "recipes/thinking_fusion_sft.yaml"),
         "overrides": sft + [f"data.sources=[{{path: {data}/data.jsonl, mode: direct, ratio: 0.9}}, {{path: {data}/data.jsonl, mode: think, ratio: 0.1}}]"]},
        {"name": "rl_mixed", "kind": "rl", "recipe": str(REPO / "recipes/mathvista_grpo.yaml"),
         "overrides": rl + ["reward_combine=sail_rl_product", "data.prompt_mode=auto", "data.think_ratio=null",
                            "rewards=[{name: accuracy, role: answer}, {name: think_quality, role: think, kwargs: "
                            f"{{base_url: '{tiny_judge['base_url']}', model: {tiny_judge['model']}, max_tokens: 16, send_images: false}}}}, "
                            "{name: judging, role: judge}, {name: format, role: format, kwargs: {mode: auto}}]"]},
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
    # the mixed stage scored with all four SAIL-RL rewards, the judge answering every call
    mixed = [json.loads(line) for line in (tmp_path / "p" / "05_rl_mixed" / "run" / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in mixed if "prompts" in r)
    assert {"reward/accuracy/mean", "reward/think_quality/not_applicable", "reward/judging/mean", "reward/format/mean"} <= set(step)
    assert step["reward/think_quality/errors"] == 0.0
    again = subprocess.run([sys.executable, "-m", "sail_rl.cli", "pipeline", str(recipe)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count(": REUSE - done with these inputs") == len(stages), again.stdout
    # an edited stage reruns, and every stage after it
    stages[3]["overrides"] = stages[3]["overrides"] + ["train.learning_rate=1e-4"]
    recipe.write_text(json.dumps({"output_dir": str(tmp_path / "p"), "initial_model": str(tiny_dir), "stages": stages}))
    plan = subprocess.run([sys.executable, "-m", "sail_rl.cli", "pipeline", str(recipe), "--plan-only"], capture_output=True, text=True)
    assert plan.stdout.count("REUSE") == 3 and "train.learning_rate" in plan.stdout and "an earlier stage (think_fusion_sft)" in plan.stdout
