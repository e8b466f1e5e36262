"""The rollout-engine interface, its registry, and the prompt preparation every engine shares.

An engine turns `GenerationRequest`s into `Rollout`s and takes new weights from the trainer:

    engine = make_engine(RolloutConfig(engine="vllm"), "runs/tiny")
    rollouts = engine.generate(requests, SamplingConfig(rollouts_per_prompt=8))
    engine.update_weights(policy.state_dict())   # or an iterator of (name, tensor), or a PEFT model

Built-in engines: "vllm" (rollouts/vllm_engine.py) and "hf" (rollouts/hf_engine.py, transformers
generate). A user engine registers itself with `@register_engine("name")`.

>>> sorted(n for n in ("vllm", "hf") if n in BUILTIN_ENGINES)
['hf', 'vllm']
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, runtime_checkable

import torch

from rollouts.types import GenerationRequest, Rollout, RolloutConfig, SamplingConfig
from sail_rl.errors import ConfigError, DataError
from sail_rl.model.processing import PLACEHOLDER_TOKENS, banned_token_ids  # noqa: F401  (the engines' API)

log = logging.getLogger(__name__)

# vLLM's engine core inside the calling process (a Ray actor, the local loop, a benchmark): the
# weight sync then streams tensors into it without another process. Set before vLLM starts.
IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TOKENIZERS_PARALLELISM": "false"}


def use_in_process_vllm() -> None:
    """Put IN_PROCESS_ENV into this process's environment (values the user set are kept)."""
    for key, value in IN_PROCESS_ENV.items():
        os.environ.setdefault(key, value)


@runtime_checkable
class RolloutEngine(Protocol):
    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[Rollout]: ...

    def generate_iter(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> Iterable[list[Rollout]]:
        """The same rollouts in chunks as requests finish (all of a request's rollouts in one chunk)."""

    def update_weights(self, weights) -> None:
        """weights: a SAIL-VL state dict, an iterator of (name, tensor), or a (PEFT) model."""

    def sleep(self) -> None:
        """Free accelerator memory during the trainer's update (engines that support it)."""

    def wake(self, tags: tuple[str, ...] | None = None) -> None:
        """Make `tags` ("weights", then "kv_cache"; None: all) resident again."""

    def close(self) -> None: ...


ENGINES: dict[str, Callable[[RolloutConfig, str], RolloutEngine]] = {}
BUILTIN_ENGINES = {"vllm": "rollouts.vllm_engine", "vllm-native": "rollouts.vllm_native", "hf": "rollouts.hf_engine"}


def register_engine(name: str):
    """Class decorator: make an engine available as `rollout.engine: <name>`."""

    def wrap(cls):
        if name in ENGINES and ENGINES[name] is not cls:
            raise ConfigError(f"rollout engine '{name}' is registered twice ({ENGINES[name].__name__}, {cls.__name__})")
        ENGINES[name] = cls
        return cls

    return wrap


def make_engine(cfg: RolloutConfig, model_dir: str) -> RolloutEngine:
    """The engine `cfg.engine` on the SAIL-VL checkpoint in `model_dir`."""
    if cfg.engine not in ENGINES and cfg.engine in BUILTIN_ENGINES:
        importlib.import_module(BUILTIN_ENGINES[cfg.engine])
    if cfg.engine not in ENGINES:
        valid = sorted(set(ENGINES) | set(BUILTIN_ENGINES))
        raise ConfigError(f"unknown rollout.engine '{cfg.engine}'; choose one of {', '.join(valid)}")
    return ENGINES[cfg.engine](cfg, str(model_dir))


# ---------------------------------------------------------------- prompt preparation


@dataclass
class PreparedPrompt:
    request: GenerationRequest
    prompt_token_ids: list[int]  # image slots expanded
    pixel_values: torch.Tensor | None  # [tiles, 3, S, S]
    num_image_tiles: int


def prepare_prompts(
    processor, requests: Iterable[GenerationRequest], cfg: RolloutConfig
) -> tuple[list[PreparedPrompt], list[str]]:
    """Render, expand and tokenise each request; drop (or raise on) prompts that do not fit.

    A prompt fits when it has at most `max_prompt_tokens` tokens after image-slot expansion and
    leaves room for one response token in `max_model_len`. Returns (prepared, skipped request ids).
    """
    prepared, skipped = [], []
    limit = min(cfg.max_prompt_tokens, cfg.max_model_len - 1)
    for i, req in enumerate(requests):
        rid = req.request_id or f"#{i}"
        text = processor.apply_chat_template(req.messages, thinking=req.thinking)
        try:
            feats = processor([text], images=[list(req.images)] if req.images else None, padding=False, return_tile_counts=True)
        except (ValueError, OSError) as exc:
            raise DataError(f"request {rid}: cannot build the prompt ({exc})") from None
        ids = feats["input_ids"][0].tolist()
        if len(ids) > limit:
            msg = (f"request {rid}: prompt has {len(ids)} tokens after image expansion, over the limit of {limit} "
                   "(rollout.max_prompt_tokens / max_model_len); lower max_tiles or raise max_prompt_tokens")
            if cfg.on_overlong_prompt == "raise":
                raise DataError(msg)
            log.warning("skipped %s", msg)
            skipped.append(rid)
            continue
        tiles = int(feats["image_tiles_per_sample"][0])
        pixels = feats["pixel_values"] if tiles else None
        prepared.append(PreparedPrompt(req, ids, pixels, tiles))
    return prepared, skipped


def check_model_dir(model_dir: str) -> None:
    from sail_rl.rundir import check_model_folder

    check_model_folder(model_dir, "the rollout engine's model")


__all__ = [
    "RolloutEngine", "register_engine", "make_engine", "ENGINES", "PreparedPrompt", "prepare_prompts",
    "banned_token_ids", "PLACEHOLDER_TOKENS",
]
