"""Pass-rate filtering and rejection sampling, as pure functions over graded results.

SAIL-VL2's RL data is filtered by pass@k of the current model: prompts it always solves
teach nothing (dropped), and for reasoning data prompts it never solves are dropped too.
Its think-fusion SFT takes CoT samples from rejection sampling: correct, well-formed
thinking responses of the RL model. Generation happens elsewhere (`sail-rl eval` or the
engine the lead wires into `sail-rl data filter/rejection-sample`); these functions only
read its graded results.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sail_rl.data.mathvista import MathVistaSample, sample_to_record


def _field(result: Any, name: str) -> Any:
    return result[name] if isinstance(result, Mapping) else getattr(result, name)


def pass_rate_table(results: Iterable[Any]) -> dict[str, float]:
    """{pid: fraction of its responses graded correct} from results.jsonl lines (dicts) or
    `eval.scoring.ResponseResult`s; each needs `pid` and `correct`.

    >>> pass_rate_table([{"pid": "a", "correct": True}, {"pid": "a", "correct": False}, {"pid": "b", "correct": False}])
    {'a': 0.5, 'b': 0.0}
    """
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        c = counts[str(_field(r, "pid"))]
        c[0] += bool(_field(r, "correct"))
        c[1] += 1
    return {pid: right / total for pid, (right, total) in counts.items()}


def filter_by_pass_rate(samples: Sequence[MathVistaSample], pass_rates: Mapping[str, float],
                        drop_all_correct: bool = True, drop_all_wrong: bool = False) -> list[MathVistaSample]:
    """Keep the samples worth training on. A sample with no pass rate (never evaluated) is kept.

    >>> s = [MathVistaSample(pid=p, question="q", image="x", answer="1", question_type="free_form",
    ...                      answer_type="integer") for p in "abc"]
    >>> [x.pid for x in filter_by_pass_rate(s, {"a": 1.0, "b": 0.0, "c": 0.5}, drop_all_wrong=True)]
    ['c']
    """
    kept = []
    for s in samples:
        rate = pass_rates.get(s.pid)
        if rate is not None and ((drop_all_correct and rate >= 1.0) or (drop_all_wrong and rate <= 0.0)):
            continue
        kept.append(s)
    return kept


def select_correct_cot(samples: Sequence[MathVistaSample], responses: Mapping[str, Sequence[str]],
                       grades: Mapping[str, Sequence[bool]], max_per_sample: int = 1,
                       *, well_formed: Callable[[str], bool], image_base: str | Path | None = None) -> list[dict[str, Any]]:
    """Rejection sampling -> CoT SFT records: per sample, up to `max_per_sample` correct
    responses that think in a well-formed way (shortest first), each as a MathVista record
    whose `think_target` is that response (image path relative to `image_base` when given).
    Samples with none are skipped. `well_formed(text)` is the think-layout check (the command
    passes `rewards.layout.follows_layout(text, "think")`: the data layer does not import rewards).
    """
    records = []
    for s in samples:
        texts, verdicts = responses.get(s.pid, ()), grades.get(s.pid, ())
        good = sorted({t for t, ok in zip(texts, verdicts) if ok and well_formed(t)}, key=lambda t: (len(t), t))
        for i, text in enumerate(good[:max_per_sample]):
            pid = s.pid if max_per_sample == 1 else f"{s.pid}-cot{i}"
            metadata = dict(s.metadata, sft_source="rejection_sampling")
            chosen = dataclasses.replace(s, pid=pid, think_target=text, should_think=True, metadata=metadata)
            records.append(sample_to_record(chosen, image_base))
    return records


def label_think(samples: Sequence[MathVistaSample], direct_rates: Mapping[str, float],
                think_rates: Mapping[str, float], margin: float = 0.0) -> list[MathVistaSample]:
    """`should_think` from the current model's pass rates (pass@k, as SAIL-VL2's difficulty
    filter measures them): think where thinking pays, p_think > p_direct + margin, and where
    neither mode solves it (p_think = p_direct = 0: only reasoning can get there); answer
    directly where a direct answer does as well (the cheaper response). The rates go into
    `metadata` (`pass_rate_direct`, `pass_rate_think`). Samples missing a rate keep their label.

    >>> s = [MathVistaSample(pid=p, question="q", image="x", answer="1", question_type="free_form",
    ...                      answer_type="integer") for p in "abcd"]
    >>> out = label_think(s, {"a": 1.0, "b": 0.25, "c": 0.0, "d": 0.5}, {"a": 1.0, "b": 0.75, "c": 0.0, "d": 0.5})
    >>> [(x.pid, x.should_think) for x in out]
    [('a', False), ('b', True), ('c', True), ('d', False)]
    """
    out = []
    for s in samples:
        p_direct, p_think = direct_rates.get(s.pid), think_rates.get(s.pid)
        if p_direct is None or p_think is None:
            out.append(s)
            continue
        should_think = p_think > p_direct + margin or p_think == p_direct == 0.0
        metadata = dict(s.metadata, pass_rate_direct=p_direct, pass_rate_think=p_think)
        out.append(dataclasses.replace(s, should_think=should_think, metadata=metadata))
    return out
