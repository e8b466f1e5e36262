"""`SailVLConfig`: an AIMv2 vision config, a Qwen3 / Qwen3-MoE text config, and the glue.

The glue is what SAIL-VL2 adds on top of the two towers: which vision layer feeds the
adapter (`select_layer`, -4 in the release), the pixel-shuffle ratio (0.5: a 2x2 block of
patches becomes one token), and the ids of the image tokens in the text vocabulary.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.models.auto import CONFIG_MAPPING, AutoConfig


@strict
class SailVLConfig(PreTrainedConfig):
    model_type = "sail_vl"
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    select_layer: int = -4
    downsample_ratio: float = 0.5
    image_token_id: int | None = None  # <IMG_CONTEXT>
    image_start_token_id: int | None = None  # <img>
    image_end_token_id: int | None = None  # </img>
    projector_hidden_act: str = "gelu"
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if isinstance(self.vision_config, dict):
            kind = self.vision_config.get("model_type", "aimv2_vision_model")
            self.vision_config = CONFIG_MAPPING[kind](**{**self.vision_config, "model_type": kind})
        elif self.vision_config is None:
            self.vision_config = CONFIG_MAPPING["aimv2_vision_model"](use_head=False)
        if isinstance(self.text_config, dict):
            kind = self.text_config.get("model_type", "qwen3")
            self.text_config = CONFIG_MAPPING[kind](**{**self.text_config, "model_type": kind})
        elif self.text_config is None:
            self.text_config = CONFIG_MAPPING["qwen3"]()
        # The text model owns its head and its tying; mirror it so generic code sees it.
        self.tie_word_embeddings = bool(self.text_config.tie_word_embeddings)
        super().__post_init__(**kwargs)

    # ------------------------------------------------------------------ derived shapes

    @property
    def patches_per_side(self) -> int:
        return self.vision_config.image_size // self.vision_config.patch_size

    @property
    def image_tokens_per_tile(self) -> int:
        """Tokens one tile becomes after pixel shuffle: (448/14)^2 * 0.5^2 = 256 in the release."""
        side = int(self.patches_per_side * self.downsample_ratio)
        return side * side

    @property
    def vision_layers_used(self) -> int:
        """Encoder layers that run: hidden_states[select_layer] needs only the first ones."""
        total = self.vision_config.num_hidden_layers
        index = self.select_layer if self.select_layer >= 0 else total + 1 + self.select_layer
        if not 0 <= index <= total:
            raise ValueError(f"select_layer {self.select_layer} is outside a {total}-layer vision encoder")
        return index


__all__ = ["SailVLConfig"]
