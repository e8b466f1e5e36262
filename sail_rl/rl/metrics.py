"""Per-step metrics: `metrics.jsonl` (one line a step), TensorBoard, wandb, a progress bar."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def group_rollout_metrics(groups) -> dict[str, float]:
    """The share of all-equal groups and the mean response length (reward metrics: rewards.reward_metrics)."""
    out: dict[str, float] = {}
    if groups:
        out["rollout/groups_all_equal"] = sum(not g.informative for g in groups) / len(groups)
        lengths = [r.num_response_tokens for g in groups for r in g.rollouts]
        out["rollout/response_tokens_mean"] = statistics.fmean(lengths) if lengths else 0.0
    return out


class MetricsLogger:
    def __init__(self, run_dir: str | Path, loggers: list[str], truncate_after_step: int = 0,
                 wandb_project: str | None = None, total_steps: int = 0, progress_bar: bool = True,
                 initial_step: int = 0):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        self._truncate(truncate_after_step)
        self.tb = self.wandb = self.bar = None
        if "tensorboard" in loggers:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        if "wandb" in loggers:
            try:
                import wandb
            except ImportError:
                from sail_rl.errors import ConfigError

                raise ConfigError("run.loggers has wandb but it is not installed; pip install wandb or drop it") from None
            self.wandb = wandb.init(project=wandb_project or "sail-rl", dir=str(self.run_dir), resume="allow")
        if progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=initial_step, desc="sail-rl run", dynamic_ncols=True)

    def _truncate(self, after_step: int) -> None:
        """On resume, drop lines of steps after the checkpoint (they will be redone)."""
        if not self.path.exists():
            return
        if after_step <= 0:
            self.path.unlink()
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= after_step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: dict[str, Any], prompts: list[int] | None = None) -> None:
        if not metrics and prompts is None:
            return
        record = {"step": step, **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
        if prompts is not None:
            record["prompts"] = prompts
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key in ("step", "prompts"):
                continue
            if self.tb is not None:
                self.tb.add_scalar(key, value, step)
        if self.tb is not None:
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in record.items() if k != "prompts"}, step=step)
        if self.bar is not None and prompts is not None:
            self.bar.n = step
            shown = {k.split("/")[-1]: f"{record[k]:.3g}" for k in ("reward/mean", "rollout/accuracy", "time/step_s") if k in record}
            self.bar.set_postfix(shown)
            self.bar.refresh()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.bar is not None:
            self.bar.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
