"""A verl-style and an EasyR1-style reward file, written as those toolkits' users write them, run
unchanged in a real `sail-rl run` step (Ray mode: reward actors load them); a reward that
raises inside a Ray actor ends the run with one line and exit code 2, not a Ray dump."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.rewards.test_rewards_styles import EASYR1_FILE, VERL_FILE

pytestmark = pytest.mark.slow


def _recipe(tmp_path, tiny_dir, data, rewards: str) -> str:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
model: {{path: {tiny_dir}}}
data: {{train_files: [{data}/data.jsonl], prompt_mode: direct}}
rollout: {{engine: hf, rollouts_per_prompt: 2, max_response_tokens: 6, temperature: 1.0, seed: 0}}
trainer: {{learning_rate: 1.0e-3, mini_batch_size: 4, micro_batch_size: 4}}
rewards: {rewards}
run: {{output_dir: {tmp_path}/run, total_steps: 1, prompts_per_step: 2, dynamic_sampling: false,
      eval_before_training: false, eval_every_steps: 0, save_every_steps: 0, progress_bar: false, loggers: [jsonl]}}
""")
    return str(recipe)


@pytest.fixture
def data(tmp_path):
    out = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(out), "--n", "4"], check=True)
    return out


def test_verl_and_easyr1_rewards_run_unchanged_in_a_ray_run(tmp_path, tiny_dir, data):
    (tmp_path / "verl_reward.py").write_text(VERL_FILE)
    (tmp_path / "easyr1_reward.py").write_text(EASYR1_FILE)
    rewards = (f"[{{path: {tmp_path}/verl_reward.py:compute_score, style: verl, weight: 0.5, label: verl}},"
               f" {{path: {tmp_path}/easyr1_reward.py:compute_score, style: easyr1, weight: 0.5, label: easyr1,"
               f" kwargs: {{format_weight: 0.5}}}}]")
    out = subprocess.run([sys.executable, "-m", "sail_rl.cli", "run", _recipe(tmp_path, tiny_dir, data, rewards)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    step = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert step["step"] == 1
    # an untrained tiny model answers wrong: verl's -0.5, EasyR1's 0.0 (no think block, no box)
    assert step["reward/verl/mean"] == -0.5 and step["reward/verl/acc/mean"] == 0.0
    assert step["reward/easyr1/mean"] == 0.0 and step["reward/easyr1/format/mean"] == 0.0
    assert step["reward/mean"] == pytest.approx(0.5 * -0.5)
    assert step["reward/verl/errors"] == 0.0 and step["reward/easyr1/timeouts"] == 0.0


def test_a_reward_that_raises_in_a_ray_actor_is_one_line_and_exit_2(tmp_path, tiny_dir, data):
    (tmp_path / "bad.py").write_text("def score(completions, **kwargs):\n    raise KeyError('no such column')\n")
    rewards = f"[{{path: {tmp_path}/bad.py:score, weight: 1.0}}]"
    out = subprocess.run([sys.executable, "-m", "sail_rl.cli", "run", _recipe(tmp_path, tiny_dir, data, rewards)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"sail-rl run: error: reward 'score' raised on sample 0 \(pid train-\d+\): "
                        r"KeyError: 'no such column'; fix the reward or set on_error: zero", last), last
    assert "Traceback" not in out.stderr and "RayTaskError" not in out.stderr
