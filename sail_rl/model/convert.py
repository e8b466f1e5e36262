"""Convert a checkpoint in the released SAIL-VL2 layout into sail-rl's.

The release ships custom code: `vision_model.*` is Apple's AIMv2 module
(`preprocessor.*`, `trunk.blocks.N.*` with a fused qkv), the adapter is `mlp1.{0,1,3}`
(LayerNorm, Linear, GELU, Linear) and the LLM is `language_model.*` (already Qwen3's
names). Its config.json holds `vision_config`, `llm_config`, `select_layer`,
`downsample_ratio` (and `force_image_size`, `max_dynamic_patch`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from sail_rl.errors import SailRLError

_BLOCK = re.compile(r"^vision_model\.trunk\.blocks\.(\d+)\.(.+)$")
_BLOCK_NAMES = {
    "attn.proj.weight": "attention.out_proj.weight",
    "attn.proj.bias": "attention.out_proj.bias",
    "norm_1.weight": "rms_norm1.weight",
    "norm_2.weight": "rms_norm2.weight",
    "mlp.fc1.weight": "ffn.gate_proj.weight",  # AIMv2 SwiGLU: fc2(silu(fc1 x) * fc3 x)
    "mlp.fc3.weight": "ffn.up_proj.weight",
    "mlp.fc2.weight": "ffn.down_proj.weight",
    "mlp.fc1.bias": "ffn.gate_proj.bias",
    "mlp.fc3.bias": "ffn.up_proj.bias",
    "mlp.fc2.bias": "ffn.down_proj.bias",
}
_FIXED = {
    "vision_model.preprocessor.patchifier.proj.weight": "vision_model.embeddings.patch_embed.weight",
    "vision_model.preprocessor.patchifier.proj.bias": "vision_model.embeddings.patch_embed.bias",
    "vision_model.preprocessor.patchifier.norm.weight": "vision_model.embeddings.rms_norm.weight",
    "vision_model.trunk.post_trunk_norm.weight": "vision_model.rms_norm.weight",
    "mlp1.0.weight": "projector.norm.weight",
    "mlp1.0.bias": "projector.norm.bias",
    "mlp1.1.weight": "projector.fc1.weight",
    "mlp1.1.bias": "projector.fc1.bias",
    "mlp1.3.weight": "projector.fc2.weight",
    "mlp1.3.bias": "projector.fc2.bias",
}


def convert_state_dict(released: dict[str, torch.Tensor], kept_vision_layers: int) -> dict[str, torch.Tensor]:
    """Released tensor names -> ours. Vision blocks past `kept_vision_layers` are dropped."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in released.items():
        if key.startswith("language_model."):
            out[key] = tensor
        elif key in _FIXED:
            out[_FIXED[key]] = tensor
        elif key == "vision_model.preprocessor.pos_embed":
            out["vision_model.embeddings.position_embedding.weight"] = tensor.reshape(-1, tensor.shape[-1])
        elif match := _BLOCK.match(key):
            layer, rest = int(match.group(1)), match.group(2)
            if layer >= kept_vision_layers:
                continue
            prefix = f"vision_model.encoder.layers.{layer}."
            if rest in ("attn.qkv.weight", "attn.qkv.bias"):
                kind = rest.rsplit(".", 1)[1]
                for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                    out[f"{prefix}attention.{name}.{kind}"] = part.clone()
            elif rest in _BLOCK_NAMES:
                out[prefix + _BLOCK_NAMES[rest]] = tensor
            else:
                raise SailRLError(f"convert-checkpoint: unknown vision tensor '{key}'; this converter knows the SAIL-VL2 AIMv2 layout")
        else:
            raise SailRLError(f"convert-checkpoint: unknown tensor '{key}'; expected vision_model.*, mlp1.* or language_model.*")
    return out


def released_config_to_ours(cfg: dict, token_ids: dict[str, int], vocab_size: int):
    from transformers import Aimv2VisionConfig
    from transformers.models.auto import CONFIG_MAPPING

    from sail_rl.model.configuration import SailVLConfig

    vision = cfg["vision_config"]
    llm = dict(cfg.get("llm_config") or cfg.get("text_config") or {})
    if not llm:
        raise SailRLError("convert-checkpoint: config.json has no llm_config; is this a SAIL-VL2 checkpoint?")
    image_size = cfg.get("force_image_size") or vision.get("image_size", 448)
    aimv2 = Aimv2VisionConfig(
        hidden_size=vision["hidden_size"], intermediate_size=vision["intermediate_size"],
        num_hidden_layers=vision["num_hidden_layers"], num_attention_heads=vision["num_attention_heads"],
        image_size=image_size, patch_size=vision.get("patch_size", 14), rms_norm_eps=vision.get("rms_norm_eps", 1e-5),
        qkv_bias=vision.get("qkv_bias", False), mlp_bias=vision.get("use_bias", False), use_head=False,
    )
    kind = llm.get("model_type", "qwen3")
    llm = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "transformers_version")}
    llm["vocab_size"] = max(vocab_size, llm.get("vocab_size", 0))
    text = CONFIG_MAPPING[kind](**llm)
    return SailVLConfig(
        vision_config=aimv2.to_dict(), text_config=text.to_dict(),
        select_layer=cfg.get("select_layer", -4), downsample_ratio=cfg.get("downsample_ratio", 0.5),
        image_token_id=token_ids["image_token_id"], image_start_token_id=token_ids["image_start_token_id"],
        image_end_token_id=token_ids["image_end_token_id"],
    )


def load_safetensors_dir(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise SailRLError(f"convert-checkpoint: no *.safetensors files in {path}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def convert_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Read a released SAIL-VL2 checkpoint at `src`, write a sail-rl one at `dst`."""
    from transformers import AutoTokenizer

    from sail_rl.model.builder import token_ids
    from sail_rl.model.image_processing import SailVLImageProcessor
    from sail_rl.model.modeling import SailVLForConditionalGeneration
    from sail_rl.model.processing import SailVLProcessor

    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file():
        raise SailRLError(f"convert-checkpoint: {src}/config.json not found; point SRC at the released checkpoint folder")
    cfg = json.loads((src / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(src)
    config = released_config_to_ours(cfg, token_ids(tokenizer), len(tokenizer))
    model = SailVLForConditionalGeneration(config)
    state = convert_state_dict(load_safetensors_dir(src), config.vision_layers_used)
    if config.text_config.tie_word_embeddings:
        state.setdefault("language_model.lm_head.weight", state["language_model.model.embed_tokens.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SailRLError(f"convert-checkpoint: tensors missing {sorted(missing)[:5]} / unexpected {sorted(unexpected)[:5]} after conversion")
    image_processor = SailVLImageProcessor(image_size=config.vision_config.image_size, max_tiles=cfg.get("max_dynamic_patch", 6))
    processor = SailVLProcessor(image_processor, tokenizer, tokens_per_tile=config.image_tokens_per_tile)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    processor.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    return dst
