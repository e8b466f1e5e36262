"""Eval scoring on a hand-made set with known answers: exact accuracies overall and per
group, pass@k / mean@k, MathVista option normalisation, think statistics, the LLM hook."""

from __future__ import annotations

import pytest

from eval.extractor import EXAMPLES, build_extraction_prompt
from eval.scoring import compute_metrics, pass_at_k, score
from sail_rl.data import MathVistaSample
from sail_rl.errors import DataError

pytest.importorskip("rewards.grader")  # the shared grader scores everything below


def _s(pid, answer, category, task, question_type="free_form", answer_type="integer", choices=None, precision=None):
    return MathVistaSample(pid=pid, question=f"q{pid}", image="x.png", answer=answer, question_type=question_type,
                           answer_type=answer_type, choices=choices, precision=precision,
                           metadata={"category": category, "task": task, "skills": ["arithmetic reasoning"]})


SAMPLES = [
    _s("1", "3", "math-targeted-vqa", "math word problem"),
    _s("2", "4.5", "math-targeted-vqa", "math word problem", answer_type="float", precision=1),
    _s("3", "90°", "math-targeted-vqa", "geometry problem solving", "multi_choice", "text", ["60°", "90°", "120°"]),
    _s("4", "blue", "general-vqa", "figure question answering", "multi_choice", "text", ["red", "blue"]),
    _s("5", "7", "general-vqa", "visual question answering"),
    _s("6", "[1, 2]", "general-vqa", "visual question answering", answer_type="list"),
]
RIGHT = {
    "1": "<think>1 + 2 = 3</think>\n\\boxed{3}",
    "2": "\\boxed{4.5}",
    "3": "<think>right angle</think>\n\\boxed{B}",
    "4": "The answer is blue.",  # option text -> letter B
    "5": "\\boxed{7}",
    "6": "\\boxed{[1, 2]}",
}
WRONG = {"1": "\\boxed{4}", "2": "\\boxed{4.6}", "3": "\\boxed{A}", "4": "\\boxed{red}", "5": "\\boxed{8}", "6": "\\boxed{[2, 1]}"}


def _one_each(table):
    return {pid: [text] for pid, text in table.items()}


def test_all_correct_scores_one_and_all_wrong_zero():
    right = score(SAMPLES, _one_each(RIGHT)).metrics
    wrong = score(SAMPLES, _one_each(WRONG)).metrics
    assert right["accuracy"] == 1.0 and wrong["accuracy"] == 0.0
    for key in ("by_category", "by_task", "by_question_type", "by_answer_type"):
        assert all(v["accuracy"] == 1.0 for v in right[key].values())
        assert all(v["accuracy"] == 0.0 for v in wrong[key].values())
    assert right["by_answer_type"]["integer"]["count"] == 2


def test_mixed_scores_its_exact_fraction_overall_and_per_group():
    mixed = {pid: [RIGHT[pid] if pid in {"1", "3", "4"} else WRONG[pid]] for pid in RIGHT}
    result = score(SAMPLES, mixed)
    m = result.metrics
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["by_category"] == {
        "general-vqa": {"accuracy": pytest.approx(1 / 3), "count": 3},
        "math-targeted-vqa": {"accuracy": pytest.approx(2 / 3), "count": 3},
    }
    assert m["by_question_type"]["multi_choice"]["accuracy"] == 1.0
    assert m["by_question_type"]["free_form"]["accuracy"] == pytest.approx(1 / 4)
    assert m["by_task"]["math word problem"]["accuracy"] == pytest.approx(1 / 2)
    assert [r.prediction for r in result.records if r.pid in {"3", "4"}] == ["B", "B"]


def test_k_samples_give_pass_at_k_and_mean_at_k():
    # pid 1: 2 of 4 right; pid 2: 0 of 4; others 4 of 4
    responses = {pid: [RIGHT[pid]] * 4 for pid in RIGHT}
    responses["1"] = [RIGHT["1"], WRONG["1"], RIGHT["1"], WRONG["1"]]
    responses["2"] = [WRONG["2"]] * 4
    m = score(SAMPLES, responses).metrics
    assert m["k"] == 4 and m["num_responses"] == 24
    assert m["mean@k"] == pytest.approx((0.5 + 0 + 4) / 6) == pytest.approx(m["accuracy"])
    assert set(m["pass@k"]) == {"pass@1", "pass@2", "pass@4"}
    assert m["pass@k"]["pass@1"] == pytest.approx(m["mean@k"])
    assert m["pass@k"]["pass@2"] == pytest.approx((pass_at_k(4, 2, 2) + 0 + 4) / 6)
    assert m["pass@k"]["pass@4"] == pytest.approx(5 / 6)


def test_pass_at_k_estimator():
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 3, 3) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_think_rate_well_formedness_and_lengths():
    responses = {
        "1": [{"response": "<think>a</think> \\boxed{3}", "response_tokens": 10}],
        "2": [{"response": "<think>a</think><think>b</think> \\boxed{4.5}", "response_tokens": 20}],
        "3": [{"response": "<think>never closed \\boxed{B}", "response_tokens": 30}],
        "4": [{"response": "\\boxed{B}", "response_tokens": 4}],
        "5": [{"response": " <think>x</think>\\boxed{7}", "response_tokens": 6}],
        "6": [{"response": "\\boxed{[2, 1]}", "response_tokens": 8}],
    }
    m = score(SAMPLES, responses).metrics
    assert m["think_rate"] == pytest.approx(4 / 6)  # 1, 2, 3, 5 open with <think> (3 is cut off)
    assert m["think_well_formed_rate"] == pytest.approx(2 / 4)  # of 1, 2, 3, 5: 1 and 5
    assert m["mean_response_tokens"] == pytest.approx(78 / 6)
    assert m["mean_response_chars"] == pytest.approx(sum(len(r[0]["response"]) for r in responses.values()) / 6)
    assert m["accuracy_when_direct"] == pytest.approx(1 / 2)  # 4 right; 6 wrong
    assert m["accuracy_when_thinking"] == 1.0


def test_grade_function_is_injectable():
    calls = []

    def exact(prediction, answer, *, answer_type=None, choices=None, precision=None):
        calls.append((prediction, answer, answer_type, choices, precision))
        return prediction == answer

    m = score(SAMPLES[:2], {"1": ["\\boxed{3}"], "2": ["\\boxed{4.50}"]}, grade_fn=exact).metrics
    assert m["accuracy"] == 0.5  # the exact-match grader rejects 4.50
    assert calls[1] == ("4.50", "4.5", "float", None, 1)


def test_llm_extractor_is_asked_only_what_rules_cannot_read_in_one_batch():
    batches = []

    def fake_llm(prompts: list[str]) -> list[str]:
        batches.append(prompts)
        return [" 7\n(because the picture shows seven)", "Extracted answer: B", ""]

    samples = [SAMPLES[0], SAMPLES[4], SAMPLES[3], _s("7", "4", "general-vqa", "visual question answering")]
    responses = {
        "1": ["\\boxed{3}"],  # rule
        "5": ["I counted the dots and got seven of them after careful consideration of every corner " * 2],  # no rule answer
        "4": ["It is the second colour of the two."],  # a rule answer that names no option
        "7": ["Many birds sit on the wire."],  # a rule answer with no number; the LLM gives nothing
    }
    result = score(samples, responses, llm_extractor=fake_llm)
    assert len(batches) == 1 and len(batches[0]) == 3 and all(p.endswith("Extracted answer:") for p in batches[0])
    assert "seven of them" in batches[0][0] and "second colour" in batches[0][1]
    assert [(r.pid, r.extraction, r.prediction, r.correct) for r in result.records] == [
        ("1", "rule", "3", True), ("5", "llm", "7", True), ("4", "llm", "B", True),
        ("7", "rule", "Many birds sit on the wire", False)]
    assert result.metrics["extraction"] == {"rule": 2, "llm": 2, "none": 0}
    assert result.metrics["llm_extraction_rate"] == 0.5
    assert result.metrics["accuracy_by_extraction"] == {"rule": 0.5, "llm": 1.0}
    without = score(samples, responses).metrics["extraction"]
    assert without == {"rule": 3, "llm": 0, "none": 1}


def test_extraction_prompt_has_the_five_mathvista_examples():
    prompt = build_extraction_prompt(SAMPLES[2], "It is ninety degrees.")
    assert [e[3] for e in EXAMPLES] == ["14", "0.6", "1.45", "[2007, 2008]", "B"]
    assert prompt.count("\nExtracted answer:") == 6
    assert "Choices: (A) 60° (B) 90° (C) 120°" in prompt and "provide the correct option letter" in prompt.split("q3")[0][-200:]


def test_missing_or_unknown_responses_are_data_errors():
    with pytest.raises(DataError, match=r"no response for 1 of 6 samples \(first pid 6\)"):
        score(SAMPLES, {pid: [t] for pid, t in RIGHT.items() if pid != "6"})
    with pytest.raises(DataError, match="responses for 1 unknown pids"):
        score(SAMPLES, {**_one_each(RIGHT), "99": ["x"]})
    with pytest.raises(DataError, match="nothing to score"):
        compute_metrics([])
