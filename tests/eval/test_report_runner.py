"""Report files and the score-only `sail-rl eval --responses` path, end to end on synthetic data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from eval.runner import EvalConfig, _generate, evaluate, load_responses
from sail_rl.cli import main
from sail_rl.config import from_dict
from sail_rl.data.mathvista import load_samples
from sail_rl.data.synth import generate_dataset
from sail_rl.errors import ConfigError, DataError

pytest.importorskip("rewards.grader")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    generate_dataset(root, n=7, seed=3, eval_n=14)
    records = [json.loads(line) for line in (root / "eval.jsonl").read_text().splitlines()]
    return root, records


def _responses(path, records, right_pids):
    with path.open("w") as f:
        for r in records:
            text = r["think_target"] if r["pid"] in right_pids else "<think>guess</think>\n\\boxed{nothing}"
            f.write(json.dumps({"pid": r["pid"], "response": text, "response_tokens": 5}) + "\n")
    return path


def test_cli_scores_a_responses_file_and_writes_the_report(bench, tmp_path, capsys):
    root, records = bench
    right = {r["pid"] for r in records[::2]}  # 7 of 14
    resp = _responses(tmp_path / "resp.jsonl", records, right)
    out = tmp_path / "report"
    code = main(["eval", f"eval.data_files=[{root / 'eval.jsonl'}]", "--responses", str(resp), "--output-dir", str(out)])
    assert code == 0 and capsys.readouterr().out.startswith("accuracy 0.5000 on 14 samples (k=1")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == 0.5 and metrics["config"]["responses_file"] == str(resp)
    fams = {r["metadata"]["family"] for r in records}
    assert set(metrics["by_family"]) == fams
    for fam in fams:
        expected = [r["pid"] in right for r in records if r["metadata"]["family"] == fam]
        assert metrics["by_family"][fam]["accuracy"] == pytest.approx(sum(expected) / len(expected))
    for key in ("by_question_type", "by_answer_type", "by_category", "by_task", "pass@k", "mean@k", "think_rate",
                "mean_response_chars"):
        assert key in metrics
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 14 and {"pid", "prompt", "response", "extracted", "correct", "category"} <= set(lines[0])
    assert sum(line["correct"] for line in lines) == 7
    assert "| accuracy | 0.5000 |" in (out / "metrics.md").read_text()
    assert Image.open(out / "accuracy_by_category.png").size[0] > 100


def test_recipe_file_overrides_and_print_config(bench, tmp_path, capsys):
    root, _ = bench
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(f"eval:\n  data_files: [{root / 'eval.jsonl'}]\n  k_samples: 4\n  temperature: 0.7\n")
    assert main(["eval", str(recipe), "eval.prompt_mode=direct", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "k_samples: 4" in out and "prompt_mode: direct" in out
    assert main(["eval", str(recipe), "eval.tempreature=1.0"]) == 2
    assert "did you mean 'temperature'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="temperature 0 gives k identical answers"):
        from_dict(EvalConfig, {"data_files": ["x"], "k_samples": 2})


def test_generation_through_a_rollout_engine(bench, tmp_path):
    from rollouts.types import Rollout

    root, records = bench
    cfg = EvalConfig(data_files=[str(root / "eval.jsonl")], output_dir=str(tmp_path / "o"), k_samples=2,
                     temperature=1.0, max_samples=3, plot=False)
    with pytest.raises(ConfigError, match="eval.model_path is empty"):
        evaluate(cfg)
    gold = {r["pid"]: r["direct_target"] for r in records}

    class Engine:  # first rollout: the gold target, second: wrong; skips the last prompt
        def generate(self, requests, sampling):
            self.sampling = sampling
            assert all(r.messages[0]["content"][0] == {"type": "image"} and len(r.images) == 1 for r in requests)
            assert all(r.thinking is None for r in requests)
            return [Rollout(r.request_id, j, [1], [7, 8, 9], [0.0] * 3, gold[r.request_id] if j == 0 else "\\boxed{zzz}", "stop")
                    for r in requests[:-1] for j in range(sampling.n)]

    engine = Engine()
    result = evaluate(cfg, engine=engine)
    s = engine.sampling
    assert (s.n, s.temperature, s.max_response_tokens, s.seed) == (2, 1.0, 1024, 0)
    assert result.metrics["num_samples"] == 3 and result.metrics["num_responses"] == 6
    assert result.metrics["accuracy"] == pytest.approx(1 / 3)  # 0.5, 0.5 and the skipped prompt's 0
    assert result.metrics["pass@k"]["pass@2"] == pytest.approx(2 / 3)
    assert result.records[0].response_tokens == 3 and "Think step by step" in result.records[0].prompt
    assert (tmp_path / "o" / "metrics.json").is_file() and not (tmp_path / "o" / "accuracy_by_category.png").exists()
    with pytest.raises(DataError, match="rollout for unknown request 'nope'"):
        _generate(type("E", (), {"generate": lambda self, r, s: [Rollout("nope", 0, [], [], [], "x", "stop")]})(), [], cfg)


def test_responses_file_errors(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"pid": "1", "response": "x"}\n{"pid": "2"}\n')
    with pytest.raises(DataError, match=r"r.jsonl:2: expected"):
        load_responses(bad)
    ok = tmp_path / "k.jsonl"
    ok.write_text('{"pid": "1", "responses": ["a", "b"]}\n{"pid": "1", "response": "c"}\n')
    assert load_responses(ok) == {"1": [{"response": "a"}, {"response": "b"}, {"response": "c"}]}
    with pytest.raises(DataError, match="responses file not found"):
        load_responses(tmp_path / "none.jsonl")


def _mathvista_bench(tmp_path):
    """Four MathVista records with tasks and skills, one image shared."""
    Image.new("RGB", (8, 8), "white").save(tmp_path / "img.png")
    rows = [
        ("1", "7", "integer", "free_form", None, "figure question answering", ["statistical reasoning"]),
        ("2", "8/11", "text", "multi_choice", ["3/11", "8/11", "6/11"], "geometry problem solving",
         ["geometry reasoning", "arithmetic reasoning"]),
        ("3", "2.5", "float", "free_form", None, "math word problem", ["arithmetic reasoning"]),
        ("4", "12", "integer", "free_form", None, "figure question answering", ["statistical reasoning"]),
    ]
    data = tmp_path / "testmini.jsonl"
    with data.open("w") as f:
        for pid, answer, answer_type, question_type, choices, task, skills in rows:
            f.write(json.dumps({"pid": pid, "question": f"q{pid}", "image": "img.png", "answer": answer,
                                "answer_type": answer_type, "question_type": question_type, "choices": choices,
                                "precision": 1 if answer_type == "float" else None,
                                "metadata": {"task": task, "skills": skills, "category": "math-targeted-vqa"}}) + "\n")
    return data


def test_llm_extractor_endpoint_from_the_recipe_and_the_mathvista_table(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parents[1] / "rewards"))
    from rewards_judge_server import ScriptedJudge

    data = _mathvista_bench(tmp_path)
    long_text = "I looked at every part of the figure and compared the values with care. " * 3
    resp = tmp_path / "resp.jsonl"
    resp.write_text("".join(json.dumps({"pid": p, "response": r}) + "\n" for p, r in [
        ("1", "There are 7 birds."),                      # rule: a sentence
        ("2", long_text + "It is the middle one."),       # LLM: "B"
        ("3", "\\boxed{2.4}"),                            # rule, wrong
        ("4", long_text),                                 # LLM: "12"
    ]))
    replies = {"q2": "B", "q4": "12"}
    with ScriptedJudge(lambda prompt, hit: (200, next(v for k, v in replies.items() if f"Question: {k}" in prompt), 0.0)) as judge:
        out = tmp_path / "report"
        code = main(["eval", f"eval.data_files=[{data}]", f"eval.llm_extractor.base_url={judge.base_url}",
                     "eval.llm_extractor.model=extractor", "--responses", str(resp), "--output-dir", str(out)])
        assert code == 0 and judge.hits == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == 0.75 and metrics["extraction"] == {"rule": 2, "llm": 2, "none": 0}
    table = {row["Task&Skill"]: row for row in metrics["mathvista"]}
    assert [row["short"] for row in metrics["mathvista"]] == [None, "FQA", "GPS", "MWP", "ARI", "GEO", "STA"]
    assert table["Overall"] == {"Task&Skill": "Overall", "short": None, "tot": 4, "rule": 2, "llm": 2, "hit": 3, "acc": 75.0}
    assert (table["arithmetic reasoning"]["tot"], table["arithmetic reasoning"]["acc"]) == (2, 50.0)
    assert table["figure question answering"]["acc"] == 100.0 and table["math word problem"]["acc"] == 0.0
    markdown = (out / "metrics.md").read_text()
    assert "| Overall | 4 | 2 | 2 | 3 | 75.00 |" in markdown and "| arithmetic reasoning (ARI) | 2 |" in markdown
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["extraction"], r["prediction"]) for r in lines] == [("rule", "There are 7 birds"), ("llm", "B"),
                                                                    ("rule", "2.4"), ("llm", "12")]


def test_a_bad_llm_extractor_setting_is_refused_at_load(tmp_path, capsys):
    data = _mathvista_bench(tmp_path)
    assert main(["eval", f"eval.data_files=[{data}]", "eval.llm_extractor={base_url: x, modle: y}"]) == 2
    assert "unknown key 'eval.llm_extractor.modle'" in capsys.readouterr().err
    assert main(["eval", f"eval.data_files=[{data}]", "eval.llm_extractor={max_concurrency: 0}"]) == 2
    assert "max_concurrency >= 1" in capsys.readouterr().err


def test_an_empty_gold_answer_is_a_load_error_naming_the_sample(tmp_path):
    data = _mathvista_bench(tmp_path)
    data.write_text(data.read_text().replace('"answer": "12"', '"answer": " "'))
    with pytest.raises(DataError, match=r"testmini.jsonl:4 \(pid 4\): empty 'answer'"):
        load_samples(data)
