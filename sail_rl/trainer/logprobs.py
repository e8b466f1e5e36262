"""Per-token log-probs (and entropy, values) of a batch under the policy: one forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sail_rl.algorithms import entropy_from_logits
from sail_rl.model.attention import packed_attention_kwargs
from sail_rl.trainer.batch import pack_rows


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


def policy_forward(
    model: nn.Module,
    batch,
    temperature: float,
    with_entropy: bool = False,
    suppress_ids: list[int] | None = None,
    padding_free: bool = False,
):
    """(log_probs [B, L-1], entropy [B, L-1] or None, aux_loss or None) for `batch` (a TrainBatch).

    Only response positions are scored (they are the only ones the losses read); other
    positions hold 0. The LM head runs on the response columns alone: with image prompts of
    256 tokens per tile and a 150K vocabulary the prompt logits are most of the head's cost.

    padding_free: the rows are packed into one sequence with per-row position ids (no pad
    tokens; transformers turns the position resets into a block-diagonal causal mask, the
    varlen kernel under flash-attention), and the head runs on the response tokens alone.
    Exact: each token attends to the same tokens at the same positions as in the padded forward.

    MoE text models return their load-balancing loss, which the update adds to the loss.
    """
    is_moe = getattr(_text_config(model), "num_experts", None) is not None
    kwargs = {"output_router_logits": True} if is_moe else {}
    pixel_values = batch.pixel_values if batch.pixel_values.shape[0] else None
    if padding_free:
        log_probs, entropy, out = _packed_forward(model, batch, temperature, with_entropy, suppress_ids, pixel_values, kwargs)
    else:
        log_probs, entropy, out = _padded_forward(model, batch, temperature, with_entropy, suppress_ids, pixel_values, kwargs)
    return log_probs, entropy, getattr(out, "aux_loss", None) if is_moe else None


def _padded_forward(model, batch, temperature, with_entropy, suppress_ids, pixel_values, kwargs):
    """Right-padded rows; logits from the first response column on."""
    seq = batch.input_ids.shape[1]
    responding = batch.response_mask.any(dim=0).nonzero()
    start = int(responding[0]) if len(responding) else seq - 1  # first column any row scores
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        pixel_values=pixel_values,
        image_tiles_per_sample=batch.image_tiles_per_sample,
        use_cache=False,
        logits_to_keep=seq - start,  # positions start..L-1 (0 would mean "all")
        **kwargs,
    )
    logits = out.logits[:, :-1]  # [B, L-1-start, V]: position t predicts token t+1
    scored = batch.response_mask[:, start:] > 0
    log_probs = F.pad(token_log_probs(logits, batch.input_ids[:, start + 1 :], temperature, suppress_ids) * scored, (start, 0))
    entropy = F.pad(entropy_from_logits(logits.float() / temperature) * scored, (start, 0)) if with_entropy else None
    return log_probs, entropy, out


def _packed_forward(model, batch, temperature, with_entropy, suppress_ids, pixel_values, kwargs):
    """All rows as one [1, T] sequence; the head on the N response positions only."""
    flat_ids, positions, row_starts = pack_rows(batch.input_ids, batch.attention_mask)  # [T], [T], [B]
    rows, cols = batch.response_mask.nonzero(as_tuple=True)  # [N]: position cols[i] of row rows[i] predicts the next token
    keep = row_starts[rows] + cols  # [N] flat positions
    out = model(
        input_ids=flat_ids[None],
        position_ids=positions[None],
        **packed_attention_kwargs(batch.attention_mask.sum(dim=1)),
        pixel_values=pixel_values,
        image_tiles_per_sample=batch.image_tiles_per_sample.sum().view(1),
        use_cache=False,
        logits_to_keep=keep,
        **kwargs,
    )
    logits = out.logits  # [1, N, V]
    log_probs = torch.zeros(batch.response_mask.shape, device=logits.device)
    log_probs = log_probs.index_put((rows, cols), token_log_probs(logits, flat_ids[keep + 1][None], temperature, suppress_ids)[0])
    entropy = None
    if with_entropy:
        entropy = torch.zeros(batch.response_mask.shape, device=logits.device)
        entropy = entropy.index_put((rows, cols), entropy_from_logits(logits.float() / temperature)[0])
    return log_probs, entropy, out


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
        out = self.backbone.model.language_model(inputs_embeds=embeds, attention_mask=batch.attention_mask, use_cache=False)
        return self.value_head(out.last_hidden_state[:, :-1]).squeeze(-1).float()
