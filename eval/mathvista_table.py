"""MathVista's results table as VLMEvalKit prints it (`MathVista_acc`): one row for Overall,
one per task and one per skill, each with its sample count and accuracy in percent, so the
numbers line up with published MathVista results.

A sample counts once per row it belongs to (a sample has one task and one or more skills).
With k responses per sample, a sample's hit is its fraction of correct responses, so `acc`
is mean@k; with k=1 it is plain accuracy. `rule` and `llm` count how the answers were found
(VLMEvalKit's "prefetch" column is its rule path, which only counts answers that are also
right, so the two are not the same number).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

# MathVista's tasks and skills in the order of its paper and leaderboard, with their short names.
TASKS = {
    "figure question answering": "FQA",
    "geometry problem solving": "GPS",
    "math word problem": "MWP",
    "textbook question answering": "TQA",
    "visual question answering": "VQA",
}
SKILLS = {
    "algebraic reasoning": "ALG",
    "arithmetic reasoning": "ARI",
    "geometry reasoning": "GEO",
    "logical reasoning": "LOG",
    "numeric commonsense": "NUM",
    "scientific reasoning": "SCI",
    "statistical reasoning": "STA",
}


def _order(name: str, known: dict[str, str]) -> tuple[int, str]:
    names = list(known)
    return (names.index(name), "") if name in known else (len(names), name)


def mathvista_table(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows [Overall, tasks..., skills...] from graded responses (`eval.scoring.ResponseResult`);
    empty when no sample carries a task or skill.

    Each row: Task&Skill, short (FQA, ..., STA; None for a name MathVista does not have),
    tot (samples), rule / llm (responses per sample whose answer that path found, summed over
    samples), hit (correct responses per sample, summed), acc (100 * hit / tot).
    """
    per_sample: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        per_sample[r.pid].append(r)
    if not any(recs[0].task != "unknown" or recs[0].skills for recs in per_sample.values()):
        return []
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])  # tot, rule, llm, hit
    tasks, skills = set(), set()
    for recs in per_sample.values():
        n = len(recs)
        row = (1, sum(r.extraction == "rule" for r in recs) / n, sum(r.extraction == "llm" for r in recs) / n,
               sum(r.correct for r in recs) / n)
        names = ["Overall", recs[0].task] + list(dict.fromkeys(recs[0].skills))
        tasks.add(recs[0].task)
        skills.update(recs[0].skills)
        for name in names:
            sums[name] = [a + b for a, b in zip(sums[name], row)]
    order = ["Overall"] + sorted(tasks, key=lambda t: _order(t, TASKS)) + sorted(skills, key=lambda s: _order(s, SKILLS))
    rows = []
    for name in order:
        tot, rule, llm, hit = sums[name]
        rows.append({"Task&Skill": name, "short": TASKS.get(name) or SKILLS.get(name), "tot": int(tot),
                     "rule": round(rule, 4), "llm": round(llm, 4), "hit": round(hit, 4), "acc": round(100 * hit / tot, 2)})
    return rows


def table_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The table as markdown lines (acc in percent, as VLMEvalKit and the MathVista leaderboard give it).

    >>> print("\\n".join(table_markdown([{"Task&Skill": "Overall", "short": None, "tot": 2, "rule": 2, "llm": 0,
    ...                                  "hit": 1, "acc": 50.0}])))
    | Task&Skill | tot | rule | llm | hit | acc (%) |
    | --- | --- | --- | --- | --- | --- |
    | Overall | 2 | 2 | 0 | 1 | 50.00 |
    """
    lines = ["| Task&Skill | tot | rule | llm | hit | acc (%) |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        name = f"{row['Task&Skill']} ({row['short']})" if row["short"] else row["Task&Skill"]
        lines.append(f"| {name} | {row['tot']} | {row['rule']:g} | {row['llm']:g} | {row['hit']:g} | {row['acc']:.2f} |")
    return lines
