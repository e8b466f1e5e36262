"""Reward registry, `path/to/file.py:function` plug-ins, and the recipe config.

A recipe names its rewards by registered name or by file path:

    reward:
      combine: weighted_sum
      rewards:
        - {name: accuracy, weight: 0.8}
        - {path: my_rewards.py:score, weight: 0.2, kwargs: {scale: 2}}

    >>> from sail_rl.config import from_dict
    >>> cfg = from_dict(RewardsConfig, {"rewards": [{"name": "accuracy", "weight": 0.9},
    ...                                             {"name": "format", "weight": 0.1}]})
    >>> [(s.label, s.weight) for s in cfg.rewards]
    [('accuracy', 0.9), ('format', 0.1)]
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional

from sail_rl.errors import ConfigError, RewardError

from rewards.contract import reward_style

_REGISTRY: dict[str, Callable] = {}
ROLES = ("answer", "think", "judge", "format")
# Roles of the built-in rewards in the SAIL-RL product; a spec's `role` overrides these.
DEFAULT_ROLES = {"accuracy": "answer", "llm_verifier": "answer", "think_quality": "think",
                 "judging": "judge", "format": "format"}


def register_reward(name: str) -> Callable[[Callable], Callable]:
    """Decorator: make `fn` available to recipes as `{name: <name>}`. Duplicates are errors."""

    def decorator(fn: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            old = _REGISTRY[name]
            raise RewardError(
                f"reward '{name}' is already registered (by {old.__module__}.{old.__qualname__}); "
                f"pick another name; registered: {', '.join(sorted(_REGISTRY))}"
            )
        reward_style(fn, name)  # reject a wrong signature at definition time
        _REGISTRY[name] = fn
        return fn

    return decorator


def registered_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_reward(name: str) -> Callable:
    """The reward registered as `name`; RewardError with the nearest and all valid names."""
    _load_builtins()
    if name not in _REGISTRY:
        hint = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.5)
        guess = f"did you mean '{hint[0]}'? " if hint else ""
        raise RewardError(
            f"unknown reward '{name}'; {guess}valid names: {', '.join(sorted(_REGISTRY))} "
            "(or give path: file.py:function)"
        )
    return _REGISTRY[name]


def _load_builtins() -> None:
    import rewards.builtin  # noqa: F401  (registers the built-in rewards)


def load_reward_path(ref: str, base_dir: str | Path | None = None) -> Callable:
    """Load `path/to/file.py:function` (relative paths from `base_dir`, else the cwd)."""
    if ":" not in ref:
        raise RewardError(f"reward path '{ref}' has no function; write it as path/to/file.py:function_name")
    file_part, fn_name = ref.rsplit(":", 1)
    path = Path(file_part).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        raise RewardError(
            f"reward '{ref}': file not found: {path.resolve()}; fix the path (relative paths start "
            "at the directory you run from)"
        )
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"sail_rl_user_reward_{path.stem}_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # picklable functions, for process pools
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise RewardError(f"reward '{ref}': importing {path} failed: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, fn_name):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise RewardError(
            f"reward '{ref}': {path.name} defines no '{fn_name}'; callables there: "
            f"{', '.join(defined) or 'none'}"
        )
    fn = getattr(module, fn_name)
    if not callable(fn):
        raise RewardError(f"reward '{ref}': '{fn_name}' is a {type(fn).__name__}, not a function; point at a function")
    reward_style(fn, ref)
    return fn


@dataclass
class RewardSpec:
    """One reward in a recipe: a registered `name` or a `path: file.py:function` (exactly one).

    `label` names it in metrics (default: the name, or the function name); `role` places it in
    the SAIL-RL product (answer/think/judge/format; built-ins have default roles); `on_error`
    "zero" scores a sample whose reward raised as 0.0 (counted) instead of stopping the run.
    """

    name: Optional[str] = None
    path: Optional[str] = None
    weight: float = 1.0
    kwargs: dict = field(default_factory=dict)
    on_error: Literal["raise", "zero"] = "raise"
    role: Optional[Literal["answer", "think", "judge", "format"]] = None
    label: Optional[str] = None

    def __post_init__(self) -> None:
        if self.label is None:
            if self.name:
                self.label = self.name
            elif self.path:
                self.label = self.path.rsplit(":", 1)[-1]

    def validate(self) -> None:
        if (self.name is None) == (self.path is None):
            raise ConfigError(
                "a reward needs exactly one of 'name' (registered reward) or 'path' (file.py:function), "
                f"got name={self.name!r}, path={self.path!r}"
            )
        if not self.weight >= 0:
            raise ConfigError(f"reward '{self.label}': weight must be >= 0, got {self.weight}")
        if self.name is not None:
            try:
                get_reward(self.name)
            except RewardError as exc:
                raise ConfigError(str(exc)) from None
        if self.path is not None and ":" not in self.path:
            raise ConfigError(f"reward path '{self.path}' has no function; write it as path/to/file.py:function_name")

    @property
    def resolved_role(self) -> str | None:
        return self.role or DEFAULT_ROLES.get(self.name or "")

    def load(self, base_dir: str | Path | None = None) -> Callable:
        return get_reward(self.name) if self.name else load_reward_path(self.path, base_dir)


def _default_rewards() -> list[RewardSpec]:
    return [RewardSpec(name="accuracy", weight=0.9), RewardSpec(name="format", weight=0.1)]


@dataclass
class RewardsConfig:
    """How rewards combine into one scalar per sample.

    `weighted_sum`: sum(w_i * r_i) over the rewards that apply to the sample, divided by the
    sum of those weights (a `None` reward drops out and the rest are renormalised); the
    weights must sum to 1. `sail_rl_product`: alpha * (judge * think * answer)
    + (1 - alpha) * format, roles from `role` or the built-in names; rewards with no role
    are added on top with their weight (e.g. an overlong penalty).
    """

    rewards: list[RewardSpec] = field(default_factory=_default_rewards)
    combine: Literal["weighted_sum", "sail_rl_product"] = "weighted_sum"
    alpha: float = 0.9
    base_dir: Optional[str] = None  # where relative reward paths start (default: cwd)

    def validate(self) -> None:
        if not self.rewards:
            raise ConfigError("no rewards configured; add e.g. rewards: [{name: accuracy, weight: 1.0}]")
        labels = [s.label for s in self.rewards]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ConfigError(f"reward label(s) {', '.join(dupes)} used twice; give one of them label: <other name>")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"rewards alpha must be in [0, 1], got {self.alpha}")
        if self.combine == "weighted_sum":
            total = sum(s.weight for s in self.rewards)
            if abs(total - 1.0) > 1e-6:
                terms = " + ".join(f"{s.label} {s.weight:g}" for s in self.rewards)
                raise ConfigError(
                    f"reward weights sum to {total:g} ({terms}); make them sum to 1 "
                    f"(e.g. divide each by {total:g})"
                )
        else:
            roles = [s.resolved_role for s in self.rewards]
            for role in ("answer", "format"):
                if role not in roles:
                    raise ConfigError(
                        f"combine: sail_rl_product needs a reward with role '{role}'; add one "
                        f"(e.g. {{name: {'accuracy' if role == 'answer' else 'format'}}}) or set role: {role}"
                    )
            for role in ROLES:
                if roles.count(role) > 1:
                    raise ConfigError(f"combine: sail_rl_product has two rewards with role '{role}'; keep one")
