"""The synthetic generator: answers re-derived independently (from pixels where possible),
byte-identical output per seed, and SFT targets that box the right answer."""

from __future__ import annotations

import hashlib
import json
import math
import random
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sail_rl.data.synth import FAMILIES, PALETTE, generate_dataset, parse_difficulty
from sail_rl.errors import ConfigError

GRID_GREY = (200, 200, 200)  # the chart grid colour, restated here on purpose


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, n=20 * len(FAMILIES), seed=7, eval_n=5 * len(FAMILIES))  # 20 train + 5 eval per family
    return out


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _pixels(root: Path, rec: dict) -> np.ndarray:
    return np.asarray(Image.open(root / rec["image"]).convert("RGB"))  # [H, W, 3]


def _mask(pixels: np.ndarray, rgb) -> np.ndarray:
    return np.all(pixels == np.array(rgb, dtype=pixels.dtype), axis=-1)  # [H, W] bool


def _components(mask: np.ndarray) -> int:
    """Connected regions of True (8-neighbourhood), by flood fill."""
    seen = np.zeros_like(mask)
    h, w = mask.shape
    count = 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        count += 1
        stack = [(y0, x0)]
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
    return count


def _by_family(root: Path, family: str) -> list[dict]:
    recs = _records(root / "data.jsonl") + _records(root / "eval.jsonl")
    picked = [r for r in recs if r["metadata"]["family"] == family]
    assert len(picked) == 25
    return picked


def _letter(rec: dict, text: str) -> str:
    return "ABCDEFGH"[rec["choices"].index(text)]


def test_count_shapes_matches_connected_components(dataset):
    for rec in _by_family(dataset, "count_shapes"):
        colour = rec["question"].split()[2]  # "How many <colour> <shape>s are there?"
        n = _components(_mask(_pixels(dataset, rec), PALETTE[colour]))
        assert rec["answer"] == str(n), rec["pid"]
        assert 1 <= n <= 6


def _grid_unit_px(pixels: np.ndarray) -> int:
    rows = np.nonzero(np.sum(_mask(pixels, GRID_GREY), axis=1) > pixels.shape[1] // 4)[0]
    gaps = set(np.diff(rows).tolist())
    assert len(gaps) == 1, gaps  # evenly spaced grid lines
    return gaps.pop()


def _bar_heights_px(pixels: np.ndarray) -> dict[str, int]:
    heights = {}
    for name, rgb in PALETTE.items():
        ys = np.nonzero(_mask(pixels, rgb).any(axis=1))[0]
        if len(ys):
            heights[name] = int(ys.max() - ys.min() + 1)
    return heights


def test_bars_value_read_from_pixel_columns(dataset):
    for rec in _by_family(dataset, "bars_value"):
        pixels = _pixels(dataset, rec)
        colour = rec["question"].split()[6]  # "What is the value of the <colour> bar? ..."
        value = _bar_heights_px(pixels)[colour] / _grid_unit_px(pixels)
        assert value == int(rec["answer"]), rec["pid"]
        assert 1 <= value <= 6


def test_bars_extreme_letter_from_pixels(dataset):
    for rec in _by_family(dataset, "bars_extreme"):
        heights = _bar_heights_px(_pixels(dataset, rec))
        pick = max if "tallest" in rec["question"] else min
        best = pick(heights, key=heights.get)
        assert list(heights.values()).count(heights[best]) == 1  # a unique answer
        assert rec["answer"] == best and rec["question_type"] == "multi_choice"
        assert rec["direct_target"] == "\\boxed{" + _letter(rec, best) + "}"


def test_clock_hour_from_hand_pixels(dataset):
    for rec in _by_family(dataset, "clock_hour"):
        pixels = _pixels(dataset, rec)
        ys, xs = np.nonzero(_mask(pixels, PALETTE["red"]))
        centre = (pixels.shape[0] - 1) / 2
        deg = math.degrees(math.atan2(xs.mean() - centre, centre - ys.mean())) % 360  # 0 = 12 o'clock, clockwise
        hour = round(deg / 30) % 12 or 12
        assert rec["answer"] == str(hour), rec["pid"]


def test_arith_answers_from_drawn_numbers(dataset):
    """A separate path: Decimal sums of the numbers recorded as drawn."""
    for family in ("arith_sum", "arith_sum_float"):
        for rec in _by_family(dataset, family):
            numbers = [Decimal(n["text"]) for n in rec["metadata"]["synth"]["numbers"]]
            assert Decimal(rec["answer"]) == sum(numbers)
            assert rec["question"].count("sum") == 1
            if family == "arith_sum_float":
                assert rec["answer_type"] == "float" and rec["precision"] == 1 and len(rec["answer"].split(".")[1]) == 1
            else:
                assert rec["answer_type"] == "integer"


def test_angle_answer_from_ray_geometry(dataset):
    for rec in _by_family(dataset, "angle"):
        truth = rec["metadata"]["synth"]
        (vx, vy), rays = truth["vertex_px"], truth["rays_px"]
        a1, a2 = (math.atan2(y - vy, x - vx) for x, y in rays)
        deg = abs(math.degrees(a1 - a2)) % 360
        deg = min(deg, 360 - deg)
        options = [int(c.rstrip("°")) for c in rec["choices"]]
        nearest = min(options, key=lambda a: abs(a - deg))
        assert rec["answer"] == f"{nearest}°" and abs(nearest - deg) < 4, (rec["pid"], deg)


def test_same_seed_gives_byte_identical_files(tmp_path):
    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
                if p.is_file() and not p.name.startswith(".")}  # .sail-rl-run.json / .sail-rl.lock: who wrote it

    generate_dataset(tmp_path / "a", n=21, seed=5, eval_n=7)
    generate_dataset(tmp_path / "b", n=21, seed=5, eval_n=7)
    generate_dataset(tmp_path / "c", n=21, seed=6, eval_n=7)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert len(a) == 21 + 7 + 3  # images + data.jsonl + eval.jsonl + info.json
    assert a == b
    assert a["data.jsonl"] != c["data.jsonl"]


def test_eval_split_is_held_out_and_records_are_complete(dataset):
    train, held = _records(dataset / "data.jsonl"), _records(dataset / "eval.jsonl")
    image_hash = lambda r: hashlib.sha256((dataset / r["image"]).read_bytes()).hexdigest()  # noqa: E731
    assert not {image_hash(r) + r["question"] for r in train} & {image_hash(r) + r["question"] for r in held}
    for rec in train + held:
        assert rec["think_target"].startswith("<think>\n") and "\n</think>\n\\boxed{" in rec["think_target"]
        assert rec["think_target"].endswith(rec["direct_target"])
        assert len(rec["think_target"].split()) < 60  # short, templated rationale
        assert isinstance(rec["should_think"], bool)
        assert Image.open(dataset / rec["image"]).size == (64, 64)
        if rec["question_type"] == "free_form":
            assert rec["direct_target"] == "\\boxed{" + rec["answer"] + "}"


def test_difficulty_controls_object_count(tmp_path):
    rng_counts = {}
    for level in (1, 3):
        counts = []
        for i in range(30):
            item = FAMILIES["count_shapes"](random.Random(i), 64, level)
            counts.append(len(item.truth["objects"]))
        rng_counts[level] = sum(counts) / len(counts)
    assert rng_counts[3] > rng_counts[1] + 2


def test_difficulty_parsing_and_bad_arguments(tmp_path):
    assert parse_difficulty("2") == [2]
    with pytest.raises(ConfigError, match="--difficulty must be 1, 2, 3"):
        parse_difficulty("4")
    with pytest.raises(ConfigError, match="unknown synth family 'pie'; valid: count_shapes"):
        generate_dataset(tmp_path, n=3, families=["pie"])


def test_cli_synth_writes_loadable_data(tmp_path, capsys):
    from sail_rl.cli import main
    from sail_rl.data import load_samples

    code = main(["data", "synth", "--out", str(tmp_path), "--n", "7", "--seed", "1", "--size", "96",
                 "--difficulty", "1", "--families", "bars_value,angle"])
    assert code == 0 and "wrote train 7 samples" in capsys.readouterr().out
    samples = load_samples(tmp_path / "data.jsonl")
    assert [s.metadata["family"] for s in samples] == ["bars_value", "angle"] * 3 + ["bars_value"]
    assert all(s.metadata["difficulty"] == 1 for s in samples)
    assert Image.open(samples[0].image).size == (96, 96)


def test_shape_colour_answer_is_the_dominant_colour_in_the_target_box(dataset):
    from PIL import Image

    for rec in _by_family(dataset, "shape_colour"):
        synth = rec["metadata"]["synth"]
        target = next(o for o in synth["objects"] if o["shape"] == synth["target_shape"])
        with Image.open(dataset / rec["image"]) as img:
            crop = img.convert("RGB").crop((target["box"][0], target["box"][1], target["box"][2] + 1, target["box"][3] + 1))
        counts = {name: sum(1 for px in crop.getdata() if px == rgb) for name, rgb in PALETTE.items()}
        assert max(counts, key=counts.get) == rec["answer"]
        # exactly one object of the asked shape: the question has one answer
        assert sum(o["shape"] == synth["target_shape"] for o in synth["objects"]) == 1
