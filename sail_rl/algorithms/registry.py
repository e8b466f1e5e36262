"""Registries for the two places users extend the RL math: advantage estimators and policy losses.

    @register_advantage("my_estimator")
    def my_estimator(rewards, group_ids, response_mask): ...

A name is registered once; a second registration under the same name is an error, and an
unknown name is a `ConfigError` listing the valid ones with the nearest as a suggestion.

>>> get_advantage("grpo").__name__
'grpo_advantages'
>>> get_policy_loss("ppo_clp")
Traceback (most recent call last):
...
sail_rl.errors.ConfigError: unknown policy_loss 'ppo_clp'; did you mean 'ppo_clip'? valid: gspo, ppo_clip
"""

from __future__ import annotations

import difflib
from typing import Callable, TypeVar

from sail_rl.errors import ConfigError

F = TypeVar("F", bound=Callable)


class Registry:
    """Name -> function, for one kind of plug-in (`kind` is the recipe key that names it)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._fns: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            if name in self._fns:
                old = self._fns[name]
                raise ConfigError(
                    f"{self.kind} '{name}' is already registered by {old.__module__}.{old.__qualname__}; "
                    f"register {fn.__qualname__} under another name"
                )
            self._fns[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> Callable:
        if name not in self._fns:
            valid = sorted(self._fns)
            match = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
            hint = f"did you mean '{match[0]}'? " if match else ""
            raise ConfigError(f"unknown {self.kind} '{name}'; {hint}valid: {', '.join(valid)}")
        return self._fns[name]

    def names(self) -> list[str]:
        return sorted(self._fns)

    def __contains__(self, name: str) -> bool:
        return name in self._fns


ADVANTAGES = Registry("advantage_estimator")
POLICY_LOSSES = Registry("policy_loss")


_GROUP_RELATIVE: set[str] = set()


def register_advantage(name: str, group_relative: bool = False) -> Callable[[F], F]:
    """Decorator: register an advantage estimator under `name` (the `advantage_estimator` key).

    `group_relative`: a sequence's advantage is measured against the other rollouts of its
    prompt, so with one rollout per prompt every advantage is 0 and a recipe must refuse it.
    """
    def decorator(fn: F) -> F:
        ADVANTAGES.register(name)(fn)
        if group_relative:
            _GROUP_RELATIVE.add(name)
        return fn

    return decorator


def is_group_relative(name: str) -> bool:
    return name in _GROUP_RELATIVE


def register_policy_loss(name: str) -> Callable[[F], F]:
    """Decorator: register a policy loss under `name` (the `policy_loss` key)."""
    return POLICY_LOSSES.register(name)


def get_advantage(name: str) -> Callable:
    return ADVANTAGES.get(name)


def get_policy_loss(name: str) -> Callable:
    return POLICY_LOSSES.get(name)


def advantage_names() -> list[str]:
    return ADVANTAGES.names()


def policy_loss_names() -> list[str]:
    return POLICY_LOSSES.names()
