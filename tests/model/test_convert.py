"""convert-checkpoint: a synthetic checkpoint in the released SAIL-VL2 layout converts exactly."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sail_rl.errors import SailRLError
from sail_rl.model.builder import load_model, load_processor
from sail_rl.model.convert import convert_checkpoint


def _to_release_layout(state: dict, n_layers_total: int, hidden: int) -> dict:
    """Write our tensors under the release's names (AIMv2 custom code, mlp1, fused qkv)."""
    out = {}
    for key, t in state.items():
        if key.startswith("language_model."):
            out[key] = t.clone()
    out["vision_model.preprocessor.patchifier.proj.weight"] = state["vision_model.embeddings.patch_embed.weight"]
    out["vision_model.preprocessor.patchifier.proj.bias"] = state["vision_model.embeddings.patch_embed.bias"]
    out["vision_model.preprocessor.patchifier.norm.weight"] = state["vision_model.embeddings.rms_norm.weight"]
    out["vision_model.preprocessor.pos_embed"] = state["vision_model.embeddings.position_embedding.weight"][None]
    out["vision_model.trunk.post_trunk_norm.weight"] = state["vision_model.rms_norm.weight"]
    for i in range(n_layers_total):
        src = f"vision_model.encoder.layers.{i}."
        dst = f"vision_model.trunk.blocks.{i}."
        if src + "attention.q_proj.weight" in state:
            g = lambda n: state[src + n]  # noqa: E731
        else:  # the layers past select_layer, which the release still ships
            g = lambda n: torch.randn_like(state["vision_model.encoder.layers.0." + n])  # noqa: E731
        out[dst + "attn.qkv.weight"] = torch.cat([g("attention.q_proj.weight"), g("attention.k_proj.weight"), g("attention.v_proj.weight")])
        out[dst + "attn.proj.weight"] = g("attention.out_proj.weight")
        out[dst + "norm_1.weight"], out[dst + "norm_2.weight"] = g("rms_norm1.weight"), g("rms_norm2.weight")
        out[dst + "mlp.fc1.weight"], out[dst + "mlp.fc3.weight"] = g("ffn.gate_proj.weight"), g("ffn.up_proj.weight")
        out[dst + "mlp.fc2.weight"] = g("ffn.down_proj.weight")
    for ours, theirs in [("norm", "0"), ("fc1", "1"), ("fc2", "3")]:
        out[f"mlp1.{theirs}.weight"] = state[f"projector.{ours}.weight"]
        out[f"mlp1.{theirs}.bias"] = state[f"projector.{ours}.bias"]
    return {k: v.contiguous() for k, v in out.items()}


def test_released_layout_converts_with_equal_outputs(tiny, tmp_path):
    model, processor = tiny
    cfg = model.config
    release = tmp_path / "release"
    release.mkdir()
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "language_model.lm_head.weight"}
    save_file(_to_release_layout(state, cfg.vision_config.num_hidden_layers, cfg.vision_config.hidden_size), str(release / "model.safetensors"))
    v = cfg.vision_config
    text = cfg.text_config.to_dict()
    (release / "config.json").write_text(json.dumps({
        "architectures": ["SailVLModel"], "auto_map": {"AutoModel": "modeling_sailvl.SailVLModel"},
        "vision_config": {"hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
                          "num_hidden_layers": v.num_hidden_layers, "num_attention_heads": v.num_attention_heads,
                          "image_size": v.image_size, "patch_size": v.patch_size, "rms_norm_eps": v.rms_norm_eps},
        "llm_config": {**text, "architectures": ["Qwen3ForCausalLM"]},
        "select_layer": cfg.select_layer, "downsample_ratio": cfg.downsample_ratio,
        "force_image_size": v.image_size, "max_dynamic_patch": 4,
    }))
    processor.tokenizer.save_pretrained(release)

    out = convert_checkpoint(release, tmp_path / "converted")
    converted, proc2 = load_model(out), load_processor(out)
    text_in = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}])
    batch = processor([text_in], images=[[Image.new("RGB", (128, 64), (10, 200, 30))]])
    batch.pop("num_tiles")
    with torch.no_grad():
        torch.testing.assert_close(converted(**batch).logits, model(**batch).logits, rtol=0, atol=1e-6)
    assert proc2.tokens_per_tile == processor.tokens_per_tile


def test_convert_names_missing_config(tmp_path):
    with pytest.raises(SailRLError, match="config.json not found"):
        convert_checkpoint(tmp_path, tmp_path / "out")
