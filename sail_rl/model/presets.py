"""Model presets: `tiny` / `tiny-moe` (train on 2 CPU cores) and the released shapes.

The real shapes follow the SAIL-VL2 report: SAIL-ViT-Huge (AIMv2-Huge, 448 px, patch 14)
with Qwen3-1.7B (2b), Qwen3-8B (8b) or Qwen3-30B-A3B (30b-a3b). Their tokenizer is Qwen's
(151,936 ids), which cannot be trained here: init-model takes it from a local path.

`select_layer` is written in the release's numbering (see `feature_layer_from_release`):
-1 is the vision trunk's final normalised output. Sources for the released values:
- SAIL-VL2-2B: `config.json` holds `"select_layer": -1` and `llm_config.tie_word_embeddings: true`
  (mirror: github.com/Nagareshita/pdf_analyzer, `SAIL-VL2-2B/config.json`); its
  `modeling_sailvl.py` takes `last_hidden_state` for -1 and `hidden_states[select_layer]` else,
  and `configuration_sailvit.py` says SAILViT is copied from apple/aimv2-huge-patch14-448, whose
  trunk returns one hidden state per block (no embedding entry) and applies `post_trunk_norm`
  to the last one only.
- SAIL-VL2-8B and SAIL-VL2-30B-A3B: no mirror of their config.json was found (searched the
  public code index for SAIL-VL2 configs); the presets use -1 like the 2B, NOT verified against
  those releases. `sail-rl convert-checkpoint` reads each release's own value, so converted
  checkpoints never depend on these presets.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import Aimv2VisionConfig, Qwen3Config, Qwen3MoeConfig

from sail_rl.model.configuration import SailVLConfig, feature_layer_from_release

QWEN_VOCAB = 151936


@dataclass
class Preset:
    vision: dict
    text: dict
    moe: bool = False
    image_size: int = 448
    max_tiles: int = 6
    tiny_tokenizer: bool = False
    notes: str = ""
    select_layer: int = -1  # release numbering (see the module docstring)


AIMV2_HUGE = dict(hidden_size=1536, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=12, image_size=448, patch_size=14)

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=5, num_attention_heads=4, image_size=64, patch_size=8),
        text=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                  head_dim=32, max_position_embeddings=2048, tie_word_embeddings=True),
        image_size=64, max_tiles=4, tiny_tokenizer=True,
        notes="1.39M parameters; 64 px tiles of 8 px patches -> 16 tokens per tile",
    ),
    "tiny-moe": Preset(
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=5, num_attention_heads=4, image_size=64, patch_size=8),
        text=dict(hidden_size=128, intermediate_size=512, moe_intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=32, num_experts=8, num_experts_per_tok=2, decoder_sparse_step=1,
                  router_aux_loss_coef=0.001, max_position_embeddings=2048, tie_word_embeddings=True),
        moe=True, image_size=64, max_tiles=4, tiny_tokenizer=True,
        notes="Qwen3-MoE text model, 8 experts, 2 active",
    ),
    "2b": Preset(
        vision=AIMV2_HUGE,
        text=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                  head_dim=128, vocab_size=QWEN_VOCAB, max_position_embeddings=40960, rope_theta=1000000.0, tie_word_embeddings=True),
        notes="SAIL-ViT-Huge + Qwen3-1.7B (tied word embeddings, as Qwen3-1.7B and the release)",
    ),
    "8b": Preset(
        vision=AIMV2_HUGE,
        text=dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                  head_dim=128, vocab_size=QWEN_VOCAB, max_position_embeddings=40960, rope_theta=1000000.0, tie_word_embeddings=False),
        notes="SAIL-ViT-Huge + Qwen3-8B",
    ),
    "30b-a3b": Preset(
        vision=AIMV2_HUGE,
        text=dict(hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=48, num_attention_heads=32,
                  num_key_value_heads=4, head_dim=128, num_experts=128, num_experts_per_tok=8, decoder_sparse_step=1,
                  vocab_size=QWEN_VOCAB, max_position_embeddings=40960, rope_theta=1000000.0, router_aux_loss_coef=0.001,
                  tie_word_embeddings=False),
        moe=True,
        notes="SAIL-ViT-Huge + Qwen3-30B-A3B (MoE, 128 experts, 8 active)",
    ),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def build_config(name: str, vocab_size: int | None = None, token_ids: dict[str, int] | None = None) -> SailVLConfig:
    """The SailVLConfig of a preset. `vocab_size` / `token_ids` come from the tokenizer."""
    from sail_rl.errors import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"unknown model preset '{name}'; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    feature_layer, kept_layers = feature_layer_from_release(preset.select_layer, preset.vision["num_hidden_layers"])
    vision = Aimv2VisionConfig(**{**preset.vision, "num_hidden_layers": kept_layers}, use_head=False)
    text_kwargs = dict(preset.text)
    if vocab_size is not None:
        text_kwargs["vocab_size"] = vocab_size
    ids = token_ids or {}
    if "eos_token_id" in ids:
        text_kwargs.update(eos_token_id=ids["eos_token_id"], pad_token_id=ids.get("pad_token_id"), bos_token_id=None)
    text = (Qwen3MoeConfig if preset.moe else Qwen3Config)(**text_kwargs)
    return SailVLConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_id=ids.get("image_token_id"),
        image_start_token_id=ids.get("image_start_token_id"),
        image_end_token_id=ids.get("image_end_token_id"),
        vision_feature_layer=feature_layer,
    )


__all__ = ["PRESETS", "Preset", "build_config", "preset_names"]
