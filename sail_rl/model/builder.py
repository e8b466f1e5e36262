"""Write and load SAIL-VL checkpoints: `init_model` (from a preset) and `load_model`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from sail_rl.errors import ConfigError, SailRLError
from sail_rl.model.attention import VARLEN_SDPA, register as register_varlen_sdpa
from sail_rl.model.configuration import OLD_LAYOUT_HINT
from sail_rl.model.image_processing import SailVLImageProcessor
from sail_rl.model.presets import PRESETS, build_config
from sail_rl.model.processing import IMG_CONTEXT, IMG_END, IMG_START, PLACEHOLDER_TOKENS, SailVLProcessor


@dataclass
class ModelConfig:
    """Recipe section `model:`: which checkpoint, and how to hold it."""

    path: str = "runs/tiny-sft"  # a directory written by init-model, sft or run
    dtype: str = "float32"  # float32 on CPU; bfloat16 on GPU
    max_tiles: int | None = None  # None: the processor's own setting
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False

    def validate(self) -> None:
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"model.dtype must be float32, bfloat16 or float16, got '{self.dtype}'")


def name_image_tokens(tokenizer) -> None:
    """Name the image tokens on the tokenizer as InternVL's processors read them
    (`tokenizer.start_image_token`, `context_image_token`, `end_image_token`, and their `_id`s);
    saved in tokenizer_config.json. The same call transformers makes for `extra_special_tokens={...}`."""
    tokenizer._set_model_specific_special_tokens(
        {"start_image_token": IMG_START, "context_image_token": IMG_CONTEXT, "end_image_token": IMG_END}
    )


def token_ids(tokenizer) -> dict[str, int]:
    ids = {
        "image_token_id": tokenizer.convert_tokens_to_ids(IMG_CONTEXT),
        "image_start_token_id": tokenizer.convert_tokens_to_ids(IMG_START),
        "image_end_token_id": tokenizer.convert_tokens_to_ids(IMG_END),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.pad_token_id,
    }
    missing = [k for k, v in ids.items() if v is None or v == tokenizer.unk_token_id]
    if missing:
        raise SailRLError(f"the tokenizer lacks the SAIL-VL special tokens for {missing}; add {IMG_START}, {IMG_CONTEXT}, {IMG_END}, <|im_end|>")
    return ids


def init_model(preset: str, out_dir: str | Path, tokenizer_path: str | None = None, seed: int = 0):
    """Randomly initialised model + tokenizer + processor of a preset, saved to `out_dir`."""
    from transformers import AutoTokenizer

    from sail_rl.model.modeling import SailVLForConditionalGeneration
    from sail_rl.model.tokenizer import train_tokenizer

    if preset not in PRESETS:
        raise ConfigError(f"unknown model preset '{preset}'; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    if tokenizer_path:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        from tokenizers import AddedToken

        vocab = tokenizer.get_vocab()
        tokenizer.add_special_tokens({"additional_special_tokens": [t for t in PLACEHOLDER_TOKENS if t not in vocab]})
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<think>", "</think>", "<judge>", "</judge>") if t not in vocab])
    elif spec.tiny_tokenizer:
        tokenizer = train_tokenizer()
    else:
        raise ConfigError(f"preset '{preset}' uses Qwen's tokenizer: pass --tokenizer DIR (a local Qwen3 tokenizer folder)")
    ids = token_ids(tokenizer)
    name_image_tokens(tokenizer)
    config = build_config(preset, vocab_size=len(tokenizer), token_ids=ids)
    torch.manual_seed(seed)
    model = SailVLForConditionalGeneration(config)
    image_processor = SailVLImageProcessor(image_size=spec.image_size, max_tiles=spec.max_tiles)
    processor = SailVLProcessor(image_processor, tokenizer, tokens_per_tile=config.image_tokens_per_tile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model, processor


def load_model(path: str | Path, dtype: str = "float32", attn_implementation: str | None = "sdpa"):
    """A SAIL-VL model from a local directory, with a clear error when it is not one."""
    from transformers import AutoModelForImageTextToText

    path = Path(path)
    if not (path / "config.json").is_file():
        raise SailRLError(f"no model at {path} (config.json missing); create one with `sail-rl init-model --preset tiny --out {path}`")
    if "select_layer" in json.loads((path / "config.json").read_text()):
        raise SailRLError(f"{path}: {OLD_LAYOUT_HINT}")
    kwargs = {"dtype": getattr(torch, dtype)}
    if attn_implementation == "sdpa":  # the same kernel, reading a packed sequence's row bounds (model/attention.py)
        register_varlen_sdpa()
        attn_implementation = VARLEN_SDPA
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    return AutoModelForImageTextToText.from_pretrained(path, **kwargs)


def load_processor(path: str | Path) -> SailVLProcessor:
    from transformers import AutoProcessor

    path = Path(path)
    if not (path / "processor_config.json").is_file() and not (path / "preprocessor_config.json").is_file():
        raise SailRLError(f"no processor at {path}; a SAIL-VL checkpoint directory from `sail-rl init-model` has one")
    return AutoProcessor.from_pretrained(path)
