"""The RL loop's held-out metrics per prompt mode, and the format reward checking each prompt's own mode."""

from __future__ import annotations

import pytest

from rewards import RewardInput
from rewards.builtin import format_reward
from sail_rl.data.mathvista import MathVistaSample
from sail_rl.errors import RewardError
from sail_rl.rl.metrics import held_out_metrics


def _sample(i: int, answer: str) -> MathVistaSample:
    return MathVistaSample(pid=str(i), question="What colour is the circle?", image="x.png", answer=answer,
                           question_type="free_form", answer_type="text")


def test_held_out_metrics_split_by_mode():
    samples = [_sample(i, a) for i, a in enumerate(["red", "blue", "red", "blue"])]
    modes = ["think", "think", "direct", "direct"]
    responses = {"0": [{"response": "<think>It is red.</think>\\boxed{red}"}], "1": [{"response": "<think>x</think>\\boxed{red}"}],
                 "2": [{"response": "\\boxed{red}"}], "3": [{"response": "\\boxed{blue}"}]}
    out = held_out_metrics(responses, samples, modes, ("accuracy", "think_rate"))
    assert out["eval/accuracy"] == pytest.approx(0.75) and out["eval/think_rate"] == pytest.approx(0.5)
    assert (out["eval/think/accuracy"], out["eval/think/think_rate"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert (out["eval/direct/accuracy"], out["eval/direct/think_rate"]) == (pytest.approx(1.0), pytest.approx(0.0))
    single = held_out_metrics(responses, samples, ["direct"] * 4, ("accuracy",))
    assert single == {"eval/accuracy": pytest.approx(0.75)}  # one mode: no per-mode keys


def test_format_reward_prompt_mode_checks_each_prompts_mode():
    think, direct = "<think>It is red.</think>\\boxed{red}", "\\boxed{red}"
    inputs = [RewardInput("q", r, extra={"prompt_mode": m})
              for r, m in [(think, "think"), (direct, "think"), (direct, "direct"), (think, "direct")]]
    assert format_reward(inputs, mode="prompt") == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(RewardError, match="needs extra\\['prompt_mode'\\]"):
        format_reward([RewardInput("q", direct)], mode="prompt")
