"""SAIL-VL assembled from transformers parts.

    pixel_values [tiles, 3, S, S]
      -> Aimv2VisionModel, hidden state of layer `select_layer`   [tiles, (S/p)^2, Dv]
      -> 2x2 pixel shuffle (downsample_ratio 0.5)                 [tiles, (S/2p)^2, 4*Dv]
      -> projector: LayerNorm -> Linear -> GELU -> Linear         [tiles, (S/2p)^2, Dt]
      -> written over the <IMG_CONTEXT> rows of the text embeddings
      -> Qwen3 / Qwen3-MoE causal LM (`language_model`, a plain AutoModelForCausalLM)

`language_model` is a complete causal LM with its own head, so it can be saved on its own
and served by vLLM (`save_text_model`), while the rollout worker runs the vision side.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN

from sail_rl.errors import ImageTokenMismatchError
from sail_rl.model.configuration import SailVLConfig


def pixel_shuffle(features: torch.Tensor, ratio: float) -> torch.Tensor:
    """Merge each (1/ratio x 1/ratio) block of patches into one token (InternVL's pixel shuffle).

    features: [tiles, h, w, c] -> [tiles, h*ratio, w*ratio, c/ratio^2]
    """
    n, h, w, c = features.shape
    x = features.reshape(n, h, int(w * ratio), int(c / ratio))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.reshape(n, int(w * ratio), int(h * ratio), int(c / (ratio * ratio)))
    return x.permute(0, 2, 1, 3).contiguous()


class SailVLProjector(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear, from shuffled vision features to text width."""

    def __init__(self, config: SailVLConfig):
        super().__init__()
        in_dim = config.vision_config.hidden_size * int(round(1 / config.downsample_ratio)) ** 2
        out_dim = config.text_config.hidden_size
        self.norm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.act = ACT2FN[config.projector_hidden_act]
        self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class SailVLPreTrainedModel(PreTrainedModel):
    config: SailVLConfig
    config_class = SailVLConfig
    base_model_prefix = ""
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _skip_keys_device_placement = ["past_key_values"]
    _no_split_modules = ["Aimv2EncoderLayer", "Qwen3DecoderLayer", "Qwen3MoeDecoderLayer"]

    def _init_weights(self, module):
        # transformers dispatches each tower (a PreTrainedModel) to its own init; only the projector is ours.
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=self.config.text_config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class SailVLForConditionalGeneration(SailVLPreTrainedModel, GenerationMixin):
    def __init__(self, config: SailVLConfig):
        super().__init__(config)
        from transformers import Aimv2VisionModel

        self.vision_model = Aimv2VisionModel(config.vision_config)
        # Layers after `select_layer` never feed the adapter: drop them (as SAIL-ViT does:
        # AIMv2-Huge's 24 layers, -4 -> 21 kept, ~600M parameters). Saves memory and leaves
        # no parameter without a gradient for data-parallel training.
        self.vision_model.encoder.layers = self.vision_model.encoder.layers[: config.vision_layers_used]
        self.projector = SailVLProjector(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    # ------------------------------------------------------------------ embeddings

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [tiles, 3, S, S] -> image features [tiles, tokens_per_tile, text_hidden].

        Equals hidden_states[select_layer] of the full AIMv2 tower (the kept layers, no final norm).
        """
        vision = self.vision_model
        hidden = vision.embeddings(pixel_values.to(vision.embeddings.patch_embed.weight.dtype))
        for layer in vision.encoder.layers:
            hidden = layer(hidden, None)
        tiles, patches, dim = hidden.shape
        side = int(patches**0.5)
        hidden = pixel_shuffle(hidden.reshape(tiles, side, side, dim), self.config.downsample_ratio)
        hidden = hidden.reshape(tiles, -1, hidden.shape[-1])
        return self.projector(hidden)

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_tiles_per_sample: torch.Tensor | list[int] | None = None,
    ) -> torch.Tensor:
        """Text embeddings with image features written over the <IMG_CONTEXT> positions.

        input_ids [batch, seq]; pixel_values [tiles, 3, S, S] for all images of the batch in
        order; image_tiles_per_sample [batch] (optional) names the sample in a mismatch error.
        Returns [batch, seq, hidden].
        """
        embeds = self.get_input_embeddings()(input_ids)
        mask = input_ids == self.config.image_token_id  # [batch, seq]
        check_image_tokens(
            mask.sum(dim=-1).tolist(),
            image_tiles_per_sample,
            0 if pixel_values is None else pixel_values.shape[0],
            self.config.image_token_id and self.config.image_tokens_per_tile,
        )
        if pixel_values is None or pixel_values.shape[0] == 0:
            return embeds
        features = self.get_image_features(pixel_values).reshape(-1, embeds.shape[-1])
        return embeds.masked_scatter(mask.unsqueeze(-1), features.to(embeds.dtype))

    # ------------------------------------------------------------------ forward / generate

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_tiles_per_sample: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ):
        """A causal-LM forward; images enter through `embed_inputs`. Extra kwargs (past_key_values,
        use_cache, logits_to_keep, output_router_logits for MoE) go to the text model."""
        if inputs_embeds is None:
            inputs_embeds = self.embed_inputs(input_ids, pixel_values, image_tiles_per_sample)
        kwargs.pop("num_items_in_batch", None) if labels is None else None
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            labels=labels,
            **kwargs,
        )

    @torch.no_grad()
    def generate(self, input_ids=None, pixel_values=None, attention_mask=None, image_tiles_per_sample=None, **kwargs):
        """Embed the prompt (images included) once, then let the text model decode.

        Returns only the new tokens, as transformers does for `inputs_embeds` generation.
        """
        if input_ids is None:
            return self.language_model.generate(attention_mask=attention_mask, **kwargs)
        embeds = self.embed_inputs(input_ids, pixel_values, image_tiles_per_sample)
        return self.language_model.generate(inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)

    def save_text_model(self, out_dir: str, tokenizer=None) -> None:
        """Write the text model alone (a plain Qwen3 checkpoint vLLM can serve)."""
        self.language_model.save_pretrained(out_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)


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


__all__ = ["SailVLForConditionalGeneration", "SailVLPreTrainedModel", "pixel_shuffle", "check_image_tokens"]
