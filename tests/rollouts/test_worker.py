"""RolloutWorker without Ray: generation, skipped prompts and weight versions."""

from __future__ import annotations

from rollouts.ray_workers import RolloutWorker, shard
from rollouts.types import RolloutConfig, SamplingConfig
from tests.rollouts.helpers import image_request, text_request


def test_worker_runs_without_ray(tiny_dir, tiny_seed1, caplog):
    worker = RolloutWorker(RolloutConfig(engine="hf", max_model_len=512, max_prompt_tokens=60), str(tiny_dir))
    greedy = SamplingConfig(rollouts_per_prompt=2, temperature=0, max_response_tokens=4)
    with caplog.at_level("WARNING", logger="rollouts.engine"):
        rollouts = worker.generate([text_request("a"), image_request("b")], greedy)
    assert [r.request_id for r in rollouts] == ["a", "a"] and "skipped request b: prompt has" in caplog.text
    assert worker.update_weights(tiny_seed1.state_dict()) == 1
    after = worker.generate([text_request("a")], greedy)
    assert after[0].response_token_ids != rollouts[0].response_token_ids


def test_shard_keeps_order_and_covers_all():
    parts = shard(list(range(7)), 3)
    assert parts == [[0, 1, 2], [3, 4], [5, 6]] and shard([1], 3) == [[1], [], []]
