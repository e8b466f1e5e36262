"""Write a synthetic dataset: `data.jsonl` (+ `eval.jsonl`), `images/*.png` (`videos/*.mp4` for
the video families), `info.json`.

Deterministic per seed: sample i of a split draws from its own `random.Random(f"{seed}:{split}:{i}")`
(no global random state), families go round-robin, PNGs are written with fixed encoder
settings and no timestamps, so the same arguments give byte-identical files. Held-out
eval samples whose image equals a training image are redrawn. `teacher_error` gives the
training split's SFT targets a biased teacher's answers (`teacher.py`); `answer` stays true.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any, Callable

from sail_rl.data.synth.arith import make_arith_sum, make_arith_sum_float
from sail_rl.data.synth.bars import make_bars_extreme, make_bars_value
from sail_rl.data.synth.canvas import SynthItem
from sail_rl.data.synth.clock import make_angle, make_clock_hour
from sail_rl.data.synth.motion import make_dot_direction, make_flash_count, make_last_shape
from sail_rl.data.synth.shapes import make_count_shapes, make_shape_colour
from sail_rl.data.synth.teacher import TeacherError, as_taught, check_teacher_error, teacher_answer
from sail_rl.errors import ConfigError

Maker = Callable[[random.Random, int, int], SynthItem]

FAMILIES: dict[str, Maker] = {
    "count_shapes": make_count_shapes,
    "bars_extreme": make_bars_extreme,
    "bars_value": make_bars_value,
    "arith_sum": make_arith_sum,
    "arith_sum_float": make_arith_sum_float,
    "clock_hour": make_clock_hour,
    "angle": make_angle,
    "shape_colour": make_shape_colour,
}
# clips, written as video files: asked for by name (`--families dot_direction,...`), never by default
VIDEO_FAMILIES: dict[str, Maker] = {
    "dot_direction": make_dot_direction,
    "flash_count": make_flash_count,
    "last_shape": make_last_shape,
}
ALL_FAMILIES: dict[str, Maker] = {**FAMILIES, **VIDEO_FAMILIES}
MAX_REDRAWS = 50


def parse_difficulty(text: str) -> list[int]:
    """'2' -> [2], '1,3' -> [1, 3], 'mixed' -> [1, 2, 3].

    >>> parse_difficulty("mixed"), parse_difficulty("1,3")
    ([1, 2, 3], [1, 3])
    """
    if text == "mixed":
        return [1, 2, 3]
    try:
        levels = sorted({int(t) for t in text.split(",")})
    except ValueError:
        levels = []
    if not levels or any(level not in (1, 2, 3) for level in levels):
        raise ConfigError(f"--difficulty must be 1, 2, 3, a list like 1,2 or 'mixed', got '{text}'")
    return levels


def think_target(item: SynthItem) -> str:
    """`<think>` + the generator's own solution steps + `</think>` + the boxed answer."""
    return "<think>\n" + " ".join(item.steps) + "\n</think>\n\\boxed{" + item.boxed + "}"


def item_to_record(item: SynthItem, pid: str, image_rel: str, split: str) -> dict[str, Any]:
    """A MathVista-format record (fixed key order, no timestamps); a video family's `image_rel`
    is its video file, recorded as `video` with `num_frames` (every frame kept)."""
    width, height = item.image.size
    visual = {"image": image_rel} if item.frames is None else {"video": image_rel, "num_frames": len(item.frames)}
    return {
        "pid": pid,
        "question": item.question,
        **visual,
        "choices": item.choices,
        "unit": None,
        "precision": item.precision,
        "answer": item.answer,
        "question_type": item.question_type,
        "answer_type": item.answer_type,
        "metadata": {
            "category": item.category,
            "task": item.task,
            "context": item.context,
            "grade": "elementary school",
            "skills": item.skills,
            "source": "sail-rl-synth",
            "family": item.family,
            "difficulty": item.difficulty,
            "language": "english",
            "split": split,
            "img_width": width,
            "img_height": height,
            "synth": item.truth,
        },
        "think_target": think_target(item),
        "direct_target": "\\boxed{" + item.boxed + "}",
        "should_think": item.should_think,
    }


def _png_bytes(item: SynthItem) -> bytes:
    buf = io.BytesIO()
    item.image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _content_digest(item: SynthItem) -> bytes:
    """What makes two samples the same: the pixels (every frame of a clip) and the question."""
    pixels = _png_bytes(item) if item.frames is None else b"".join(f.tobytes() for f in item.frames)
    return hashlib.sha256(pixels + item.question.encode()).digest()


def _write_visual(out: Path, item: SynthItem, pid: str) -> str:
    """The item's PNG, or its clip as an mp4; returns the path relative to `out`."""
    if item.frames is None:
        rel = f"images/{pid}.png"
        (out / rel).write_bytes(_png_bytes(item))
        return rel
    from sail_rl.model.video import write_video

    rel = f"videos/{pid}.mp4"
    (out / "videos").mkdir(exist_ok=True)
    write_video(item.frames, out / rel)
    return rel


def taught_record(item: SynthItem, pid: str, image_rel: str, split: str, teacher_error: TeacherError,
                   rng: random.Random) -> dict[str, Any]:
    """`item_to_record` whose SFT targets (and `metadata.teacher_answer`) are the biased teacher's;
    `answer` stays the ground truth."""
    taught = as_taught(item, teacher_answer(item.answer, teacher_error, rng))
    record = item_to_record(item, pid, image_rel, split)
    record["think_target"], record["direct_target"] = think_target(taught), "\\boxed{" + taught.boxed + "}"
    record["metadata"]["teacher_answer"] = taught.answer
    return record


def _write_split(out: Path, split: str, n: int, seed: int, size_px: int, levels: list[int],
                 families: list[str], avoid: set[bytes],
                 teacher_error: TeacherError | None = None) -> tuple[Path, set[bytes], dict[str, int]]:
    """Generate n samples of one split; skip (redraw) images whose hash is in `avoid`."""
    jsonl = out / ("data.jsonl" if split == "train" else "eval.jsonl")
    hashes: set[bytes] = set()
    counts: dict[str, int] = {}
    with jsonl.open("w", encoding="utf-8") as f:
        for i in range(n):
            family = families[i % len(families)]
            for attempt in range(MAX_REDRAWS):
                rng = random.Random(f"{seed}:{split}:{i}:{attempt}")
                item = ALL_FAMILIES[family](rng, size_px, rng.choice(levels))
                digest = _content_digest(item)
                if digest not in avoid:
                    break
            hashes.add(digest)
            pid = f"{split}-{i:06d}"
            image_rel = _write_visual(out, item, pid)
            record = (taught_record(item, pid, image_rel, split, teacher_error, random.Random(f"{seed}:{split}:{i}:teacher"))
                      if teacher_error else item_to_record(item, pid, image_rel, split))
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[family] = counts.get(family, 0) + 1
    return jsonl, hashes, counts


def answer_vocabulary(families: list[str], levels: list[int], size_px: int, draws: int = 200) -> set[str]:
    """The answers `draws` throwaway samples of each family give (a teacher_error check: small
    answer sets such as shape_colour's 5 colours are covered in full)."""
    return {ALL_FAMILIES[f](random.Random(f"vocab:{f}:{i}"), size_px, levels[i % len(levels)]).answer
            for f in families for i in range(draws)}


def estimate_bytes(n_total: int, size_px: int, levels: list[int], families: list[str]) -> int:
    """Disk use of `n_total` samples: one PNG + one jsonl line each, measured on a sample of every family."""
    per_sample = []
    for i, family in enumerate(families):
        rng = random.Random(f"estimate:{i}")
        item = ALL_FAMILIES[family](rng, size_px, max(levels))
        record = item_to_record(item, "train-000000", "images/train-000000.png", "train")
        frames = len(item.frames) if item.frames else 1  # a clip: at most a PNG a frame
        per_sample.append(frames * len(_png_bytes(item)) + len(json.dumps(record)) + 1)
    return int(n_total * sum(per_sample) / len(per_sample) * 1.2)  # 20% headroom: images vary


def generate_dataset(out_dir: str | Path, n: int, seed: int = 0, size_px: int = 64, difficulty: str = "mixed",
                     eval_n: int = 0, families: list[str] | None = None, overwrite: bool = False,
                     max_bytes: int = 5 * 2**30, teacher_error: TeacherError | None = None) -> dict[str, Any]:
    """Write `n` training samples (and `eval_n` held-out ones) under `out_dir`; returns the
    `info.json` content: arguments, files and per-family counts.

    Refused before writing: an estimated size over `max_bytes` or the free space, and an
    `out_dir` holding anything but the same job's files (`overwrite` empties it first, so no
    file of an earlier, different data set stays beside the new one), and a `teacher_error`
    naming an answer the families never give (`teacher.check_teacher_error`)."""
    families = list(families or FAMILIES)
    unknown = [f for f in families if f not in ALL_FAMILIES]
    if unknown:
        raise ConfigError(f"unknown synth family '{unknown[0]}'; valid: {', '.join(ALL_FAMILIES)}")
    if n <= 0 or eval_n < 0:
        raise ConfigError(f"--n must be positive and --split-eval non-negative, got {n} and {eval_n}")
    if not 32 <= size_px <= 512:
        raise ConfigError(f"--size must be between 32 and 512 px, got {size_px}")
    levels = parse_difficulty(difficulty)
    if teacher_error:
        check_teacher_error(teacher_error, answer_vocabulary(families, levels, size_px), "teacher_error")
    from sail_rl.rundir import atomic_write_text, check_free_space, claim_output_dir, unlock_dir

    needed = estimate_bytes(n + eval_n, size_px, levels, families)
    if needed > max_bytes:
        raise ConfigError(f"{n + eval_n} samples of {size_px}px would write about {needed / 2**30:.2f} GiB, over the "
                          f"{max_bytes / 2**30:.2f} GiB limit; lower --n / --split-eval or raise --max-gib")
    check_free_space(out_dir, needed, f"data synth ({n + eval_n} samples)")
    job = {"n": n, "seed": seed, "size_px": size_px, "difficulty": levels, "eval_n": eval_n, "families": families,
           **({"teacher_error": teacher_error} if teacher_error else {})}
    out = claim_output_dir(out_dir, "data synth", job, flag="--out", overwrite=overwrite, same_job_reuse=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    train, train_hashes, train_counts = _write_split(out, "train", n, seed, size_px, levels, families, set(), teacher_error)
    info: dict[str, Any] = {
        "generator": "sail-rl data synth",
        "seed": seed,
        "size_px": size_px,
        "difficulty": levels,
        "families": families,
        "files": {"train": train.name},
        "counts": {"train": train_counts},
    }
    if teacher_error:
        info["teacher_error"] = teacher_error  # the SFT targets' bias, written where the data are
    if eval_n:
        held, _, eval_counts = _write_split(out, "eval", eval_n, seed, size_px, levels, families, train_hashes)
        info["files"]["eval"] = held.name
        info["counts"]["eval"] = eval_counts
    atomic_write_text(out / "info.json", json.dumps(info, indent=2) + "\n")
    unlock_dir(out)
    return info
