"""RolloutManager on Ray: sharding, order, restart of a killed worker with the latest weights.

Ray (and one vLLM engine inside an actor) start here: slow. HF-engine workers keep the
restart tests cheap; the manager logic does not depend on the engine.
"""

from __future__ import annotations

import threading
import time

import pytest

from rollouts.engine import make_engine
from rollouts.ray_workers import RolloutManager, RolloutWorker
from rollouts.types import RolloutConfig, SamplingConfig
from tests.rollouts.helpers import image_request, text_request, trainer_logprobs

pytestmark = pytest.mark.slow
GREEDY = SamplingConfig(rollouts_per_prompt=2, temperature=0, max_response_tokens=6)
HF = RolloutConfig(engine="hf", num_workers=2, max_model_len=512, max_prompt_tokens=400)


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


class SlowWorker(RolloutWorker):
    """Takes 4 s per call, so a test can kill it mid-generation."""

    def generate(self, requests, sampling):
        time.sleep(4)
        return super().generate(requests, sampling)


def _requests(k: int = 5):
    return [text_request(f"q{i}", f"What is {i}+{i}?") if i % 2 else image_request(f"q{i}", seed=i) for i in range(k)]


def test_killed_worker_restarted_with_latest_weights(ray_cluster, tiny_dir, tiny_seed1):
    import ray

    reference = make_engine(HF, str(tiny_dir))
    reference.update_weights(tiny_seed1.state_dict())
    expected = [r.response_token_ids for r in reference.generate(_requests(), GREEDY)]
    manager = RolloutManager(HF, str(tiny_dir))
    try:
        manager.update_weights(tiny_seed1)
        ray.kill(manager.workers[0])
        rollouts = manager.generate(_requests(), GREEDY)
        assert manager.restarts == 1
        assert [(r.request_id, r.sample_index) for r in rollouts] == [(f"q{i}", k) for i in range(5) for k in range(2)]
        assert [r.response_token_ids for r in rollouts] == expected  # the new worker got the synced weights
    finally:
        manager.close()


def test_worker_killed_mid_generation_prompts_resubmitted(ray_cluster, tiny_dir):
    import ray

    manager = RolloutManager(HF, str(tiny_dir), worker_cls=SlowWorker)
    try:
        victim = manager.workers[1]
        threading.Timer(1.5, lambda: ray.kill(victim)).start()
        rollouts = manager.generate(_requests(4), GREEDY)
        assert manager.restarts == 1
        assert sorted({r.request_id for r in rollouts}) == ["q0", "q1", "q2", "q3"] and len(rollouts) == 8
    finally:
        manager.close()


def test_vllm_engine_in_ray_actor_parity(ray_cluster, tiny_dir, tiny):
    cfg = RolloutConfig(engine="vllm", num_workers=1, max_model_len=512, max_prompt_tokens=400, kv_cache_gib=1)
    manager = RolloutManager(cfg, str(tiny_dir))
    try:
        sampling = SamplingConfig(rollouts_per_prompt=2, temperature=0.8, max_response_tokens=8, seed=0)
        rollouts = manager.generate([text_request("t"), image_request("i")], sampling)
        assert [r.request_id for r in rollouts] == ["t", "t", "i", "i"]
        from rollouts.engine import banned_token_ids

        model, processor = tiny
        trainer, engine_lp, _ = trainer_logprobs(model, rollouts, processor.tokenizer, 0.8, banned_token_ids(processor.tokenizer))
        assert float((trainer - engine_lp).abs().max()) <= 1e-4
    finally:
        manager.close()


def test_generate_iter_hands_back_chunks_as_they_finish(ray_cluster, tiny_dir):
    manager = RolloutManager(HF, str(tiny_dir), worker_cls=SlowWorker)
    try:
        start = time.perf_counter()
        arrivals = []
        for chunk in manager.generate_iter(_requests(4), GREEDY, chunks_per_worker=2):
            arrivals.append((time.perf_counter() - start, sorted({r.request_id for r in chunk}), len(chunk)))
        # 4 chunks of one prompt each on 2 workers (4 s per call): two arrive after ~4 s, while
        # the other two are still generating, so a caller can score them meanwhile
        assert len(arrivals) == 4 and all(n == 2 for _, _, n in arrivals)  # both samples of a prompt together
        assert sorted(q for _, ids, _ in arrivals for q in ids) == ["q0", "q1", "q2", "q3"]
        assert arrivals[0][0] < arrivals[-1][0] - 2.0
    finally:
        manager.close()
