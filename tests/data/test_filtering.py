"""Pass-rate filtering and rejection sampling (pure), and their CLI over a results file."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from sail_rl.cli import main
from sail_rl.data import MathVistaSample, load_samples
from sail_rl.data.filtering import filter_by_pass_rate, pass_rate_table, select_correct_cot


def THINK_LAYOUT(text: str) -> bool:
    from rewards.layout import follows_layout

    return follows_layout(text, "think")


def _samples(n: int = 3, image: str = "x.png") -> list[MathVistaSample]:
    return [MathVistaSample(pid=str(i), question="q", image=image, answer="1", question_type="free_form",
                            answer_type="integer") for i in range(n)]


def test_pass_rates_and_filter():
    results = [{"pid": "0", "correct": c} for c in (True, True, True, True)]
    results += [{"pid": "1", "correct": c} for c in (False, False, False, False)]
    results += [{"pid": "2", "correct": c} for c in (True, False, False, False)]
    rates = pass_rate_table(results)
    assert rates == {"0": 1.0, "1": 0.0, "2": 0.25}
    samples = _samples(4)  # pid 3 was never evaluated: kept
    assert [s.pid for s in filter_by_pass_rate(samples, rates)] == ["1", "2", "3"]
    assert [s.pid for s in filter_by_pass_rate(samples, rates, drop_all_wrong=True)] == ["2", "3"]
    assert [s.pid for s in filter_by_pass_rate(samples, rates, drop_all_correct=False)] == ["0", "1", "2", "3"]


def test_select_correct_cot_keeps_shortest_correct_well_formed():
    responses = {
        "0": ["<think>long long reasoning</think> \\boxed{1}", "<think>short</think> \\boxed{1}", "\\boxed{1}", "<think>x</think> \\boxed{2}"],
        "1": ["<think>x</think> \\boxed{5}"],
        "2": ["<think>unclosed \\boxed{1}"],
    }
    grades = {"0": [True, True, True, False], "1": [False], "2": [True]}
    records = select_correct_cot(_samples(), responses, grades, well_formed=THINK_LAYOUT)
    assert [(r["pid"], r["think_target"]) for r in records] == [("0", "<think>short</think> \\boxed{1}")]
    assert records[0]["should_think"] is True and records[0]["metadata"]["sft_source"] == "rejection_sampling"
    two = select_correct_cot(_samples(), responses, grades, max_per_sample=2, well_formed=THINK_LAYOUT)
    assert [r["pid"] for r in two] == ["0-cot0", "0-cot1"]


def test_cli_filter_and_rejection_sample_from_results(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"pid": s.pid, "question": "q", "image": "x.png", "answer": "1",
                                        "question_type": "free_form", "answer_type": "integer"}) + "\n" for s in _samples()))
    results = tmp_path / "results.jsonl"
    rows = [("0", True, "<think>a</think> \\boxed{1}"), ("0", True, "\\boxed{1}"), ("1", False, "\\boxed{3}"),
            ("2", True, "<think>b</think> \\boxed{1}"), ("2", False, "\\boxed{2}")]
    results.write_text("".join(json.dumps({"pid": p, "correct": c, "response": r}) + "\n" for p, c, r in rows))
    assert main(["data", "filter", "--data", str(data), "--results", str(results), "--out", str(tmp_path / "f.jsonl")]) == 0
    assert [s.pid for s in load_samples(tmp_path / "f.jsonl")] == ["1", "2"]
    assert main(["data", "filter", "--data", str(data), "--results", str(results), "--drop-all-wrong",
                 "--out", str(tmp_path / "g.jsonl")]) == 0
    assert [s.pid for s in load_samples(tmp_path / "g.jsonl")] == ["2"]
    assert main(["data", "rejection-sample", "--data", str(data), "--results", str(results), "--out", str(tmp_path / "cot.jsonl")]) == 0
    cot = load_samples(tmp_path / "cot.jsonl")
    assert [(s.pid, s.think_target) for s in cot] == [("0", "<think>a</think> \\boxed{1}"), ("2", "<think>b</think> \\boxed{1}")]


@pytest.mark.parametrize("action", ["filter", "rejection-sample"])
def test_cli_generates_results_with_the_engine(tmp_path, capsys, monkeypatch, action):
    from rollouts.types import Rollout

    from eval import runner

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"pid": str(i), "question": "q", "image": "x.png", "answer": "1",
                                        "question_type": "free_form", "answer_type": "integer"}) + "\n" for i in range(2)))

    class Engine:  # pid 0: always right; pid 1: right once in 4
        def generate(self, requests, sampling):
            texts = {"0": ["<think>a</think> \\boxed{1}"] * 4, "1": ["<think>bb</think> \\boxed{1}"] + ["\\boxed{2}"] * 3}
            return [Rollout(r.request_id, j, [], [5, 6], [0.0, 0.0], texts[r.request_id][j], "stop")
                    for r in requests for j in range(sampling.n)]

    monkeypatch.setattr(runner, "_make_engine", lambda cfg: Engine())
    model = tmp_path / "m"  # the command checks that --model is a checkpoint before it starts an engine
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    out = tmp_path / "o.jsonl"
    assert main(["data", action, "--data", str(data), "--model", str(model), "--k", "4", "--out", str(out)]) == 0
    if action == "filter":
        assert [s.pid for s in load_samples(out)] == ["1"]  # always-solved pid 0 dropped
    else:
        assert [(s.pid, s.think_target) for s in load_samples(out)] == [
            ("0", "<think>a</think> \\boxed{1}"), ("1", "<think>bb</think> \\boxed{1}")]


def test_cli_needs_results_or_model(tmp_path, capsys):
    code = main(["data", "filter", "--data", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0


def test_label_think_from_results_files(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"pid": s.pid, "question": "q", "image": "x.png", "answer": "1",
                                        "question_type": "free_form", "answer_type": "integer"}) + "\n" for s in _samples()))
    # pid 0: direct solves it as well as thinking; pid 1: thinking helps; pid 2: neither solves it
    graded = {"direct": {"0": [1, 1], "1": [0, 0], "2": [0, 0]}, "think": {"0": [1, 1], "1": [1, 0], "2": [0, 0]}}
    for mode, table in graded.items():
        (tmp_path / f"{mode}.jsonl").write_text("".join(json.dumps({"pid": p, "correct": bool(c)}) + "\n"
                                                        for p, cs in table.items() for c in cs))
    out = tmp_path / "labelled.jsonl"
    assert main(["data", "label-think", "--data", str(data), "--results", str(tmp_path / "think.jsonl"),
                 "--results-direct", str(tmp_path / "direct.jsonl"), "--out", str(out)]) == 0
    labelled = load_samples(out)
    assert [(s.pid, s.should_think) for s in labelled] == [("0", False), ("1", True), ("2", True)]
    assert (labelled[1].metadata["pass_rate_direct"], labelled[1].metadata["pass_rate_think"]) == (0.0, 0.5)
    assert "1 direct" in capsys.readouterr().out
    code = main(["data", "label-think", "--data", str(data), "--results", str(tmp_path / "think.jsonl"),
                 "--out", str(tmp_path / "other.jsonl")])
    assert code == 2 and "--results-direct" in capsys.readouterr().err


def test_label_think_generates_both_modes_with_the_engine(tmp_path, monkeypatch):
    from rollouts.types import Rollout

    from eval import runner

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"pid": str(i), "question": "q", "image": "x.png", "answer": "1",
                                        "question_type": "free_form", "answer_type": "integer"}) + "\n" for i in range(2)))

    class Engine:  # thinking solves pid 1; a direct answer solves pid 0 only
        def generate(self, requests, sampling):
            out = []
            for r in requests:
                thinking = "Think step by step" in r.messages[0]["content"][-1]["text"]
                right = thinking or r.request_id == "0"
                text = ("<think>a</think> " if thinking else "") + ("\\boxed{1}" if right else "\\boxed{2}")
                out += [Rollout(r.request_id, j, [], [5, 6], [0.0, 0.0], text, "stop") for j in range(sampling.n)]
            return out

    monkeypatch.setattr(runner, "_make_engine", lambda cfg: Engine())
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    out = tmp_path / "o.jsonl"
    assert main(["data", "label-think", "--data", str(data), "--model", str(model), "--k", "2", "--out", str(out)]) == 0
    assert [(s.pid, s.should_think) for s in load_samples(out)] == [("0", False), ("1", True)]
