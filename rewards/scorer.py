"""`RewardScorer`: run the configured rewards on a batch and combine them per sample.

    >>> scorer = RewardScorer([RewardSpec(name="accuracy", weight=0.9), RewardSpec(name="format", weight=0.1)])
    >>> result = scorer.score([RewardInput("1+1?", "<think>1+1=2</think> \\\\boxed{2}", "2"),
    ...                        RewardInput("1+1?", "\\\\boxed{3}", "2")])
    >>> [round(t, 2) for t in result.totals], result.components["format"]
    ([1.0, 0.0], [1.0, 0.0])

Each reward call runs in its own daemon thread and is given up after the reward's
`timeout_s`: a reward that sleeps or loops cannot stall the run, whichever thread or process
the scorer runs in (the abandoned thread is left to finish on its own). A timeout follows the
reward's `on_error` policy and is counted in `reward/<label>/timeouts`.

`reward_metrics(results)` owns the reward metrics of a step: computed once over every
sample the step scored.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from sail_rl.errors import RewardError

from rewards.contract import RewardContractError, RewardInput, call_reward, read_outputs
from rewards.registry import LoadedReward, RewardsConfig, RewardSpec


@dataclass
class ScoreResult:
    """Per-sample totals [batch], per-component values (label -> [batch], None = n/a), and
    event counts (`<label>/errors`, `<label>/timeouts`: samples zeroed by on_error)."""

    totals: list[float]
    components: dict[str, list[float | None]]
    counts: dict[str, float] = field(default_factory=dict)
    not_applicable: int = 0  # samples on which no reward applied (total set to 0.0)

    @property
    def metrics(self) -> dict[str, float]:
        return reward_metrics([self])


class RewardTimeout(RewardError):
    """A reward call that ran past its spec's `timeout_s`."""


def call_with_time_limit(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """`fn()` in a daemon thread; RewardTimeout after `timeout_s` (the thread is abandoned)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"reward-call {what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise RewardTimeout(f"{what} took longer than its timeout_s={timeout_s:g}")
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class _Reward:
    spec: RewardSpec
    loaded: LoadedReward


def sail_rl_product(answer: float | None, judge: float | None, think: float | None, fmt: float | None,
                    alpha: float = 0.9, floor: float = 0.5) -> float | None:
    """SAIL-RL's combination: alpha * answer * (floor + (1 - floor) * judge * think) + (1 - alpha) * format.

    The answer gates the first term; the judging and thinking rewards scale it between `floor` and 1,
    so a right answer with a poor think-or-not decision or thought still scores above a wrong one
    (at least alpha * floor against 0), and format cannot outweigh correctness while
    alpha * floor > 1 - alpha (RewardsConfig refuses other settings). A `None` factor (not
    applicable: no label, no thought) counts as 1; a `None` answer with no judge/think and a
    `None` format drop their terms; nothing applicable gives None.

    >>> [round(sail_rl_product(*r), 4) for r in [(1, 1, 1, 1), (0, 1, 1, 1), (1, 0, None, 0)]]
    [1.0, 0.1, 0.45]
    """
    quality = [v for v in (judge, think) if v is not None]
    if answer is None and not quality:
        product = None
    else:
        product = (1.0 if answer is None else answer) * (floor + (1 - floor) * math.prod(quality) if quality else 1.0)
    if product is None or fmt is None:
        return fmt if product is None else product  # one term not applicable: the other alone (or None)
    return alpha * product + (1 - alpha) * fmt


class RewardScorer:
    """Scores batches of `RewardInput` with a list of `RewardSpec`s (a plain worker, no Ray)."""

    def __init__(self, specs: list[RewardSpec] | RewardsConfig, combine: str = "weighted_sum", alpha: float = 0.9,
                 floor: float = 0.5) -> None:
        config = specs if isinstance(specs, RewardsConfig) else RewardsConfig(list(specs), combine, alpha, floor)
        config.validate()  # loads and checks every reward
        self.config = config
        self._rewards = [_Reward(spec, spec.load()) for spec in config.rewards]

    # ------------------------------------------------------------ running one reward

    def _call(self, item: _Reward, inputs: list[RewardInput]) -> list:
        spec, loaded = item.spec, item.loaded
        what = f"reward '{spec.label}' on a batch of {len(inputs)}"
        return call_with_time_limit(
            lambda: call_reward(loaded.fn, loaded.style, inputs, dict(spec.kwargs), spec.label), spec.timeout_s, what)

    def _run(self, item: _Reward, inputs: list[RewardInput], counts: dict[str, float], index: int = 0) -> list:
        """Raw outputs [batch]. A batch that raised is retried sample by sample to find the culprit
        (`index`: the sample's place in the batch); a timeout or a failing sample follows
        `on_error` (raise, or 0.0 counted)."""
        spec = item.spec
        try:
            return self._call(item, inputs)
        except RewardContractError:
            raise
        except RewardTimeout as exc:
            if spec.on_error == "raise":
                raise RewardTimeout(f"{exc}; speed it up, raise its timeout_s or set on_error: zero") from None
            counts[f"{spec.label}/timeouts"] += len(inputs)
            return [0.0] * len(inputs)
        except RewardError:  # a judge that is down: retrying per sample would only multiply its retries
            if spec.on_error == "raise":
                raise
            counts[f"{spec.label}/errors"] += len(inputs)
            return [0.0] * len(inputs)
        except Exception as exc:
            if len(inputs) > 1:
                return [self._run(item, [sample], counts, i)[0] for i, sample in enumerate(inputs)]
            if spec.on_error == "raise":
                pid = inputs[0].extra.get("pid")
                where = f" (pid {pid})" if pid is not None else ""
                raise RewardError(f"reward '{spec.label}' raised on sample {index}{where}: {type(exc).__name__}: "
                                  f"{exc}; fix the reward or set on_error: zero") from exc
            counts[f"{spec.label}/errors"] += 1
            return [0.0]

    # ------------------------------------------------------------ combining

    def _combine_sample(self, values: dict[str, float | None]) -> float | None:
        specs = [item.spec for item in self._rewards]
        if self.config.combine == "weighted_sum":  # TRL: nansum of the weighted rewards
            applicable = [(s.weight, values[s.label]) for s in specs if values[s.label] is not None]
            return sum(w * v for w, v in applicable) if applicable else None
        by_role = {s.resolved_role: values[s.label] for s in specs if s.resolved_role}
        total = sail_rl_product(by_role.get("answer"), by_role.get("judge"), by_role.get("think"), by_role.get("format"),
                                self.config.alpha, self.config.floor)
        extras = [(s.weight, values[s.label]) for s in specs if not s.resolved_role and values[s.label] is not None]
        if extras:
            total = (total or 0.0) + sum(w * v for w, v in extras)
        return total

    def score(self, inputs: list[RewardInput]) -> ScoreResult:
        """Totals, components and counts for one batch (see RewardsConfig for the combination)."""
        components: dict[str, list] = {}
        counts: dict[str, float] = {}
        for item in self._rewards:
            label = item.spec.label
            counts[f"{label}/errors"] = counts[f"{label}/timeouts"] = 0.0
            raw = self._run(item, inputs, counts)
            output = read_outputs(raw, item.loaded.style, label, inputs)
            components[label] = output.scores
            components.update({f"{label}/{key}": column for key, column in output.parts.items()})
        totals, not_applicable = [], 0
        for i in range(len(inputs)):
            total = self._combine_sample({item.spec.label: components[item.spec.label][i] for item in self._rewards})
            not_applicable += total is None
            totals.append(0.0 if total is None else float(total))
        return ScoreResult(totals, components, counts, not_applicable)


# ---------------------------------------------------------------- metrics


def reward_metrics(results: list[ScoreResult]) -> dict[str, float]:
    """A step's reward metrics over every sample in `results` (each a scored batch).

    `reward/mean`, `reward/std` (totals), `reward/<component>/mean|std|not_applicable`,
    `reward/<label>/errors|timeouts` (samples zeroed by on_error), `reward/not_applicable`
    (samples no reward applied to), `rollout/accuracy` (the `accuracy` component's mean) and
    `reward/mean_when_correct|wrong` (the mean total over samples the accuracy reward calls right /
    wrong, where there are any).
    """
    out: dict[str, float] = {}
    totals = [t for r in results for t in r.totals]
    out["reward/mean"], out["reward/std"] = _mean(totals), _std(totals)
    out["reward/not_applicable"] = float(sum(r.not_applicable for r in results))
    names = list(dict.fromkeys(k for r in results for k in r.components))
    for name in names:
        column = [v for r in results for v in r.components.get(name, [None] * len(r.totals))]
        present = [v for v in column if v is not None]
        out[f"reward/{name}/mean"], out[f"reward/{name}/std"] = _mean(present), _std(present)
        out[f"reward/{name}/not_applicable"] = float(len(column) - len(present))
    for key in dict.fromkeys(k for r in results for k in r.counts):
        out[f"reward/{key}"] = float(sum(r.counts.get(key, 0.0) for r in results))
    if "accuracy" in names:
        out["rollout/accuracy"] = out["reward/accuracy/mean"]
        # does the total track correctness? (mixed rewards: the judge and think factors must not hide it)
        pairs = [(t, a) for r in results for t, a in zip(r.totals, r.components["accuracy"]) if a is not None]
        for key, right in (("reward/mean_when_correct", True), ("reward/mean_when_wrong", False)):
            chosen = [t for t, a in pairs if (a >= 1.0) == right]
            if chosen:
                out[key] = _mean(chosen)
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _std(values: list[float]) -> float:
    if not values:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
