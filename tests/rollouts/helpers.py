"""Requests, a second tiny model and a 'loves placeholder tokens' model for the rollout tests."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from rollouts.engine import PLACEHOLDER_TOKENS
from rollouts.logprobs import collate_rollouts, sequence_logprobs
from rollouts.types import GenerationRequest


def image(seed: int = 0, size=(128, 64)) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype("uint8"))


def text_request(rid: str = "t0", question: str = "What is 2+2?") -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": question}], [], rid, metadata={"answer": "4"})


def image_request(rid: str = "i0", seed: int = 0) -> GenerationRequest:
    content = [{"type": "image"}, {"type": "text", "text": "How many bars?"}]
    return GenerationRequest([{"role": "user", "content": content}], [image(seed)], rid, thinking=True)


def trainer_logprobs(model, rollouts, tokenizer, temperature: float, suppress):
    """(trainer log-probs, engine log-probs, response mask), all [batch, seq]."""
    batch = collate_rollouts(rollouts, tokenizer.pad_token_id)
    with torch.no_grad():
        lp = sequence_logprobs(
            model, batch["input_ids"], batch["attention_mask"], batch["pixel_values"],
            batch["image_tiles_per_sample"], batch["response_mask"], temperature, suppress,
        )
    return lp, batch["rollout_logprobs"], batch["response_mask"]


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
