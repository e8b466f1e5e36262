"""RewardScorer: contract checks, value limits, time limits, on_error, None handling, both combinations,
async rewards, and the step metrics computed once."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from rewards import RewardInput, RewardScorer, RewardSpec, register_reward, reward_metrics
from rewards.contract import MAX_ABS_REWARD
from sail_rl.errors import ConfigError, RewardError

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
    with pytest.raises(RewardError, match="reward 't_raises_on_2' raised on sample 2: ZeroDivisionError: boom; fix"):
        scorer.score(BATCH)


def test_on_error_zero_scores_only_the_failing_sample_zero_and_counts_it():
    scorer = RewardScorer([RewardSpec(name="t_raises_on_2", on_error="zero")])
    result = scorer.score(BATCH)
    assert result.totals == [1.0, 1.0, 0.0, 1.0]
    assert result.metrics["reward/t_raises_on_2/errors"] == 1.0


def test_weighted_sum_skips_a_none_reward_as_trl_does():
    scorer = RewardScorer([RewardSpec(name="t_half", weight=0.75), RewardSpec(name="t_none_odd", weight=0.25)])
    result = scorer.score(BATCH)
    # even samples: 0.75*0.5 + 0.25*1; odd: t_none_odd is n/a and adds nothing (TRL's nansum): 0.75*0.5
    assert result.totals == [0.625, 0.375, 0.625, 0.375]
    assert result.metrics["reward/t_none_odd/not_applicable"] == 2.0
    assert result.metrics["reward/t_none_odd/mean"] == 1.0
    assert result.metrics["reward/mean"] == pytest.approx(0.5)
    assert result.metrics["reward/std"] == pytest.approx(0.125)
    assert result.metrics["reward/not_applicable"] == 0.0


@register_reward("t_none")
def t_none(inputs):
    return [None] * len(inputs)


def test_a_sample_no_reward_applies_to_scores_zero_and_is_counted():
    result = RewardScorer([RewardSpec(name="t_none")]).score(BATCH[:3])
    assert result.totals == [0.0, 0.0, 0.0]
    assert result.metrics["reward/not_applicable"] == 3.0


def test_dict_rewards_give_named_components_and_their_mean():
    result = RewardScorer([RewardSpec(name="t_components")]).score(BATCH[:2])
    assert result.components["t_components"] == [0.5, 0.5]
    assert result.components["t_components/a"] == [1.0, 1.0]
    assert result.metrics["reward/t_components/b/mean"] == 0.0


def test_sail_rl_product_combination():
    fmt = "<think>ok</think> \\boxed{4}"
    batch = [
        RewardInput("q", fmt, "4", extra={"should_think": True}),      # all right: 0.9*1 + 0.1*1
        RewardInput("q", fmt, "5", extra={"should_think": True}),      # wrong answer: 0 + 0.1
        RewardInput("q", fmt, "4", extra={"should_think": False}),     # right answer, wrong decision: 0.9*0.5 + 0.1
        RewardInput("q", "\\boxed{4}", "4", extra={"should_think": False}),  # right, right decision, not the think layout
    ]
    specs = [RewardSpec(name="accuracy"), RewardSpec(name="format"), RewardSpec(name="judging"),
             RewardSpec(name="overlong", weight=0.5, kwargs={"max_response_tokens": 3, "overlong_buffer_tokens": 2})]
    result = RewardScorer(specs, combine="sail_rl_product", alpha=0.9).score(batch)
    # overlong has no role: added with its weight (fmt: 2 words -> -0.5 * 0.5; a lone box: 0)
    assert result.totals == pytest.approx([1.0 - 0.25, 0.1 - 0.25, 0.55 - 0.25, 0.9])


VALUES = (None, 0.0, 1 / 3, 2 / 3, 1.0)


@pytest.mark.parametrize("alpha, floor", [(0.9, 0.5), (0.9, 0.2), (0.7, 0.5), (0.6, 0.9)])
def test_a_right_answer_beats_a_wrong_one_in_every_combination(alpha, floor):
    """Every judge x think x format combination (None = not applicable): right > wrong with the same
    format, and a right answer in the wrong format > a wrong answer in the right one."""
    from rewards.scorer import sail_rl_product

    for judge, think, judge2, think2 in itertools.product(VALUES, repeat=4):
        for fmt in (0.0, 1.0, None):
            right = sail_rl_product(1.0, judge, think, fmt, alpha, floor)
            assert right > sail_rl_product(0.0, judge2, think2, fmt, alpha, floor), (judge, think, judge2, think2, fmt)
        assert sail_rl_product(1.0, judge, think, 0.0, alpha, floor) > sail_rl_product(0.0, judge2, think2, 1.0, alpha, floor)


def test_settings_where_format_could_outweigh_correctness_are_refused():
    from rewards.registry import RewardsConfig

    specs = [RewardSpec(name="accuracy"), RewardSpec(name="format")]
    with pytest.raises(ConfigError, match="a wrong answer in the right format would outscore a right one"):
        RewardsConfig(specs, "sail_rl_product", alpha=0.6, floor=0.5).validate()
    RewardsConfig(specs, "sail_rl_product", alpha=0.9, floor=0.5).validate()


def test_product_without_judge_or_think_treats_them_as_one():
    specs = [RewardSpec(name="accuracy"), RewardSpec(name="format")]
    result = RewardScorer(specs, combine="sail_rl_product").score([RewardInput("q", "<think>a</think>\\boxed{4}", "4")])
    assert result.totals == pytest.approx([1.0])


def test_trl_style_function_receives_columns():
    seen = {}

    @register_reward("t_trl", style="trl")
    def t_trl(prompts, completions, solution, **kwargs):
        seen.update(kwargs, solution=solution, prompts=prompts)
        return [float(c.endswith(f"{{{s}}}")) for c, s in zip(completions, solution)]

    result = RewardScorer([RewardSpec(name="t_trl", kwargs={"k": 1})]).score(BATCH[:2])
    assert result.totals == [1.0, 1.0]
    assert seen["solution"] == ["0", "1"] and seen["i"] == [0, 1] and seen["k"] == 1
    assert seen["ground_truth"] == ["0", "1"] and seen["prompts"] == ["q", "q"]


def test_async_rewards_are_awaited():
    @register_reward("t_async_batch")
    async def t_async_batch(inputs, **kwargs):
        await asyncio.sleep(0.01)
        return [float(x.extra["i"]) for x in inputs]

    result = RewardScorer([RewardSpec(name="t_async_batch")]).score(BATCH)
    assert result.totals == [0.0, 1.0, 2.0, 3.0]


@register_reward("t_async_one")
async def t_async_one(inputs, **kwargs):
    return [1.0] * len(inputs)


def test_scoring_works_inside_a_running_event_loop():
    scorer = RewardScorer([RewardSpec(name="t_async_one")])

    async def main():
        return scorer.score(BATCH[:1])

    assert asyncio.run(main()).totals == [1.0]


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("n, bad, shown", [(0, float("inf"), "inf"), (1, float("-inf"), "-inf"), (2, float("nan"), "nan"),
                                           (3, 1e308, "1e\\+308"), (4, -2 * MAX_ABS_REWARD, "-2e\\+06")])
def test_non_finite_and_absurd_values_are_refused_naming_reward_and_sample(n, bad, shown):
    @register_reward(f"t_bad_{n}")
    def t_bad(inputs):
        return [1.0 if x.extra["pid"] != "p7" else bad for x in inputs]

    batch = [RewardInput("q", "r", extra={"pid": pid}) for pid in ("p5", "p6", "p7")]
    scorer = RewardScorer([RewardSpec(name=f"t_bad_{n}", on_error="zero")])  # never zeroed: a contract error
    with pytest.raises(RewardError, match=f"reward 't_bad_{n}' returned {shown} for sample 2 \\(pid p7\\)"):
        scorer.score(batch)


def test_the_largest_allowed_magnitude_passes():
    @register_reward("t_big_ok")
    def t_big_ok(inputs):
        return [MAX_ABS_REWARD, -MAX_ABS_REWARD, True][: len(inputs)]

    assert RewardScorer([RewardSpec(name="t_big_ok")]).score(BATCH[:3]).components["t_big_ok"] == [1e6, -1e6, 1.0]


# ---------------------------------------------------------------- time limits


@register_reward("t_sleeps_on_1")
def t_sleeps_on_1(inputs):
    if any(x.extra["i"] == 1 for x in inputs):
        time.sleep(30)
    return [1.0] * len(inputs)


def test_a_sleeping_reward_is_stopped_at_its_time_limit_and_raises_by_default():
    scorer = RewardScorer([RewardSpec(name="t_sleeps_on_1", timeout_s=0.3)])
    start = time.monotonic()
    with pytest.raises(RewardError, match="reward 't_sleeps_on_1' on a batch of 4 took longer than its "
                                          "timeout_s=0.3; speed it up, raise its timeout_s or set on_error: zero"):
        scorer.score(BATCH)
    assert time.monotonic() - start < 2.0


def test_a_timeout_with_on_error_zero_scores_the_batch_zero_and_counts_it_from_any_thread():
    scorer = RewardScorer([RewardSpec(name="t_sleeps_on_1", timeout_s=0.3, on_error="zero")])
    results = {}

    def score(name, batch):
        results[name] = scorer.score(batch)

    threads = [threading.Thread(target=score, args=("slow", BATCH[:2])), threading.Thread(target=score, args=("ok", BATCH[2:]))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert time.monotonic() - start < 2.0
    assert results["slow"].totals == [0.0, 0.0] and results["ok"].totals == [1.0, 1.0]
    metrics = reward_metrics([results["slow"], results["ok"]])
    assert metrics["reward/t_sleeps_on_1/timeouts"] == 2.0 and metrics["reward/t_sleeps_on_1/errors"] == 0.0


def test_timeout_s_must_be_positive():
    with pytest.raises(ConfigError, match="timeout_s must be a positive number of seconds, got 0"):
        RewardScorer([RewardSpec(name="t_half", timeout_s=0)])


# ---------------------------------------------------------------- step metrics


def test_step_metrics_are_computed_once_over_every_batch():
    scorer = RewardScorer([RewardSpec(name="t_raises_on_2", on_error="zero", weight=0.5), RewardSpec(name="t_none_odd", weight=0.5)])
    groups = [scorer.score(BATCH[:3]), scorer.score(BATCH[2:]), scorer.score(BATCH[:1])]
    metrics = reward_metrics(groups)
    totals = [t for g in groups for t in g.totals]  # [1, .5, .5] + [.5, .5] + [1]
    assert metrics["reward/mean"] == pytest.approx(sum(totals) / 6)
    assert metrics["reward/t_raises_on_2/errors"] == 2.0  # summed, not averaged per group
    assert metrics["reward/t_raises_on_2/mean"] == pytest.approx(4 / 6)
    assert metrics["reward/t_none_odd/not_applicable"] == 2.0
    assert metrics["reward/t_none_odd/mean"] == 1.0
