"""Write an evaluation's outputs into one folder:

    results.jsonl      one line per (sample, response): pid, prompt, response, extracted
                       answer, prediction, verdict, category, task, ...
    metrics.json       `accuracy`, `extraction` (rule | llm | none counts), `mathvista`
                       (VLMEvalKit's Task&Skill table), `by_question_type`, `by_answer_type`,
                       `by_category`, `by_task`, `by_skill`, `pass@k`, `mean@k`, `think_rate`, ...
    metrics.md         the same as markdown tables
    accuracy_by_category.png   bar chart of per-category and per-task accuracy (matplotlib, Agg)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from eval.mathvista_table import table_markdown
from eval.scoring import EvalResult

GROUP_KEYS = ("by_question_type", "by_answer_type", "by_category", "by_task", "by_skill", "by_family")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_markdown(metrics: dict[str, Any], title: str = "Evaluation") -> str:
    """Markdown: a summary table of the scalar metrics, then one table per grouping.

    >>> print(metrics_markdown({"accuracy": 0.5, "by_task": {"t": {"accuracy": 0.5, "count": 2}}}))
    # Evaluation
    <BLANKLINE>
    | metric | value |
    | --- | --- |
    | accuracy | 0.5000 |
    <BLANKLINE>
    ## Accuracy by task
    <BLANKLINE>
    | task | accuracy | samples |
    | --- | --- | --- |
    | t | 0.5000 | 2 |
    <BLANKLINE>
    """
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    for key, value in metrics.items():
        if key in GROUP_KEYS or key == "mathvista":
            continue
        if isinstance(value, dict):
            prefix = key.split("@")[0]  # pass@k -> pass@1, ...; extraction -> extraction: rule, ...
            lines += [f"| {k if k.startswith(prefix) else f'{key}: {k}'} | {_fmt(v)} |" for k, v in value.items()]
        else:
            lines.append(f"| {key} | {_fmt(value)} |")
    if metrics.get("mathvista"):
        lines += ["", "## MathVista: accuracy by task and skill (VLMEvalKit layout)", ""] + table_markdown(metrics["mathvista"])
    for key in GROUP_KEYS:
        groups = metrics.get(key)
        if not groups:
            continue
        name = key[len("by_") :]
        lines += ["", f"## Accuracy by {name.replace('_', ' ')}", "", f"| {name} | accuracy | samples |", "| --- | --- | --- |"]
        lines += [f"| {g} | {_fmt(v['accuracy'])} | {v['count']} |" for g, v in groups.items()]
    return "\n".join(lines) + "\n"


def plot_accuracy(metrics: dict[str, Any], path: Path) -> Path:
    """Horizontal bars of accuracy per category (left) and per task (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, metrics.get(k) or {}) for k in ("by_category", "by_task")]
    rows = max(len(groups) for _, groups in panels) or 1
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.2 + 0.45 * rows))
    for ax, (key, groups) in zip(axes, panels):
        names = list(groups)
        values = [groups[n]["accuracy"] * 100 for n in names]
        ax.barh(range(len(names)), values, color="#3a6ea5")
        ax.set_yticks(range(len(names)), [f"{n} ({groups[n]['count']})" for n in names], fontsize=8)
        ax.set_xlim(0, 100)
        ax.invert_yaxis()
        ax.set_xlabel("accuracy (%)")
        ax.set_title(key.replace("by_", "by ").replace("_", " "))
        for i, v in enumerate(values):
            ax.text(min(v + 1, 90), i, f"{v:.1f}", va="center", fontsize=8)
    overall = metrics.get("accuracy")
    fig.suptitle(f"accuracy {overall * 100:.1f}%" if overall is not None else "accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(result: EvalResult, out_dir: str | Path, config: Optional[dict[str, Any]] = None,
                 title: str = "Evaluation", plot: bool = True) -> dict[str, Path]:
    """Write results.jsonl, metrics.json (+ `config` when given), metrics.md and the chart."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.jsonl", "metrics": out / "metrics.json", "markdown": out / "metrics.md"}
    with paths["results"].open("w", encoding="utf-8") as f:
        for record in result.records:
            f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    payload = dict(result.metrics)
    if config is not None:
        payload["config"] = config
    paths["metrics"].write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(metrics_markdown(result.metrics, title), encoding="utf-8")
    if plot:
        paths["chart"] = plot_accuracy(result.metrics, out / "accuracy_by_category.png")
    return paths
