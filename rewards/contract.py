"""The reward contract: what a reward function receives and may return.

A reward is a *batch* function. Three signatures are accepted, told apart by inspection:

- native:  `fn(inputs: list[RewardInput], **kwargs) -> list[float | None | dict]`
- TRL:     `fn(prompts, completions, **kwargs)`; dataset columns arrive as keyword lists
  (`solution` and `ground_truth`, `answer_type`, `choices`, `precision`, `images`, and every
  key of `extra`), like TRL's GRPOTrainer passes them.
- per-sample: `fn(sample: RewardInput, **kwargs) -> float | None | dict`, called per sample.

`None` means "not applicable to this sample". A dict gives named components
(`{"score": 0.5, "coherence": 1.0}`); its `"score"` (else the mean of its values) is what the
scorer combines. `async def` rewards are awaited; per-sample coroutines run concurrently.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from sail_rl.errors import RewardError

ANSWER_TYPES = ("integer", "float", "text", "list")
_SAMPLE_PARAM_NAMES = ("sample", "input", "inp", "example", "item")


class RewardContractError(RewardError):
    """A reward that breaks the contract (wrong signature, length or type): never zeroed."""


@dataclass
class RewardInput:
    """One scored sample: the prompt, the model's response and the dataset row it came from.

    `images` are PIL images (may be empty); `extra` holds the dataset's other columns
    (e.g. `category`, `should_think`, `response_tokens`).
    """

    prompt: str
    response: str
    ground_truth: str | None = None
    answer_type: str | None = None
    choices: list[str] | None = None
    precision: int | None = None
    images: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def columns_of(inputs: list[RewardInput]) -> dict[str, list]:
    """Dataset columns as keyword lists, the way TRL passes them to reward functions."""
    columns: dict[str, list] = {
        "solution": [x.ground_truth for x in inputs],
        "ground_truth": [x.ground_truth for x in inputs],
        "answer_type": [x.answer_type for x in inputs],
        "choices": [x.choices for x in inputs],
        "precision": [x.precision for x in inputs],
        "images": [x.images for x in inputs],
    }
    for key in sorted({k for x in inputs for k in x.extra}):
        columns.setdefault(key, [x.extra.get(key) for x in inputs])
    return columns


def reward_style(fn: Callable, label: str) -> str:
    """"native", "trl" or "sample"; RewardError naming `label` when it is none of them."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        raise RewardError(f"reward '{label}': cannot read its signature; make it a plain Python function") from None
    names = list(params)
    if "prompts" in params and "completions" in params:
        return "trl"
    positional = [
        p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if positional:
        first = positional[0]
        hint = _annotation_text(fn, first)
        if first.name == "inputs" or hint.startswith("list"):
            return "native"
        if first.name in _SAMPLE_PARAM_NAMES or hint.endswith("RewardInput"):
            return "sample"
    raise RewardError(
        f"reward '{label}': signature ({', '.join(names)}) is not a reward; write "
        "def fn(inputs: list[RewardInput], **kwargs) -> list[float | None], or TRL-style "
        "def fn(prompts, completions, **kwargs)"
    )


def _annotation_text(fn: Callable, param: inspect.Parameter) -> str:
    try:
        hint = typing.get_type_hints(fn).get(param.name, param.annotation)
    except Exception:  # unresolved string annotations: read them as text
        hint = param.annotation
    if hint is inspect.Parameter.empty:
        return ""
    text = hint if isinstance(hint, str) else getattr(hint, "__name__", str(hint))
    if typing.get_origin(hint) is list:
        text = "list"
    return text.replace("typing.", "")


def _accepted_kwargs(fn: Callable, offered: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return offered
    return {k: v for k, v in offered.items() if k in params}


def run_coroutine(coro: Any) -> Any:
    """Await `coro` from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _gather_samples(fn: Callable, inputs: list[RewardInput], kwargs: dict) -> list:
    async def one(sample: RewardInput) -> Any:
        result = fn(sample, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return list(await asyncio.gather(*(one(x) for x in inputs)))


def call_reward(fn: Callable, style: str, inputs: list[RewardInput], kwargs: dict, label: str) -> list:
    """Call `fn` on a batch in its own style; returns its raw per-sample outputs."""
    if style == "sample":
        if inspect.iscoroutinefunction(fn):
            return run_coroutine(_gather_samples(fn, inputs, kwargs))
        results = [fn(x, **kwargs) for x in inputs]
        if any(inspect.isawaitable(r) for r in results):
            return run_coroutine(_await_all(results))
        return results
    if style == "trl":
        offered = {**columns_of(inputs), **kwargs}
        offered = _accepted_kwargs(fn, offered)
        missing = _missing_required(fn, offered, ("prompts", "completions"))
        if missing:
            raise RewardContractError(
                f"reward '{label}' needs column(s) {', '.join(missing)} that the dataset lacks; "
                "add them to the data or give the parameter a default"
            )
        result = fn(prompts=[x.prompt for x in inputs], completions=[x.response for x in inputs], **offered)
    else:
        result = fn(inputs, **kwargs)
    return run_coroutine(result) if inspect.isawaitable(result) else result


async def _await_all(results: list) -> list:
    return list(await asyncio.gather(*(r if inspect.isawaitable(r) else _value(r) for r in results)))


async def _value(value: Any) -> Any:
    return value


def _missing_required(fn: Callable, offered: dict, given: tuple[str, ...]) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return [
        p.name
        for p in params
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in offered
        and p.name not in given
    ]
