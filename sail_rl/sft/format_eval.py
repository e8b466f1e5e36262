"""Did SFT teach the formats? Greedy HF `generate` on held-out prompts, per mode.

    think:  well_formed = one `<think>...</think>` block, then an answer with exactly one `\\boxed{}`
    direct: skipped_think = no `<think>` at all, and exactly one `\\boxed{}`
    both:   accuracy = `rewards.grade(response, answer, answer_type, choices, precision)`

Prompts are the data package's `build_prompt(sample, mode)` rendered with `render_chat`
(no system turn), the same as training (`examples.sample_to_example`) and `sail-rl eval`.

>>> is_well_formed_think("<think>\\n2 + 3 = 5.\\n</think>\\n\\\\boxed{5}"), is_well_formed_think("<think>a</think> \\\\boxed{1} \\\\boxed{2}")
(True, False)
>>> skips_think("\\\\boxed{5}"), skips_think("<think></think>\\\\boxed{5}")
(True, False)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from rewards.layout import follows_layout


def is_well_formed_think(response: str) -> bool:
    return follows_layout(response, "think")


def skips_think(response: str) -> bool:
    return follows_layout(response, "direct")


def _grade(response: str, sample) -> bool:
    from rewards import grade

    return grade(response, sample.answer, answer_type=sample.answer_type, choices=sample.choices,
                 precision=sample.precision)


@torch.no_grad()
def generate_responses(model, processor, samples: Sequence, mode: str, max_new_tokens: int = 96,
                       batch_size: int = 25, max_tiles: int | None = None) -> list[str]:
    """Greedy responses (text up to `<|im_end|>`, special tokens kept) for `samples` in `mode`."""
    from sail_rl.data.prompts import build_prompt
    from sail_rl.model.processing import render_chat

    tokenizer = processor.tokenizer
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, len(samples), batch_size):
        prompts = [build_prompt(s, mode=mode) for s in samples[start: start + batch_size]]
        texts = [render_chat(messages) for messages, _ in prompts]
        batch = processor(texts, images=[images for _, images in prompts], padding=True, padding_side="left",
                          max_tiles=max_tiles)
        batch = {k: v.to(device) for k, v in batch.items()}
        new = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end_id,
                             pad_token_id=tokenizer.pad_token_id)
        for row in new[:, batch["input_ids"].shape[1]:].tolist():  # generate returns prompt + new tokens
            row = row[: row.index(end_id)] if end_id in row else row
            out.append(tokenizer.decode([t for t in row if t != tokenizer.pad_token_id], skip_special_tokens=False))
    return out


def format_report(model, processor, samples: Sequence, modes: Sequence[str] = ("think", "direct"),
                  max_new_tokens: int = 96, batch_size: int = 25, max_tiles: int | None = None) -> dict[str, Any]:
    """{mode: {n, well_formed | skipped_think, accuracy, examples}} plus `generate_s`."""
    was_training = model.training
    model.eval()
    report: dict[str, Any] = {}
    start = time.perf_counter()
    for mode in modes:
        responses = generate_responses(model, processor, samples, mode, max_new_tokens, batch_size, max_tiles)
        form = [is_well_formed_think(r) if mode == "think" else skips_think(r) for r in responses]
        right = [_grade(r, s) for r, s in zip(responses, samples)]
        key = "well_formed" if mode == "think" else "skipped_think"
        report[mode] = {"n": len(responses), key: sum(form) / max(1, len(form)), "accuracy": sum(right) / max(1, len(right)),
                        "examples": [{"pid": s.pid, "answer": s.answer, "response": r} for s, r in list(zip(samples, responses))[:3]]}
    report["generate_s"] = round(time.perf_counter() - start, 2)
    model.train(was_training)
    return report
