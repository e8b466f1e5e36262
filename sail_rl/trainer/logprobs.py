"""Per-token log-probs (and entropy, values) of a batch under the policy: one forward."""

from __future__ import annotations

import torch
from torch import nn

from sail_rl.algorithms import entropy_from_logits


def token_log_probs(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0, suppress_ids: list[int] | None = None
) -> torch.Tensor:
    """log softmax(logits / T) at the target ids, without materialising a [B, L, V] log-softmax.

    logits [B, L, V], targets [B, L] -> [B, L] float32. `suppress_ids` are the tokens the
    rollout engine never samples (image placeholders): removing them from the softmax keeps
    the trainer's distribution equal to the engine's.
    """
    scaled = logits.float() / temperature  # a new tensor even when logits are float32
    if suppress_ids:
        # in place: `scaled` is already a fresh [B, L, V] copy; a second one costs memory on big vocabularies
        scaled.index_fill_(-1, torch.tensor(suppress_ids, device=scaled.device), float("-inf"))
    picked = scaled.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    log_probs = picked - torch.logsumexp(scaled, dim=-1)
    # Prompt positions whose target is a suppressed token (the image slot) give -inf; they are
    # masked out later, but -inf * 0 is NaN, so zero them here. Response tokens are never suppressed.
    return log_probs.masked_fill(torch.isinf(log_probs), 0.0)


def policy_forward(model: nn.Module, batch, temperature: float, with_entropy: bool = False, suppress_ids: list[int] | None = None):
    """(log_probs [B, L-1], entropy [B, L-1] or None, aux_loss or None) for `batch` (a TrainBatch).

    MoE text models return their load-balancing loss, which the update adds to the loss.
    """
    is_moe = getattr(_text_config(model), "num_experts", None) is not None
    kwargs = {"output_router_logits": True} if is_moe else {}
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        pixel_values=batch.pixel_values if batch.pixel_values.shape[0] else None,
        image_tiles_per_sample=batch.image_tiles_per_sample,
        use_cache=False,
        **kwargs,
    )
    logits = out.logits[:, :-1]  # [B, L-1, V]: position t predicts token t+1
    log_probs = token_log_probs(logits, batch.input_ids[:, 1:], temperature, suppress_ids)
    entropy = entropy_from_logits(logits.float() / temperature) if with_entropy else None
    return log_probs, entropy, getattr(out, "aux_loss", None) if is_moe else None


def _text_config(model: nn.Module):
    config = getattr(model, "config", None)
    if config is None and hasattr(model, "get_base_model"):
        config = model.get_base_model().config
    return getattr(config, "text_config", config)


class ValueModel(nn.Module):
    """The PPO critic: a SAIL-VL backbone with a scalar head on the last hidden state."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        hidden = backbone.config.text_config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, batch) -> torch.Tensor:
        """values [B, L-1]: the value at position t scores the state before token t+1."""
        embeds = self.backbone.embed_inputs(
            batch.input_ids,
            batch.pixel_values if batch.pixel_values.shape[0] else None,
            batch.image_tiles_per_sample,
        )
        out = self.backbone.language_model.model(inputs_embeds=embeds, attention_mask=batch.attention_mask, use_cache=False)
        return self.value_head(out.last_hidden_state[:, :-1]).squeeze(-1).float()
