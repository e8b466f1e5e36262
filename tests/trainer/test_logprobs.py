"""policy_forward: the padding-free packed forward and the response-only LM head are exact."""

from __future__ import annotations

import pytest
import torch

from rollouts.engine import banned_token_ids
from sail_rl.model.builder import load_model, load_processor
from sail_rl.trainer.logprobs import policy_forward, token_log_probs
from tests.trainer.helpers import fake_batch


def _full_head_log_probs(model, batch, suppress):
    """The reference: logits at every position, log-probs masked to the response."""
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, pixel_values=batch.pixel_values,
                image_tiles_per_sample=batch.image_tiles_per_sample, use_cache=False)
    return token_log_probs(out.logits[:, :-1], batch.input_ids[:, 1:], 1.0, suppress) * batch.response_mask


@pytest.mark.parametrize("preset_dir", ["tiny_dir", "tiny_moe_dir"])
def test_padding_free_equals_padded_and_full_head(preset_dir, request):
    model_dir = request.getfixturevalue(preset_dir)
    model = load_model(model_dir).eval()
    suppress = banned_token_ids(load_processor(model_dir).tokenizer)
    batch = fake_batch(model_dir, n_groups=3, group_size=3)  # images of 1 and 2 tiles, ragged responses
    assert (batch.attention_mask == 0).any()  # there is padding to remove
    with torch.no_grad():
        reference = _full_head_log_probs(model, batch, suppress)
        padded, ent_padded, aux_padded = policy_forward(model, batch, 1.0, with_entropy=True, suppress_ids=suppress)
        packed, ent_packed, aux_packed = policy_forward(model, batch, 1.0, with_entropy=True, suppress_ids=suppress, padding_free=True)
    mask = batch.response_mask
    assert torch.count_nonzero(reference) == mask.sum()  # every response token scored, nothing else
    torch.testing.assert_close(padded, reference, atol=2e-6, rtol=0)  # zero off the response
    torch.testing.assert_close(packed, padded, atol=2e-5, rtol=0)
    torch.testing.assert_close(ent_packed, ent_padded, atol=2e-5, rtol=0)
    if preset_dir == "tiny_moe_dir":  # load-balancing loss over the same (unpadded) tokens
        torch.testing.assert_close(aux_packed, aux_padded, atol=1e-5, rtol=1e-4)
    else:
        assert aux_packed is None and aux_padded is None


def test_padding_free_gradients_match(tiny_dir):
    model = load_model(tiny_dir)
    batch = fake_batch(tiny_dir, n_groups=2, group_size=3)
    grads = []
    for padding_free in (False, True):
        model.zero_grad()
        log_probs = policy_forward(model, batch, 1.0, padding_free=padding_free)[0]
        (log_probs * batch.response_mask).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.model.language_model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-4)
