"""`sail-rl run` end to end (local mode, HF engine): SIGKILL mid-run, --resume, same final step,
no prompt lost or repeated, and resuming exactly at an epoch boundary still trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sail_rl.rl.sampler import PromptSampler

pytestmark = pytest.mark.slow


def _recipe(tmp_path, tiny_dir, data_dir, steps: int) -> str:
    text = f"""
model: {{path: {tiny_dir}}}
data: {{train_files: [{data_dir}/data.jsonl], eval_files: [{data_dir}/eval.jsonl], prompt_mode: direct}}
rollout: {{engine: hf, rollouts_per_prompt: 2, max_response_tokens: 6, temperature: 1.0, seed: 0}}
trainer: {{learning_rate: 1.0e-3, mini_batch_size: 8, micro_batch_size: 8}}
rewards: [{{name: format, weight: 1.0, kwargs: {{mode: direct}}}}]
run: {{output_dir: {tmp_path}/run, total_steps: {steps}, prompts_per_step: 4, dynamic_sampling: false,
      eval_every_steps: 0, eval_before_training: false, eval_max_samples: 2, save_every_steps: 1,
      keep_last_checkpoints: 2, mode: local, progress_bar: false}}
"""
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "sail_rl.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_resume_reaches_same_step_without_losing_prompts(tmp_path, tiny_dir):
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data_dir), "--n", "8", "--split-eval", "2", "--seed", "1"], check=True)
    recipe = _recipe(tmp_path, tiny_dir, data_dir, steps=4)
    proc = _cli("run", recipe)
    ckpt = tmp_path / "run" / "checkpoints" / "step_2"
    deadline = time.time() + 400
    while not ckpt.is_dir() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.is_dir(), proc.communicate()[1][-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # step 2 ends exactly at the end of epoch 0 (8 prompts / 4)
    proc.wait()
    again = _cli("run", recipe)  # without --resume: refuses to overwrite the checkpoints
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "--resume" in err
    resumed = _cli("run", recipe, "--resume")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert json.loads(out[out.index("{"):])["final_step"] == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "prompts" in r]
    assert steps == [1, 2, 3, 4]
    drawn = [i for r in records if "prompts" in r for i in r["prompts"]]
    assert drawn == PromptSampler(8, seed=0).next(16)  # exactly the uninterrupted sequence
    assert sorted(drawn[:8]) == sorted(drawn[8:]) == list(range(8))  # each epoch once
    for r in records:
        if "prompts" in r and r["step"] in (3, 4):  # after resuming at the epoch boundary it still updates
            assert "actor/grad_norm" in r and "actor/lr" in r
