"""Packed rows without a dense mask: sdpa with the row bounds of a packed sequence.

Packing (SFT's `train.packing`, RL's `trainer.padding_free`) runs a micro-batch's rows as one
[1, T] sequence: no pad tokens in the projections, the MLP or the LM head. Flash-attention reads
the rows' bounds (`cu_seq_lens_q`) in its varlen kernel. transformers' sdpa has no such kernel: it
builds a dense [T, T] block-diagonal mask, attends every token to the whole pack and masks most of
it away (`sail-rl bench update` measured 0.25x the padded speed on CPU).

`sdpa_varlen` is sdpa that reads the bounds instead: one causal `scaled_dot_product_attention` per
row, each on that row's tokens only (the attention of the padded row, without its pads). Without
bounds (padded batches, generation) it is transformers' sdpa, mask and all. `load_model` loads
`attn_implementation: sdpa` with it, so a recipe's `sdpa` means the same kernel everywhere.
What is left of the dense path: transformers still builds the [T, T] boolean mask once per
forward (it does not know the kernel ignores it: T^2 bytes, 256 MB at T = 16K), and reading the
bounds is one host sync per layer on a GPU. Long packs on GPUs want flash-attention.

`packed_attention_kwargs` is what a packed forward passes to the model, whatever the kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

VARLEN_SDPA = "sdpa_varlen"


def sdpa_varlen_attention(module, query, key, value, attention_mask, cu_seq_lens_q=None, **kwargs):
    """query [1, heads, T, d], key / value [1, kv_heads, T, d] -> ([1, T, heads, d], None), as
    transformers' attention functions. `cu_seq_lens_q` [rows + 1]: row r is tokens cu[r]:cu[r+1]."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    for name in ("cu_seq_lens_k", "max_length_q", "max_length_k"):  # flash-attention's; the bounds say it all
        kwargs.pop(name, None)
    if cu_seq_lens_q is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    # the bounds say what the dense block-diagonal mask transformers built says; the rows' own causal masks suffice
    if query.shape[0] != 1 or key.shape[2] != query.shape[2]:
        raise ValueError(f"{VARLEN_SDPA}: row bounds need one packed sequence without a cache, got query "
                         f"{tuple(query.shape)} and key {tuple(key.shape)}")
    bounds = cu_seq_lens_q.tolist()
    rows = [sdpa_attention_forward(module, query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], None, **kwargs)[0]
            for s, e in zip(bounds, bounds[1:])]
    return torch.cat(rows, dim=1), None


def register() -> None:
    """Make `attn_implementation=VARLEN_SDPA` loadable: the attention above, sdpa's masks for padded batches."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(VARLEN_SDPA, sdpa_varlen_attention)
    AttentionMaskInterface.register(VARLEN_SDPA, sdpa_mask)


def packed_attention_kwargs(lengths: torch.Tensor) -> dict:
    """What a packed forward passes besides ids and positions, for rows of `lengths` [rows] tokens:
    the row bounds, which flash-attention and `sdpa_varlen` read, and attention_mask None, from
    which transformers builds the block-diagonal mask out of the position resets (what eager reads;
    the kernels that read the bounds ignore it)."""
    cu_seq_lens = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
    longest = int(lengths.max())
    return {"attention_mask": None, "cu_seq_lens_q": cu_seq_lens, "cu_seq_lens_k": cu_seq_lens,
            "max_length_q": longest, "max_length_k": longest}
