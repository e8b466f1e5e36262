"""Exact loss masks: a conversation -> token ids + labels (-100 where the loss does not look).

The ChatML text of `render_chat` is cut into segments, each flagged supervised or not, and
each segment is tokenised on its own, so segment borders are token borders and the mask
is exact by construction (no offset arithmetic, no "find the response template" search).
The segments concatenate back to exactly `render_chat(messages, add_generation_prompt=False)`
(checked), and the prompt part is exactly what generation feeds the model.

Supervised, per assistant turn (all turns, or the last one only):

    <|im_start|>assistant\\n   no
    <think>...</think>\\n      think mode: yes; direct mode: no (an empty Qwen3-style think block)
    answer                     yes
    <|im_end|>                 yes (the model must learn to stop)
    \\n                        no
"""

from __future__ import annotations

from typing import Any

import torch

from sail_rl.errors import DataError
from sail_rl.model.processing import count_visuals, render_chat
from sail_rl.sft.examples import SFTExample, split_think

IGNORE_INDEX = -100
ASSISTANT_HEADER = "<|im_start|>assistant\n"
TURN_END = "<|im_end|>"


def chat_segments(messages: list[dict], mode: str = "think", assistant_turns: str = "all",
                  completion_only_loss: bool = True) -> list[tuple[str, bool]]:
    """[(text, supervised)] whose texts join to `render_chat(messages, add_generation_prompt=False)`.

    >>> segs = chat_segments([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "\\\\boxed{4}"}], "direct")
    >>> [t for t, sup in segs if sup]
    ['\\\\boxed{4}', '<|im_end|>']
    """
    last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    segments: list[tuple[str, bool]] = []
    rendered = ""
    for i, message in enumerate(messages):
        full = render_chat(messages[: i + 1], add_generation_prompt=False)
        text = full[len(rendered):]
        rendered = full
        trained = message["role"] == "assistant" and (assistant_turns == "all" or i == last_assistant)
        if not trained:
            segments.append((text, not completion_only_loss))
            continue
        content = text[len(ASSISTANT_HEADER): -len(TURN_END + "\n")]
        think, answer = split_think(content)
        segments.append((ASSISTANT_HEADER, not completion_only_loss))
        if think:
            segments.append((think, mode == "think" or not completion_only_loss))
        segments += [(answer, True), (TURN_END, True), ("\n", not completion_only_loss)]
    assert "".join(t for t, _ in segments) == rendered, "segments must rebuild the rendered chat"
    return [(t, sup) for t, sup in segments if t]


def tokenize_example(example: SFTExample, processor, assistant_turns: str = "all",
                     completion_only_loss: bool = True, max_length: int | None = None,
                     pixel_cache: dict | None = None, max_tiles: int | None = None) -> dict[str, Any]:
    """One example -> {"input_ids": [seq], "labels": [seq], "pixel_values": [tiles, 3, S, S],
    "num_tiles": [images]}. Image tokens and, with completion_only_loss, the prompt get -100."""
    tile_counts, pixels = _images(example, processor, pixel_cache, max_tiles)
    tokenizer = processor.tokenizer
    input_ids: list[int] = []
    labels: list[int] = []
    next_image = next_item = 0
    for text, supervised in chat_segments(example.messages, example.mode, assistant_turns, completion_only_loss):
        n_items = count_visuals(text)
        if n_items:  # a video's `<video>` becomes its frames' `<image>`s first
            text, frames = processor.expand_videos(text, example.images[next_item: next_item + n_items])
            next_item += n_items
            text = processor.expand_images(text, tile_counts[next_image: next_image + len(frames)])
            next_image += len(frames)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if supervised else [IGNORE_INDEX] * len(ids)
    if next_image != len(tile_counts):
        raise DataError(f"example {example.uid}: {len(tile_counts)} images but {next_image} <image> parts in its messages")
    image_token = processor.image_token_id
    labels = [IGNORE_INDEX if t == image_token else lab for t, lab in zip(input_ids, labels)]
    if max_length is not None and len(input_ids) > max_length:
        raise DataError(
            f"example {example.uid}: {len(input_ids)} tokens (images included) > train.max_length={max_length}; "
            "raise train.max_length or lower model.max_tiles (cutting would drop the answer or split an image)"
        )
    return {"input_ids": input_ids, "labels": labels, "pixel_values": pixels, "num_tiles": tile_counts}


def _images(example: SFTExample, processor, pixel_cache: dict | None, max_tiles: int | None = None) -> tuple[list[int], torch.Tensor]:
    from sail_rl.model.image_processing import load_image
    from sail_rl.model.video import Video, frame_tiles

    size = processor.image_processor.image_size
    if not example.images:
        return [], torch.zeros(0, 3, size, size)
    key = tuple(str(i) for i in example.images) if all(isinstance(i, str) for i in example.images) else None
    if pixel_cache is not None and key is not None and key in pixel_cache:
        return pixel_cache[key]
    images = [frame for img in example.images for frame in
              (frame_tiles(img, size) if isinstance(img, Video) else [load_image(img, f"example {example.uid}")])]
    feat = processor.image_processor(images, max_tiles=max_tiles)
    out = (list(feat["num_tiles"]), feat["pixel_values"])
    if pixel_cache is not None and key is not None:
        pixel_cache[key] = out
    return out


class SFTCollator:
    """Tokenised examples -> a right-padded batch the model takes.

    input_ids / attention_mask / labels [batch, seq] (labels -100 on padding),
    pixel_values [tiles of all images, 3, S, S], image_tiles_per_sample [batch].
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            labels[row, :n] = torch.tensor(f["labels"])
            mask[row, :n] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "pixel_values": torch.cat([f["pixel_values"] for f in features]),
            "image_tiles_per_sample": torch.tensor([sum(f["num_tiles"]) for f in features], dtype=torch.long),
        }
