"""Requests, a second tiny model and a 'loves placeholder tokens' model for the rollout tests."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from rollouts.engine import PLACEHOLDER_TOKENS
from rollouts.types import GenerationRequest
from sail_rl.trainer.batch import collate
from sail_rl.trainer.logprobs import policy_forward


def image(seed: int = 0, size=(128, 64)) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype("uint8"))


def text_request(rid: str = "t0", question: str = "What is 2+2?") -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": question}], [], rid, metadata={"answer": "4"})


def image_request(rid: str = "i0", seed: int = 0) -> GenerationRequest:
    content = [{"type": "image"}, {"type": "text", "text": "How many bars?"}]
    return GenerationRequest([{"role": "user", "content": content}], [image(seed)], rid, thinking=True)


def trainer_logprobs(model, rollouts, tokenizer, temperature: float, suppress):
    """(trainer log-probs, engine log-probs, response mask), all [batch, seq - 1]: the RL update's
    own collate and forward on the rollouts' tokens (temperature 0, greedy, counts as 1)."""
    samples = [dict(prompt_ids=r.prompt_token_ids, response_ids=r.response_token_ids, response_logprobs=r.response_logprobs,
                    pixel_values=r.pixel_values, group_id=0, reward=0.0) for r in rollouts]
    batch = collate(samples, tokenizer.pad_token_id, model.config.vision_config.image_size)
    with torch.no_grad():
        lp, _, _ = policy_forward(model, batch, temperature if temperature > 0 else 1.0, suppress_ids=list(suppress or []) or None)
    return lp, batch.rollout_log_probs, batch.response_mask


def placeholder_loving_state(model, processor) -> dict:
    """A state dict whose greedy first response token (text prompt) is a placeholder token."""
    return token_loving_state(model, processor, PLACEHOLDER_TOKENS)


@torch.no_grad()
def token_loving_state(model, processor, tokens) -> dict:
    """A state dict whose greedy first response token (text prompt) is one of `tokens`.

    The tiny model ties its head to the embedding table, so an embedding row pointing along the
    final hidden state gives that token a logit of ~30 where the others are ~0.1.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    text = processor.apply_chat_template(text_request().messages)
    ids = processor([text], padding=False)["input_ids"]
    hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
    vocab = processor.tokenizer.get_vocab()
    for token in tokens:
        state["model.language_model.embed_tokens.weight"][vocab[token]] = hidden * (30.0 / hidden.pow(2).sum())
    if "lm_head.weight" in state:
        state["lm_head.weight"] = state["model.language_model.embed_tokens.weight"]
    return state
