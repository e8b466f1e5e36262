"""The reward contract: the four calling styles, what each receives and what it may return.

A reward's style is explicit, never guessed from its parameter names. It comes from the
recipe (`style:` on the reward), else from a `REWARD_STYLE = "..."` line in the reward's
module, else from `@register_reward(name, style=...)` (default `sailrl`); a `path:` reward
with none of these is `trl`. A recipe `style:` that contradicts the module's marker is an error.

- `trl`: `fn(prompts, completions, completion_ids, **columns)`, as TRL's GRPOTrainer calls it.
  Conversational prompts (every sail-rl rollout) arrive as message lists with the images in
  their `{"type": "image", "image": PIL}` parts, and completions as
  `[{"role": "assistant", "content": text}]`; a prompt given as plain text gives plain-string
  completions. Every dataset column is a keyword list under its own name (the gold answer
  also as `solution` and `ground_truth`, images as `images` and `image`); parameters the
  function does not take are not passed unless it has `**kwargs`.
- `verl`: `compute_score(data_source, solution_str, ground_truth, extra_info=None)` per
  sample, returning a number or a dict with `"score"`. `data_source` is the dataset's
  `data_source` column (None without one), `extra_info` a dict of the sample's columns.
- `easyr1`: `compute_score(reward_inputs: list[dict]) -> list[dict]`; each input is
  `{"response", "response_length", "ground_truth"}`, each output has `"overall"`.
- `sailrl`: `fn(inputs: list[RewardInput], **kwargs) -> list[float | None | dict]`; a dict's
  `"score"` (else the mean of its numeric values) is the reward.

A dict's other numeric keys are logged as components (`reward/<label>/<key>/mean`); its
non-numeric keys (e.g. verl's `"pred"` text) are not metrics and are left out.

Recipe `kwargs:` are passed as keyword arguments in every style. `None` means "not
applicable to this sample" (TRL's meaning). A value must be a finite number (bools count
as 0/1) with magnitude at most `MAX_ABS_REWARD`; anything else is an error naming the
reward and the sample. `async def` rewards are awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from sail_rl.errors import RewardError

STYLES = ("trl", "verl", "easyr1", "sailrl")
STYLE_MARKER = "REWARD_STYLE"  # module attribute that fixes the style of every reward in a file
MAX_ABS_REWARD = 1e6  # larger magnitudes are rejected: a bug, and they swamp the advantages
_TRL_ARGS = ("prompts", "completions", "completion_ids")
_VERL_ARGS = ("data_source", "solution_str", "ground_truth", "extra_info")


class RewardContractError(RewardError):
    """A reward that breaks the contract (wrong signature, length or value): never zeroed."""


@dataclass
class RewardInput:
    """One scored sample: the prompt, the model's response and the dataset row it came from.

    `prompt` is the question text; `prompt_messages` the conversational prompt as sent (image
    parts as placeholders, filled from `images` for TRL-style rewards); `images` are PIL
    images (may be empty; a video prompt holds a `sail_rl.model.video.Video`, its `.frames` PIL images); `response_ids` the response's token ids; `extra` holds the
    dataset's other columns by name (e.g. `answer`, `category`, `should_think`) and
    rollout facts (`response_tokens`, `finish_reason`).
    """

    prompt: str
    response: str
    ground_truth: str | None = None
    answer_type: str | None = None
    choices: list[str] | None = None
    precision: int | None = None
    images: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    prompt_messages: list[dict] | None = None
    response_ids: list[int] | None = None


@dataclass
class RewardOutput:
    """A reward's per-sample values [batch] (None = not applicable) and its logged parts."""

    scores: list[float | None]
    parts: dict[str, list[float | None]] = field(default_factory=dict)


# ---------------------------------------------------------------- signatures


def _signature(fn: Callable, label: str) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        raise RewardContractError(f"reward '{label}': cannot read its signature; make it a plain Python function") from None


def _has_var_keyword(sig: inspect.Signature) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def check_signature(fn: Callable, style: str, kwargs: dict, label: str) -> None:
    """RewardContractError (one line: what, how to fix) when `fn` cannot be called in `style`."""
    sig = _signature(fn, label)
    other = (f"if it is written in another style ({', '.join(s for s in STYLES if s != style)}), say so: "
             f"style: in the recipe, {STYLE_MARKER} in its module, or register_reward(name, style=...)")
    try:
        if style == "trl":
            named = [a for a in _TRL_ARGS if a in sig.parameters]
            if not named and not _has_var_keyword(sig):
                raise TypeError(f"it takes none of {', '.join(_TRL_ARGS)} and no **kwargs")
            sig.bind_partial(**{a: None for a in named}, **kwargs)
        elif style == "verl":
            sig.bind(**{a: None for a in _VERL_ARGS}, **kwargs)
        else:  # sailrl, easyr1: one positional batch argument
            sig.bind(None, **kwargs)
    except TypeError as exc:
        shapes = {
            "trl": "fn(prompts, completions, completion_ids, **columns)",
            "verl": "compute_score(data_source, solution_str, ground_truth, extra_info=None)",
            "easyr1": "compute_score(reward_inputs: list[dict])",
            "sailrl": "fn(inputs: list[RewardInput], **kwargs)",
        }
        given = f" with kwargs {sorted(kwargs)}" if kwargs else ""
        raise RewardContractError(
            f"reward '{label}' is style {style} ({shapes[style]}) but its signature {sig}{given} cannot take "
            f"that call: {exc}; fix the signature or the recipe kwargs; {other}"
        ) from None


# ---------------------------------------------------------------- named rewards

REGISTERED: dict[str, tuple[Callable, str]] = {}  # name -> (function, calling style); rewards.registry looks names up


def register_reward(name: str, style: str = "sailrl") -> Callable[[Callable], Callable]:
    """Decorator: make `fn` available to recipes as `{name: <name>}`, called in `style`.

    Duplicate names are errors, and so is a signature that cannot take `style`'s call.
    """
    if style not in STYLES:
        raise RewardError(f"register_reward('{name}'): unknown style {style!r}; use one of {', '.join(STYLES)}")

    def decorator(fn: Callable) -> Callable:
        if name in REGISTERED and REGISTERED[name][0] is not fn:
            old = REGISTERED[name][0]
            raise RewardError(
                f"reward '{name}' is already registered (by {old.__module__}.{old.__qualname__}); "
                f"pick another name; registered: {', '.join(sorted(REGISTERED))}"
            )
        check_signature(fn, style, {}, name)  # reject a wrong signature at definition time
        REGISTERED[name] = (fn, style)
        return fn

    return decorator


# ---------------------------------------------------------------- calling


def columns_of(inputs: list[RewardInput]) -> dict[str, list]:
    """Dataset columns as keyword lists, the way TRL passes them to reward functions."""
    columns: dict[str, list] = {
        "solution": [x.ground_truth for x in inputs],
        "ground_truth": [x.ground_truth for x in inputs],
        "answer_type": [x.answer_type for x in inputs],
        "choices": [x.choices for x in inputs],
        "precision": [x.precision for x in inputs],
        "images": [x.images for x in inputs],
        "image": [x.images[0] if x.images else None for x in inputs],
    }
    for key in sorted({k for x in inputs for k in x.extra}):
        columns.setdefault(key, [x.extra.get(key) for x in inputs])
    return columns


def _trl_prompt(x: RewardInput) -> Any:
    """The prompt as TRL hands it to rewards: messages with images filled in, or plain text."""
    if x.prompt_messages is None:
        return x.prompt
    images = iter(x.images)
    messages = []
    for message in x.prompt_messages:
        content = message.get("content")
        if isinstance(content, list):
            content = [  # TRL's parts: {"type": "image", "image": PIL} / {"type": "video", "video": Video}
                {**part, part["type"]: next(images, None)} if part.get("type") in ("image", "video") and part["type"] not in part
                else part for part in content
            ]
        messages.append({**message, "content": content})
    return messages


def _call_trl(fn: Callable, inputs: list[RewardInput], kwargs: dict, label: str) -> Any:
    conversational = all(x.prompt_messages is not None for x in inputs)
    offered = {
        "prompts": [_trl_prompt(x) for x in inputs] if conversational else [x.prompt for x in inputs],
        "completions": ([[{"role": "assistant", "content": x.response}] for x in inputs] if conversational
                        else [x.response for x in inputs]),
        "completion_ids": [x.response_ids for x in inputs],
        **columns_of(inputs),
        **kwargs,
    }
    sig = _signature(fn, label)
    if not _has_var_keyword(sig):
        offered = {k: v for k, v in offered.items() if k in sig.parameters}
    missing = [p.name for p in sig.parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in offered]
    if missing:
        raise RewardContractError(
            f"reward '{label}' needs column(s) {', '.join(missing)} that the dataset lacks; "
            f"columns: {', '.join(sorted(columns_of(inputs)))}; add them to the data or give the parameter a default"
        )
    return fn(**offered)


def _extra_info(x: RewardInput) -> dict:
    return {**x.extra, "question": x.prompt, "answer_type": x.answer_type, "choices": x.choices,
            "precision": x.precision, "images": x.images}


async def _gather(results: list) -> list:
    async def value(r: Any) -> Any:
        return await r if inspect.isawaitable(r) else r

    return list(await asyncio.gather(*(value(r) for r in results)))


def call_reward(fn: Callable, style: str, inputs: list[RewardInput], kwargs: dict, label: str) -> list:
    """Call `fn` on a batch in its style; its raw outputs, one per sample (checked by `read_outputs`)."""
    if style == "trl":
        result = _call_trl(fn, inputs, kwargs, label)
    elif style == "verl":
        result = [fn(data_source=x.extra.get("data_source"), solution_str=x.response, ground_truth=x.ground_truth,
                     extra_info=_extra_info(x), **kwargs) for x in inputs]
        if any(inspect.isawaitable(r) for r in result):
            result = _gather(result)
    elif style == "easyr1":
        reward_inputs = [{"response": x.response, "ground_truth": x.ground_truth,
                          "response_length": len(x.response_ids) if x.response_ids is not None
                          else int(x.extra.get("response_tokens") or 0)} for x in inputs]
        result = fn(reward_inputs, **kwargs)
    else:
        result = fn(inputs, **kwargs)
    result = run_coroutine(result) if inspect.isawaitable(result) else result
    if not isinstance(result, (list, tuple)):
        raise RewardContractError(
            f"reward '{label}' returned {type(result).__name__}, expected a list of {len(inputs)} values"
        )
    if len(result) != len(inputs):
        raise RewardContractError(
            f"reward '{label}' returned {len(result)} values for a batch of {len(inputs)}; return one per sample"
        )
    return list(result)


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


# ---------------------------------------------------------------- reading the outputs


def _where(inputs: list[RewardInput], index: int) -> str:
    pid = inputs[index].extra.get("pid") if index < len(inputs) else None
    return f"sample {index}" + (f" (pid {pid})" if pid is not None else "")


def to_value(value: Any, label: str, inputs: list[RewardInput], index: int) -> float | None:
    """A checked reward value: None stays None; a finite number within +-MAX_ABS_REWARD, as float."""
    if value is None:
        return None
    if not isinstance(value, numbers.Real):
        raise RewardContractError(
            f"reward '{label}' returned {type(value).__name__} {value!r:.60} for {_where(inputs, index)}; "
            "return a float (or None for not applicable)"
        )
    number = float(value)
    if not math.isfinite(number):
        raise RewardContractError(
            f"reward '{label}' returned {number} for {_where(inputs, index)}; return a finite float "
            "(None means not applicable)"
        )
    if abs(number) > MAX_ABS_REWARD:
        raise RewardContractError(
            f"reward '{label}' returned {number:g} for {_where(inputs, index)}, beyond the limit of "
            f"+-{MAX_ABS_REWARD:g}; rescale the reward"
        )
    return number


def read_outputs(raw: list, style: str, label: str, inputs: list[RewardInput]) -> RewardOutput:
    """Checked scores [batch] and logged parts from a reward's raw outputs in `style`."""
    score_key = {"verl": "score", "easyr1": "overall"}.get(style)
    out = RewardOutput([None] * len(raw))
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            if style == "easyr1":
                raise RewardContractError(
                    f"reward '{label}' returned {type(item).__name__} for {_where(inputs, i)}; "
                    "an easyr1-style reward returns a dict with 'overall' per sample"
                )
            out.scores[i] = to_value(item, label, inputs, i)
            continue
        if score_key is not None and score_key not in item:
            raise RewardContractError(
                f"reward '{label}' returned a dict without '{score_key}' for {_where(inputs, i)} (keys: "
                f"{', '.join(map(str, item)) or 'none'}); a {style}-style reward puts its reward under '{score_key}'"
            )
        key = score_key or "score"
        # logged parts: numbers (checked like the reward) and None; text such as verl's "pred" is not a metric
        parts = {str(k): to_value(v, f"{label}/{k}", inputs, i) for k, v in item.items()
                 if k == key or v is None or isinstance(v, numbers.Real)}
        for name, value in parts.items():
            if name != key:
                out.parts.setdefault(name, [None] * len(raw))[i] = value
        present = [v for v in parts.values() if v is not None]
        out.scores[i] = parts[key] if key in parts else (sum(present) / len(present) if present else None)
    return out
