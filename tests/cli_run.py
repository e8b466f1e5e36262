"""`sail-rl run` as a user runs it (a subprocess), and the checks every end-to-end run shares.

    out, records = run_cli(recipe, *overrides, output_dir=tmp_path / "run")
    steps = trained_steps(records, 2)   # steps 1..2, each updated the policy, engine == trainer
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_cli(recipe, *overrides: str, output_dir: Path, timeout_s: float = 600, **popen) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run `sail-rl run RECIPE OVERRIDES...`; assert exit 0 (stderr's tail as the message); return
    the process and the run's metrics.jsonl records. `popen`: env / cwd for subprocess.run."""
    out = subprocess.run([sys.executable, "-m", "sail_rl.cli", "run", str(recipe), *overrides], capture_output=True,
                         text=True, timeout=timeout_s, **popen)
    assert out.returncode == 0, out.stderr[-3000:]
    return out, [json.loads(line) for line in (Path(output_dir) / "metrics.jsonl").read_text().splitlines()]


def trained_steps(records: list[dict], n_steps: int, max_mismatch: float = 1e-4) -> list[dict]:
    """The step records, asserted to be steps 1..n_steps, each with a non-zero update (grad norm > 0)
    and the rollout engine's log-probs within `max_mismatch` of the trainer's (the weights synced)."""
    steps = [r for r in records if "prompts" in r]
    assert [r["step"] for r in steps] == list(range(1, n_steps + 1))
    for r in steps:
        assert r["actor/grad_norm"] > 0, r
        assert r["actor/mismatch_abs_logprob_diff"] < max_mismatch, r
    return steps
