"""SFT examples (a conversation + its images + a mode), loaded from data files, and the
per-epoch mixture of several sources.

A data file is MathVista format (`sail_rl.data.mathvista`): the prompt comes from the
data package's `build_prompt(sample, mode)` (the same prompt `sail-rl eval` uses, the
mode's instruction inside the user turn, no system turn) and the assistant turn is the
record's `think_target` (mode think) or `direct_target` (mode direct); mode auto (thinking fusion)
asks in the auto prompt and answers as the record's `should_think` label says. A jsonl line may
instead carry a whole conversation: `{"id": ..., "messages": [{"role", "content"}...],
"images": ["a.png", ...]}` (content as in `render_chat`: a string or typed parts).
"""

from __future__ import annotations

import json
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from sail_rl.errors import DataError

Mode = Literal["think", "direct", "auto"]  # auto: each record's should_think picks (thinking fusion)
_THINK_RE = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


def split_think(content: str) -> tuple[str, str]:
    """(leading think block with its trailing whitespace, the rest): where a target's thought ends.

    >>> split_think("<think>\\nx\\n</think>\\n\\\\boxed{2}")
    ('<think>\\nx\\n</think>\\n', '\\\\boxed{2}')
    >>> split_think("\\\\boxed{2}")
    ('', '\\\\boxed{2}')
    """
    match = _THINK_RE.match(content)
    return (match.group(0), content[match.end():]) if match else ("", content)


@dataclass
class SFTExample:
    """One training conversation. `images` are PIL images or paths, one per image part, in order."""

    uid: str
    messages: list[dict]
    images: list[Any] = field(default_factory=list)
    mode: Mode = "think"


def sample_to_example(sample, mode: Mode) -> SFTExample:
    """A `MathVistaSample` with SFT targets -> the prompt of `build_prompt` + the target turn."""
    from sail_rl.data.prompts import build_prompt

    prompt_mode = mode
    if mode == "auto":  # the model is asked to decide; the record's label says which answer teaches it
        if sample.should_think is None:
            raise DataError(f"{sample.source}: mode auto needs should_think on every record; "
                            "`sail-rl data label-think` writes it, or use mode think/direct")
        mode = "think" if sample.should_think else "direct"
    target = sample.think_target if mode == "think" else sample.direct_target
    if target is None and mode == "direct":
        target = "\\boxed{" + (sample.answer_letter or sample.answer) + "}"
    if target is None:
        raise DataError(f"{sample.source}: no think_target for a think-mode source; add it or use mode: direct")
    messages, images = build_prompt(sample, mode=prompt_mode)
    messages = messages + [{"role": "assistant", "content": target}]
    return SFTExample(uid=f"{sample.pid}:{prompt_mode}", messages=messages, images=list(images), mode=mode)


def _last_assistant_text(messages: list[dict]) -> str:
    content = [m for m in messages if m.get("role") == "assistant"][-1].get("content", "")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


class SourceData:
    """The examples of one `data.sources` entry, read from the file when asked for (nothing is held
    but `RecordFile`'s line offsets); images open when the example is built.

    Every record is checked once at open, in one pass that keeps nothing but the pids (MathVista
    fields, duplicate pids, think targets), so a bad record is a one-line error before training.
    """

    def __init__(self, path: str, mode: Mode, image_root: Optional[str] = None, check_images: bool = False):
        from sail_rl.sft.records import RecordFile

        self.path, self.mode = Path(path), mode
        if not self.path.is_file():
            raise DataError(f"data file not found: {self.path}; check data.sources[].path (or set bootstrap.synth_dir)")
        self.records = RecordFile(self.path)
        if not len(self.records):
            raise DataError(f"{self.path}: no samples in this data source; add records or remove it from data.sources")
        first = self.records.read(0)
        self.conversations = self.records.kind == "jsonl" and isinstance(first, dict) and "messages" in first
        self.base_dir = Path(image_root) if image_root else self.path.parent
        if self.conversations and mode == "auto":
            raise DataError(f"{self.path}: mode auto takes MathVista-format records with should_think labels, not "
                            "conversations; give each conversation its own 'mode' (think or direct)")
        self._check_records(check_images)

    def _check_records(self, check_images: bool) -> None:
        """One pass over the file: every record parses; think-mode targets exist and think."""
        from sail_rl.data.mathvista import parse_record

        n_think = missing = unthinking = 0
        seen: dict[str, str] = {}  # pid -> where, freed after the pass
        for where, rec in self.records:
            if self.conversations:
                messages = rec.get("messages")
                if not isinstance(messages, list) or not any(m.get("role") == "assistant" for m in messages):
                    raise DataError(f"{where}: 'messages' needs at least one assistant turn to train on")
                thinks = rec.get("mode", self.mode) == "think"
                target = _last_assistant_text(messages) if thinks else None
            else:
                sample = parse_record(rec, where, self.base_dir, check_images)
                if sample.pid in seen:
                    raise DataError(f"{where}: duplicate pid '{sample.pid}' (first at {seen[sample.pid]}); make pids unique")
                seen[sample.pid] = where
                if self.mode == "auto" and sample.should_think is None:
                    raise DataError(f"{where}: mode auto needs should_think on every record; "
                                    "`sail-rl data label-think` writes it, or use mode think/direct")
                thinks = self.mode == "think" or (self.mode == "auto" and bool(sample.should_think))
                target = sample.think_target
            if thinks:
                n_think += 1
                missing += target is None
                unthinking += target is not None and "<think>" not in target
        if missing:
            raise DataError(f"{self.path}: {missing} of {n_think} samples have no think_target, but the source's "
                            "mode is think; add think_target or use mode: direct")
        if n_think and unthinking == n_think:
            raise DataError(f"{self.path}: mode think, but none of its {n_think} targets has <think>...</think>; "
                            "use mode: direct for direct answers, or fix the think targets")
        if unthinking:
            warnings.warn(f"{self.path}: {unthinking} of {n_think} think-mode targets have no <think> block; "
                          "they teach answering without thinking", stacklevel=3)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> SFTExample:
        from sail_rl.data.mathvista import parse_record

        rec = self.records.read(index)
        if self.conversations:
            images = [str(p if Path(p).is_absolute() else self.base_dir / p) for p in rec.get("images", [])]
            uid = str(rec.get("id", f"{self.path.name}:{self.records.line(index)}"))
            return SFTExample(uid=uid, messages=rec["messages"], images=images, mode=rec.get("mode", self.mode))
        return sample_to_example(parse_record(rec, self.records.where(index), self.base_dir, False), self.mode)


# ---------------------------------------------------------------- mixture


def mixture_counts(ratios: Sequence[float], total: int) -> list[int]:
    """Samples per source in an epoch of `total`: shares of `ratios`, largest remainder, summing to `total`.

    >>> mixture_counts([0.9, 0.1], 25)  # 22.5 / 2.5: ties go to the earlier source
    [23, 2]
    >>> mixture_counts([1, 1, 1], 10)
    [4, 3, 3]
    """
    norm = sum(ratios)
    exact = [r / norm * total for r in ratios]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(ratios)), key=lambda i: (-round(exact[i] - counts[i], 9), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def default_epoch_size(sizes: Sequence[int], ratios: Sequence[float]) -> int:
    """The largest epoch in which no source repeats a sample: min over sources of size / share.

    >>> default_epoch_size([2000, 2000], [0.9, 0.1])
    2222
    """
    norm = sum(ratios)
    return int(min(size / (r / norm) for size, r in zip(sizes, ratios) if r > 0) + 1e-9)


def epoch_plan(sizes: Sequence[int], ratios: Sequence[float], epoch: int, seed: int,
               samples_per_epoch: Optional[int] = None) -> list[tuple[int, int]]:
    """The (source, index) pairs of one epoch, in training order; a function of (seed, epoch) only.

    Each source gives `mixture_counts(...)[i]` samples: a fresh permutation of its indices
    (cycled when it has fewer), then the whole epoch is shuffled.

    >>> plan = epoch_plan([5, 5], [0.8, 0.2], epoch=0, seed=0, samples_per_epoch=10)
    >>> sum(1 for s, _ in plan if s == 1), plan == epoch_plan([5, 5], [0.8, 0.2], 0, 0, 10)
    (2, True)
    """
    total = samples_per_epoch or default_epoch_size(sizes, ratios)
    plan: list[tuple[int, int]] = []
    for source, (size, count) in enumerate(zip(sizes, mixture_counts(ratios, total))):
        if count and not size:
            raise DataError(f"data source {source} is empty but its ratio asks for {count} samples per epoch")
        rng = random.Random(f"{seed}:{epoch}:{source}")
        picked: list[int] = []
        while len(picked) < count:
            order = list(range(size))
            rng.shuffle(order)
            picked.extend(order[: count - len(picked)])
        plan.extend((source, i) for i in picked)
    random.Random(f"{seed}:{epoch}:mix").shuffle(plan)
    return plan


# ---------------------------------------------------------------- rejection sampling -> CoT records


def cot_sft_records(pairs: Sequence[tuple[Any, str]], image_base: str | Path | None = None) -> list[dict]:
    """(MathVistaSample, correct CoT response) pairs -> MathVista records whose `think_target`
    is that response: a file of them is a `mode: think` source of `sail-rl sft`.

    The response must be `<think>...</think>` then an answer with a `\\boxed{}`; pids get
    `-cot{i}` suffixes when one sample has several responses.

    >>> from sail_rl.data.mathvista import MathVistaSample
    >>> s = MathVistaSample(pid="7", question="q", image="/d/x.png", answer="3", question_type="free_form", answer_type="integer")
    >>> [(r["pid"], r["think_target"]) for r in cot_sft_records([(s, "<think>1+2</think> \\\\boxed{3}")])]
    [('7', '<think>1+2</think> \\\\boxed{3}')]
    """
    import dataclasses

    from sail_rl.data.mathvista import sample_to_record

    seen: dict[str, int] = {}
    for sample, _ in pairs:
        seen[sample.pid] = seen.get(sample.pid, 0) + 1
    index: dict[str, int] = {}
    records = []
    for sample, response in pairs:
        think, answer = split_think(response.strip())
        if not think or "\\boxed{" not in answer:
            raise DataError(f"pid {sample.pid}: CoT response is not <think>...</think> + \\boxed{{}}: {response[:60]!r}")
        i = index[sample.pid] = index.get(sample.pid, -1) + 1
        pid = sample.pid if seen[sample.pid] == 1 else f"{sample.pid}-cot{i}"
        metadata = dict(sample.metadata, sft_source="rejection_sampling")
        chosen = dataclasses.replace(sample, pid=pid, think_target=response.strip(), should_think=True, metadata=metadata)
        records.append(sample_to_record(chosen, image_base))
    return records


def write_jsonl(records: Sequence[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path
