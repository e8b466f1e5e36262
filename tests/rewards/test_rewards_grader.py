"""The grader's hard time limit, and answer extraction."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewards import extract_answer, grade
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
