"""Masked reductions, and `agg_loss`: the one place that decides token-mean vs seq-mean.

Gradient accumulation and data parallelism
------------------------------------------
A mini-batch is often split into micro-batches (gradient accumulation) and across ranks
(data parallel). If each micro-batch took its own token-mean, micro-batches with few valid
tokens would weigh as much as long ones and the summed gradient would differ from the
full-batch gradient. So the trainer counts the valid tokens (and sequences) of the WHOLE
mini-batch, over all micro-batches and ranks, and passes them here:

    loss_mb = agg_loss(loss_mat_mb, mask_mb, "token-mean", global_token_count=n_tokens_total)

Each micro-batch loss is then sum(loss * mask) / n_tokens_total, so summing the micro-batch
losses (or their gradients; do not divide by the number of micro-batches again) equals the
full-batch token-mean. With data parallel, the all-reduce must SUM gradients across ranks
(or multiply by world size before an averaging all-reduce). `global_seq_count` does the same
for the seq-mean modes (the number of sequences with at least one valid token).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

LossAggMode = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"]
LOSS_AGG_MODES: tuple[str, ...] = get_args(LossAggMode)


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of `values` where `mask` is set; `dim=None` sums everything."""
    masked = values * mask.to(values.dtype)
    return masked.sum() if dim is None else masked.sum(dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean over valid entries (0 where there are none).

    >>> masked_mean(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1, 1, 0]]))
    tensor(2.)
    """
    count = mask.to(values.dtype)
    count = count.sum() if dim is None else count.sum(dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the valid entries of the whole tensor; padding is set to 0.

    The variance is unbiased (Bessel's correction), as in verl; with fewer than two valid
    entries it is taken as 0, so the result is 0.

    >>> masked_whiten(torch.tensor([[1.0, 3.0, 9.0]]), torch.tensor([[1, 1, 0]]))
    tensor([[-0.7071,  0.7071,  0.0000]])
    """
    mask_f = mask.to(values.dtype)
    count = mask_f.sum()
    mean = masked_sum(values, mask_f) / count.clamp(min=1)
    centered = (values - mean) * mask_f
    var = (centered**2).sum() / (count - 1).clamp(min=1)
    return centered * torch.rsqrt(var + eps)


def agg_loss(
    loss_mat: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    *,
    global_token_count: float | torch.Tensor | None = None,
    global_seq_count: float | torch.Tensor | None = None,
    seq_sum_divisor_tokens: float | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss to a scalar.

    loss_mat: [batch, resp_len] per-token loss; mask: [batch, resp_len] 1 on valid tokens.
    mode:
      token-mean          sum over all valid tokens / number of valid tokens (DAPO).
      seq-mean-token-sum  per-sequence token sum, then mean over sequences. With
                          `seq_sum_divisor_tokens` (a constant, e.g. max_response_tokens)
                          each sum is divided by it: Dr. GRPO's length-unbiased loss.
      seq-mean-token-mean per-sequence token mean, then mean over sequences (GRPO, GSPO).
    global_token_count / global_seq_count: the valid-token / valid-sequence count of the whole
      mini-batch over all micro-batches and ranks (see the module docstring); default: this
      batch's own counts.

    >>> loss = torch.tensor([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
    >>> mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    >>> [round(agg_loss(loss, mask, m).item(), 4) for m in LOSS_AGG_MODES]
    [1.75, 3.5, 2.5]
    """
    mask_f = mask.to(loss_mat.dtype)
    if mode == "token-mean":
        denom = mask_f.sum().clamp(min=1) if global_token_count is None else global_token_count
        return masked_sum(loss_mat, mask_f) / denom
    if mode not in ("seq-mean-token-sum", "seq-mean-token-mean"):
        raise ValueError(f"loss_agg_mode must be one of {', '.join(LOSS_AGG_MODES)}, got {mode!r}")
    tokens_per_seq = mask_f.sum(-1)  # [batch]
    seq_loss = masked_sum(loss_mat, mask_f, dim=-1)  # [batch]
    if mode == "seq-mean-token-mean":
        seq_loss = seq_loss / tokens_per_seq.clamp(min=1)
    elif seq_sum_divisor_tokens is not None:
        seq_loss = seq_loss / seq_sum_divisor_tokens
    # sequences without a valid token neither contribute nor count
    denom = (tokens_per_seq > 0).sum().clamp(min=1) if global_seq_count is None else global_seq_count
    return seq_loss.sum() / denom


def agg_loss_for(
    cfg,
    loss_mat: torch.Tensor,
    mask: torch.Tensor,
    *,
    global_token_count: float | torch.Tensor | None = None,
    global_seq_count: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """`agg_loss` with the mode and Dr. GRPO divisor of an AlgorithmConfig `cfg`."""
    return agg_loss(
        loss_mat,
        mask,
        cfg.loss_agg_mode,
        global_token_count=global_token_count,
        global_seq_count=global_seq_count,
        seq_sum_divisor_tokens=cfg.seq_sum_divisor_tokens,
    )
