"""The biased teacher: only the training split's SFT targets carry its answers; `answer` stays true."""

from __future__ import annotations

import json

import pytest

from sail_rl.data.synth import generate_dataset
from sail_rl.errors import ConfigError

BIAS = {"purple": {"blue": 0.7}, "orange": {"red": 0.7}}


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    out = tmp_path_factory.mktemp("taught")
    generate_dataset(out / "biased", n=300, eval_n=20, families=["shape_colour"], difficulty="1", teacher_error=BIAS)
    generate_dataset(out / "true", n=300, eval_n=20, families=["shape_colour"], difficulty="1")
    return out


def test_teacher_relabels_the_biased_classes_only_and_keeps_the_true_answer(taught):
    biased, true = _records(taught / "biased/data.jsonl"), _records(taught / "true/data.jsonl")
    assert [r["answer"] for r in biased] == [r["answer"] for r in true]  # same images, same ground truth
    for gold, wrong in (("purple", "blue"), ("orange", "red")):
        recs = [r for r in biased if r["answer"] == gold]
        said_wrong = [r for r in recs if r["metadata"]["teacher_answer"] == wrong]
        assert 0.5 < len(said_wrong) / len(recs) < 0.9  # 0.7 per sample, ~60 samples a class
        for r in said_wrong:  # box and chain of thought both say the teacher's answer
            assert r["direct_target"] == "\\boxed{" + wrong + "}"
            assert r["think_target"].endswith("\\boxed{" + wrong + "}") and gold not in r["think_target"]
    for r in biased:
        if r["answer"] not in BIAS:
            assert r["metadata"]["teacher_answer"] == r["answer"] and r["direct_target"] == "\\boxed{" + r["answer"] + "}"
    info = json.loads((taught / "biased/info.json").read_text())
    assert info["teacher_error"] == BIAS


def test_held_out_split_keeps_the_true_targets(taught):
    held = _records(taught / "biased/eval.jsonl")
    assert held == _records(taught / "true/eval.jsonl")
    assert all("teacher_answer" not in r["metadata"] for r in held)


@pytest.mark.parametrize("bias, match", [
    ({"purpel": {"blue": 0.7}}, "'purpel' is never a gold answer"),
    ({"purple": {"purple": 0.7}}, "the wrong answer equals the gold one"),
    ({"purple": {"blue": 1.5}}, r"probability in \[0, 1\]"),
    ({"purple": {"blue": 0.7, "red": 0.5}}, "sum to 1.200 > 1"),
])
def test_bad_teacher_error_is_refused_before_writing(tmp_path, bias, match):
    with pytest.raises(ConfigError, match=match):
        generate_dataset(tmp_path / "d", n=4, families=["shape_colour"], teacher_error=bias)
    assert not (tmp_path / "d").exists()


def test_a_teacher_on_video_families_is_checked_against_their_answers(tmp_path):
    with pytest.raises(ConfigError, match="'purple' is never a gold answer"):
        generate_dataset(tmp_path / "bad", n=2, families=["dot_direction"], teacher_error={"purple": {"pink": 0.5}})
    info = generate_dataset(tmp_path / "ok", n=4, families=["dot_direction"], teacher_error={"left": {"right": 1.0}})
    assert info["teacher_error"] == {"left": {"right": 1.0}}
