"""Benchmark evaluation, MathVista format first; grades with the same `rewards` grader as RL.

    from eval import EvalConfig, evaluate
    result = evaluate(EvalConfig(data_files=["bench/testmini.jsonl"], responses_file="resp.jsonl"))
    result.metrics["accuracy"]
"""

from eval.report import metrics_markdown, write_report
from eval.runner import EvalConfig, EvalRecipe, evaluate, load_responses
from eval.scoring import ResponseResult, EvalResult, compute_metrics, pass_at_k, score

__all__ = [
    "EvalConfig",
    "EvalRecipe",
    "ResponseResult",
    "EvalResult",
    "compute_metrics",
    "evaluate",
    "load_responses",
    "metrics_markdown",
    "pass_at_k",
    "score",
    "write_report",
]
