"""Reward registry, `path/to/file.py:function` plug-ins, and the recipe config.

A recipe names its rewards by registered name or by file path (relative to the working
directory), with their weights and how they combine:

    rewards:
      - {name: accuracy, weight: 0.8}
      - {path: my_rewards.py:score, weight: 0.2, style: trl, kwargs: {scale: 2}, timeout_s: 30}
    reward_combine: weighted_sum

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
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional

from sail_rl.config import absolute_path
from sail_rl.errors import ConfigError, RewardError

from rewards.contract import REGISTERED, STYLE_MARKER, STYLES, check_signature, register_reward  # noqa: F401  (register_reward: also importable from here)

ROLES = ("answer", "think", "judge", "format")
# Roles of the built-in rewards in the SAIL-RL product; a spec's `role` overrides these.
DEFAULT_ROLES = {"accuracy": "answer", "llm_verifier": "answer", "think_quality": "think",
                 "judging": "judge", "format": "format"}
DEFAULT_TIMEOUT_S = 120.0


def registered_names() -> list[str]:
    _load_builtins()
    return sorted(REGISTERED)


def _registered(name: str) -> tuple[Callable, str]:
    _load_builtins()
    if name not in REGISTERED:
        hint = difflib.get_close_matches(name, list(REGISTERED), n=1, cutoff=0.5)
        guess = f"did you mean '{hint[0]}'? " if hint else ""
        raise RewardError(
            f"unknown reward '{name}'; {guess}valid names: {', '.join(sorted(REGISTERED))} "
            "(or give path: file.py:function)"
        )
    return REGISTERED[name]


def get_reward(name: str) -> Callable:
    """The reward registered as `name`; RewardError with the nearest and all valid names."""
    return _registered(name)[0]


def _load_builtins() -> None:
    import rewards.builtin  # noqa: F401  (registers the built-in rewards; it imports the contract, not this module)


def absolute_reward_path(ref: str) -> str:
    """`file.py:function` with the file made absolute; a relative file starts at the working directory."""
    if ":" not in ref:
        raise RewardError(f"reward path '{ref}' has no function; write it as path/to/file.py:function_name")
    file_part, fn_name = ref.rsplit(":", 1)
    return f"{absolute_path(file_part)}:{fn_name}"


def load_reward_path(ref: str) -> tuple[Callable, str | None]:
    """Load `path/to/file.py:function` (a relative path starts at the working directory).

    Returns the function and its module's `REWARD_STYLE` marker (None without one).
    """
    ref_abs = absolute_reward_path(ref)
    file_part, fn_name = ref_abs.rsplit(":", 1)
    path = Path(file_part)
    if not path.is_file():
        raise RewardError(
            f"reward '{ref}': file not found: {path}; fix the path (a relative path starts at the directory "
            "you run sail-rl from)"
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
        except BaseException as exc:  # SyntaxError, ImportError, SystemExit from a script...
            del sys.modules[module_name]
            where = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
            reason = exc.msg if isinstance(exc, SyntaxError) else exc
            raise RewardError(
                f"reward '{ref}': importing {path}{where} failed: {type(exc).__name__}: {reason}; fix the file"
            ) from exc
    if not hasattr(module, fn_name):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise RewardError(
            f"reward '{ref}': {path.name} defines no '{fn_name}'; callables there: "
            f"{', '.join(defined) or 'none'}"
        )
    fn = getattr(module, fn_name)
    if not callable(fn):
        raise RewardError(f"reward '{ref}': '{fn_name}' is a {type(fn).__name__}, not a function; point at a function")
    marker = getattr(module, STYLE_MARKER, None)
    if marker is not None and marker not in STYLES:
        raise RewardError(f"reward '{ref}': {path.name} sets {STYLE_MARKER} = {marker!r}; use one of {', '.join(STYLES)}")
    return fn, marker


@dataclass
class LoadedReward:
    """A reward ready to call: the function and its calling style."""

    fn: Callable
    style: str


@dataclass
class RewardSpec:
    """One reward in a recipe: a registered `name` or a `path: file.py:function` (exactly one).

    `style` says how the function is called (trl | verl | easyr1 | sailrl, see
    rewards/contract.py; default: the module's `REWARD_STYLE`, else trl for a path, the
    registered style for a name). `label` names it in metrics (default: the name, or the
    function name); `role` places it in the SAIL-RL product (answer/think/judge/format;
    built-ins have default roles). `timeout_s` bounds one call on one batch (a prompt's
    rollouts). `on_error` "zero" scores a sample whose reward raised or ran out of time as
    0.0 (counted) instead of stopping the run.
    """

    name: Optional[str] = None
    path: Optional[str] = None
    weight: float = 1.0
    kwargs: dict = field(default_factory=dict)
    style: Optional[Literal["trl", "verl", "easyr1", "sailrl"]] = None
    timeout_s: float = DEFAULT_TIMEOUT_S
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
        """Check the settings, make a relative `path` absolute (from the working directory), and
        load the function and check its signature against its style: every plug-in mistake is a
        ConfigError here, at recipe load."""
        if (self.name is None) == (self.path is None):
            raise ConfigError(
                "a reward needs exactly one of 'name' (registered reward) or 'path' (file.py:function), "
                f"got name={self.name!r}, path={self.path!r}"
            )
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ConfigError(f"reward '{self.label}': weight must be a finite number >= 0, got {self.weight}")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(f"reward '{self.label}': timeout_s must be a positive number of seconds, got {self.timeout_s}")
        if not isinstance(self.kwargs, dict):
            raise ConfigError(f"reward '{self.label}': kwargs must be a mapping, got {self.kwargs!r}")
        try:
            self.load()
        except RewardError as exc:
            raise ConfigError(str(exc)) from None
        if self.path is not None:  # absolute once, so Ray actors (any working directory) find the file
            self.path = absolute_reward_path(self.path)

    @property
    def resolved_role(self) -> str | None:
        return self.role or DEFAULT_ROLES.get(self.name or "")

    def load(self) -> LoadedReward:
        """The function and its style; RewardError when it cannot be loaded or called in that style."""
        if self.name is not None:
            fn, style = _registered(self.name)
            if self.style is not None and self.style != style:
                raise RewardError(
                    f"reward '{self.label}': '{self.name}' is registered with style {style}, the recipe says "
                    f"style: {self.style}; drop style: from the recipe"
                )
        else:
            fn, marker = load_reward_path(self.path)
            if self.style is not None and marker is not None and self.style != marker:
                raise RewardError(
                    f"reward '{self.label}': the recipe says style: {self.style} but {self.path.rsplit(':', 1)[0]} "
                    f"sets {STYLE_MARKER} = {marker!r}; keep one of them"
                )
            style = self.style or marker or "trl"
        check_signature(fn, style, self.kwargs, self.label)
        return LoadedReward(fn, style)


def _default_rewards() -> list[RewardSpec]:
    return [RewardSpec(name="accuracy", weight=0.9), RewardSpec(name="format", weight=0.1)]


@dataclass
class RewardsConfig:
    """How rewards combine into one scalar per sample.

    `weighted_sum` (TRL's rule): sum(w_i * r_i) over the rewards that apply to the sample; a
    `None` reward adds nothing and the others keep their weights. The weights must sum to 1.
    `sail_rl_product` (`rewards.scorer.sail_rl_product`): alpha * answer * (floor + (1 - floor) *
    judge * think) + (1 - alpha) * format, roles from `role` or the built-in names (a `None` factor
    counts as 1, a `None` term drops out); rewards with no role are added on top with their weight
    (e.g. an overlong penalty). `floor` keeps a right answer above a wrong one whatever the judge
    and think factors say; alpha * floor must exceed 1 - alpha so format never outweighs correctness.
    A sample on which no reward applies gets 0.0 and is counted in `reward/not_applicable`.
    """

    rewards: list[RewardSpec] = field(default_factory=_default_rewards)
    combine: Literal["weighted_sum", "sail_rl_product"] = "weighted_sum"
    alpha: float = 0.9
    floor: float = 0.5  # sail_rl_product: the least share of alpha a right answer keeps

    def validate(self) -> None:
        if not self.rewards:
            raise ConfigError("no rewards configured; add e.g. rewards: [{name: accuracy, weight: 1.0}]")
        for spec in self.rewards:
            spec.validate()
        labels = [s.label for s in self.rewards]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ConfigError(f"reward label(s) {', '.join(dupes)} used twice; give one of them label: <other name>")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"rewards alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 <= self.floor <= 1.0:
            raise ConfigError(f"reward_floor must be in [0, 1], got {self.floor}")
        if self.combine == "sail_rl_product" and self.alpha * self.floor <= 1 - self.alpha:
            raise ConfigError(
                f"reward_alpha {self.alpha:g} x reward_floor {self.floor:g} = {self.alpha * self.floor:g} is not above "
                f"1 - reward_alpha = {1 - self.alpha:g}: a wrong answer in the right format would outscore a right one; "
                "raise reward_alpha or reward_floor")
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
                        f"reward_combine: sail_rl_product needs a reward with role '{role}'; add one "
                        f"(e.g. {{name: {'accuracy' if role == 'answer' else 'format'}}}) or set role: {role}"
                    )
            for role in ROLES:
                if roles.count(role) > 1:
                    raise ConfigError(f"reward_combine: sail_rl_product has two rewards with role '{role}'; keep one")
