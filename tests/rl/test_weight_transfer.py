"""Weights that skip the driver, for real: a Ray trainer actor (rank 0) broadcasts over gloo to a
vLLM rollout worker; after the sync the engine's log-probs equal the trainer's, the driver never
held a tensor, and a restarted worker is brought into a new group with the latest weights."""

from __future__ import annotations

import time

import pytest
import torch

from rollouts.engine import banned_token_ids
from rollouts.types import SamplingConfig
from tests.rollouts.helpers import image_request, text_request, trainer_logprobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _no_tensors(value) -> bool:
    import ray

    if isinstance(value, (torch.Tensor, ray.ObjectRef)):
        return False
    if isinstance(value, dict):
        return all(_no_tensors(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_no_tensors(v) for v in value)
    return True


def test_collective_sync_matches_trainer_and_bypasses_the_driver(ray_cluster, tiny_dir, tiny_seed1_dir, monkeypatch):
    import ray

    from rollouts.ray_workers import RolloutManager
    from sail_rl.config import from_dict
    from sail_rl.model.builder import load_model, load_processor
    from sail_rl.rl.config import RunRecipe
    from sail_rl.rl.ray_layer import RayTrainerGroup
    from sail_rl.rl.weight_transfer import CollectiveTransfer, ray_transfer

    recipe = from_dict(RunRecipe, {
        "model": {"path": str(tiny_seed1_dir)}, "data": {"train_files": ["unused.jsonl"]},
        "rollout": {"engine": "vllm", "max_model_len": 512, "max_prompt_tokens": 400, "kv_cache_gib": 0.5,
                    "weight_sync_bucket_mb": 1},  # 1 MiB buckets: the tiny model travels in several
    })
    trainer = RayTrainerGroup(recipe, str(tiny_seed1_dir), [{"num_cpus": 0}])  # trainer: the seed-1 weights
    manager = RolloutManager(recipe.rollout, str(tiny_dir))  # rollouts start from the seed-0 model
    try:
        transfer = ray_transfer(recipe, trainer, manager)
        assert isinstance(transfer, CollectiveTransfer) and transfer.backend == "gloo"

        # the driver's side of a sync: no ray.put, and every value it gets back is a plain number
        got = []
        real_get = ray.get

        def recording_get(refs, *args, **kwargs):
            out = real_get(refs, *args, **kwargs)
            got.append(out)
            return out

        def no_put(*args, **kwargs):
            raise AssertionError("the driver put weights into the object store")

        monkeypatch.setattr(ray, "get", recording_get)
        monkeypatch.setattr(ray, "put", no_put)
        start = time.perf_counter()
        transfer.push()
        sync_s = time.perf_counter() - start
        monkeypatch.undo()
        assert got and all(_no_tensors(v) for v in got) and manager._weights_ref is None
        model = load_model(tiny_seed1_dir)
        n_params = sum(t.numel() for t in model.state_dict().values())
        assert transfer.bytes_sent >= 4 * n_params * 0.9  # the whole model went over the group (fp32)
        print(f"collective weight sync: {transfer.bytes_sent / 2**20:.1f} MiB in {sync_s:.2f} s")

        processor = load_processor(tiny_seed1_dir)
        sampling = SamplingConfig(rollouts_per_prompt=2, temperature=0.9, max_response_tokens=8, seed=0)
        rollouts = manager.generate([text_request("t"), image_request("i")], sampling)
        lp, engine_lp, mask = trainer_logprobs(model, rollouts, processor.tokenizer, 0.9, banned_token_ids(processor.tokenizer))
        assert mask.sum() > 0
        assert float((lp - engine_lp).abs().max()) <= 1e-4  # text and image (vision weights synced too)

        # a killed worker comes back in a new group and gets the latest weights over it
        greedy = SamplingConfig(rollouts_per_prompt=1, temperature=0, max_response_tokens=6)
        expected = [r.response_token_ids for r in manager.generate([text_request("g")], greedy)]
        ray.kill(manager.workers[0])
        again = manager.generate([text_request("g")], greedy)
        assert manager.restarts == 1 and [r.response_token_ids for r in again] == expected
        assert manager._weights_ref is None
    finally:
        manager.close()
