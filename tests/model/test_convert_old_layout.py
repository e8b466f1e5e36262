"""Checkpoints of sail-rl before the InternVL layout convert with unchanged logits.

The old layout: `vision_model.*` (an Aimv2VisionModel cut after `select_layer`),
`projector.{norm,fc1,fc2}`, `language_model.*` (a whole Qwen3ForCausalLM); its `select_layer`
took transformers' `hidden_states[select_layer]` WITHOUT the final norm, -1 included. The old
forward is rebuilt here from those transformers parts, not from sail-rl's modules.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import Aimv2VisionConfig, Aimv2VisionModel, Qwen3Config, Qwen3ForCausalLM

from sail_rl.errors import SailRLError
from sail_rl.model.builder import load_model, load_processor
from sail_rl.model.convert import convert_checkpoint

VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=5, num_attention_heads=4, image_size=64, patch_size=8, use_head=False)


def _old_checkpoint(path, processor, select_layer: int):
    """Write an old-layout checkpoint; returns its (vision tower, projector tensors, text model)."""
    torch.manual_seed(0)
    vision = Aimv2VisionModel(Aimv2VisionConfig(**VISION)).eval()
    with torch.no_grad():  # a non-trivial final norm, so that applying it or not shows
        vision.rms_norm.weight.add_(torch.randn_like(vision.rms_norm.weight))
    kept = select_layer if select_layer >= 0 else VISION["num_hidden_layers"] + 1 + select_layer
    tok = processor.tokenizer
    text = Qwen3ForCausalLM(Qwen3Config(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, head_dim=32, vocab_size=len(tok), tie_word_embeddings=True)).eval()
    proj = {"norm.weight": 1 + 0.1 * torch.randn(256), "norm.bias": 0.1 * torch.randn(256),
            "fc1.weight": 0.05 * torch.randn(128, 256), "fc1.bias": 0.1 * torch.randn(128),
            "fc2.weight": 0.05 * torch.randn(128, 128), "fc2.bias": 0.1 * torch.randn(128)}
    state = {"vision_model." + k: v for k, v in vision.state_dict().items()
             if not (".layers." in k and int(k.split(".layers.")[1].split(".")[0]) >= kept)}
    state.update({"projector." + k: v for k, v in proj.items()})
    state.update({"language_model." + k: v for k, v in text.state_dict().items() if k != "lm_head.weight"})
    path.mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path / "model.safetensors"))
    ids = {n: tok.convert_tokens_to_ids(t) for n, t in
           [("image_token_id", "<IMG_CONTEXT>"), ("image_start_token_id", "<img>"), ("image_end_token_id", "</img>")]}
    (path / "config.json").write_text(json.dumps({
        "architectures": ["SailVLForConditionalGeneration"], "model_type": "sail_vl", "select_layer": select_layer,
        "downsample_ratio": 0.5, "projector_hidden_act": "gelu", "tie_word_embeddings": True, **ids,
        "vision_config": vision.config.to_dict(), "text_config": text.config.to_dict(),
    }))
    processor.save_pretrained(path)
    processor.tokenizer.save_pretrained(path)
    return vision, proj, text


def _old_forward(vision, proj, text, select_layer, ids, pixels, image_token_id):
    hidden = vision(pixels, output_hidden_states=True).hidden_states[select_layer]  # no final norm
    n, hw, c = hidden.shape
    s = int(hw**0.5)
    x = hidden.reshape(n, s, s // 2, c * 2).permute(0, 2, 1, 3).reshape(n, s // 2, s // 2, c * 4).permute(0, 2, 1, 3)
    x = F.layer_norm(x.reshape(n, -1, c * 4), (c * 4,), proj["norm.weight"], proj["norm.bias"])
    features = F.linear(F.gelu(F.linear(x, proj["fc1.weight"], proj["fc1.bias"])), proj["fc2.weight"], proj["fc2.bias"])
    embeds = text.get_input_embeddings()(ids)
    embeds[ids == image_token_id] = features.reshape(-1, embeds.shape[-1])
    return text(inputs_embeds=embeds).logits


@pytest.mark.parametrize("select_layer", [-1, -4])
def test_old_sail_rl_checkpoint_converts_with_unchanged_logits(tiny_dir, tmp_path, select_layer):
    processor = load_processor(tiny_dir)
    vision, proj, text = _old_checkpoint(tmp_path / "old", processor, select_layer)
    with pytest.raises(SailRLError, match="old layout.*convert-checkpoint"):
        load_model(tmp_path / "old")  # refused, never misread
    report = convert_checkpoint(tmp_path / "old", tmp_path / "new")
    model = load_model(tmp_path / "new").eval()
    assert report["source"] == "old sail-rl"
    prompt = "<|im_start|>user\n" + processor.image_slot(2) + "\nhi<|im_end|>"
    ids = processor.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = _old_forward(vision, proj, text, select_layer, ids, pixels, model.config.image_token_id)
        logits = model(input_ids=ids, pixel_values=pixels).logits
    assert (logits - expected).abs().max() <= 1e-5
    # the old -1 (no final norm) is not the release's -1: the converted config says so explicitly
    assert model.config.vision_feature_layer == {-1: 5, -4: 2}[select_layer]
