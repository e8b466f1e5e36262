"""The transformers engine: log-prob parity with the trainer, banned tokens, finish reasons."""

from __future__ import annotations

import pytest
import torch

from rollouts.engine import PLACEHOLDER_TOKENS, make_engine
from rollouts.types import RolloutConfig, SamplingConfig
from tests.rollouts.helpers import image_request, placeholder_loving_state, text_request, token_loving_state, trainer_logprobs


@pytest.fixture(scope="module")
def engine(tiny_dir):
    eng = make_engine(RolloutConfig(engine="hf", max_model_len=512, max_prompt_tokens=400), str(tiny_dir))
    yield eng
    eng.close()


def test_hf_logprobs_match_trainer_text_and_images(engine, tiny):
    model, _ = tiny
    sampling = SamplingConfig(rollouts_per_prompt=3, temperature=0.7, max_response_tokens=12, seed=0)
    rollouts = engine.generate([text_request("t"), image_request("i")], sampling)
    assert [(r.request_id, r.sample_index) for r in rollouts] == [("t", 0), ("t", 1), ("t", 2), ("i", 0), ("i", 1), ("i", 2)]
    assert rollouts[3].num_image_tiles > 0 and rollouts[3].pixel_values.shape[0] == rollouts[3].num_image_tiles
    assert rollouts[0].metadata == {"answer": "4"}
    trainer, engine_lp, mask = trainer_logprobs(model, rollouts, engine.tokenizer, 0.7, engine.banned)
    assert mask.sum() == sum(len(r.response_token_ids) for r in rollouts)
    assert (trainer - engine_lp).abs().max() <= 1e-4


def test_truncated_response_kept_with_length_reason(engine):
    (r,) = engine.generate([text_request()], SamplingConfig(rollouts_per_prompt=1, temperature=1.0, max_response_tokens=3, seed=1))
    assert r.finish_reason == "length" and len(r.response_token_ids) == 3 == len(r.response_logprobs)


def test_placeholder_tokens_never_sampled(engine, tiny):
    model, processor = tiny
    greedy = SamplingConfig(rollouts_per_prompt=1, temperature=0, max_response_tokens=4)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    banned = set(engine.banned)
    try:
        engine.update_weights(placeholder_loving_state(model, processor))
        # the control: without the ban the model's first choice is a placeholder token
        prompt = engine.generate([text_request()], greedy)[0].prompt_token_ids
        with torch.no_grad():
            assert int(engine.model(input_ids=torch.tensor([prompt])).logits[0, -1].argmax()) in banned
        rollouts = engine.generate([text_request()], SamplingConfig(rollouts_per_prompt=4, temperature=1.0, max_response_tokens=8, seed=0))
        assert all(not banned & set(r.response_token_ids) for r in rollouts)
        assert all(t not in r.text for r in rollouts for t in PLACEHOLDER_TOKENS)
    finally:
        engine.update_weights(original)


def test_empty_response_kept_with_stop_reason(engine, tiny):
    model, processor = tiny
    original = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        engine.update_weights(token_loving_state(model, processor, ["<|im_end|>"]))
        (r,) = engine.generate([text_request()], SamplingConfig(rollouts_per_prompt=1, temperature=0, max_response_tokens=5))
        assert r.finish_reason == "stop" and r.text == "" and r.response_token_ids == [engine.eos_id]
        assert len(r.response_logprobs) == 1
    finally:
        engine.update_weights(original)
