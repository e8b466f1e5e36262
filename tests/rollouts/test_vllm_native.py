"""The whole SAIL-VL inside vLLM (Transformers modeling backend) on the CPU: log-prob parity with
the trainer for text, one image, a multi-tile image, two images and a 4-frame video in a prompt,
before and after a weight sync that reaches the vision tower.

One engine for the module (start ~30 s on 2 cores).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from rollouts.engine import make_engine
from rollouts.types import GenerationRequest, RolloutConfig, SamplingConfig
from sail_rl.model.video import Video
from tests.cli_run import run_cli, trained_steps
from tests.rollouts.helpers import image, text_request, trainer_logprobs

pytestmark = pytest.mark.slow
SAMPLING = SamplingConfig(rollouts_per_prompt=2, temperature=0.9, max_response_tokens=12, seed=0)


def _requests() -> list[GenerationRequest]:
    def with_images(rid, images):
        parts = [{"type": "video" if isinstance(i, Video) else "image"} for i in images]
        content = parts + [{"type": "text", "text": "Which is larger?"}]
        return GenerationRequest([{"role": "user", "content": content}], images, rid, thinking=True)

    return [
        text_request("text"),
        with_images("one_tile", [image(0, size=(64, 64))]),
        with_images("multi_tile", [image(1, size=(200, 64))]),
        with_images("two_images", [image(2, size=(64, 64)), image(3, size=(128, 64))]),
        with_images("video", [Video([image(4 + t, size=(96, 64)) for t in range(4)])]),  # 4 frames, 1 tile each
    ]


@pytest.fixture(scope="module")
def engine(tiny_dir):
    eng = make_engine(RolloutConfig(engine="vllm-native", max_model_len=512, max_prompt_tokens=400, kv_cache_gib=1), str(tiny_dir))
    yield eng
    eng.close()


IDS = ("text", "one_tile", "multi_tile", "two_images", "video")


def _max_diffs(model, engine) -> dict[str, float]:
    rollouts = engine.generate(_requests(), SAMPLING)
    diffs = {}
    for rid in IDS:
        mine = [r for r in rollouts if r.request_id == rid]
        trainer, engine_lp, mask = trainer_logprobs(model, mine, engine.tokenizer, SAMPLING.temperature, engine.banned)
        assert mask.sum() == sum(len(r.response_logprobs) for r in mine) > 0
        diffs[rid] = float((trainer - engine_lp).abs().max())
    return diffs


def test_prompts_expand_as_the_processor_does(engine):
    rollouts = engine.generate(_requests(), SamplingConfig(rollouts_per_prompt=1, temperature=0, max_response_tokens=2))
    tiles = {r.request_id: r.num_image_tiles for r in rollouts}
    # 64x64 -> 1 tile; 200x64 -> 3x1 grid + thumbnail; two images -> 1 + (2x1 + thumbnail)
    assert tiles == {"text": 0, "one_tile": 1, "multi_tile": 4, "two_images": 4, "video": 4}
    ctx = engine.processor.image_token_id
    for r in rollouts:
        assert r.prompt_token_ids.count(ctx) == 16 * r.num_image_tiles  # 16 tokens per tile on the tiny preset
        assert (0 if r.pixel_values is None else r.pixel_values.shape[0]) == r.num_image_tiles
    video = next(r for r in rollouts if r.request_id == "video")
    prompt = engine.tokenizer.decode(video.prompt_token_ids)
    assert [prompt.count(f"Frame{i}: <img>") for i in range(1, 6)] == [1, 1, 1, 1, 0]  # one line per frame


def test_parity_before_and_after_a_sync_that_reaches_the_vision_tower(engine, tiny, tiny_seed1):
    model, _ = tiny
    before = _max_diffs(model, engine)
    print("parity before sync", before)
    assert max(before.values()) <= 1e-4, before
    engine.update_weights(tiny_seed1.state_dict())
    after = _max_diffs(tiny_seed1, engine)
    print("parity after sync", after)
    assert max(after.values()) <= 1e-4, after
    # a second sync that changes the vision tower alone: only the image prompts move, and they follow it
    scaled = copy.deepcopy(tiny_seed1)
    with torch.no_grad():
        for p in scaled.model.vision_tower.parameters():
            p.mul_(1.5)
    engine.update_weights(scaled.state_dict())
    vision_only = _max_diffs(scaled, engine)
    print("parity after a vision-only sync", vision_only)
    assert max(vision_only.values()) <= 1e-4, vision_only
    unscaled = _max_diffs(tiny_seed1, engine)
    assert unscaled["text"] <= 1e-4 and min(unscaled[k] for k in IDS[1:]) > 1e-3, unscaled
    engine.update_weights(model.state_dict())
    assert max(_max_diffs(model, engine).values()) <= 1e-4


MOE_PARITY = """
import sys
from rollouts.engine import make_engine
from rollouts.types import RolloutConfig
from sail_rl.model.builder import load_model
from tests.rollouts.helpers import trainer_logprobs
from tests.rollouts.test_vllm_native import SAMPLING, _requests

if __name__ == "__main__":
    model = load_model(sys.argv[1]).eval()
    eng = make_engine(RolloutConfig(engine="vllm-native", max_model_len=512, max_prompt_tokens=400, kv_cache_gib=1), sys.argv[1])
    rollouts = eng.generate(_requests(), SAMPLING)
    trainer, engine_lp, mask = trainer_logprobs(model, rollouts, eng.tokenizer, SAMPLING.temperature, eng.banned)
    print("MAX_DIFF", int(mask.sum()), float((trainer - engine_lp).abs().max()))
"""


def test_moe_parity(tiny_moe_dir, tmp_path):
    """The Qwen3-MoE text model through vLLM's Transformers backend too. In its own process: a second
    in-process vLLM engine beside this module's (dense) one fails in vLLM's global parallel state
    ("expert parallel group is not initialized")."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "moe_parity.py"
    script.write_text(MOE_PARITY)
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(script), str(tiny_moe_dir)], capture_output=True, text=True, timeout=600,
                         cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    assert out.returncode == 0, out.stderr[-3000:]
    tokens, diff = out.stdout.split("MAX_DIFF")[-1].split()
    assert int(tokens) > 0 and float(diff) <= 1e-4, diff


@pytest.mark.parametrize("mode", ["ray", "local"])
def test_rl_run_on_the_native_engine(tmp_path, tiny_dir, mode):
    """`sail-rl run` with `rollout.engine: vllm-native`: 2 GRPO steps on image prompts, the engine's
    log-probs equal to the trainer's after each sync (the trainer in its own Ray actor, or beside the
    engine in one process)."""
    import subprocess
    import sys

    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sail_rl.cli", "data", "synth", "--out", str(data), "--n", "16", "--split-eval", "4"], check=True)
    rewards = tmp_path / "my_rewards.py"  # varies within a group, so the update is not zero
    rewards.write_text("def short(inputs):\n    return [1.0 / (1.0 + len(x.response) / 20) for x in inputs]\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
model: {{path: {tiny_dir}}}
data: {{train_files: [{data}/data.jsonl], eval_files: [{data}/eval.jsonl], prompt_mode: direct}}
rollout: {{engine: vllm-native, rollouts_per_prompt: 4, max_response_tokens: 16, max_model_len: 512, max_prompt_tokens: 400, kv_cache_gib: 0.5}}
trainer: {{learning_rate: 1.0e-3, mini_batch_size: 16, micro_batch_size: 8}}
resources: {{colocate: true}}
rewards: [{{path: {rewards}:short, style: sailrl, weight: 1.0}}]
run: {{output_dir: {tmp_path}/run, total_steps: 2, prompts_per_step: 4, dynamic_sampling: false, eval_every_steps: 0,
      save_every_steps: 0, progress_bar: false, mode: {mode}}}
""")
    _, records = run_cli(recipe, output_dir=tmp_path / "run")
    trained_steps(records, 2)
