"""vLLM engine on the CPU: parity with the trainer after a weight sync, text-only and with images.

One engine for the module (start ~15-30 s, first generate ~12-25 s warm-up on 2 cores).
"""

from __future__ import annotations

import pytest

from rollouts.engine import PLACEHOLDER_TOKENS, make_engine
from rollouts.types import RolloutConfig, SamplingConfig
from rollouts.weight_sync import reload_vllm_weights, route_weights
from tests.rollouts.helpers import image_request, placeholder_loving_state, text_request, token_loving_state, trainer_logprobs

pytestmark = pytest.mark.slow
GREEDY = SamplingConfig(rollouts_per_prompt=1, temperature=0, max_response_tokens=8)


@pytest.fixture(scope="module")
def engine(tiny_dir):
    eng = make_engine(RolloutConfig(engine="vllm", max_model_len=512, max_prompt_tokens=400, kv_cache_gib=1), str(tiny_dir))
    yield eng
    eng.close()


@pytest.fixture
def restore(engine, tiny):
    """Put the tiny model's own weights back after a test that syncs others."""
    yield
    engine.update_weights(tiny[0].state_dict())


def _max_diff(model, engine, rollouts, temperature):
    trainer, engine_lp, mask = trainer_logprobs(model, rollouts, engine.tokenizer, temperature, engine.banned)
    assert mask.sum() == sum(len(r.response_logprobs) for r in rollouts) > 0
    return float((trainer - engine_lp).abs().max())


def test_parity_text_and_images_at_temperature(engine, tiny):
    model, _ = tiny
    sampling = SamplingConfig(rollouts_per_prompt=3, temperature=0.7, max_response_tokens=16, seed=0)
    rollouts = engine.generate([text_request("t"), image_request("i")], sampling)
    assert [(r.request_id, r.sample_index) for r in rollouts] == [("t", 0), ("t", 1), ("t", 2), ("i", 0), ("i", 1), ("i", 2)]
    assert len({tuple(r.response_token_ids) for r in rollouts[:3]}) > 1  # n samples differ
    assert _max_diff(model, engine, rollouts[:3], 0.7) <= 1e-4  # text-only (token ids)
    assert _max_diff(model, engine, rollouts[3:], 0.7) <= 1e-4  # images (prompt_embeds)


def test_sync_changes_generation_and_parity_holds(engine, tiny, tiny_seed1, restore):
    model, _ = tiny
    reqs = [text_request("t"), image_request("i")]
    seeded = SamplingConfig(rollouts_per_prompt=1, temperature=1.0, max_response_tokens=8, seed=5)
    before = [r.response_token_ids for r in engine.generate(reqs, GREEDY) + engine.generate(reqs, seeded)]
    engine.update_weights(tiny_seed1.state_dict())
    after = [r.response_token_ids for r in engine.generate(reqs, GREEDY) + engine.generate(reqs, seeded)]
    assert after[0] != before[0]  # greedy text answer (the image one is a fixed token in both random models)
    assert after[2] != before[2] and after[3] != before[3]  # same seed, other weights: other samples
    rollouts = engine.generate(reqs, SamplingConfig(rollouts_per_prompt=2, temperature=1.3, max_response_tokens=12, seed=3))
    assert _max_diff(tiny_seed1, engine, rollouts, 1.3) <= 1e-4
    # per-bucket reload calls (the path for engines behind a process boundary) restore the old output
    text = route_weights(model.state_dict().items(), engine.embedder)
    reload_vllm_weights(engine.llm, text, bucket_bytes=64 << 10, in_process=False)
    engine.llm.reset_prefix_cache()
    # (greedy only: on CPU the engine does not seed requests, see VLLMEngine._request_seed)
    assert [r.response_token_ids for r in engine.generate(reqs, GREEDY)] == before[:2]


def test_placeholder_tokens_banned_and_finish_reasons(engine, tiny, restore):
    model, processor = tiny
    banned = set(engine.banned)
    engine.update_weights(placeholder_loving_state(model, processor))
    rollouts = engine.generate([text_request()], SamplingConfig(rollouts_per_prompt=4, temperature=1.0, max_response_tokens=6, seed=0))
    rollouts += engine.generate([text_request()], GREEDY)
    assert all(not banned & set(r.response_token_ids) for r in rollouts)
    assert all(t not in r.text for r in rollouts for t in PLACEHOLDER_TOKENS)
    assert all(r.finish_reason == "length" and len(r.response_token_ids) == 6 for r in rollouts[:4])
    engine.update_weights(token_loving_state(model, processor, ["<|im_end|>"]))
    (empty,) = engine.generate([text_request()], GREEDY)
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert (empty.finish_reason, empty.text, empty.response_token_ids) == ("stop", "", [eos])


def test_overlong_prompt_skipped_not_sent(engine, caplog):
    engine.cfg.max_prompt_tokens, old = 40, engine.cfg.max_prompt_tokens
    try:
        with caplog.at_level("WARNING", logger="rollouts.engine"):
            rollouts = engine.generate([text_request("ok"), image_request("too-long")], GREEDY)
    finally:
        engine.cfg.max_prompt_tokens = old
    assert [r.request_id for r in rollouts] == ["ok"] and "skipped request too-long: prompt has" in caplog.text


def test_generate_iter_yields_each_request_when_it_finishes(engine, tiny):
    reqs = [text_request("t"), image_request("i"), text_request("t2")]
    whole = engine.generate(reqs, GREEDY)
    streamed = [r for chunk in engine.generate_iter(reqs, GREEDY) for r in chunk]
    key = lambda r: (r.request_id, tuple(r.response_token_ids))  # noqa: E731
    assert sorted(map(key, streamed)) == sorted(map(key, whole))  # the same batch, the same answers
    sampled = SamplingConfig(rollouts_per_prompt=3, temperature=1.0, max_response_tokens=8)
    chunks = list(engine.generate_iter(reqs, sampled))
    assert len(chunks) == 3  # one chunk per request, with all n samples
    assert all(len({r.request_id for r in c}) == 1 and len(c) == 3 for c in chunks)
    assert _max_diff(tiny[0], engine, [r for c in chunks for r in c if r.request_id == "i"], 1.0) <= 1e-4
    # a caller that stops early leaves nothing behind in the engine
    next(iter(engine.generate_iter(reqs, sampled)))
    assert not engine.llm.llm_engine.has_unfinished_requests()
    assert sorted(map(key, engine.generate(reqs, GREEDY))) == sorted(map(key, whole))
