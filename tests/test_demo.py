"""The demo's machine-readable last lines, built from an RL summary without running the demo."""

from __future__ import annotations

import json

import pytest

from sail_rl.demo import result_line, seeds_summary


def _eval(acc: float, sampled: float, think_acc: float, think_rate: float) -> dict[str, float]:
    return {"eval/accuracy": acc, "eval/accuracy_sampled": sampled, "eval/think_rate": think_rate / 2,
            "eval/think/accuracy": think_acc, "eval/think/accuracy_sampled": sampled, "eval/think/think_rate": think_rate,
            "eval/direct/accuracy": 2 * acc - think_acc, "eval/direct/accuracy_sampled": sampled, "eval/direct/think_rate": 0.0}


def _line(seed: int, before: float, after: float) -> dict:
    summary = {"eval_before": _eval(before, before - 0.1, before, 1.0), "eval_after": _eval(after, after - 0.05, after, 0.99),
               "final_step": 150}
    return json.loads(json.dumps(result_line(seed, summary, 4, 0.215, 200, 300.4, ["think", "direct"])))


def test_result_line_holds_the_headline_per_mode_and_the_ceiling():
    line = _line(1, 0.6, 0.92)
    assert (line["seed"], line["accuracy_before_rl"], line["accuracy_after_rl"], line["gain_points"]) == (1, 0.6, 0.92, 32.0)
    assert (line["mean_at_k_before_rl"], line["mean_at_k_after_rl"], line["k"]) == (pytest.approx(0.5), pytest.approx(0.87), 4)
    assert line["by_mode"]["think"]["think_rate_after_rl"] == 0.99 and line["by_mode"]["direct"]["think_rate_before_rl"] == 0.0
    assert line["by_mode"]["direct"]["accuracy_after_rl"] == pytest.approx(0.92)
    assert line["best_constant_accuracy"] == 0.215 and line["above_best_constant"] is True
    assert line["rl_steps"] == 150 and line["wall_s"] == 300 and len(line["load_avg_1_5_15m"]) == 3
    assert _line(0, 0.6, 0.2)["above_best_constant"] is False


def test_seeds_summary_gives_mean_spread_and_the_every_seed_checks():
    out = seeds_summary([_line(0, 0.6, 0.9), _line(1, 0.6, 0.8), _line(2, 0.55, 0.7)])
    acc = out["summary"]["accuracy_after_rl"]
    assert (acc["mean"], acc["std"], acc["min"], acc["max"]) == (pytest.approx(0.8), pytest.approx(0.1), 0.7, 0.9)
    assert out["summary"]["gain_points"]["mean"] == pytest.approx(21.67, abs=0.01)
    assert out["summary"]["think/think_rate_after_rl"]["mean"] == 0.99
    assert [line["seed"] for line in out["seeds"]] == [0, 1, 2]
    assert out["every_seed_gains"] is True and out["every_seed_above_best_constant"] is True
    assert seeds_summary([_line(0, 0.6, 0.9), _line(1, 0.6, 0.65)])["every_seed_gains"] is False  # +5 points
