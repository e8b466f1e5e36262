"""Convert checkpoints into sail-rl's layout (transformers' InternVL layout, see `modeling`).

Two sources:

- a released SAIL-VL2 checkpoint (custom code, `model_type: sailvl`): `vision_model.*` is
  Apple's AIMv2 module (`preprocessor.*`, `trunk.blocks.N.*` with a fused qkv), the adapter is
  `mlp1.{0,1,3}` (LayerNorm, Linear, GELU, Linear) and the LLM is `language_model.*` (Qwen3's
  names). Its config.json holds `vision_config`, `llm_config`, `select_layer`, `downsample_ratio`,
  `force_image_size`, `min/max_dynamic_patch`, `use_thumbnail`. The config is read as JSON:
  no remote code runs and nothing prompts.
- a checkpoint of sail-rl before the InternVL layout (`model_type: sail_vl` with `select_layer`):
  `vision_model.*`, `projector.{norm,fc1,fc2}.*`, `language_model.{model.*,lm_head.weight}`.

Both keep `select_layer`'s meaning exactly (see `configuration`); tensors keep their dtype
unless `dtype` is given; vision blocks past the selected one are dropped and reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from sail_rl.errors import SailRLError
from sail_rl.model.configuration import feature_layer_from_old_sail_rl, feature_layer_from_release

VISION, PROJECTOR, TEXT = "model.vision_tower.", "model.multi_modal_projector.", "model.language_model."
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
_RELEASE_FIXED = {
    "vision_model.preprocessor.patchifier.proj.weight": VISION + "embeddings.patch_embed.weight",
    "vision_model.preprocessor.patchifier.proj.bias": VISION + "embeddings.patch_embed.bias",
    "vision_model.preprocessor.patchifier.norm.weight": VISION + "embeddings.rms_norm.weight",
    "vision_model.trunk.post_trunk_norm.weight": VISION + "rms_norm.weight",
    "mlp1.0.weight": PROJECTOR + "layer_norm.weight",
    "mlp1.0.bias": PROJECTOR + "layer_norm.bias",
    "mlp1.1.weight": PROJECTOR + "linear_1.weight",
    "mlp1.1.bias": PROJECTOR + "linear_1.bias",
    "mlp1.3.weight": PROJECTOR + "linear_2.weight",
    "mlp1.3.bias": PROJECTOR + "linear_2.bias",
}
_OLD_PROJECTOR = {"norm": "layer_norm", "fc1": "linear_1", "fc2": "linear_2"}
_LAYER = re.compile(r"\.layers\.(\d+)\.")
_ZERO_FILLABLE = re.compile(r"^model\.vision_tower\.encoder\.layers\.\d+\.attention\.(q|k|v|out)_proj\.bias$")


def _text_name(key: str) -> str | None:
    """`language_model.model.X` / `language_model.lm_head.weight` (both layouts) -> the new names."""
    if key.startswith("language_model.model."):
        return TEXT + key[len("language_model.model."):]
    if key == "language_model.lm_head.weight":
        return "lm_head.weight"
    return None


def convert_released_state_dict(
    released: dict[str, torch.Tensor], kept_vision_layers: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Released tensor names -> ours. Returns (state, dropped names): blocks past `kept_vision_layers`."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, tensor in released.items():
        if (name := _text_name(key)) is not None:
            out[name] = tensor
        elif key in _RELEASE_FIXED:
            out[_RELEASE_FIXED[key]] = tensor
        elif key == "vision_model.preprocessor.pos_embed":  # [1, patches, dim]
            out[VISION + "embeddings.position_embedding.weight"] = tensor.reshape(-1, tensor.shape[-1])
        elif match := _BLOCK.match(key):
            layer, rest = int(match.group(1)), match.group(2)
            if layer >= kept_vision_layers:
                dropped.append(key)
                continue
            prefix = f"{VISION}encoder.layers.{layer}."
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
    return out, dropped


def convert_old_state_dict(old: dict[str, torch.Tensor], kept_vision_layers: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Old sail-rl names (`vision_model.*`, `projector.*`, `language_model.*`) -> ours."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, tensor in old.items():
        if (name := _text_name(key)) is not None:
            out[name] = tensor
        elif key.startswith("vision_model."):
            layer = _LAYER.search(key)
            if layer and int(layer.group(1)) >= kept_vision_layers:
                dropped.append(key)
                continue
            out[VISION + key[len("vision_model."):]] = tensor
        elif key.startswith("projector.") and key.split(".")[1] in _OLD_PROJECTOR:
            _, part, kind = key.split(".")
            out[f"{PROJECTOR}{_OLD_PROJECTOR[part]}.{kind}"] = tensor
        else:
            raise SailRLError(f"convert-checkpoint: unknown tensor '{key}' in an old sail-rl checkpoint")
    return out, dropped


def released_config_to_ours(cfg: dict, token_ids: dict[str, int], vocab_size: int):
    """The release's config.json (as a dict) -> SailVLConfig, select_layer translated exactly."""
    from transformers import Aimv2VisionConfig
    from transformers.models.auto import CONFIG_MAPPING

    from sail_rl.model.configuration import SailVLConfig

    vision = cfg["vision_config"]
    llm = dict(cfg.get("llm_config") or {})
    if not llm:
        raise SailRLError("convert-checkpoint: config.json has no llm_config; is this a released SAIL-VL2 checkpoint?")
    image_size = vision.get("image_size", 448)
    if cfg.get("force_image_size") not in (None, image_size):
        raise SailRLError(
            f"convert-checkpoint: force_image_size {cfg['force_image_size']} differs from vision_config.image_size "
            f"{image_size}; the position embedding has ({image_size}/patch)^2 rows: set both to the same size"
        )
    layers = vision["num_hidden_layers"]
    feature_layer, kept = feature_layer_from_release(cfg.get("select_layer", -1), layers)
    use_bias, qkv_bias = vision.get("use_bias", False), vision.get("qkv_bias", False)
    aimv2 = Aimv2VisionConfig(
        hidden_size=vision["hidden_size"], intermediate_size=vision["intermediate_size"],
        num_hidden_layers=kept, num_attention_heads=vision["num_attention_heads"],
        image_size=image_size, patch_size=vision.get("patch_size", 14), rms_norm_eps=vision.get("rms_norm_eps", 1e-5),
        # transformers' AIMv2 gives q/k/v and the attention output one bias switch; the missing side is zero-filled
        qkv_bias=bool(qkv_bias or use_bias), mlp_bias=bool(use_bias), use_head=False,
    )
    kind = llm.get("model_type", "qwen3")
    llm = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "transformers_version", "_name_or_path")}
    llm["vocab_size"] = max(vocab_size, llm.get("vocab_size", 0))
    text = CONFIG_MAPPING[kind](**llm)
    return SailVLConfig(
        vision_config=aimv2.to_dict(), text_config=text.to_dict(), vision_feature_layer=feature_layer,
        downsample_ratio=cfg.get("downsample_ratio", 0.5),
        **{k: token_ids[k] for k in ("image_token_id", "image_start_token_id", "image_end_token_id")},
    )


def old_config_to_ours(cfg: dict):
    """An old sail-rl config.json (as a dict) -> SailVLConfig with the same feature semantics."""
    from sail_rl.model.configuration import SailVLConfig

    cfg = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version", "model_type", "dtype")}
    vision = dict(cfg.pop("vision_config"))
    feature_layer, kept = feature_layer_from_old_sail_rl(cfg.pop("select_layer"), vision["num_hidden_layers"])
    vision["num_hidden_layers"] = kept
    keep = ("text_config", "downsample_ratio", "image_token_id", "image_start_token_id", "image_end_token_id", "projector_hidden_act")
    return SailVLConfig(vision_config=vision, vision_feature_layer=feature_layer, **{k: cfg[k] for k in keep if k in cfg})


def load_safetensors_dir(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise SailRLError(f"convert-checkpoint: no *.safetensors files in {path}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


def write_checkpoint(config, state: dict[str, torch.Tensor], dst: Path, dtype: str | None) -> list[str]:
    """Save `state` as a SailVLForConditionalGeneration at `dst`, each tensor in its own dtype
    (or `dtype`). Zero-fills biases the source lacks but our modules have (exact: a zero bias
    adds nothing). Returns the names filled with zeros."""
    from sail_rl.model.modeling import SailVLForConditionalGeneration

    with torch.device("meta"):
        model = SailVLForConditionalGeneration(config)
    expected = model.state_dict()
    tied = config.tie_word_embeddings
    if tied and "lm_head.weight" in state:
        if not torch.equal(state["lm_head.weight"], state[TEXT + "embed_tokens.weight"]):
            raise SailRLError("convert-checkpoint: the text config ties word embeddings but lm_head differs from embed_tokens")
        del state["lm_head.weight"]
    zero_filled = [k for k in expected if k not in state and _ZERO_FILLABLE.search(k)]
    for k in zero_filled:
        state[k] = torch.zeros(expected[k].shape, dtype=state[k.replace(".bias", ".weight")].dtype)
    if dtype is not None:
        state = {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in state.items()}
    missing = sorted(k for k in expected if k not in state and not (tied and k == "lm_head.weight"))
    unexpected = sorted(k for k in state if k not in expected)
    if missing or unexpected:
        raise SailRLError(f"convert-checkpoint: tensors missing {missing[:5]} / unexpected {unexpected[:5]} after conversion")
    model.load_state_dict(state, strict=False, assign=True)
    if tied:
        model.lm_head.weight = model.model.language_model.embed_tokens.weight
    config.dtype = state[TEXT + "embed_tokens.weight"].dtype
    model.save_pretrained(dst)
    return zero_filled


def convert_checkpoint(src: str | Path, dst: str | Path, dtype: str | None = None) -> dict:
    """Convert a released SAIL-VL2 or an old sail-rl checkpoint at `src` into a sail-rl one at `dst`.

    Returns a report: {"source": "release" | "old sail-rl", "dropped": [...], "zero_filled": [...]}.
    """
    from transformers import AutoTokenizer

    from sail_rl.model.builder import name_image_tokens, token_ids
    from sail_rl.model.image_processing import SailVLImageProcessor
    from sail_rl.model.processing import SailVLProcessor

    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file():
        raise SailRLError(f"convert-checkpoint: {src}/config.json not found; point SRC at the checkpoint folder")
    if dtype not in (None, "float32", "bfloat16", "float16"):
        raise SailRLError(f"convert-checkpoint: --dtype must be float32, bfloat16 or float16, got '{dtype}'")
    cfg = json.loads((src / "config.json").read_text())
    old = cfg.get("model_type") == "sail_vl" and "select_layer" in cfg
    if old:
        processor = SailVLProcessor.from_pretrained(src)
        tokenizer = processor.tokenizer
        config = old_config_to_ours(cfg)
        state, dropped = convert_old_state_dict(load_safetensors_dir(src), config.vision_config.num_hidden_layers)
    else:
        # trust_remote_code=False: never run the release's code, never ask on a terminal
        tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=False)
        config = released_config_to_ours(cfg, token_ids(tokenizer), len(tokenizer))
        state, dropped = convert_released_state_dict(load_safetensors_dir(src), config.vision_config.num_hidden_layers)
        max_tiles = cfg.get("max_dynamic_patch", 12) if cfg.get("dynamic_image_size", True) else 1
        image_processor = SailVLImageProcessor(
            image_size=config.vision_config.image_size, min_tiles=cfg.get("min_dynamic_patch", 1),
            max_tiles=max_tiles, use_thumbnail=cfg.get("use_thumbnail", True),
        )
        processor = SailVLProcessor(image_processor, tokenizer, tokens_per_tile=config.image_tokens_per_tile)
    name_image_tokens(tokenizer)
    dst.mkdir(parents=True, exist_ok=True)
    zero_filled = write_checkpoint(config, state, dst, dtype)
    processor.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    return {"source": "old sail-rl" if old else "release", "dropped": dropped, "zero_filled": zero_filled, "dst": dst}
