"""SAIL-VL on transformers' InternVL classes: the standard VLM layout.

    model.vision_tower           Aimv2VisionModel                     pixel_values [tiles, 3, S, S]
    model.multi_modal_projector  LayerNorm -> Linear -> GELU -> Linear  after InternVL's 2x2 pixel shuffle
    model.language_model         Qwen3Model / Qwen3MoeModel (no head)
    lm_head                      Linear (tied to the embeddings where the text config ties)

transformers does the rest: feature selection (`vision_feature_layer`), pixel shuffle, the
projector, writing image features over the <IMG_CONTEXT> rows, the loss and `generate`.
What is added here: AIMv2's output made contiguous for InternVL's pixel shuffle, a per-sample
image-token check with a fix in its message, the MoE load-balancing loss (InternVL's output
drops the router logits), and `save_text_model` for the vLLM route (the text model served alone).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForCausalLM, InternVLForConditionalGeneration, InternVLModel
from transformers.models.internvl.modeling_internvl import InternVLPreTrainedModel

from sail_rl.errors import ImageTokenMismatchError
from sail_rl.model.configuration import SailVLConfig

_NO_SPLIT = ["Aimv2EncoderLayer", "Qwen3DecoderLayer", "Qwen3MoeDecoderLayer"]


class SailVLModel(InternVLModel):
    """InternVL's base model (vision tower, projector, text model without head) for SAIL-VL."""

    config: SailVLConfig
    config_class = SailVLConfig
    input_modalities = ("image", "text")
    _no_split_modules = _NO_SPLIT

    def pixel_shuffle(self, vision_features: torch.Tensor, scale_factor: float = 0.5) -> torch.Tensor:
        # AIMv2's hidden states are not contiguous; InternVL's pixel shuffle reshapes with `.view`.
        return super().pixel_shuffle(vision_features.contiguous(), scale_factor)


class SailVLForConditionalGeneration(InternVLForConditionalGeneration):
    config: SailVLConfig
    config_class = SailVLConfig
    input_modalities = ("image", "text")
    _no_split_modules = _NO_SPLIT

    def __init__(self, config: SailVLConfig):
        InternVLPreTrainedModel.__init__(self, config)  # InternVL's own __init__ would build an InternVLModel
        self.model = SailVLModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_tiles_per_sample: torch.Tensor | list[int] | None = None,
        output_router_logits: bool | None = None,
        **kwargs,
    ):
        """InternVL's forward. `image_tiles_per_sample` [batch] (optional) names the sample in a
        token-count error; `output_router_logits=True` (MoE) adds `aux_loss` to the output."""
        if pixel_values is not None and pixel_values.shape[0] == 0:
            pixel_values = None
        if input_ids is not None:  # decoding steps carry no pixels and no image tokens
            check_image_tokens(
                (input_ids == self.config.image_token_id).sum(dim=-1).tolist(),
                None if pixel_values is None else image_tiles_per_sample,
                0 if pixel_values is None else pixel_values.shape[0], self.config.image_tokens_per_tile,
            )
        if not output_router_logits:
            return super().forward(input_ids=input_ids, pixel_values=pixel_values, **kwargs)
        router_logits = []
        hook = self.model.language_model.register_forward_hook(lambda _m, _a, out: router_logits.append(out.router_logits))
        try:
            out = super().forward(input_ids=input_ids, pixel_values=pixel_values, output_router_logits=True, **kwargs)
        finally:
            hook.remove()
        out.aux_loss = moe_aux_loss(self.config.text_config, router_logits[-1], kwargs.get("attention_mask"))
        if out.loss is not None:  # as Qwen3MoeForCausalLM does with labels
            out.loss = out.loss + self.config.text_config.router_aux_loss_coef * out.aux_loss.to(out.loss.device)
        return out

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_tiles_per_sample: torch.Tensor | list[int] | None = None,
    ) -> torch.Tensor:
        """inputs_embeds [batch, seq, hidden]: the text embeddings with image features written over
        the <IMG_CONTEXT> rows (what InternVL's forward does), for engines fed `prompt_embeds`."""
        embeds = self.get_input_embeddings()(input_ids)
        tiles = 0 if pixel_values is None else pixel_values.shape[0]
        check_image_tokens((input_ids == self.config.image_token_id).sum(dim=-1).tolist(), image_tiles_per_sample,
                           tiles, self.config.image_tokens_per_tile)
        if not tiles:
            return embeds
        features = self.get_image_features(pixel_values).pooler_output.to(embeds.dtype)
        mask = self.model.get_placeholder_mask(input_ids, inputs_embeds=embeds, image_features=features)
        return embeds.masked_scatter(mask, features)

    def save_text_model(self, out_dir: str, tokenizer=None) -> None:
        """Write `model.language_model` + `lm_head` as a plain Qwen3 / Qwen3-MoE causal LM (what vLLM
        serves in the prompt-embeds route). The tensors are shared, not copied."""
        with torch.device("meta"):
            text = AutoModelForCausalLM.from_config(self.config.text_config)
        text.model, text.lm_head = self.model.language_model, self.lm_head
        text.config.dtype = self.lm_head.weight.dtype
        text.save_pretrained(out_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)


def moe_aux_loss(text_config, router_logits, attention_mask) -> torch.Tensor:
    """The load-balancing loss Qwen3MoeForCausalLM computes from the router logits of every layer."""
    from transformers.models.qwen3_moe.modeling_qwen3_moe import load_balancing_loss_func

    return load_balancing_loss_func(router_logits, text_config.num_experts, text_config.num_experts_per_tok, attention_mask)


def check_image_tokens(
    tokens_per_sample: list[int],
    tiles_per_sample: torch.Tensor | list[int] | None,
    total_tiles: int,
    tokens_per_tile: int,
) -> None:
    """Raise `ImageTokenMismatchError` unless every <IMG_CONTEXT> token gets one image feature.

    The commonest VLM failure: a prompt truncated inside an image slot, or images dropped
    from a batch. The message names the sample and the fix.
    """
    expected_total = total_tiles * (tokens_per_tile or 0)
    if tiles_per_sample is not None:
        tiles = [int(t) for t in (tiles_per_sample.tolist() if torch.is_tensor(tiles_per_sample) else tiles_per_sample)]
        if len(tiles) != len(tokens_per_sample):
            raise ImageTokenMismatchError(
                f"image_tiles_per_sample has {len(tiles)} entries for a batch of {len(tokens_per_sample)}"
            )
        for i, (n_tok, n_tile) in enumerate(zip(tokens_per_sample, tiles)):
            if n_tok != n_tile * tokens_per_tile:
                raise ImageTokenMismatchError(
                    f"sample {i}: {n_tok} <IMG_CONTEXT> tokens but {n_tile} tiles x {tokens_per_tile} = "
                    f"{n_tile * tokens_per_tile} image features; the prompt was cut inside an image slot or "
                    "an image is missing: lower max_tiles or raise max_prompt_tokens"
                )
    if sum(tokens_per_sample) != expected_total:
        first_bad = next((i for i, n in enumerate(tokens_per_sample) if n), 0)
        raise ImageTokenMismatchError(
            f"batch (first image in sample {first_bad}): {sum(tokens_per_sample)} <IMG_CONTEXT> tokens but "
            f"{total_tiles} tiles x {tokens_per_tile} = {expected_total} image features; the prompt was cut inside "
            "an image slot or an image is missing: lower max_tiles or raise max_prompt_tokens"
        )


__all__ = ["SailVLModel", "SailVLForConditionalGeneration", "check_image_tokens", "moe_aux_loss"]
