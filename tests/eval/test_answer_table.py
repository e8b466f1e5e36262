"""The MathVista-style response table: the eval pipeline (rule extraction, option
normalisation, the shared grader) agrees with the human label on every category."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from eval.scoring import score
from sail_rl.data import MathVistaSample
from tests.eval.mathvista_style_responses import KINDS, ROWS

CATEGORIES = ("boxed", "phrase", "sentence", "long", "option", "value", "tokens", "correction", "hedge", "mixture", "none")


def _sample(i: int, kind: str, gold: str) -> MathVistaSample:
    question_type, answer_type, choices, precision = KINDS[kind]
    return MathVistaSample(pid=str(i), question="q", image="x.png", answer=gold, question_type=question_type,
                           answer_type=answer_type, choices=choices, precision=precision)


@pytest.fixture(scope="module")
def verdicts():
    samples = [_sample(i, kind, gold) for i, (_, _, kind, gold, _) in enumerate(ROWS)]
    result = score(samples, {str(i): [row[1]] for i, row in enumerate(ROWS)})
    return {int(r.pid): r for r in result.records}


def test_the_table_covers_every_category_with_both_labels():
    assert len(ROWS) >= 300
    counts = Counter((row[0], row[4]) for row in ROWS)
    assert {row[0] for row in ROWS} == set(CATEGORIES)
    for category in CATEGORIES:
        if category in ("hedge", "none"):  # nothing to find: every label is "wrong"
            assert counts[(category, True)] == 0 and counts[(category, False)] >= 10
        else:
            assert counts[(category, True)] >= 5 and counts[(category, False)] >= 3, category


@pytest.mark.parametrize("category", CATEGORIES)
def test_rules_agree_with_the_human_label(verdicts, category):
    disagreements = defaultdict(list)
    for i, (cat, response, kind, gold, label) in enumerate(ROWS):
        if cat == category and verdicts[i].correct is not label:
            disagreements[category].append((response[-80:], kind, gold, label, verdicts[i].extracted))
    assert not disagreements[category], "\n".join(map(repr, disagreements[category]))
