"""A deterministic fake step of rollouts for trainer tests (real model, real processor)."""

from __future__ import annotations

import torch
from PIL import Image

from sail_rl.model.builder import load_processor
from sail_rl.trainer.batch import collate


def fake_batch(model_dir, n_groups: int = 4, group_size: int = 4, seed: int = 0):
    processor = load_processor(model_dir)
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for g in range(n_groups):
        colour = tuple(int(x) for x in torch.randint(0, 255, (3,), generator=generator))
        text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"q{g}"}]}])
        enc = processor([text], images=[[Image.new("RGB", (64 * (1 + g % 2), 64), colour)]])
        for i in range(group_size):
            length = int(torch.randint(2, 12, (1,), generator=generator))
            response = torch.randint(20, 1000, (length,), generator=generator).tolist()
            samples.append(dict(
                prompt_ids=enc["input_ids"][0].tolist(), response_ids=response,
                response_logprobs=(-torch.rand(length, generator=generator) * 5).tolist(),
                pixel_values=enc["pixel_values"], group_id=g, reward=float((i + g) % 2),
            ))
    return collate(samples, processor.tokenizer.pad_token_id, processor.image_processor.image_size)
