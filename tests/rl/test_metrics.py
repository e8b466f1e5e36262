"""metrics.jsonl on resume: a torn last line (a crash mid-write) is dropped with a warning."""

from __future__ import annotations

import json

import pytest

from sail_rl.errors import DataError
from sail_rl.rl.metrics import MetricsLogger, read_metrics


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines[:-1]) + lines[-1])  # the last write was cut: no newline


def test_resume_drops_a_torn_last_line_with_a_warning(tmp_path, caplog):
    records = [json.dumps({"step": s, "reward/mean": s / 10}) for s in (1, 2, 3)]
    _write(tmp_path / "metrics.jsonl", records + ['{"step": 4, "reward/me'])
    with caplog.at_level("WARNING", logger="sail_rl.rl.metrics"):
        logger = MetricsLogger(tmp_path, ["jsonl"], truncate_after_step=2, progress_bar=False)
    assert any("dropped a torn last line" in r.getMessage() for r in caplog.records)
    logger.log(3, {"reward/mean": 0.5}, prompts=[0])
    assert [(r["step"], r["reward/mean"]) for r in read_metrics(tmp_path)] == [(1, 0.1), (2, 0.2), (3, 0.5)]


def test_a_broken_line_before_the_last_is_a_data_error(tmp_path):
    _write(tmp_path / "metrics.jsonl", ['{"step": 1}', "garbage", '{"step": 2}'])
    with pytest.raises(DataError, match=r"metrics.jsonl:2 is not a JSON record; repair or delete that line"):
        MetricsLogger(tmp_path, ["jsonl"], truncate_after_step=2, progress_bar=False)
