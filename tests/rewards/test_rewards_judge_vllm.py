"""The judge client against a real `vllm serve` of a tiny random Qwen3 (slow, CPU vLLM)."""

from __future__ import annotations

import pytest

from rewards import RewardInput
from rewards.builtin import llm_verifier_reward
from rewards.judge import client_for


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_judge_against_vllm_serve_counts_unparseable_verdicts(tiny_judge):
    kwargs = {**tiny_judge, "max_tokens": 16, "timeout_s": 60.0, "max_concurrency": 2, "max_response_chars": 200}
    batch = [RewardInput("What is 1+1?", "\\boxed{2}", "2"), RewardInput("What is 2+2?", "\\boxed{5}", "4")]
    scores = llm_verifier_reward(batch, **kwargs)
    client = client_for(kwargs, "llm_verifier")
    # Random weights say nothing parseable: each sample is a counted parse failure scoring 0.
    assert client.stats["requests"] == 2
    assert client.stats["parse_failures"] == 2
    assert scores == [{"score": 0.0, "parse_failed": 1.0}] * 2
