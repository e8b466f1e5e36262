"""What goes into a rollout engine and what comes out: requests, sampling and engine settings, rollouts.

A `GenerationRequest` is one prompt (chat messages + its images). An engine answers it with
`SamplingConfig.rollouts_per_prompt` `Rollout`s, each carrying what the trainer needs to
recompute log-probs of the same tokens: the prompt ids (image slots expanded), the response
ids, the engine's log-probs of them and the processor's `pixel_values` for the prompt's images.

>>> s = SamplingConfig(rollouts_per_prompt=4, temperature=0.7)
>>> s.n, s.temperature
(4, 0.7)
>>> RolloutConfig(temperature=0.5, rollouts_per_prompt=2).sampling().temperature
0.5
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import torch

from sail_rl.config import check_bounds
from sail_rl.errors import ConfigError


@dataclass
class GenerationRequest:
    """One prompt. `messages` are chat messages with `{"type": "image"}` parts, one per image."""

    messages: list[dict]
    images: list = field(default_factory=list)  # PIL images, in placeholder order
    request_id: str = ""
    thinking: bool | None = None  # None: no mode instruction (the model decides)
    metadata: dict = field(default_factory=dict)  # passed through to every Rollout (answer, source, ...)


@dataclass
class SamplingConfig:
    """How to sample: the per-call part of the recipe section `rollout:` (RolloutConfig extends it)."""

    rollouts_per_prompt: int = 8
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = -1  # -1 or 0: off
    max_response_tokens: int = 512
    stop: list[str] = field(default_factory=list)  # stop strings (not included in the text)
    seed: int | None = None  # None: unseeded

    @property
    def n(self) -> int:
        return self.rollouts_per_prompt

    def validate(self) -> None:
        check_bounds(self, "rollout", {
            "rollouts_per_prompt": ">= 1", "temperature": (">= 0", "0 is greedy"), "top_p": "(0, 1]",
            "top_k": (">= -1", "-1 or 0 turns it off"), "max_response_tokens": ">= 1",
        })


@dataclass
class RolloutConfig(SamplingConfig):
    """Recipe section `rollout:`: the sampling settings (SamplingConfig's fields, flat keys), the
    engine and where it runs."""

    seed: int | None = 0  # a recipe without rollout.seed takes run.seed; null: unseeded
    engine: Literal["vllm", "vllm-native", "hf"] = "vllm"
    num_workers: int = 1  # rollout workers (Ray actors), prompts sharded across them
    # lengths
    max_model_len: int = 4096  # prompt (images expanded) + response, tokens
    max_prompt_tokens: int = 2048  # after image-slot expansion
    on_overlong_prompt: Literal["skip", "raise"] = "skip"
    # memory and parallelism
    dtype: str = "float32"  # float32 on CPU (log-prob parity); bfloat16 on GPU
    kv_cache_gib: float = 1.0  # CPU KV cache (VLLM_CPU_KVCACHE_SPACE)
    gpu_memory_utilization: float = 0.5  # GPU: fraction of GPU memory for vLLM (weights + KV cache)
    tensor_parallel_size: int = 1  # GPU only
    max_num_seqs: int = 256  # vLLM scheduler batch, sequences
    enforce_eager: bool = True  # no CUDA graphs / torch.compile: faster start, smaller memory
    enable_sleep_mode: bool = False  # colocated GPU runs: vLLM sleeps during the update, wakes weights then KV cache
    return_logprobs: bool = True  # engine log-probs of sampled tokens (~20% of vLLM decode time on CPU); off: trainer recomputes
    # weight sync
    # collective: trainer rank 0 broadcasts to the workers (NCCL with GPUs on both ends, else gloo; the
    # object store, with a warning, if no group forms); nccl: NCCL or fail; object_store: via the driver
    weight_sync: Literal["collective", "nccl", "object_store"] = "collective"
    weight_sync_bucket_mb: int = 512
    work_dir: str | None = None  # where the text model for vLLM is written; None: a temp dir

    def sampling(self) -> SamplingConfig:
        """The sampling part alone (a copy), for `engine.generate`."""
        return SamplingConfig(**{f.name: copy.copy(getattr(self, f.name)) for f in fields(SamplingConfig)})

    def validate(self) -> None:
        super().validate()
        check_bounds(self, "rollout", {
            "num_workers": ">= 1", "max_model_len": ">= 2", "max_prompt_tokens": ">= 1", "kv_cache_gib": "> 0",
            "gpu_memory_utilization": "(0, 1]", "tensor_parallel_size": ">= 1", "max_num_seqs": ">= 1",
            "weight_sync_bucket_mb": ">= 1",
        })
        if self.engine == "vllm-native" and self.weight_sync == "nccl":
            raise ConfigError(
                "rollout.weight_sync 'nccl' is not implemented for rollout.engine 'vllm-native'; "
                "use weight_sync: collective (gloo) or object_store, or engine: vllm", key="weight_sync",
            )
        if self.max_prompt_tokens + 1 > self.max_model_len:
            raise ConfigError(
                f"rollout.max_prompt_tokens ({self.max_prompt_tokens}) must be below rollout.max_model_len "
                f"({self.max_model_len}); raise max_model_len or lower max_prompt_tokens", key="max_prompt_tokens"
            )


@dataclass
class Rollout:
    """One sampled response to one request.

    prompt_token_ids [P] include the expanded image slots; response_token_ids [R] end with the
    eos id when finish_reason is "stop" by eos; response_logprobs [R] are the engine's log-probs
    of those tokens under the sampling distribution (temperature applied, banned tokens removed).
    pixel_values [tiles, 3, S, S] (None without images) is shared by the n rollouts of a request.
    """

    request_id: str
    sample_index: int
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    response_logprobs: list[float]
    text: str
    finish_reason: str  # "stop" (eos or stop string), "length", "abort"
    num_image_tiles: int = 0
    pixel_values: torch.Tensor | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_response_tokens(self) -> int:
        return len(self.response_token_ids)


__all__ = ["GenerationRequest", "SamplingConfig", "RolloutConfig", "Rollout"]
