"""The grader's hard time limit, and answer extraction."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewards import extract_answer, grade
from rewards.builtin import format_reward
from rewards.contract import RewardInput
from rewards.sympy_sandbox import SympySandbox

ADVERSARIAL = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{" + "(" * 300 + "1" + ")" * 300 + "}",
    "\\boxed{" + "7" * 10000 + "}",
    "\\boxed{9^9^9^9}",
    "\\boxed{(10^{100})!}",
]


@pytest.mark.parametrize("prediction", ADVERSARIAL)
def test_adversarial_answers_are_false_within_the_limit(prediction):
    start = time.monotonic()
    assert grade(prediction, "1", timeout_s=2.0) is False
    assert time.monotonic() - start < 3.0


def test_adversarial_answers_are_false_from_worker_threads_too():
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda p: grade(p, "1", timeout_s=2.0), ADVERSARIAL + ["\\boxed{\\frac{2}{2}}"]))
    assert verdicts == [False] * len(ADVERSARIAL) + [True]
    assert time.monotonic() - start < 3.0 * 2


def test_the_sandbox_kills_a_request_past_its_deadline_and_recovers():
    sandbox = SympySandbox(max_children=1)
    try:
        assert sandbox.verify("$1$", "$1$", timeout_s=10.0) is True  # warm: child started
        start = time.monotonic()
        assert sandbox.request({"op": "sleep", "seconds": 30}, timeout_s=0.5) is None
        assert time.monotonic() - start < 1.5
        assert sandbox.kills == 1
        assert sandbox.verify("$\\frac{1}{2}$", "$0.5$", timeout_s=10.0) is True  # a fresh child
    finally:
        sandbox.close()


def test_an_expression_that_passes_the_prescreen_still_cannot_hang():
    sandbox = SympySandbox(max_children=1)
    try:
        sandbox.verify("$1$", "$1$", timeout_s=10.0)
        start = time.monotonic()
        # Sent straight to sympy, skipping grade's pre-screen: the child is killed.
        assert sandbox.verify("$1$", "$9^{9^{9^{9}}}$", timeout_s=1.0) is False
        assert time.monotonic() - start < 2.0
    finally:
        sandbox.close()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{a{b}c} tail", "a{b}c"),
        ("\\fbox{5}", "5"),
        ("x \\boxed{1} y \\boxed{2}.", "2"),
        ("<think>\\boxed{1}</think> The answer is 3", "3"),
        ("So the final answer: $x=2$.", "x=2"),
        ("Answer: (C)", "(C)"),
        ("The answer is **7**.", "7"),
        ("  Paris. ", "Paris"),
        ("long " * 50, None),
        ("", None),
        (None, None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


# ---------------------------------------------------------------- bounded work (issue: 28K chars cost ~9 s)

WORK_SHAPES = {
    "unclosed boxes": lambda n: "\\boxed{" * n,
    "closed boxes": lambda n: "\\boxed{1} " * n,
    "nested boxes": lambda n: "\\boxed{" * n + "1" + "}" * n,
    "answer phrases on one line": lambda n: "the answer is not " * n,
    "empty answer phrases": lambda n: "Answer:\n" * n,
}


def _python_steps(fn) -> int:
    """Python line and call events while `fn` runs: a count of work that does not depend on the machine."""
    steps = 0

    def trace(frame, event, arg):
        nonlocal steps
        steps += 1
        return trace

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return steps


def _score_all(text: str):
    return lambda: (extract_answer(text), grade(text, "1"), format_reward([RewardInput("q", text)], mode="direct"))


@pytest.mark.parametrize("shape", list(WORK_SHAPES))
def test_extraction_and_format_work_grow_linearly_with_the_boxes(shape):
    make = WORK_SHAPES[shape]
    small, large = _python_steps(_score_all(make(500))), _python_steps(_score_all(make(2000)))
    assert large / small < 5  # linear: ~4; the one-scan-per-box extraction was ~16


def test_a_28k_char_response_of_boxes_costs_time_linear_in_its_length():
    def best_time(text):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            _score_all(text)()
            times.append(time.perf_counter() - start)
        return min(times)

    quarter, full = best_time("\\boxed{" * 1000), best_time("\\boxed{" * 4000)  # 7K and 28K characters
    assert full / max(quarter, 1e-4) < 8  # linear: ~4; quadratic: ~16


# ---------------------------------------------------------------- exact numbers


def test_integers_compare_exactly_however_long():
    assert grade("12345678901234567891", "12345678901234567890", answer_type="integer") is False
    assert grade("12345678901234567891", "12345678901234567890") is False
    assert grade("\\boxed{12345678901234567890}", "12345678901234567890", answer_type="integer") is True
    assert grade("12,345,678,901,234,567,890", "12345678901234567890", answer_type="integer") is True


def test_decimals_round_exactly_at_the_stated_precision():
    # binary floats round 0.125 -> 0.12 and 2.675 -> 2.67; the decimal value rounds half up
    assert grade("0.125", "0.13", answer_type="float", precision=2) is True
    assert grade("2.675", "2.68", answer_type="float", precision=2) is True
    assert grade("2.674", "2.68", answer_type="float", precision=2) is False
    assert grade("1.00000000000000000011", "1.0000000000000000001", answer_type="float", precision=19) is True
    assert grade("1.00000000000000000021", "1.0000000000000000001", answer_type="float", precision=19) is False
    assert grade("-2.45", "-2.5", answer_type="float", precision=1) is True
