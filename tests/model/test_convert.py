"""convert-checkpoint: released SAIL-VL2 checkpoints and old sail-rl checkpoints convert exactly.

The released model is rebuilt here from its modeling code's semantics (modeling_sailvl.py and
Apple's AIMv2 code that SAILViT copies), in plain torch, never through sail-rl's modules:

    hidden_states = (output of block 1, ..., output of block N)        # no embedding entry, no norm
    select_layer -1 -> post_trunk_norm(output of block N)             # `last_hidden_state`
    otherwise       -> hidden_states[select_layer]
    -> pixel shuffle (ps_version v2) -> mlp1 (LayerNorm, Linear, GELU, Linear) -> <IMG_CONTEXT> rows
    -> the release's Qwen3ForCausalLM on `language_model.*`
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from sail_rl.errors import SailRLError
from sail_rl.model.builder import load_model
from sail_rl.model.convert import convert_checkpoint

V = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=5, num_attention_heads=4, image_size=32, patch_size=8,
         rms_norm_eps=1e-5, num_channels=3)


# ---------------------------------------------------------------- the release, from its code's semantics


def _rms(x, w, eps):
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * w


def _linear(sd, name, x):
    return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))


def release_vit(sd: dict, pixel_values: torch.Tensor, heads: int, eps: float) -> tuple[torch.Tensor, tuple]:
    """SAILViT (AIMv2): (last_hidden_state, hidden_states) as the release computes them."""
    p = "vision_model."
    x = F.conv2d(pixel_values, sd[p + "preprocessor.patchifier.proj.weight"], sd[p + "preprocessor.patchifier.proj.bias"],
                 stride=sd[p + "preprocessor.patchifier.proj.weight"].shape[-1])
    x = _rms(x.flatten(2).transpose(1, 2), sd[p + "preprocessor.patchifier.norm.weight"], eps)
    x = x + sd[p + "preprocessor.pos_embed"][:, : x.shape[1]]
    hidden_states = ()
    i = 0
    while f"{p}trunk.blocks.{i}.norm_1.weight" in sd:
        b = f"{p}trunk.blocks.{i}."
        B, N, C = x.shape
        qkv = _linear(sd, b + "attn.qkv", _rms(x, sd[b + "norm_1.weight"], eps))
        q, k, v = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)
        x = x + _linear(sd, b + "attn.proj", attn)
        h = _rms(x, sd[b + "norm_2.weight"], eps)
        x = x + _linear(sd, b + "mlp.fc2", F.silu(_linear(sd, b + "mlp.fc1", h)) * _linear(sd, b + "mlp.fc3", h))
        hidden_states += (x,)
        i += 1
    return _rms(x, sd[p + "trunk.post_trunk_norm.weight"], eps), hidden_states


def release_features(sd: dict, cfg: dict, pixel_values: torch.Tensor) -> torch.Tensor:
    """modeling_sailvl.py `extract_feature`: [tiles, tokens, llm_hidden]."""
    v = cfg["vision_config"]
    last, hidden_states = release_vit(sd, pixel_values, v["num_attention_heads"], v["rms_norm_eps"])
    x = last if cfg["select_layer"] == -1 else hidden_states[cfg["select_layer"]]
    n, hw, c = x.shape
    side, r = int(hw**0.5), cfg["downsample_ratio"]
    x = x.reshape(n, side, side, c).reshape(n, side, int(side * r), int(c / r)).permute(0, 2, 1, 3)
    x = x.reshape(n, int(side * r), int(side * r), int(c / (r * r))).permute(0, 2, 1, 3)
    x = x.reshape(n, -1, x.shape[-1])
    x = F.layer_norm(x, (x.shape[-1],), sd["mlp1.0.weight"], sd["mlp1.0.bias"])
    return _linear(sd, "mlp1.3", F.gelu(_linear(sd, "mlp1.1", x)))


def release_logits(sd: dict, cfg: dict, input_ids, pixel_values, image_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    features = release_features(sd, cfg, pixel_values)
    llm = Qwen3ForCausalLM(Qwen3Config(**{k: v for k, v in cfg["llm_config"].items() if k != "architectures"})).eval()
    text = {k[len("language_model."):]: t for k, t in sd.items() if k.startswith("language_model.")}
    llm.load_state_dict(text, strict=False)  # a tied head is absent from the release, as in the 2B
    llm.tie_weights()
    embeds = llm.get_input_embeddings()(input_ids)
    embeds[input_ids == image_token_id] = features.reshape(-1, embeds.shape[-1])
    return features, llm(inputs_embeds=embeds).logits


# ---------------------------------------------------------------- a tiny release on disk


def make_release(path, tokenizer, select_layer: int, use_bias: bool = False, seed: int = 0) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.2  # noqa: E731
    d, inter, hid = V["hidden_size"], V["intermediate_size"], 64
    patches = (V["image_size"] // V["patch_size"]) ** 2
    sd = {
        "vision_model.preprocessor.patchifier.proj.weight": r(d, 3, V["patch_size"], V["patch_size"]),
        "vision_model.preprocessor.patchifier.proj.bias": r(d),
        "vision_model.preprocessor.patchifier.norm.weight": 1 + r(d),
        "vision_model.preprocessor.pos_embed": r(1, patches, d),
        "vision_model.trunk.post_trunk_norm.weight": 1 + 3 * r(d),
        "mlp1.0.weight": 1 + r(4 * d), "mlp1.0.bias": r(4 * d),
        "mlp1.1.weight": r(hid, 4 * d), "mlp1.1.bias": r(hid),
        "mlp1.3.weight": r(hid, hid), "mlp1.3.bias": r(hid),
    }
    for i in range(V["num_hidden_layers"]):
        b = f"vision_model.trunk.blocks.{i}."
        sd.update({b + "attn.qkv.weight": r(3 * d, d), b + "attn.proj.weight": r(d, d), b + "norm_1.weight": 1 + r(d),
                   b + "norm_2.weight": 1 + r(d), b + "mlp.fc1.weight": r(inter, d), b + "mlp.fc3.weight": r(inter, d),
                   b + "mlp.fc2.weight": r(d, inter)})
        if use_bias:  # the release's `use_bias`: attention output and MLP biases, no qkv bias
            sd.update({b + "attn.proj.bias": r(d), b + "mlp.fc1.bias": r(inter), b + "mlp.fc3.bias": r(inter), b + "mlp.fc2.bias": r(d)})
    llm_cfg = Qwen3Config(hidden_size=hid, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          head_dim=16, vocab_size=len(tokenizer), tie_word_embeddings=True, max_position_embeddings=512)
    torch.manual_seed(seed)
    llm = Qwen3ForCausalLM(llm_cfg)
    sd.update({"language_model." + k: v.clone() for k, v in llm.state_dict().items() if k != "lm_head.weight"})
    cfg = {  # the keys of the released SAIL-VL2-2B config.json
        "architectures": ["SAILVLModel"], "model_type": "sailvl",
        "auto_map": {"AutoConfig": "configuration_sailvl.SAILVLConfig", "AutoModel": "modeling_sailvl.SAILVLModel"},
        "downsample_ratio": 0.5, "dynamic_image_size": True, "force_image_size": V["image_size"],
        "llm_config": {**llm_cfg.to_dict(), "architectures": ["Qwen3ForCausalLM"]},
        "max_dynamic_patch": 12, "min_dynamic_patch": 1, "ps_version": "v2", "select_layer": select_layer,
        "template": "sailvl-chat", "use_thumbnail": True,
        "vision_config": {**V, "model_type": "sailvit", "architectures": ["SAILViTModel"], "qkv_bias": False, "use_bias": use_bias},
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path / "model.safetensors"))
    tokenizer.save_pretrained(path)
    return sd, cfg


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    return AutoTokenizer.from_pretrained(tiny_dir)


def _inputs(tokenizer, tiles: int, tokens_per_tile: int):
    ids = tokenizer("<|im_start|>user\n<img>" + "<IMG_CONTEXT>" * tiles * tokens_per_tile + "</img>\nhi<|im_end|>",
                    return_tensors="pt", add_special_tokens=False)["input_ids"]
    pixels = torch.randn(tiles, 3, V["image_size"], V["image_size"], generator=torch.Generator().manual_seed(1))
    return ids, pixels


@pytest.mark.parametrize("select_layer,use_bias", [(-1, False), (-4, False), (2, True)])
def test_release_converts_to_the_release_forward(tokenizer, tmp_path, select_layer, use_bias):
    sd, cfg = make_release(tmp_path / "release", tokenizer, select_layer, use_bias)
    report = convert_checkpoint(tmp_path / "release", tmp_path / "ours")
    model = load_model(tmp_path / "ours").eval()
    ids, pixels = _inputs(tokenizer, tiles=2, tokens_per_tile=model.config.image_tokens_per_tile)
    with torch.no_grad():
        ref_features, ref_logits = release_logits(sd, cfg, ids, pixels, model.config.image_token_id)
        features = model.get_image_features(pixels).pooler_output
        logits = model(input_ids=ids, pixel_values=pixels).logits
    assert (features - ref_features).abs().max() <= 1e-4
    assert (logits - ref_logits).abs().max() <= 1e-4
    # every released tensor is mapped, except the blocks past the selected one, which are reported
    kept = {-1: 5, -4: 2, 2: 3}[select_layer]
    assert sorted(report["dropped"]) == sorted(k for k in sd if k.startswith("vision_model.trunk.blocks.")
                                               and int(k.split(".")[3]) >= kept)
    assert len(model.model.vision_tower.encoder.layers) == kept
    assert sorted(report["zero_filled"]) == sorted([f"model.vision_tower.encoder.layers.{i}.attention.{n}_proj.bias"
                                      for i in range(kept) for n in "qkv"] if use_bias else [])


def test_release_wrong_select_layer_semantics_would_show(tokenizer, tmp_path):
    """The check above has teeth: -1 read as the un-normed last block (sail-rl's old meaning) differs."""
    sd, cfg = make_release(tmp_path / "release", tokenizer, -1)
    ids, pixels = _inputs(tokenizer, 1, 4)
    with torch.no_grad():
        normed = release_features(sd, cfg, pixels)
        unnormed = release_features(sd, {**cfg, "select_layer": 4}, pixels)  # hidden_states[4]: block 5, no norm
    assert (normed - unnormed).abs().max() > 1e-2


def test_convert_keeps_dtype_per_tensor_unless_told(tokenizer, tmp_path):
    make_release(tmp_path / "release", tokenizer, -1)
    convert_checkpoint(tmp_path / "release", tmp_path / "fp32")
    assert {t.dtype for t in load_file(str(tmp_path / "fp32" / "model.safetensors")).values()} == {torch.float32}
    convert_checkpoint(tmp_path / "release", tmp_path / "bf16", dtype="bfloat16")
    assert {t.dtype for t in load_file(str(tmp_path / "bf16" / "model.safetensors")).values()} == {torch.bfloat16}


def test_convert_refuses_unknown_tensors_and_mismatched_image_size(tokenizer, tmp_path):
    sd, cfg = make_release(tmp_path / "release", tokenizer, -1)
    save_file({**sd, "vision_model.trunk.extra.weight": torch.zeros(2)}, str(tmp_path / "release" / "model.safetensors"))
    with pytest.raises(SailRLError, match="unknown tensor 'vision_model.trunk.extra.weight'"):
        convert_checkpoint(tmp_path / "release", tmp_path / "out")
    (tmp_path / "release" / "config.json").write_text(json.dumps({**cfg, "force_image_size": 64}))
    with pytest.raises(SailRLError, match="force_image_size 64 differs from vision_config.image_size 32"):
        convert_checkpoint(tmp_path / "release", tmp_path / "out")


def test_convert_names_missing_config(tmp_path):
    with pytest.raises(SailRLError, match="config.json not found"):
        convert_checkpoint(tmp_path, tmp_path / "out")
