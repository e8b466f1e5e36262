"""MathVista-format records: one question about one image, with a checkable answer.

A record (one jsonl line, one json list item or one parquet row) has the MathVista fields:

    pid            str    unique id
    question       str    the question alone (choices are listed separately)
    image          str    image path, relative to the data file's folder (or `image_root`)
                          (or instead: `images`: [paths], several images, shown in order; or
                          `video`: a video file or a folder of frames, with optional `num_frames`
                          (default 8) or `fps` (+ `max_frames`, default 32) saying how to sample it)
    answer         str    the gold answer; for multi_choice the text of one choice (a letter
                          "A".."Z" is accepted and turned into that choice's text)
    question_type  "multi_choice" | "free_form"
    answer_type    "integer" | "float" | "text" | "list"
    choices        list[str] | null      required for multi_choice
    precision      int | null            decimals for float answers
    unit           str | null
    metadata       dict   category, task, context, grade, skills, ... (kept as is)
    query          str | null            MathVista's ready-made prompt (optional)
    think_target, direct_target          SFT targets (optional, written by `sail-rl data synth`)
    should_think   bool | null           whether thinking is worth it (optional, judging reward)

Every problem is a `DataError` of one line: `file:line (pid P): what; how to fix`.
jsonl and json are read with the standard library (so errors can name the line); parquet
goes through `datasets` (offline, local files only) and errors name the row and pid.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from sail_rl.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ANSWER_TYPES = ("integer", "float", "text", "list")
QUESTION_TYPES = ("multi_choice", "free_form")
REQUIRED_FIELDS = ("pid", "question", "answer", "question_type", "answer_type")
VISUAL_FIELDS = ("image", "images", "video")  # exactly one per record
LETTERS = string.ascii_uppercase
_INT_RE = re.compile(r"^[-+]?\d+$")
_FLOAT_RE = re.compile(r"^[-+]?\d*\.(\d+)$")


@dataclass
class MathVistaSample:
    """One question; `image` is a resolved path (the first of `images` for a multi-image record,
    "" for a video). `source` says where it came from (`file:line`)."""

    pid: str
    question: str
    image: str
    answer: str
    question_type: str
    answer_type: str
    choices: Optional[list[str]] = None
    precision: Optional[int] = None
    unit: Optional[str] = None
    metadata: dict[str, Any] = field(default_factory=dict)
    query: Optional[str] = None
    think_target: Optional[str] = None
    direct_target: Optional[str] = None
    should_think: Optional[bool] = None
    images: Optional[list[str]] = None  # several images, resolved paths
    video: Optional[str] = None  # a video file or a folder of frames, resolved
    video_sampling: Optional[dict[str, Any]] = None  # num_frames | fps (+ max_frames), as the record gave them
    source: str = ""

    def visuals(self) -> list:
        """What the prompt shows, in order: image paths, or one `Video` of sampled frames."""
        if self.video is not None:
            from sail_rl.model.video import load_video

            return [load_video(self.video, where=f"sample {self.pid}", **(self.video_sampling or {}))]
        return list(self.images) if self.images else [self.image]

    @property
    def answer_letter(self) -> Optional[str]:
        """The gold option letter of a multi_choice sample, else None."""
        if self.question_type != "multi_choice" or not self.choices:
            return None
        return choice_letter(self.answer, self.choices)

    @property
    def category(self) -> str:
        return str(self.metadata.get("category", "unknown"))

    @property
    def task(self) -> str:
        return str(self.metadata.get("task", "unknown"))


def choice_letter(answer: str, choices: list[str]) -> Optional[str]:
    """The letter of `answer` among `choices` (exact text first, then case/space-insensitive).

    >>> choice_letter("blue", ["red", "blue"])
    'B'
    >>> choice_letter(" Blue ", ["red", "blue"]) is None, choice_letter("green", ["red"]) is None
    (False, True)
    """
    if answer in choices:
        return LETTERS[choices.index(answer)]
    folded = [c.strip().lower() for c in choices]
    key = answer.strip().lower()
    return LETTERS[folded.index(key)] if key in folded else None


@dataclass
class DataConfig:
    """Recipe section `data:`: which files to train and evaluate on and how to prompt them."""

    train_files: list[str] = field(default_factory=list)
    eval_files: list[str] = field(default_factory=list)
    image_root: Optional[str] = None  # default: each data file's own folder
    # mixed: the thinking-fusion mix, each prompt think or direct (sail_rl.data.prompts.prompt_modes)
    prompt_mode: Literal["think", "direct", "auto", "mixed"] = "think"
    think_ratio: Optional[float] = None  # mixed only: the share of prompts asked to think, the rest direct
    rewrite_mc_to_free_form: bool = False  # SAIL-VL2 RL: ask for the option text, not the letter
    max_samples: Optional[int] = None  # per split, after shuffling
    shuffle: bool = True
    seed: int = 0  # the shuffle; an RL recipe without data.seed takes run.seed
    check_images: bool = True  # open every image once at load time (PIL verify + load)

    def validate(self) -> None:
        if self.max_samples is not None and self.max_samples <= 0:
            raise ConfigError(f"data.max_samples must be positive or null, got {self.max_samples}")
        if self.prompt_mode == "mixed" and not (self.think_ratio is not None and 0.0 < self.think_ratio < 1.0):
            raise ConfigError(f"data.prompt_mode mixed needs data.think_ratio in (0, 1), got {self.think_ratio}; "
                              "for all-think or all-direct prompts set data.prompt_mode think / direct", key="think_ratio")
        if self.prompt_mode != "mixed" and self.think_ratio is not None:
            raise ConfigError(f"data.think_ratio only acts with data.prompt_mode mixed (it is {self.prompt_mode}); "
                              "set prompt_mode: mixed or drop think_ratio", key="think_ratio")


# ---------------------------------------------------------------- reading files


def _read_records(path: Path) -> list[tuple[str, dict]]:
    """[(where, record)] from a jsonl / json / parquet file; `where` is `file:line` or `file:row`."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        from sail_rl.data.jsonl import read_jsonl

        return [(f"{path}:{lineno}", rec) for lineno, rec in read_jsonl(path)]
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); fix the file or export it as jsonl") from None
        if isinstance(data, dict):  # MathVista's own json is {pid: record}
            data = list(data.values())
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of records or a {{pid: record}} mapping, got {type(data).__name__}")
        return [(f"{path}:item {i}", rec) for i, rec in enumerate(data)]
    if suffix == ".parquet":
        import datasets  # heavy: only for parquet

        table = datasets.load_dataset("parquet", data_files=str(path), split="train")
        return [(f"{path}:row {i}", dict(rec)) for i, rec in enumerate(table)]
    raise DataError(f"{path}: unsupported data file type '{suffix}'; use .jsonl, .json or .parquet")


def _check_image(path: Path, where: str, shown: str) -> None:
    from PIL import Image

    if not path.is_file():
        raise DataError(f"{where}: image '{shown}' not found at {path}; fix the path or set data.image_root")
    try:
        with Image.open(path) as img:
            img.verify()  # structure; verify() leaves the file unusable, hence the reopen
        with Image.open(path) as img:
            img.load()  # pixels
    except Exception as exc:  # PIL raises many types for broken files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{where}: image '{shown}' is corrupt ({reason}); re-export it as PNG/JPEG or drop the record") from None


def _opt_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def parse_record(rec: dict, where: str, base_dir: Path, check_images: bool) -> MathVistaSample:
    """One record -> a checked `MathVistaSample` (a one-line `DataError` names `where` otherwise)."""
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}; write one record per line")
    if rec.get("pid") is not None:
        where = f"{where} (pid {rec['pid']})"
    for name in REQUIRED_FIELDS:
        if rec.get(name) is None:
            raise DataError(f"{where}: missing required field '{name}'; every record needs {', '.join(REQUIRED_FIELDS)} "
                            "and one of image, images, video")
    answer_type, question_type = str(rec["answer_type"]), str(rec["question_type"])
    if answer_type not in ANSWER_TYPES:
        raise DataError(f"{where}: unknown answer_type '{answer_type}'; use one of {', '.join(ANSWER_TYPES)}")
    if question_type not in QUESTION_TYPES:
        raise DataError(f"{where}: unknown question_type '{question_type}'; use one of {', '.join(QUESTION_TYPES)}")
    choices = rec.get("choices")
    if choices is not None:
        if not isinstance(choices, (list, tuple)) or not choices:
            raise DataError(f"{where}: 'choices' must be a non-empty list of strings or null, got {choices!r}")
        choices = [str(c) for c in choices]
    answer = str(rec["answer"])
    if not answer.strip():
        raise DataError(f"{where}: empty 'answer'; give the gold answer or drop the record")
    if answer_type == "text" and answer.strip().startswith("[") and answer.strip().endswith("]"):
        # graded as one exact string, a list answer fails every reply that writes it another way ("1, 2")
        log.warning("%s: answer %s looks like a list but answer_type is text; set answer_type: list", where, answer)
    if question_type == "multi_choice":
        if not choices:
            raise DataError(f"{where}: multi_choice question without 'choices'; add the options or use free_form")
        if choice_letter(answer, choices) is None:
            if len(answer) == 1 and answer in LETTERS[: len(choices)]:
                answer = choices[LETTERS.index(answer)]  # a letter answer -> that option's text
            else:
                raise DataError(
                    f"{where}: answer '{answer}' is not among the choices {choices}; "
                    "make the answer the text of one choice (or its letter)"
                )
    precision = rec.get("precision")
    images, video, sampling = _parse_visuals(rec, where, base_dir, check_images)
    metadata = rec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DataError(f"{where}: 'metadata' must be an object, got {type(metadata).__name__}")
    should_think = rec.get("should_think")
    return MathVistaSample(
        pid=str(rec["pid"]),
        question=str(rec["question"]),
        image=images[0] if images else "",
        answer=answer,
        question_type=question_type,
        answer_type=answer_type,
        choices=choices,
        precision=None if precision is None else int(precision),
        unit=_opt_str(rec.get("unit")) or None,
        metadata=dict(metadata),
        query=_opt_str(rec.get("query")),
        think_target=_opt_str(rec.get("think_target")),
        direct_target=_opt_str(rec.get("direct_target")),
        should_think=None if should_think is None else bool(should_think),
        images=images if "images" in rec and rec["images"] is not None else None,
        video=video,
        video_sampling=sampling,
        source=where,
    )


def _resolve(rel: Any, base_dir: Path) -> Path:
    return Path(str(rel)) if Path(str(rel)).is_absolute() else base_dir / str(rel)


def _parse_visuals(rec: dict, where: str, base_dir: Path, check: bool) -> tuple[list[str], Optional[str], Optional[dict]]:
    """(image paths, video path, video sampling) of a record that has exactly one of image / images / video."""
    given = [k for k in VISUAL_FIELDS if rec.get(k) is not None]
    if len(given) != 1:
        raise DataError(f"{where}: {'no' if not given else ' and '.join(given)} visual field; give exactly one of "
                        "'image' (a path), 'images' (a list of paths) or 'video' (a file or a folder of frames)")
    if given[0] == "video":
        path = _resolve(rec["video"], base_dir)
        sampling = {k: rec[k] for k in ("num_frames", "fps", "max_frames") if rec.get(k) is not None}
        if "num_frames" in sampling and "fps" in sampling:
            raise DataError(f"{where}: give 'num_frames' or 'fps' for the video, not both")
        for key, value in sampling.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0 or (key != "fps" and value != int(value)):
                raise DataError(f"{where}: '{key}' must be a positive {'number' if key == 'fps' else 'integer'}, got {value!r}")
        if check:
            from sail_rl.model.video import load_video

            load_video(path, where=f"{where}: video '{rec['video']}'", **sampling)  # exists, decodes, has frames
        return [], str(path), sampling or None
    rels = rec["images"] if given[0] == "images" else [rec["image"]]
    if given[0] == "images" and (not isinstance(rels, (list, tuple)) or not rels):
        raise DataError(f"{where}: 'images' must be a non-empty list of paths, got {rels!r}")
    paths = [_resolve(rel, base_dir) for rel in rels]
    if check:
        for rel, path in zip(rels, paths):
            _check_image(path, where, str(rel))
    return [str(p) for p in paths], None, None


def load_samples(path: str | Path, image_root: str | Path | None = None, check_images: bool = True) -> list[MathVistaSample]:
    """Read and check every record of one data file. Images resolve against `image_root`,
    else the file's folder. Raises `DataError` (one line) on the first bad record."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}; check data.train_files / data.eval_files")
    base_dir = Path(image_root) if image_root is not None else path.parent
    samples, seen = [], {}
    for where, rec in _read_records(path):
        sample = parse_record(rec, where, base_dir, check_images)
        if sample.pid in seen:
            raise DataError(f"{where}: duplicate pid '{sample.pid}' (first at {seen[sample.pid]}); make pids unique")
        seen[sample.pid] = where
        samples.append(sample)
    return samples


def load_split(cfg: DataConfig, split: Literal["train", "eval"]) -> list[MathVistaSample]:
    """All files of one split, shuffled with `cfg.seed`, cut to `cfg.max_samples`, and
    multi-choice rewritten to free-form when `cfg.rewrite_mc_to_free_form`."""

    files = cfg.train_files if split == "train" else cfg.eval_files
    if not files:
        raise ConfigError(f"data.{split}_files is empty; list at least one .jsonl/.json/.parquet file")
    samples = [s for f in files for s in load_samples(f, cfg.image_root, cfg.check_images)]
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(samples)
    if cfg.max_samples is not None:
        samples = samples[: cfg.max_samples]
    if cfg.rewrite_mc_to_free_form:
        samples = [rewrite_mc_to_free_form(s) for s in samples]
    return samples


# ---------------------------------------------------------------- writing


def sample_to_record(sample: MathVistaSample, image_base: str | Path | None = None) -> dict[str, Any]:
    """A sample back to a MathVista record; `image` relative to `image_base` when given.
    Optional fields that are None are left out, so records stay small."""
    rec = dataclasses.asdict(sample)
    rec.pop("source")

    def relative(path: str) -> str:
        if image_base is None:
            return path
        try:
            return str(Path(path).resolve().relative_to(Path(image_base).resolve()))
        except ValueError:
            return str(Path(path).resolve())

    sampling = rec.pop("video_sampling") or {}
    if sample.video is not None:
        rec.pop("image")
        rec.update(video=relative(sample.video), **sampling)
    elif sample.images is not None:
        rec.pop("image")
        rec["images"] = [relative(p) for p in sample.images]
    else:
        rec["image"] = relative(sample.image)
    optional = ("choices", "precision", "unit", "query", "think_target", "direct_target", "should_think", "images", "video")
    return {k: v for k, v in rec.items() if not (k in optional and v is None)}


def write_samples(samples: list[MathVistaSample], path: str | Path) -> Path:
    """Write samples as jsonl, image paths relative to the file's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(sample_to_record(s, path.parent)) + "\n")
    return path


def _infer_answer_type(text: str) -> tuple[str, Optional[int]]:
    if _INT_RE.match(text.strip()):
        return "integer", None
    match = _FLOAT_RE.match(text.strip())
    if match:
        return "float", len(match.group(1))
    return "text", None


def rewrite_mc_to_free_form(sample: MathVistaSample) -> MathVistaSample:
    """Multiple choice -> free form (SAIL-VL2's RL data): the question alone, without its options,
    so a guess among listed options earns nothing; the answer becomes the option's text and the
    SFT targets box it. The options are kept in `metadata["original_choices"]` for the record.
    Use it on questions whose answer stands on its own (a number, a name, a colour): "Which of
    the options ..." has no answer without them (filter such questions out, or keep them MC).

    >>> s = MathVistaSample(pid="1", question="What angle is shown?", image="x.png", answer="90°",
    ...                     question_type="multi_choice", answer_type="text", choices=["60°", "90°"],
    ...                     direct_target="\\\\boxed{B}")
    >>> r = rewrite_mc_to_free_form(s)
    >>> r.question_type, r.answer, r.choices, r.direct_target, r.metadata["original_choices"]
    ('free_form', '90°', None, '\\\\boxed{90°}', ['60°', '90°'])
    >>> print(r.question)
    What angle is shown?
    """
    if sample.question_type != "multi_choice" or not sample.choices:
        return sample
    letter = sample.answer_letter
    answer_type, precision = _infer_answer_type(sample.answer)
    question = sample.question.rstrip()

    def rebox(target: Optional[str]) -> Optional[str]:
        if target is None or letter is None:
            return target
        return target.replace(f"\\boxed{{{letter}}}", f"\\boxed{{{sample.answer}}}")

    metadata = dict(sample.metadata, rewritten_from="multi_choice", original_choices=list(sample.choices))
    return dataclasses.replace(
        sample,
        question=question,
        question_type="free_form",
        answer_type=answer_type,
        precision=precision,
        choices=None,
        query=None,
        metadata=metadata,
        think_target=rebox(sample.think_target),
        direct_target=rebox(sample.direct_target),
    )
