"""Rollout generation for SAIL-VL: engines (vLLM, transformers), weight sync, Ray workers.

    from rollouts import GenerationRequest, RolloutConfig, make_engine
    engine = make_engine(RolloutConfig(engine="vllm"), "runs/tiny")
    rollouts = engine.generate([GenerationRequest(messages, images, "q1")], cfg.sampling())

vLLM is imported only when a "vllm" engine is made; Ray only by `rollouts.ray_workers`' manager.
"""

from rollouts.engine import (
    PLACEHOLDER_TOKENS, RolloutEngine, banned_token_ids, make_engine, prepare_prompts, register_engine,
)
from rollouts.types import GenerationRequest, Rollout, RolloutConfig, SamplingConfig

__all__ = [
    "GenerationRequest", "Rollout", "RolloutConfig", "SamplingConfig", "RolloutEngine", "make_engine",
    "register_engine", "prepare_prompts", "banned_token_ids", "PLACEHOLDER_TOKENS",
]
