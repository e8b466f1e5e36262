"""What vLLM's Transformers backend asks of SAIL-VL's processor and of the plugin (no engine started)."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

from sail_rl.model.processing import IMAGE_PLACEHOLDER


def _image(w: int, h: int) -> Image.Image:
    return Image.fromarray((np.random.RandomState(0).rand(h, w, 3) * 255).astype("uint8"))


def test_replacement_offsets_name_each_image_slot_in_order(tiny):
    _, processor = tiny
    assert processor.image_token == IMAGE_PLACEHOLDER
    text = "<|im_start|>user\n<image>\nA<image>\nB<|im_end|>\n"
    images = [_image(64, 64), _image(200, 64)]
    out = processor([text], images=[images], padding=False, return_text_replacement_offsets=True)
    (offsets,) = out["text_replacement_offsets"]
    assert [o["type"] for o in offsets] == ["image", "image"]
    assert [o["replacement"] for o in offsets] == [processor.image_slot(1), processor.image_slot(4)]
    # vLLM splits pixel_values by num_image_patches and sizes each slot by num_image_tokens
    counts = processor._get_num_multimodal_tokens(image_sizes=[(64, 64), (64, 200)])
    assert counts["num_image_patches"] == [1, 4] and out["pixel_values"].shape[0] == 5
    assert counts["num_image_tokens"] == [len(processor.tokenizer(o["replacement"], add_special_tokens=False)["input_ids"]) for o in offsets]
    assert "text_replacement_offsets" not in processor([text], images=[images], padding=False)


def test_plugin_registers_the_architecture_vllm_resolves_by_name():
    from sail_rl.model.vllm_plugin import register

    register()
    transformers = importlib.import_module("transformers")  # as vLLM looks it up, after the Auto classes loaded
    assert transformers.SailVLForConditionalGeneration.__module__ == "sail_rl.model.modeling"
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["vllm.general_plugins"] == {"sail_vl": "sail_rl.model.vllm_plugin:register"}


def test_native_engine_refuses_a_weight_sync_it_cannot_do():
    import pytest

    from rollouts.types import RolloutConfig
    from sail_rl.errors import ConfigError

    RolloutConfig(engine="vllm-native").validate()
    with pytest.raises(ConfigError, match="weight_sync 'nccl' is not implemented for rollout.engine 'vllm-native'"):
        RolloutConfig(engine="vllm-native", weight_sync="nccl").validate()
