"""Per-family table of `sail-rl eval` runs: accuracy, think rate, mean response tokens.

    python scripts/fusion_table.py "SFT auto=runs/fusion/eval/sft-auto-auto" "SFT think=..." ...

Each argument is LABEL=DIR, DIR an eval output folder with results.jsonl. Prints a markdown
table, one row per (run, family) plus an `all` row. The think decision is the eval's
`thought` field (the response opens with <think>: rewards.layout.thinks).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def family_rows(records: list[dict]) -> dict[str, tuple[int, float, float, float]]:
    """{family: (n, accuracy %, think rate %, mean response tokens)} over results.jsonl records,
    plus "all".

    >>> recs = [{"family": "a", "correct": True, "thought": True, "response_tokens": 10},
    ...         {"family": "a", "correct": False, "thought": False, "response_tokens": 2},
    ...         {"family": "b", "correct": True, "thought": False, "response_tokens": 3}]
    >>> family_rows(recs)
    {'a': (2, 50.0, 50.0, 6.0), 'b': (1, 100.0, 0.0, 3.0), 'all': (3, 66.7, 33.3, 5.0)}
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        groups[rec.get("family") or "unknown"].append(rec)
        groups["all"].append(rec)
    out = {}
    for family in sorted(groups, key=lambda f: (f == "all", f)):
        recs = groups[family]
        n = len(recs)
        out[family] = (n, round(100 * sum(r["correct"] for r in recs) / n, 1),
                       round(100 * sum(r["thought"] for r in recs) / n, 1),
                       round(sum(r["response_tokens"] or 0 for r in recs) / n, 1))
    return out


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print("usage: fusion_table.py LABEL=EVAL_DIR [LABEL=EVAL_DIR ...]", file=sys.stderr)
        return 2
    print("| run | family | n | accuracy % | think rate % | mean response tokens |")
    print("| --- | --- | --- | --- | --- | --- |")
    for arg in argv:
        label, folder = arg.split("=", 1)
        path = Path(folder) / "results.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for family, (n, acc, think, tokens) in family_rows(records).items():
            print(f"| {label} | {family} | {n} | {acc} | {think} | {tokens} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
