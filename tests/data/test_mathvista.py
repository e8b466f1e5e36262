"""The MathVista loader: valid files load, every bad record is a one-line DataError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sail_rl.config import from_dict
from sail_rl.data import DataConfig, load_samples
from sail_rl.data.mathvista import load_split, write_samples
from sail_rl.errors import ConfigError, DataError


def _record(pid: str, **changes) -> dict:
    rec = {
        "pid": pid,
        "question": "Which bar is the tallest?",
        "image": f"images/{pid}.png",
        "choices": ["red", "blue", "green"],
        "answer": "blue",
        "question_type": "multi_choice",
        "answer_type": "text",
        "precision": None,
        "metadata": {"category": "math-targeted-vqa", "task": "figure question answering", "skills": ["statistical reasoning"]},
    }
    rec.update(changes)
    return {k: v for k, v in rec.items() if v != "<drop>"}


def _write(tmp_path: Path, records: list[dict], name: str = "data.jsonl") -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    for rec in records:
        Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "images" / f"{rec['pid']}.png")
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _one_line_error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_samples(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_loads_records_and_resolves_images(tmp_path):
    free = _record("2", choices=None, answer="3.5", question_type="free_form", answer_type="float", precision=1.0)
    path = _write(tmp_path, [_record("1"), free, _record("3", answer="C")])
    a, b, c = load_samples(path)
    assert (a.pid, a.answer, a.answer_letter, a.category, a.task) == ("1", "blue", "B", "math-targeted-vqa", "figure question answering")
    assert Path(a.image) == tmp_path / "images" / "1.png"
    assert (b.answer_type, b.precision, b.choices, b.answer_letter) == ("float", 1, None, None)
    assert (c.answer, c.answer_letter) == ("green", "C")  # a letter answer becomes the option text
    assert a.source == f"{path}:1 (pid 1)"


def test_json_list_and_pid_mapping_and_parquet(tmp_path):
    path = _write(tmp_path, [_record("1"), _record("2")])
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    (tmp_path / "list.json").write_text(json.dumps(recs))
    (tmp_path / "map.json").write_text(json.dumps({r["pid"]: r for r in recs}))
    assert [s.pid for s in load_samples(tmp_path / "list.json")] == ["1", "2"]
    assert [s.pid for s in load_samples(tmp_path / "map.json")] == ["1", "2"]
    pyarrow = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pyarrow.write_table(pa.Table.from_pylist(recs), tmp_path / "d.parquet")
    samples = load_samples(tmp_path / "d.parquet")
    assert [(s.pid, s.answer, s.choices) for s in samples] == [("1", "blue", ["red", "blue", "green"])] * 1 + [("2", "blue", ["red", "blue", "green"])]


def test_image_root_overrides_the_data_folder(tmp_path):
    path = _write(tmp_path, [_record("1", image="1.png")])
    message = _one_line_error(path)
    assert "image '1.png' not found" in message
    assert load_samples(path, image_root=tmp_path / "images")[0].image == str(tmp_path / "images" / "1.png")


def test_missing_image(tmp_path):
    path = _write(tmp_path, [_record("1"), _record("2")])
    (tmp_path / "images" / "2.png").unlink()
    message = _one_line_error(path)
    assert message.startswith(f"{path}:2 (pid 2): image 'images/2.png' not found at ")
    assert message.endswith("; fix the path or set data.image_root")


def test_corrupt_image(tmp_path):
    path = _write(tmp_path, [_record("1")])
    png = (tmp_path / "images" / "1.png").read_bytes()
    (tmp_path / "images" / "1.png").write_bytes(png[: len(png) // 2])  # truncated
    message = _one_line_error(path)
    assert message.startswith(f"{path}:1 (pid 1): image 'images/1.png' is corrupt (")
    assert message.endswith("re-export it as PNG/JPEG or drop the record")
    (tmp_path / "images" / "1.png").write_bytes(b"not an image at all")
    assert "is corrupt (cannot identify image file" in _one_line_error(path)


def test_missing_required_field(tmp_path):
    path = _write(tmp_path, [_record("1", answer="<drop>")])
    assert _one_line_error(path) == (
        f"{path}:1 (pid 1): missing required field 'answer'; "
        "every record needs pid, question, answer, question_type, answer_type and one of image, images, video"
    )


def test_answer_not_among_choices(tmp_path):
    path = _write(tmp_path, [_record("1", answer="purple")])
    assert _one_line_error(path) == (
        f"{path}:1 (pid 1): answer 'purple' is not among the choices ['red', 'blue', 'green']; "
        "make the answer the text of one choice (or its letter)"
    )


def test_unknown_answer_type(tmp_path):
    path = _write(tmp_path, [_record("1", answer_type="number")])
    assert _one_line_error(path) == f"{path}:1 (pid 1): unknown answer_type 'number'; use one of integer, float, text, list"


def test_other_bad_inputs(tmp_path):
    path = _write(tmp_path, [_record("1"), _record("1")])
    assert "duplicate pid '1'" in _one_line_error(path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_record("1")) + "\n{not json\n")
    assert _one_line_error(bad).startswith(f"{bad}:2: invalid JSON")
    mc = _write(tmp_path, [_record("5", choices=None)], "mc.jsonl")
    assert "multi_choice question without 'choices'" in _one_line_error(mc)
    assert _one_line_error(tmp_path / "nope.jsonl").startswith("data file not found")
    (tmp_path / "d.csv").write_text("x")
    assert "unsupported data file type '.csv'" in _one_line_error(tmp_path / "d.csv")


def test_data_config_split_shuffle_cut_and_rewrite(tmp_path):
    path = _write(tmp_path, [_record(str(i)) for i in range(6)])
    cfg = from_dict(DataConfig, {"train_files": [str(path)], "max_samples": 4, "seed": 1, "rewrite_mc_to_free_form": True})
    samples = load_split(cfg, "train")
    assert len(samples) == 4
    in_order = from_dict(DataConfig, {"train_files": [str(path)], "max_samples": 4, "shuffle": False})
    assert [s.pid for s in load_split(in_order, "train")] == ["0", "1", "2", "3"]
    assert [s.pid for s in samples] == [s.pid for s in load_split(cfg, "train")]  # seeded
    assert all(s.question_type == "free_form" and s.answer == "blue" for s in samples)
    with pytest.raises(ConfigError, match="data.eval_files is empty"):
        load_split(cfg, "eval")
    with pytest.raises(ConfigError, match="max_samples must be positive"):
        from_dict(DataConfig, {"max_samples": 0})
    with pytest.raises(ConfigError, match="prompt_mode"):
        from_dict(DataConfig, {"prompt_mode": "thinking"})


def test_write_samples_round_trips(tmp_path):
    path = _write(tmp_path, [_record("1"), _record("2", choices=None, answer="4", question_type="free_form", answer_type="integer")])
    samples = load_samples(path)
    out = write_samples(samples, tmp_path / "copy.jsonl")
    again = load_samples(out)
    assert [(s.pid, s.answer, s.image, s.choices) for s in again] == [(s.pid, s.answer, s.image, s.choices) for s in samples]
    assert json.loads(out.read_text().splitlines()[0])["image"] == "images/1.png"


def test_a_list_answer_typed_as_text_is_warned_about(tmp_path, caplog):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"pid": "7", "question": "q", "image": "x.png", "answer": "[1, 2]",
                                "question_type": "free_form", "answer_type": "text"}) + "\n")
    with caplog.at_level("WARNING"):
        load_samples(path)
    assert "looks like a list but answer_type is text" in caplog.text and "d.jsonl:1" in caplog.text
