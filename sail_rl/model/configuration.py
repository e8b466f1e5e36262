"""`SailVLConfig`: transformers' `InternVLConfig` with an AIMv2 vision tower and a Qwen3 / Qwen3-MoE LLM.

SAIL-VL2 is InternVL's architecture (pixel shuffle 0.5, LayerNorm -> Linear -> GELU -> Linear
projector, `<img>` / `<IMG_CONTEXT>` / `</img>` tokens) with SAIL-ViT, an AIMv2 tower. Two
differences need this subclass: the vision sub-config is resolved by `AutoConfig` (so an
`Aimv2VisionConfig` survives save and load), and AIMv2 has no CLS token
(`vision_feature_select_strategy="full"`).

Which vision hidden state feeds the projector, `vision_feature_layer`, counts as InternVL does
on the tower this config describes (`vision_config.num_hidden_layers` layers, all of them built):

    -1        the tower's `last_hidden_state`: the last layer's output AFTER the final RMSNorm
    0         the patch embeddings (no layer run)
    k >= 1    the output of layer k, WITHOUT the final RMSNorm (`hidden_states[k]`)
    k <= -2   `hidden_states[k]`, without the final RMSNorm

The released SAIL-VL2 checkpoints and sail-rl's checkpoints before this layout counted
differently (`select_layer`); `feature_layer_from_release` and `feature_layer_from_old_sail_rl`
translate them, and a tower whose later layers never feed the projector is stored without them.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import InternVLConfig, PreTrainedConfig
from transformers.models.auto import CONFIG_MAPPING, AutoConfig

OLD_LAYOUT_HINT = (
    "this SAIL-VL checkpoint is in sail-rl's old layout (config key 'select_layer'); convert it once with "
    "`sail-rl convert-checkpoint SRC DST`"
)


@strict
class SailVLConfig(InternVLConfig):
    model_type = "sail_vl"
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    vision_feature_layer: int = -1
    vision_feature_select_strategy: str = "full"
    image_token_id: int | None = None  # <IMG_CONTEXT>
    image_start_token_id: int | None = None  # <img>
    image_end_token_id: int | None = None  # </img>
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if "select_layer" in kwargs:
            raise ValueError(OLD_LAYOUT_HINT)
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
        # The text config owns the tying (Qwen3-1.7B ties, Qwen3-8B does not); mirror it for the head.
        self.tie_word_embeddings = bool(self.text_config.tie_word_embeddings)
        self.image_seq_length = self.image_tokens_per_tile
        super().__post_init__(**kwargs)

    @property
    def image_tokens_per_tile(self) -> int:
        """Tokens one tile becomes after pixel shuffle: (448/14)^2 * 0.5^2 = 256 in the release."""
        side = int(self.vision_config.image_size // self.vision_config.patch_size * self.downsample_ratio)
        return side * side


def feature_layer_from_release(select_layer: int, num_layers: int) -> tuple[int, int]:
    """A released SAIL-VL2 `select_layer` -> (vision_feature_layer, vision layers to keep).

    The release's SAILViT is Apple's AIMv2 code: `hidden_states` holds the output of each of
    the `num_layers` blocks (no patch-embedding entry, no final norm), and -1 is special-cased
    to `last_hidden_state` (after the post-trunk norm). So -1 keeps the whole normed tower;
    -k (k >= 2) is the output of block num_layers-k+1 (1-based); k >= 0 is the output of block k+1.

    >>> feature_layer_from_release(-1, 24), feature_layer_from_release(-4, 24), feature_layer_from_release(2, 24)
    ((-1, 24), (21, 21), (3, 3))
    """
    if select_layer == -1:
        return -1, num_layers
    if not -num_layers <= select_layer < num_layers:
        raise ValueError(f"select_layer {select_layer} is outside a {num_layers}-layer vision tower")
    kept = num_layers + 1 + select_layer if select_layer < 0 else select_layer + 1
    return kept, kept


def feature_layer_from_old_sail_rl(select_layer: int, num_layers: int) -> tuple[int, int]:
    """An old sail-rl `select_layer` -> (vision_feature_layer, vision layers to keep).

    Old sail-rl took transformers' `hidden_states[select_layer]` (index 0 = patch embeddings)
    WITHOUT the final norm, for every value, -1 included; the new layout says that with a
    positive index on a tower cut after that layer.

    >>> feature_layer_from_old_sail_rl(-1, 5), feature_layer_from_old_sail_rl(-4, 5)
    ((5, 5), (2, 2))
    """
    index = select_layer if select_layer >= 0 else num_layers + 1 + select_layer
    if not 0 <= index <= num_layers:
        raise ValueError(f"select_layer {select_layer} is outside a {num_layers}-layer vision tower")
    return index, index


__all__ = ["SailVLConfig", "feature_layer_from_release", "feature_layer_from_old_sail_rl", "OLD_LAYOUT_HINT"]
