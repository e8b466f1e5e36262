"""Per-step metrics: `metrics.jsonl` (one line a step), TensorBoard, wandb, a progress bar."""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Any

from rewards.layout import thinks
from sail_rl.errors import DataError

log = logging.getLogger(__name__)


def group_rollout_metrics(groups) -> dict[str, float]:
    """The share of all-equal groups, the mean response length and the think rate (the share of
    responses that open with `<think>`: what `prompt_mode: auto` lets the policy decide; reward
    metrics: rewards.reward_metrics).

    >>> from types import SimpleNamespace as S
    >>> rollouts = [S(num_response_tokens=n, text=t) for n, t in [(9, "<think>a</think> \\boxed{1}"), (3, "\\boxed{1}")]]
    >>> group_rollout_metrics([S(informative=True, rollouts=rollouts)])
    {'rollout/groups_all_equal': 0.0, 'rollout/response_tokens_mean': 6.0, 'rollout/think_rate': 0.5}
    """
    out: dict[str, float] = {}
    responses = [r for g in groups for r in g.rollouts]
    if groups:
        out["rollout/groups_all_equal"] = sum(not g.informative for g in groups) / len(groups)
        out["rollout/response_tokens_mean"] = statistics.fmean(r.num_response_tokens for r in responses) if responses else 0.0
    if responses:
        out["rollout/think_rate"] = sum(thinks(r.text) for r in responses) / len(responses)
    return out


def held_out_metrics(responses: dict[str, list[dict]], samples, modes: list[str], keys: tuple[str, ...]) -> dict[str, float]:
    """`eval/KEY` over every held-out prompt that has responses, and `eval/MODE/KEY` per prompt mode
    when the prompts mix modes (data.prompt_mode mixed): e.g. eval/think/accuracy, eval/direct/think_rate.
    `samples[i]` was asked in `modes[i]`; `keys` are eval.scoring metrics (rates in [0, 1])."""
    from eval.scoring import score

    subsets = {"": [s for s in samples if s.pid in responses]}
    if len(set(modes)) > 1:
        for mode in sorted(set(modes)):
            subsets[f"{mode}/"] = [s for s, m in zip(samples, modes) if m == mode and s.pid in responses]
    out: dict[str, float] = {}
    for prefix, subset in subsets.items():
        if not subset:
            continue
        metrics = score(subset, {s.pid: responses[s.pid] for s in subset}).metrics
        out.update({f"eval/{prefix}{key}": float(metrics[key]) for key in keys if isinstance(metrics.get(key), (int, float))})
    return out


class MetricsLogger:
    def __init__(self, run_dir: str | Path, loggers: list[str], truncate_after_step: int = 0,
                 wandb_project: str | None = None, total_steps: int = 0, progress_bar: bool = True,
                 initial_step: int = 0):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        self._warned_zero_grad = False
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
        kept = [record for record in _read_records(self.path) if record.get("step", 0) <= after_step]
        self.path.write_text("".join(json.dumps(record) + "\n" for record in kept))

    def log(self, step: int, metrics: dict[str, Any], prompts: list[int] | None = None) -> None:
        if not metrics and prompts is None:
            return
        record = {"step": step, **{k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
        if prompts is not None:
            record["prompts"] = prompts
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if record.get("actor/zero_grad_norm_steps", 0) > 0 and not self._warned_zero_grad:
            self._warned_zero_grad = True  # once a run: the count stays in the metrics
            log.warning(
                "step %d: %d optimizer step(s) had a gradient norm of exactly 0 (no learning signal: all "
                "advantages 0, or no trainable weight reached by the loss); counted as actor/zero_grad_norm_steps",
                step, int(record["actor/zero_grad_norm_steps"]),
            )
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
    return _read_records(path) if path.exists() else []


def _read_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl. A torn last line (a crash mid-write) is dropped with a
    warning; a broken line before it is a DataError (the file was edited or damaged)."""
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    records = []
    for position, (number, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if position < len(lines) - 1:
                raise DataError(f"{path}:{number} is not a JSON record; repair or delete that line") from None
            log.warning("%s:%d: dropped a torn last line (the run stopped mid-write): %.60r", path, number, line)
    return records
