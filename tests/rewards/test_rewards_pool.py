"""ScoringPool (no Ray): same results as direct scoring; a slow batch does not block another."""

from __future__ import annotations

import time

import pytest

from rewards import RewardInput, RewardScorer, RewardSpec, ScoringPool, register_reward
from rewards.pool import RewardActor

BATCH = [
    RewardInput("q", "<think>2+2=4</think> \\boxed{4}", "4"),
    RewardInput("q", "\\boxed{5}", "4"),
    RewardInput("q", "<think>x</think> \\boxed{\\frac{1}{2}}", "0.5"),
]
SPECS = [RewardSpec(name="accuracy", weight=0.8), RewardSpec(name="format", weight=0.2)]


@register_reward("t_slow_when_asked")
def t_slow_when_asked(inputs, **kwargs):
    if any(x.extra.get("slow") for x in inputs):
        time.sleep(0.8)
    return [1.0] * len(inputs)


def test_pool_results_equal_direct_scoring():
    direct = RewardScorer(SPECS).score(BATCH)
    with ScoringPool(SPECS, max_workers=2) as pool:
        futures = [pool.submit(BATCH), pool.submit(BATCH[::-1])]
        results = [f.result(timeout=30) for f in futures]
    assert results[0] == direct
    assert results[1].totals == direct.totals[::-1]


def test_a_slow_batch_does_not_block_another():
    with ScoringPool([RewardSpec(name="t_slow_when_asked")], max_workers=2) as pool:
        start = time.monotonic()
        slow = pool.submit([RewardInput("q", "r", extra={"slow": True})])
        fast = pool.submit([RewardInput("q", "r")])
        assert fast.result(timeout=30).totals == [1.0]
        assert time.monotonic() - start < 0.6
        assert not slow.done()
        assert slow.result(timeout=30).totals == [1.0]


def test_reward_actor_forwards_score_without_ray():
    actor = RewardActor({"rewards": [{"name": "accuracy", "weight": 1.0}]})
    assert actor.score(BATCH).totals == [1.0, 0.0, 1.0]


@pytest.mark.slow
def test_process_pool_matches_direct_scoring():
    direct = RewardScorer(SPECS).score(BATCH)
    with ScoringPool(SPECS, max_workers=1, kind="process") as pool:
        assert pool.submit(BATCH).result(timeout=120) == direct
