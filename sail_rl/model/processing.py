"""`SailVLProcessor`: the chat template, image-slot expansion and tokenisation, in one place.

A prompt is ChatML. Each image in a message becomes `<image>` in the text, which the
processor expands to `<img>` + `<IMG_CONTEXT>` x (tokens_per_tile x tiles) + `</img>`, the
rows the model overwrites with image features. A video (`sail_rl.model.video.Video`) becomes
`<video>`, which the processor writes as one `Frame{i}: <image>` line per frame, each frame
one tile (`expand_videos`): after that a video is images, on every path. Modes:

- thinking: the answer is `<think>...</think>` then a final `\\boxed{}`;
- direct:   the answer is the final `\\boxed{}` alone;
- None:     no instruction (the model decides; the SAIL-RL judging setting).
"""

from __future__ import annotations

import re

import torch
from transformers import BatchFeature
from transformers.processing_utils import MultiModalData, ProcessorMixin

from sail_rl.model.image_processing import best_grid
from sail_rl.model.video import Video, frame_tiles, load_video

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"  # plain text, never a token: expand_videos replaces it before tokenising
_VISUAL = re.compile(f"({IMAGE_PLACEHOLDER}|{VIDEO_PLACEHOLDER})")
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
THINK_START, THINK_END = "<think>", "</think>"
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", IMG_START, IMG_END, IMG_CONTEXT,
    THINK_START, THINK_END, "<judge>", "</judge>", IMAGE_PLACEHOLDER,
]
# Tokens that only the processor may write: a response containing one would corrupt the next
# forward (an <IMG_CONTEXT> without an image feature). Engines ban them when sampling; the
# trainer suppresses them in its log-probs likewise.
PLACEHOLDER_TOKENS = (IMG_START, IMG_END, IMG_CONTEXT, IMAGE_PLACEHOLDER)
MODE_INSTRUCTIONS = {
    True: "Think step by step inside <think> </think>, then give the final answer in \\boxed{}.",
    False: "Answer directly with the final answer in \\boxed{}, without thinking aloud.",
}


def banned_token_ids(tokenizer) -> list[int]:
    """Ids of the image-placeholder tokens present in the vocabulary (never sampled)."""
    vocab = tokenizer.get_vocab()
    return sorted(vocab[t] for t in PLACEHOLDER_TOKENS if t in vocab)


def render_chat(messages: list[dict], thinking: bool | None = None, add_generation_prompt: bool = True) -> str:
    """Chat messages -> ChatML text with `<image>` placeholders.

    >>> render_chat([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}])
    '<|im_start|>user\\n<image>\\nHow many?<|im_end|>\\n<|im_start|>assistant\\n'
    >>> render_chat([{"role": "user", "content": "2+2?"}], thinking=False).splitlines()[1]
    'Answer directly with the final answer in \\\\boxed{}, without thinking aloud.<|im_end|>'
    """
    parts = []
    has_system = bool(messages) and messages[0]["role"] == "system"
    if thinking is not None and not has_system:
        parts.append(f"<|im_start|>system\n{MODE_INSTRUCTIONS[thinking]}<|im_end|>\n")
    for message in messages:
        parts.append(f"<|im_start|>{message['role']}\n{_content_text(message['content'])}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        if part.get("type") == "image":
            pieces.append(IMAGE_PLACEHOLDER + "\n")
        elif part.get("type") == "video":
            pieces.append(VIDEO_PLACEHOLDER + "\n")
        elif part.get("type") == "text":
            pieces.append(part["text"])
        else:
            raise ValueError(f"unknown message part type {part.get('type')!r}; use 'image', 'video' or 'text'")
    return "".join(pieces)


def count_images(messages: list[dict]) -> int:
    """Visual items (images and videos) in the messages: the length of their `images` list."""
    return sum(
        1 for m in messages if not isinstance(m["content"], str) for p in m["content"] if p.get("type") in ("image", "video")
    )


def count_visuals(text: str) -> int:
    """`<image>` and `<video>` placeholders in a rendered text."""
    return len(_VISUAL.findall(text))


def expand_videos(text: str, items: list, image_size: int, sample: int = 0) -> tuple[str, list]:
    r"""Text with `<image>` / `<video>` placeholders and its visual items in the same order ->
    (text with `<image>` only, images): each video becomes `Frame1: <image>\nFrame2: <image>...`
    and its frames, squashed to one `image_size` tile each. At a `<video>` the item is a `Video`,
    or a video file, a folder of frames or a list of images (sampled by `load_video`'s defaults).

    >>> from PIL import Image
    >>> v = Video([Image.new("RGB", (8, 6))] * 2)
    >>> text, images = expand_videos("<video>\nWhich way?", [v], 4)
    >>> text, [im.size for im in images]
    ('Frame1: <image>\nFrame2: <image>\nWhich way?', [(4, 4), (4, 4)])
    """
    pieces = _VISUAL.split(text)
    if len(pieces) // 2 != len(items):
        raise ValueError(f"sample {sample}: {len(pieces) // 2} <image>/<video> placeholders but {len(items)} images and videos; "
                         "put one {'type': 'image'} or {'type': 'video'} part in the messages per item")
    out, images = [pieces[0]], []
    for item, kind, rest in zip(items, pieces[1::2], pieces[2::2]):
        if kind == IMAGE_PLACEHOLDER and isinstance(item, Video):
            raise ValueError(f"sample {sample}: a Video where the text has {kind}; give a video a {{'type': 'video'}} part")
        if kind == VIDEO_PLACEHOLDER:
            # a Video, or what load_video reads with its defaults (8 frames): a file, a folder of frames, a list of images
            frames = frame_tiles(load_video(item, where=f"sample {sample}"), image_size)
            out.append("\n".join(f"Frame{i + 1}: {IMAGE_PLACEHOLDER}" for i in range(len(frames))))
            images.extend(frames)
        else:
            out.append(kind)
            images.append(item)
        out.append(rest)
    return "".join(out), images


class SailVLProcessor(ProcessorMixin):
    """Tokenizer + image processor + chat template for SAIL-VL."""

    def __init__(self, image_processor=None, tokenizer=None, tokens_per_tile: int = 256, chat_template=None, **kwargs):
        self.tokens_per_tile = tokens_per_tile
        super().__init__(image_processor, tokenizer, chat_template=chat_template)
        # transformers' convention for the placeholder an image's slot replaces (vLLM's Transformers
        # backend finds each image in the prompt by it).
        self.image_token = IMAGE_PLACEHOLDER

    @property
    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)

    def image_slot(self, num_tiles: int) -> str:
        return IMG_START + IMG_CONTEXT * (self.tokens_per_tile * num_tiles) + IMG_END

    def apply_chat_template(
        self, conversation, thinking: bool | None = None, add_generation_prompt: bool = True, tokenize: bool = False,
        return_dict: bool = False, tools=None, chat_template=None, **kwargs,
    ):
        """Render one conversation (or a batch) as ChatML text with `<image>` placeholders.

        tokenize + return_dict (transformers' convention, as TRL calls it): model inputs for the batch,
        unpadded token lists, the images taken from the `{"type": "image", "image": ...}` parts."""
        if tools or chat_template:
            raise ValueError("SailVLProcessor.apply_chat_template renders SAIL-VL's ChatML only: tools and chat_template are not supported")
        batched = bool(conversation) and isinstance(conversation[0], list)
        conversations = conversation if batched else [conversation]
        texts = [render_chat(c, thinking=thinking, add_generation_prompt=add_generation_prompt) for c in conversations]
        if return_dict and tokenize:
            images = [[p[p["type"]] for m in c if not isinstance(m["content"], str) for p in m["content"]
                       if p.get("type") in ("image", "video") and p["type"] in p] for c in conversations]
            return self(texts, images=images if any(images) else None, padding=False, return_tensors=None)
        if tokenize:
            ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            return ids if batched else ids[0]
        return texts if batched else texts[0]

    def expand_images(self, text: str, num_tiles: list[int], sample: int = 0) -> str:
        """Replace each `<image>` with its slot; the count must match the images given."""
        pieces = text.split(IMAGE_PLACEHOLDER)
        if len(pieces) - 1 != len(num_tiles):
            raise ValueError(
                f"sample {sample}: {len(pieces) - 1} <image> placeholders but {len(num_tiles)} images; "
                "put one {'type': 'image'} part in the messages per image"
            )
        out = [pieces[0]]
        for tiles, piece in zip(num_tiles, pieces[1:]):
            out.append(self.image_slot(tiles) + piece)
        return "".join(out)

    def __call__(
        self,
        text: str | list[str] | None = None,
        images=None,
        max_tiles: int | None = None,
        padding: bool | str = True,
        padding_side: str = "left",
        return_tensors: str | None = "pt",
        return_tile_counts: bool = False,
        return_text_replacement_offsets: bool = False,
        **tokenizer_kwargs,
    ) -> BatchFeature:
        """Texts with `<image>` placeholders (+ images) -> model inputs.

        `images` is a list per text (list of lists), or a flat list given to the placeholders
        in order; a `Video` stands where the text has `<video>` (`expand_videos`). Returns input_ids / attention_mask [batch, seq] and pixel_values [tiles, 3, S, S]
        (InternVL's keys, what generic VLM code passes on to the model); with `return_tile_counts`
        also image_tiles_per_sample [batch] and num_tiles (per image). `return_text_replacement_offsets`
        (transformers' convention, what vLLM's Transformers backend asks for): per text, one
        `{"type": "image", "replacement": slot}` per image, in order.
        """
        texts = [text] if isinstance(text, str) else list(text)
        per_sample = _split_images(texts, images)
        all_pixels, all_tiles, tiles_per_sample, tiles_per_image, expanded = [], [], [], [], []
        for i, (t, imgs) in enumerate(zip(texts, per_sample)):
            t, imgs = self.expand_videos(t, imgs, sample=i)
            if imgs:
                feat = self.image_processor(imgs, max_tiles=max_tiles)
                all_pixels.append(feat["pixel_values"])
                all_tiles.extend(feat["num_tiles"])
                tiles = feat["num_tiles"]
            else:
                tiles = []
            expanded.append(self.expand_images(t, tiles, sample=i))
            tiles_per_sample.append(sum(tiles))
            tiles_per_image.append(list(tiles))
        self.tokenizer.padding_side = padding_side
        if tokenizer_kwargs.pop("add_special_tokens", False):
            raise ValueError("SailVLProcessor: add_special_tokens=True is not supported; the chat template writes every special token")
        enc = self.tokenizer(expanded, padding=padding, return_tensors=return_tensors, add_special_tokens=False, **tokenizer_kwargs)
        data = dict(enc)
        size = self.image_processor.image_size
        data["pixel_values"] = torch.cat(all_pixels) if all_pixels else torch.zeros(0, 3, size, size)
        if return_text_replacement_offsets:
            data["text_replacement_offsets"] = [
                [{"type": "image", "text": IMAGE_PLACEHOLDER, "replacement": self.image_slot(n)} for n in tiles]
                for tiles in tiles_per_image
            ]
        if return_tile_counts:
            data["image_tiles_per_sample"] = torch.tensor(tiles_per_sample, dtype=torch.long)
            data["num_tiles"] = all_tiles
        return BatchFeature(data)

    def expand_videos(self, text: str, items: list, sample: int = 0) -> tuple[str, list]:
        """`expand_videos` at this processor's tile size: what vLLM's prompt gets for a video."""
        return expand_videos(text, list(items or []), self.image_processor.image_size, sample)

    def num_tiles(self, height: int, width: int, max_tiles: int | None = None) -> int:
        """Tiles an image of this size becomes (its grid, + the thumbnail when there is more than one)."""
        ip = self.image_processor
        cols, rows = best_grid(width, height, ip.image_size, ip.min_tiles, ip.max_tiles if max_tiles is None else max_tiles)
        return cols * rows + (1 if ip.use_thumbnail and cols * rows > 1 else 0)

    def _get_num_multimodal_tokens(self, image_sizes=None, **kwargs) -> MultiModalData:
        """InternVL's convention: per image (height, width), its tiles (`num_image_patches`) and the
        tokens of its slot, `<img>` + 256 x tiles `<IMG_CONTEXT>` + `</img>` (`num_image_tokens`)."""
        data = {}
        if image_sizes is not None:
            tiles = [self.num_tiles(int(h), int(w), kwargs.get("max_tiles")) for h, w in image_sizes]
            data = {"num_image_tokens": [2 + self.tokens_per_tile * t for t in tiles], "num_image_patches": tiles}
        return MultiModalData(**data)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)


def _split_images(texts: list[str], images) -> list[list]:
    if not images:
        return [[] for _ in texts]
    if isinstance(images[0], (list, tuple)):
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} image lists for {len(texts)} texts; give one list per text")
        return [list(x) for x in images]
    flat, out = list(images), []
    for t in texts:
        n = count_visuals(t)
        out.append(flat[:n])
        flat = flat[n:]
    if flat:
        raise ValueError(f"{len(images)} images but only {len(images) - len(flat)} <image>/<video> placeholders in the texts")
    return out


__all__ = ["SailVLProcessor", "render_chat", "count_images", "expand_videos", "SPECIAL_TOKENS", "VIDEO_PLACEHOLDER"]
