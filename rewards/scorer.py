"""`RewardScorer`: run the configured rewards on a batch and combine them per sample.

    >>> scorer = RewardScorer([RewardSpec(name="accuracy", weight=0.9), RewardSpec(name="format", weight=0.1)])
    >>> result = scorer.score([RewardInput("1+1?", "<think>1+1=2</think> \\\\boxed{2}", "2"),
    ...                        RewardInput("1+1?", "\\\\boxed{3}", "2")])
    >>> [round(t, 2) for t in result.totals], result.components["format"]
    ([1.0, 0.0], [1.0, 0.0])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

from sail_rl.errors import ConfigError, RewardError

from rewards.contract import RewardContractError, RewardInput, call_reward, reward_style
from rewards.registry import RewardsConfig, RewardSpec


@dataclass
class ScoreResult:
    """Per-sample totals [batch], per-component values (label -> [batch], None = n/a), metrics."""

    totals: list[float]
    components: dict[str, list[float | None]]
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class _Loaded:
    spec: RewardSpec
    fn: Callable
    style: str


def _to_float(value: Any, label: str, index: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
        raise RewardContractError(
            f"reward '{label}' returned {type(value).__name__} {value!r:.60} for sample {index}; "
            "return a float (or None for not applicable)"
        )
    return float(value)


class RewardScorer:
    """Scores batches of `RewardInput` with a list of `RewardSpec`s (a plain worker, no Ray)."""

    def __init__(
        self,
        specs: list[RewardSpec] | RewardsConfig,
        combine: str = "weighted_sum",
        alpha: float = 0.9,
        base_dir: str | None = None,
    ) -> None:
        config = specs if isinstance(specs, RewardsConfig) else RewardsConfig(list(specs), combine, alpha, base_dir)
        for spec in config.rewards:
            spec.validate()
            if not isinstance(spec.kwargs, dict):
                raise ConfigError(f"reward '{spec.label}': kwargs must be a mapping, got {spec.kwargs!r}")
        config.validate()
        self.config = config
        self._rewards = []
        for spec in config.rewards:
            fn = spec.load(config.base_dir)
            self._rewards.append(_Loaded(spec, fn, reward_style(fn, spec.label)))

    # ------------------------------------------------------------ running one reward

    def _call(self, item: _Loaded, inputs: list[RewardInput]) -> list:
        label = item.spec.label
        outputs = call_reward(item.fn, item.style, inputs, dict(item.spec.kwargs), label)
        if not isinstance(outputs, (list, tuple)):
            raise RewardContractError(
                f"reward '{label}' returned {type(outputs).__name__}, expected a list of {len(inputs)} values"
            )
        if len(outputs) != len(inputs):
            raise RewardContractError(f"reward '{label}' returned {len(outputs)} values for a batch of {len(inputs)}; return one per sample")
        return list(outputs)

    def _run(self, item: _Loaded, inputs: list[RewardInput], errors: list[int]) -> list:
        """Raw outputs [batch]; a failing batch is retried sample by sample to find the culprit."""
        try:
            return self._call(item, inputs)
        except RewardError as exc:
            if item.spec.on_error == "raise" or isinstance(exc, RewardContractError):
                raise
            errors[0] += len(inputs)
            return [0.0] * len(inputs)
        except Exception:
            if len(inputs) == 1:
                raise
        outputs = []
        for i, sample in enumerate(inputs):
            try:
                outputs.append(self._call(item, [sample])[0])
            except Exception as exc:
                if item.spec.on_error == "raise":
                    raise RewardError(
                        f"reward '{item.spec.label}' raised on sample {i}: {type(exc).__name__}: {exc}; "
                        "fix the reward or set on_error: zero"
                    ) from exc
                errors[0] += 1
                outputs.append(0.0)
        return outputs

    def _component_values(self, item: _Loaded, inputs: list[RewardInput], metrics: dict) -> dict[str, list]:
        """label -> [batch] values; a dict-returning reward also gives label/key entries."""
        label = item.spec.label
        errors = [0]
        try:
            raw = self._run(item, inputs, errors)
        except RewardError:
            raise
        except Exception as exc:  # a one-sample batch that raised
            if item.spec.on_error == "raise":
                raise RewardError(
                    f"reward '{label}' raised on sample 0: {type(exc).__name__}: {exc}; fix the reward or set on_error: zero"
                ) from exc
            errors[0] += len(inputs)
            raw = [0.0] * len(inputs)
        scores: list[float | None] = []
        parts_by_key: dict[str, list] = {}
        for i, out in enumerate(raw):
            if not isinstance(out, dict):
                scores.append(_to_float(out, label, i))
                continue
            parts = {k: _to_float(v, f"{label}/{k}", i) for k, v in out.items()}
            for key, value in parts.items():
                if key != "score":
                    parts_by_key.setdefault(key, [None] * len(raw))[i] = value
            present = [v for v in parts.values() if v is not None]
            scores.append(parts["score"] if "score" in parts else (sum(present) / len(present) if present else None))
        values = {label: scores, **{f"{label}/{key}": column for key, column in parts_by_key.items()}}
        metrics[f"reward/{label}/errors"] = float(errors[0])
        return values

    # ------------------------------------------------------------ combining

    def _combine_sample(self, values: dict[str, float | None]) -> float | None:
        specs = [item.spec for item in self._rewards]
        if self.config.combine == "weighted_sum":
            applicable = [(s.weight, values[s.label]) for s in specs if values[s.label] is not None]
            weight = sum(w for w, _ in applicable)
            return sum(w * v for w, v in applicable) / weight if weight > 0 else None
        alpha = self.config.alpha
        by_role = {s.resolved_role: values[s.label] for s in specs if s.resolved_role}
        factors = [by_role.get(role) for role in ("judge", "think", "answer")]
        product = math.prod(f for f in factors if f is not None) if any(f is not None for f in factors) else None
        fmt = by_role.get("format")
        if product is None and fmt is None:
            total = None
        elif product is None or fmt is None:  # one term not applicable: the other alone
            total = product if fmt is None else fmt
        else:
            total = alpha * product + (1 - alpha) * fmt
        extras = [(s.weight, values[s.label]) for s in specs if not s.resolved_role and values[s.label] is not None]
        if extras:
            total = (total or 0.0) + sum(w * v for w, v in extras)
        return total

    def score(self, inputs: list[RewardInput]) -> ScoreResult:
        """Totals, components and metrics for one batch (see RewardsConfig for the combination)."""
        metrics: dict[str, float] = {}
        components: dict[str, list] = {}
        for item in self._rewards:
            components.update(self._component_values(item, inputs, metrics))
        totals = []
        not_applicable = 0
        for i in range(len(inputs)):
            total = self._combine_sample({item.spec.label: components[item.spec.label][i] for item in self._rewards})
            not_applicable += total is None
            totals.append(0.0 if total is None else float(total))
        for label, column in components.items():
            present = [v for v in column if v is not None]
            metrics[f"reward/{label}/mean"] = _mean(present)
            metrics[f"reward/{label}/std"] = _std(present)
            metrics[f"reward/{label}/not_applicable"] = float(len(column) - len(present))
        metrics["reward/total/mean"] = _mean(totals)
        metrics["reward/total/std"] = _std(totals)
        metrics["reward/total/not_applicable"] = float(not_applicable)
        return ScoreResult(totals, components, metrics)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _std(values: list[float]) -> float:
    if not values:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
