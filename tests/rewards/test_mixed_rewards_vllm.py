"""SAIL-RL mixed rewards against a real judge (`vllm serve` of a tiny random Qwen3 on loopback):
recipes/mixed_rewards.yaml's rewards score a grid of responses, the totals vary and track
correctness; a text-only judge asked for images is one clear error; the recipe runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from rewards import RewardInput, RewardScorer
from sail_rl.errors import RewardError
from tests.cli_run import run_cli

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mixed_rewards.yaml"


def _judge_overrides(judge: dict, send_images: bool, on_error: str = "zero") -> list[str]:
    return [f"rewards=[{{name: accuracy, role: answer}}, {{name: think_quality, role: think, on_error: {on_error}, kwargs: "
            f"{{base_url: '{judge['base_url']}', model: {judge['model']}, max_tokens: 16, send_images: {str(send_images).lower()}}}}}, "
            "{name: judging, role: judge}, {name: format, role: format, kwargs: {mode: auto}}]"]


def _scorer(judge: dict, send_images: bool, on_error: str = "zero") -> RewardScorer:
    from sail_rl.config import load_recipe
    from sail_rl.rl.config import RunRecipe

    recipe = load_recipe(RunRecipe, str(RECIPE), _judge_overrides(judge, send_images, on_error))
    return RewardScorer(recipe.rewards_config())


def test_rewards_vary_and_track_correctness(tiny_judge):
    picture = Image.new("RGB", (16, 16), (30, 60, 220))
    grid = []
    for answer in ("blue", "red"):  # right, wrong
        layouts = (f"<think>The shape is {answer}.</think>\n\\boxed{{{answer}}}", f"\\boxed{{{answer}}}",
                   f"\\boxed{{{answer}}} because")  # think, direct, and a direct answer off the layout
        for response in layouts:
            for should_think in (True, False):
                grid.append(RewardInput("What colour is the shape?", response, "blue", images=[picture],
                                        extra={"should_think": should_think}))
    result = _scorer(tiny_judge, send_images=False).score(grid)
    half = len(grid) // 2
    right, wrong = result.totals[:half], result.totals[half:]
    assert len(set(result.totals)) >= 4, result.totals  # format, decision and correctness all move the total
    assert all(r > w for r, w in zip(right, wrong)), (right, wrong)  # same layout and label, right beats wrong
    assert min(right[:4]) > max(wrong)  # a right answer in any trained layout beats every wrong one
    metrics = result.metrics
    assert metrics["reward/think_quality/errors"] == 0.0, metrics  # every judge call answered
    assert metrics["reward/mean_when_correct"] > metrics["reward/mean_when_wrong"]
    # the real judge was asked about each thought and its replies did not parse (random weights)
    assert metrics["reward/think_quality/parse_failed/mean"] == 1.0
    assert result.metrics["reward/think_quality/not_applicable"] == 8  # no thought: not judged


def test_a_text_only_judge_asked_to_see_the_image_is_one_clear_error(tiny_judge):
    scorer = _scorer(tiny_judge, send_images=True, on_error="raise")
    sample = RewardInput("q", "<think>blue</think>\\boxed{blue}", "blue", images=[Image.new("RGB", (16, 16))])
    with pytest.raises(RewardError, match="refused a request with images"):
        scorer.score([sample])


def test_the_mixed_rewards_recipe_runs_against_the_judge(tmp_path, tiny_dir, tiny_judge):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "8", "--split-eval", "2",
                    "--families", "shape_colour"], check=True)
    overrides = _judge_overrides(tiny_judge, send_images=False) + [
        f"model.path={tiny_dir}", f"data.train_files=[{data}/data.jsonl]", f"data.eval_files=[{data}/eval.jsonl]",
        f"run.output_dir={tmp_path}/run", "run.total_steps=2", "run.prompts_per_step=2", "run.dynamic_sampling=false",
        "run.eval_every_steps=0", "run.save_every_steps=0", "run.progress_bar=false", "run.mode=local",
        "rollout.rollouts_per_prompt=2", "rollout.max_response_tokens=24", "trainer.mini_batch_size=4",
        "trainer.micro_batch_size=4", "resources.reward_workers=1"]
    _, records = run_cli(RECIPE, *overrides, output_dir=tmp_path / "run", timeout_s=900, cwd=REPO)
    steps = [r for r in records if "prompts" in r]  # a group may score alike: no grad-norm check here
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert {"reward/accuracy/mean", "reward/judging/mean", "reward/format/mean"} <= set(r)
        assert r["reward/think_quality/errors"] == 0.0
