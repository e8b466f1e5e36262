"""sdpa_varlen: packed rows attend within their own row, read from the bounds, not from a mask."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from sail_rl.model.attention import VARLEN_SDPA, packed_attention_kwargs, sdpa_varlen_attention


class _Heads(torch.nn.Module):
    num_key_value_groups = 2  # 4 query heads over 2 key/value heads, as the tiny preset
    is_causal = True
    training = False


def _qkv(total: int):
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(1, 4, total, 8, generator=generator), torch.randn(1, 2, total, 8, generator=generator),
            torch.randn(1, 2, total, 8, generator=generator))


def test_each_row_attends_to_its_own_tokens_causally():
    lengths = torch.tensor([3, 5, 1, 4])
    q, k, v = _qkv(int(lengths.sum()))
    bounds = packed_attention_kwargs(lengths)["cu_seq_lens_q"]
    # no mask at all: only the bounds keep the rows apart
    out, _ = sdpa_varlen_attention(_Heads(), q, k, v, None, cu_seq_lens_q=bounds, scaling=8 ** -0.5)
    assert out.shape == (1, int(lengths.sum()), 4, 8)
    for s, e in zip(bounds.tolist(), bounds.tolist()[1:]):
        kr, vr = k[:, :, s:e].repeat_interleave(2, dim=1), v[:, :, s:e].repeat_interleave(2, dim=1)
        row = F.scaled_dot_product_attention(q[:, :, s:e], kr, vr, is_causal=True).transpose(1, 2)
        torch.testing.assert_close(out[:, s:e], row, atol=1e-6, rtol=1e-5)
    # without the bounds the same call is one causal sequence: later rows see earlier ones
    whole, _ = sdpa_varlen_attention(_Heads(), q, k, v, None, scaling=8 ** -0.5)
    assert torch.allclose(whole[:, :3], out[:, :3], atol=1e-6)  # the first row has nothing before it
    assert not torch.allclose(whole[:, 3:], out[:, 3:], atol=1e-3)


def test_packed_kwargs_hold_the_row_bounds():
    kwargs = packed_attention_kwargs(torch.tensor([2, 3]))
    assert kwargs["cu_seq_lens_q"].tolist() == [0, 2, 5] and kwargs["cu_seq_lens_q"].dtype == torch.int32
    assert kwargs["max_length_q"] == 3 and kwargs["attention_mask"] is None


def test_sdpa_models_load_with_the_varlen_kernel_and_save_without_it(tiny_dir, tmp_path):
    from sail_rl.model.builder import load_model

    model = load_model(tiny_dir)
    assert model.config.get_text_config()._attn_implementation == VARLEN_SDPA
    assert load_model(tiny_dir, attn_implementation="eager").config.get_text_config()._attn_implementation == "eager"
    model.save_pretrained(tmp_path)
    assert VARLEN_SDPA not in json.dumps(json.loads((tmp_path / "config.json").read_text()))


def test_packed_eager_keeps_the_rows_apart_with_its_mask(tiny_dir):
    """eager does not read the bounds: transformers' block-diagonal mask from the position resets does."""
    from sail_rl.model.builder import load_model

    model = load_model(tiny_dir, attn_implementation="eager").eval()
    ids = torch.tensor([[11, 12, 13, 0], [21, 22, 23, 24]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits
        lengths = mask.sum(dim=1)
        packed = model(input_ids=ids[mask.bool()][None], position_ids=torch.tensor([[0, 1, 2, 0, 1, 2, 3]]),
                       use_cache=False, **packed_attention_kwargs(lengths)).logits[0]  # (a cache hides the packing)
    torch.testing.assert_close(packed, padded[mask.bool()], atol=1e-5, rtol=1e-4)
