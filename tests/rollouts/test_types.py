"""Config sections, the engine registry and prompt guards (no engine started)."""

from __future__ import annotations

import logging

import pytest

from rollouts.engine import ENGINES, banned_token_ids, make_engine, prepare_prompts, register_engine
from rollouts.types import RolloutConfig, SamplingConfig
from sail_rl.config import from_dict
from sail_rl.errors import ConfigError, DataError
from tests.rollouts.helpers import image_request, text_request


def test_rollout_section_from_recipe_keys():
    cfg = from_dict(RolloutConfig, {"engine": "hf", "temperature": 0.6, "rollouts_per_prompt": 5, "stop": ["</answer>"]})
    s = cfg.sampling()
    assert (s.n, s.temperature, s.stop) == (5, 0.6, ["</answer>"])
    with pytest.raises(ConfigError, match="temperature"):
        from_dict(RolloutConfig, {"temprature": 0.6})
    with pytest.raises(ConfigError, match="max_prompt_tokens"):
        from_dict(RolloutConfig, {"max_model_len": 256, "max_prompt_tokens": 512})
    with pytest.raises(ConfigError, match="top_p"):
        SamplingConfig(top_p=0).validate()


def test_registry_rejects_duplicates_and_lists_names():
    with pytest.raises(ConfigError, match="hf, vllm"):
        make_engine(RolloutConfig(engine="sglang"), "unused")

    @register_engine("test-dummy")
    class Dummy:
        def __init__(self, cfg, model_dir):
            self.model_dir = model_dir

    try:
        assert make_engine(RolloutConfig(engine="test-dummy"), "x").model_dir == "x"
        with pytest.raises(ConfigError, match="registered twice"):
            register_engine("test-dummy")(type("Other", (), {}))
    finally:
        ENGINES.pop("test-dummy")


def test_overlong_prompt_skipped_and_named(tiny, caplog):
    _, processor = tiny
    cfg = RolloutConfig(max_model_len=512, max_prompt_tokens=40)
    reqs = [text_request("short"), image_request("long-image")]  # the image slot alone is > 40 tokens
    with caplog.at_level(logging.WARNING):
        prepared, skipped = prepare_prompts(processor, reqs, cfg)
    assert [p.request.request_id for p in prepared] == ["short"] and skipped == ["long-image"]
    assert "long-image" in caplog.text
    cfg.on_overlong_prompt = "raise"
    with pytest.raises(DataError, match="request long-image: prompt has"):
        prepare_prompts(processor, reqs, cfg)


def test_prepared_image_prompt_keeps_processor_outputs(tiny):
    _, processor = tiny
    (p,), _ = prepare_prompts(processor, [image_request()], RolloutConfig(max_model_len=512, max_prompt_tokens=400))
    ctx = processor.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert p.pixel_values.shape[0] == p.num_image_tiles > 0
    assert p.prompt_token_ids.count(ctx) == 16 * p.num_image_tiles
    assert len(banned_token_ids(processor.tokenizer)) == 4
