"""`sail-rl run` for real: Ray actors (trainer, vLLM rollout worker, reward actor), 2 GRPO steps;
also with two FSDP2 trainer ranks, and in one process without Ray (rewards scored as requests finish)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli_run import run_cli, trained_steps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("parallel", ["one_rank", "fsdp2_two_ranks", "local_no_ray"])
def test_ray_run_with_vllm_updates_and_syncs(tmp_path, tiny_dir, parallel):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "16", "--split-eval", "4"], check=True)
    rewards = tmp_path / "my_rewards.py"
    rewards.write_text(
        "def short(inputs, target=20):\n"
        "    return [1.0 / (1.0 + len(x.response) / target) for x in inputs]\n"
    )
    # two sharded trainer ranks and the vLLM worker in their own bundles, on 2 cores
    resources = ("{colocate: false, num_trainer_workers: 2, trainer_cpus: 0.5, rollout_cpus: 1}"
                 if parallel == "fsdp2_two_ranks" else "{colocate: true}")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
model: {{path: {tiny_dir}}}
data: {{train_files: [{data}/data.jsonl], eval_files: [{data}/eval.jsonl], prompt_mode: direct}}
rollout: {{engine: vllm, rollouts_per_prompt: 4, max_response_tokens: 24, max_model_len: 512, max_prompt_tokens: 400, kv_cache_gib: 0.5}}
trainer: {{learning_rate: 1.0e-3, mini_batch_size: 16, micro_batch_size: 8, strategy: {"fsdp2" if parallel == "fsdp2_two_ranks" else "ddp"}}}
resources: {resources}
rewards: [{{path: {rewards}:short, style: sailrl, weight: 1.0, kwargs: {{target: 40}}}}]
run: {{output_dir: {tmp_path}/run, total_steps: 2, prompts_per_step: 4, dynamic_sampling: false, eval_max_samples: 4,
      save_every_steps: 2, progress_bar: false, mode: {"local" if parallel == "local_no_ray" else "ray"}}}
""")
    out, records = run_cli(recipe, output_dir=tmp_path / "run")
    assert "object store instead" not in out.stderr  # Ray runs: weights over the gloo group, not via the driver
    # vLLM (Ray actor) log-probs equal the trainer's (Ray actor) after each sync
    assert all("reward/short/mean" in r for r in trained_steps(records, 2))
    assert (tmp_path / "run" / "checkpoints" / "step_2" / "model" / "config.json").is_file()
