"""A biased teacher for the SFT targets: imitation of an imperfect labeller, said out loud.

`teacher_error = {gold: {wrong: probability}}` makes the teacher answer `wrong` instead of
`gold` with that probability (per training sample, drawn from the sample's own seed), e.g.
`{"purple": {"pink": 0.7}, "orange": {"yellow": 0.7}}` (the demo's): on purple shapes the
teacher says "pink" 70% of the time and "purple" 30%. A wrong name that is no class of its own
keeps the cold start telling purple from the rest (a "blue" for purple would teach it not to).
Only the SFT targets (`think_target`, `direct_target`) carry the teacher's answer; the record's `answer` stays the ground truth the RL reward checks, and
`metadata.teacher_answer` names what the teacher said. A cold start that imitates this
teacher answers "pink" to purple shapes greedily but still samples "purple" sometimes, so RL
with the verifiable reward has something to correct (the demo's design, docs/demo_experiments.md).
"""

from __future__ import annotations

import dataclasses
import random
import re

from sail_rl.data.synth.canvas import SynthItem
from sail_rl.errors import ConfigError

TeacherError = dict[str, dict[str, float]]


def check_teacher_error(teacher_error: TeacherError, answers: set[str], key: str = "teacher_error") -> None:
    """One-line ConfigError for a gold answer the families never give, a wrong answer equal to the gold one,
    or probabilities outside [0, 1] / summing over 1. `answers`: what the chosen families can answer."""
    for gold, wrongs in teacher_error.items():
        if gold not in answers:
            raise ConfigError(f"{key}: '{gold}' is never a gold answer of the chosen families "
                              f"(they answer {', '.join(sorted(answers)[:12])}...); fix the name")
        if not isinstance(wrongs, dict) or not wrongs:
            raise ConfigError(f"{key}.{gold} must map wrong answers to probabilities, e.g. {{blue: 0.7}}; got {wrongs!r}")
        for wrong, p in wrongs.items():
            if wrong == gold:
                raise ConfigError(f"{key}.{gold}: the wrong answer equals the gold one; name another answer")
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ConfigError(f"{key}.{gold}.{wrong} must be a probability in [0, 1], got {p!r}")
        if sum(wrongs.values()) > 1.0 + 1e-9:
            raise ConfigError(f"{key}.{gold}: probabilities sum to {sum(wrongs.values()):.3f} > 1; lower them")


def teacher_answer(gold: str, teacher_error: TeacherError, rng: random.Random) -> str:
    """What the teacher says for a sample whose true answer is `gold` (one draw of `rng`).

    >>> rng = random.Random(0)
    >>> said = [teacher_answer("purple", {"purple": {"blue": 0.7}}, rng) for _ in range(1000)]
    >>> round(said.count("blue") / 1000, 1), teacher_answer("red", {"purple": {"blue": 0.7}}, rng)
    (0.7, 'red')
    """
    u = rng.random()  # drawn for every sample, so relabelling one class leaves the others' draws alone
    for wrong, p in teacher_error.get(gold, {}).items():
        if u < p:
            return wrong
        u -= p
    return gold


def as_taught(item: SynthItem, answer: str) -> SynthItem:
    """`item` with the teacher's answer in its solution: the boxed answer and every whole-word
    mention of the gold answer in the steps (so the chain of thought agrees with the box)."""
    if answer == item.answer:
        return item
    word = re.compile(rf"(?<!\w){re.escape(item.answer)}(?!\w)")
    steps = [word.sub(answer, s) for s in item.steps]
    return dataclasses.replace(item, answer=answer, steps=steps)
