"""RewardScorer: contract checks, on_error, None handling, both combinations, async rewards."""

from __future__ import annotations

import asyncio
import time

import pytest

from rewards import RewardInput, RewardScorer, RewardSpec, register_reward
from sail_rl.errors import RewardError

BATCH = [RewardInput("q", f"\\boxed{{{i}}}", str(i), extra={"i": i}) for i in range(4)]


@register_reward("t_half")
def t_half(inputs, **kwargs):
    return [0.5] * len(inputs)


@register_reward("t_text")
def t_text(inputs, **kwargs):
    return [0.0, "high", 0.0, 0.0][: len(inputs)]


@register_reward("t_short")
def t_short(inputs, **kwargs):
    return [1.0]


@register_reward("t_raises_on_2")
def t_raises_on_2(inputs, **kwargs):
    if any(x.extra["i"] == 2 for x in inputs):
        raise ZeroDivisionError("boom")
    return [1.0] * len(inputs)


@register_reward("t_none_odd")
def t_none_odd(inputs, **kwargs):
    return [None if x.extra["i"] % 2 else 1.0 for x in inputs]


@register_reward("t_components")
def t_components(inputs, **kwargs):
    return [{"a": 1.0, "b": 0.0} for _ in inputs]


def test_non_numeric_return_names_reward_and_sample():
    scorer = RewardScorer([RewardSpec(name="t_text")])
    with pytest.raises(RewardError, match="reward 't_text' returned str 'high' for sample 1; return a float"):
        scorer.score(BATCH)


def test_wrong_length_names_got_and_expected():
    scorer = RewardScorer([RewardSpec(name="t_short", on_error="zero")])  # contract errors are never zeroed
    with pytest.raises(RewardError, match="reward 't_short' returned 1 values for a batch of 4"):
        scorer.score(BATCH)


def test_a_raising_reward_names_the_sample_when_on_error_is_raise():
    scorer = RewardScorer([RewardSpec(name="t_raises_on_2")])
    with pytest.raises(RewardError, match="reward 't_raises_on_2' raised on sample 2: ZeroDivisionError: boom"):
        scorer.score(BATCH)


def test_on_error_zero_scores_only_the_failing_sample_zero_and_counts_it():
    scorer = RewardScorer([RewardSpec(name="t_raises_on_2", on_error="zero")])
    result = scorer.score(BATCH)
    assert result.totals == [1.0, 1.0, 0.0, 1.0]
    assert result.metrics["reward/t_raises_on_2/errors"] == 1.0


def test_weighted_sum_renormalises_over_applicable_rewards():
    scorer = RewardScorer([RewardSpec(name="t_half", weight=0.75), RewardSpec(name="t_none_odd", weight=0.25)])
    result = scorer.score(BATCH)
    # even samples: 0.75*0.5 + 0.25*1; odd: t_none_odd is n/a, so t_half alone (0.5)
    assert result.totals == [0.625, 0.5, 0.625, 0.5]
    assert result.metrics["reward/t_none_odd/not_applicable"] == 2.0
    assert result.metrics["reward/t_none_odd/mean"] == 1.0
    assert result.metrics["reward/total/mean"] == pytest.approx(0.5625)
    assert result.metrics["reward/total/std"] == pytest.approx(0.0625)


def test_dict_rewards_give_named_components_and_their_mean():
    result = RewardScorer([RewardSpec(name="t_components")]).score(BATCH[:2])
    assert result.components["t_components"] == [0.5, 0.5]
    assert result.components["t_components/a"] == [1.0, 1.0]
    assert result.metrics["reward/t_components/b/mean"] == 0.0


def test_sail_rl_product_combination():
    fmt = "<judge>think</judge><think>ok</think> \\boxed{4}"
    batch = [
        RewardInput("q", fmt, "4", extra={"should_think": True}),      # all right: 0.9*1 + 0.1*1
        RewardInput("q", fmt, "5", extra={"should_think": True}),      # wrong answer: 0 + 0.1
        RewardInput("q", fmt, "4", extra={"should_think": False}),     # wrong decision: 0 + 0.1
        RewardInput("q", "\\boxed{4}", "4", extra={"should_think": False}),  # bad format, no judge block
    ]
    specs = [RewardSpec(name="accuracy"), RewardSpec(name="format"), RewardSpec(name="judging"),
             RewardSpec(name="overlong", weight=0.5, kwargs={"max_response_tokens": 3, "overlong_buffer_tokens": 2})]
    result = RewardScorer(specs, combine="sail_rl_product", alpha=0.9).score(batch)
    # overlong has no role: added with its weight (fmt: 2 words -> -0.5 * 0.5; a lone box: 0)
    assert result.totals == pytest.approx([1.0 - 0.25, 0.1 - 0.25, 0.1 - 0.25, 0.0])


def test_product_without_judge_or_think_treats_them_as_one():
    specs = [RewardSpec(name="accuracy"), RewardSpec(name="format")]
    result = RewardScorer(specs, combine="sail_rl_product").score([RewardInput("q", "<think>a</think>\\boxed{4}", "4")])
    assert result.totals == pytest.approx([1.0])


def test_trl_style_function_receives_columns():
    seen = {}

    @register_reward("t_trl")
    def t_trl(prompts, completions, solution, **kwargs):
        seen.update(kwargs, solution=solution, prompts=prompts)
        return [float(c.endswith(f"{{{s}}}")) for c, s in zip(completions, solution)]

    result = RewardScorer([RewardSpec(name="t_trl", kwargs={"k": 1})]).score(BATCH[:2])
    assert result.totals == [1.0, 1.0]
    assert seen["solution"] == ["0", "1"] and seen["i"] == [0, 1] and seen["k"] == 1
    assert seen["ground_truth"] == ["0", "1"] and seen["prompts"] == ["q", "q"]


def test_async_per_sample_rewards_run_concurrently():
    @register_reward("t_async_sample")
    async def t_async_sample(sample, **kwargs):
        await asyncio.sleep(0.3)
        return float(sample.extra["i"])

    @register_reward("t_async_batch")
    async def t_async_batch(inputs, **kwargs):
        await asyncio.sleep(0.01)
        return [1.0] * len(inputs)

    scorer = RewardScorer([RewardSpec(name="t_async_sample", weight=0.5), RewardSpec(name="t_async_batch", weight=0.5)])
    start = time.monotonic()
    result = scorer.score(BATCH)
    assert time.monotonic() - start < 0.9  # 4 x 0.3 s would be 1.2 s in sequence
    assert result.components["t_async_sample"] == [0.0, 1.0, 2.0, 3.0]
    assert result.totals == [0.5, 1.0, 1.5, 2.0]


@register_reward("t_async_one")
async def t_async_one(inputs, **kwargs):
    return [1.0] * len(inputs)


def test_scoring_works_inside_a_running_event_loop():
    scorer = RewardScorer([RewardSpec(name="t_async_one")])

    async def main():
        return scorer.score(BATCH[:1])

    assert asyncio.run(main()).totals == [1.0]
