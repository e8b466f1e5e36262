"""Score responses to MathVista-format samples: extract, normalise, grade, aggregate.

Per response: the answer is found by rule (`rewards.extract_answer`); when the rules
cannot read it for the question (`rewards.grader.readable`) the optional LLM extractor is
asked (all such responses in one batch); a multi_choice answer is mapped to its option
letter (MathVista's normalisation); then `rewards.grade` decides, the same grader the RL
rewards use. `extraction` says which found the answer: rule | llm | none. Per benchmark:
accuracy overall and per question_type / answer_type / category / task / skill (/ family
for synthetic data), MathVista's Task&Skill table as VLMEvalKit prints it, pass@k and
mean@k over k responses per sample, how often the model thought, and response lengths.

Accuracy is the mean over samples of each sample's fraction of correct responses, so with
k=1 it is plain accuracy and with k>1 it equals mean@k.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from eval.extractor import LLMExtractor, llm_extract_many
from eval.mathvista_table import mathvista_table
from sail_rl.data.mathvista import LETTERS, MathVistaSample
from sail_rl.errors import DataError

GradeFn = Callable[..., bool]  # grade(prediction, answer, *, answer_type, choices, precision) -> bool
ExtractFn = Callable[[str], Optional[str]]
ResponseIn = Union[str, Mapping[str, Any]]  # a text, or {"response": str, "response_tokens": int, "prompt": str}

_OPTION_RE = re.compile(r"^\(?([A-Z])\)?[.:]?$")


def default_grade_fn() -> GradeFn:
    from rewards.grader import grade

    return grade


def default_extract_fn() -> ExtractFn:
    from rewards.answer_extraction import extract_answer

    return extract_answer


@dataclass
class ResponseResult:
    """One graded response; a line of results.jsonl."""

    pid: str
    response_index: int
    response: str
    extracted: Optional[str]  # the answer as found in the response
    prediction: Optional[str]  # after normalisation (multi_choice: the option letter when one matches)
    extraction: str  # "rule" | "llm" | "none"
    correct: bool
    thought: bool  # contains <think>...</think>
    think_well_formed: bool
    response_chars: int
    response_tokens: Optional[int]
    answer: str
    question_type: str
    answer_type: str
    category: str
    task: str
    skills: list[str] = field(default_factory=list)
    family: Optional[str] = None
    prompt: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalResult:
    records: list[ResponseResult]
    metrics: dict[str, Any]


def is_thought(response: str) -> bool:
    """Whether the model decided to think: the response opens with `<think>` (`rewards.layout.thinks`,
    the decision the judging reward reads; a thought cut off before `</think>` still counts).

    >>> is_thought("<think>a</think> 3"), is_thought("3"), is_thought("<think>cut off")
    (True, False, True)
    """
    from rewards.layout import thinks

    return thinks(response)


def is_well_formed_think(response: str) -> bool:
    """The think layout the format reward requires (`rewards.layout.follows_layout`).

    >>> [is_well_formed_think(r) for r in ["<think>x</think> \\\\boxed{1}", "<think>x</think>", "<think>x"]]
    [True, False, False]
    """
    from rewards.layout import follows_layout

    return follows_layout(response, "think")


def normalize_prediction(extracted: Optional[str], sample: MathVistaSample) -> Optional[str]:
    """MathVista normalisation: for multi_choice, an option letter or an option's text
    becomes the letter; anything else is kept as is.

    >>> s = MathVistaSample(pid="1", question="q", image="x", answer="blue", question_type="multi_choice",
    ...                     answer_type="text", choices=["red", "blue"])
    >>> normalize_prediction("Blue", s), normalize_prediction("(a)", s), normalize_prediction("The blue one.", s)
    ('B', 'A', 'B')
    >>> normalize_prediction("pink", s)
    'pink'
    """
    if extracted is None or sample.question_type != "multi_choice" or not sample.choices:
        return extracted
    from rewards.grader import choice_index, normalize_text

    text = extracted.strip()
    match = _OPTION_RE.match(text.upper()) if len(text) <= 4 else None
    if match and LETTERS.index(match.group(1)) < len(sample.choices):
        return match.group(1)
    index = choice_index(text, sample.choices, letter_first=len(normalize_text(text)) <= 10)
    return LETTERS[index] if index is not None else extracted


def _as_response(item: ResponseIn) -> tuple[str, Optional[int], Optional[str]]:
    if isinstance(item, str):
        return item, None, None
    tokens = item.get("response_tokens")
    return str(item.get("response", "")), None if tokens is None else int(tokens), item.get("prompt")


def _record(sample: MathVistaSample, index: int, item: ResponseIn, extracted: Optional[str], how: str,
            grade_fn: GradeFn) -> ResponseResult:
    """Normalise and grade one response whose answer was found (`how`: rule | llm | none)."""
    response, tokens, prompt = _as_response(item)
    prediction = normalize_prediction(extracted, sample)
    correct = prediction is not None and bool(
        grade_fn(prediction, sample.answer, answer_type=sample.answer_type, choices=sample.choices, precision=sample.precision)
    )
    skills = sample.metadata.get("skills") or []
    return ResponseResult(
        pid=sample.pid,
        response_index=index,
        response=response,
        extracted=extracted,
        prediction=prediction,
        extraction=how,
        correct=correct,
        thought=is_thought(response),
        think_well_formed=is_well_formed_think(response),
        response_chars=len(response),
        response_tokens=tokens,
        answer=sample.answer,
        question_type=sample.question_type,
        answer_type=sample.answer_type,
        category=sample.category,
        task=sample.task,
        skills=list(skills) if isinstance(skills, (list, tuple)) else [str(skills)],
        family=sample.metadata.get("family"),
        prompt=prompt,
    )


def _extract_all(items: list[tuple[MathVistaSample, int, ResponseIn]], extract_fn: ExtractFn,
                 llm_extractor: Optional[LLMExtractor]) -> tuple[list[Optional[str]], list[str]]:
    """Answers [n] and how each was found [n]: by rule, else (for answers the rules cannot
    read) by the LLM extractor in one batch, else none."""
    from rewards.grader import readable

    texts = [_as_response(item)[0] for _, _, item in items]
    answers = [extract_fn(text) for text in texts]
    how = ["rule" if a is not None else "none" for a in answers]
    if llm_extractor is not None:
        ask = [j for j, (sample, _, _) in enumerate(items) if texts[j].strip() and not readable(
            answers[j], answer_type=sample.answer_type, choices=sample.choices)]
        found = llm_extract_many(llm_extractor, [items[j][0] for j in ask], [texts[j] for j in ask])
        for j, answer in zip(ask, found):
            if answer is not None:
                answers[j], how[j] = answer, "llm"
    return answers, how


def score(samples: Sequence[MathVistaSample], responses: Mapping[str, Sequence[ResponseIn]], *,
          grade_fn: Optional[GradeFn] = None, extract_fn: Optional[ExtractFn] = None,
          llm_extractor: Optional[LLMExtractor] = None) -> EvalResult:
    """Grade every response of every sample. `responses[pid]` holds that sample's k responses.
    Every sample needs at least one response and every pid must be a sample (DataError)."""
    grade_fn = grade_fn or default_grade_fn()
    extract_fn = extract_fn or default_extract_fn()
    by_pid = {s.pid: s for s in samples}
    missing = [s.pid for s in samples if not responses.get(s.pid)]
    if missing:
        raise DataError(
            f"no response for {len(missing)} of {len(samples)} samples (first pid {missing[0]}); "
            "generate them or score against the data file the responses came from"
        )
    extra = [pid for pid in responses if pid not in by_pid]
    if extra:
        raise DataError(f"responses for {len(extra)} unknown pids (first '{extra[0]}'); pass the data file they answer")
    items = [(s, i, item) for s in samples for i, item in enumerate(responses[s.pid])]
    answers, how = _extract_all(items, extract_fn, llm_extractor)
    records = [_record(s, i, item, a, h, grade_fn) for (s, i, item), a, h in zip(items, answers, how)]
    return EvalResult(records=records, metrics=compute_metrics(records))


# ---------------------------------------------------------------- aggregation


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k).

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2), round(pass_at_k(4, 2, 2), 4)
    (0.25, 1.0, 0.0, 0.8333)
    """
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _ks(k_max: int) -> list[int]:
    """Reported k values: powers of two up to k_max, and k_max itself."""
    ks = {k_max}
    k = 1
    while k < k_max:
        ks.add(k)
        k *= 2
    return sorted(ks)


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def _grouped(per_sample: dict[str, list[ResponseResult]], key: Callable[[ResponseResult], list[str]]) -> dict[str, dict]:
    """{group: {"accuracy": mean of per-sample accuracy, "count": samples}}."""
    groups: dict[str, list[float]] = defaultdict(list)
    for recs in per_sample.values():
        acc = sum(r.correct for r in recs) / len(recs)
        for name in key(recs[0]):
            groups[name].append(acc)
    return {name: {"accuracy": sum(v) / len(v), "count": len(v)} for name, v in sorted(groups.items())}


def compute_metrics(records: Sequence[ResponseResult]) -> dict[str, Any]:
    """Aggregate graded responses (see the module doc for the definitions)."""
    per_sample: dict[str, list[ResponseResult]] = defaultdict(list)
    for r in records:
        per_sample[r.pid].append(r)
    if not per_sample:
        raise DataError("nothing to score: no responses; check the data and responses files")
    sample_acc = [sum(r.correct for r in recs) / len(recs) for recs in per_sample.values()]
    n_min = min(len(recs) for recs in per_sample.values())
    k_max = max(len(recs) for recs in per_sample.values())
    thinking = [r for r in records if r.thought]
    tried = [r for r in records if "<think>" in r.response or "</think>" in r.response]
    tokens = [r.response_tokens for r in records if r.response_tokens is not None]
    metrics: dict[str, Any] = {
        "accuracy": _mean(sample_acc),
        "num_samples": len(per_sample),
        "num_responses": len(records),
        "k": k_max,
        "mean@k": _mean(sample_acc),
        "pass@k": {
            f"pass@{k}": _mean([pass_at_k(len(recs), sum(r.correct for r in recs), k) for recs in per_sample.values()])
            for k in _ks(n_min)
        },
        "by_question_type": _grouped(per_sample, lambda r: [r.question_type]),
        "by_answer_type": _grouped(per_sample, lambda r: [r.answer_type]),
        "by_category": _grouped(per_sample, lambda r: [r.category]),
        "by_task": _grouped(per_sample, lambda r: [r.task]),
        "by_skill": _grouped(per_sample, lambda r: r.skills),
        "answer_found_rate": _mean([r.extracted is not None for r in records]),
        "extraction": {how: sum(r.extraction == how for r in records) for how in ("rule", "llm", "none")},
        "accuracy_by_extraction": {how: _mean([r.correct for r in records if r.extraction == how]) for how in ("rule", "llm")},
        "llm_extraction_rate": _mean([r.extraction == "llm" for r in records]),
        "think_rate": _mean([r.thought for r in records]),
        "think_well_formed_rate": _mean([r.think_well_formed for r in tried]),
        "accuracy_when_thinking": _mean([r.correct for r in thinking]),
        "accuracy_when_direct": _mean([r.correct for r in records if not r.thought]),
        "mean_response_chars": _mean([r.response_chars for r in records]),
        "mean_response_tokens": _mean(tokens) if len(tokens) == len(records) else None,
    }
    table = mathvista_table(records)
    if table:
        metrics["mathvista"] = table
    if any(r.family for r in records):
        metrics["by_family"] = _grouped(per_sample, lambda r: [r.family or "unknown"])
    return metrics
