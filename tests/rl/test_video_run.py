"""A tiny mixed image + video RL run: `sail-rl run` on synthetic clips and pictures with the default
rollout engine, the engine's log-probs equal to the trainer's on every step (the frames reach both
sides). The native engine's video parity is tests/rollouts/test_vllm_native.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli_run import run_cli, trained_steps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["vllm"])  # native video parity: tests/rollouts/test_vllm_native.py
def test_grpo_on_images_and_videos(tmp_path, tiny_dir, engine):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "12", "--split-eval", "3",
                    "--families", "shape_colour,dot_direction,flash_count"], check=True)
    kinds = [("video" in json.loads(line)) for line in (data / "data.jsonl").read_text().splitlines()]
    assert sum(kinds) == 8 and len(kinds) == 12  # two of three families are clips
    rewards = tmp_path / "my_rewards.py"  # varies within a group, so the update is not zero
    rewards.write_text(  # the reward sees each prompt's picture, or its clip's 8 frames
        "def short(inputs):\n"
        "    for x in inputs:\n"
        "        (item,) = x.images\n"
        "        assert len(item.frames) == 8 if type(item).__name__ == 'Video' else item.size == (64, 64)\n"
        "    return [1.0 / (1.0 + len(x.response) / 20) for x in inputs]\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
model: {{path: {tiny_dir}}}
data: {{train_files: [{data}/data.jsonl], eval_files: [{data}/eval.jsonl], prompt_mode: direct}}
rollout: {{engine: {engine}, rollouts_per_prompt: 4, max_response_tokens: 12, max_model_len: 512, max_prompt_tokens: 400, kv_cache_gib: 0.5}}
trainer: {{learning_rate: 1.0e-3, mini_batch_size: 24, micro_batch_size: 12}}
resources: {{colocate: true}}
rewards: [{{path: {rewards}:short, style: sailrl, weight: 0.5}}, {{name: accuracy, weight: 0.5}}]
run: {{output_dir: {tmp_path}/run, total_steps: 2, prompts_per_step: 6, dynamic_sampling: false, eval_every_steps: 2,
      eval_max_samples: 3, save_every_steps: 0, progress_bar: false, mode: local}}
""")
    _, records = run_cli(recipe, output_dir=tmp_path / "run", timeout_s=900)
    trained_steps(records, 2)
    assert any("eval/accuracy" in r for r in records)
