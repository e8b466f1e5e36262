"""From a sample to chat messages: question, listed choices, an answer hint and the mode's
instruction. The system prompt stays empty; the image comes first in the user turn.

    messages, images = build_prompt(sample, mode="think")
    # [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "..."}]}], [PIL.Image]
"""

from __future__ import annotations

import random
from typing import Literal, Optional

from sail_rl.data.mathvista import LETTERS, DataConfig, MathVistaSample

PromptMode = Literal["think", "direct", "auto"]
THINK_OR_DIRECT = ("think", "direct")

INSTRUCTIONS: dict[str, str] = {
    "think": "Think step by step inside <think> </think>, then put the final answer in \\boxed{}.",
    "direct": "Answer with the final answer in \\boxed{} directly.",
    "auto": (
        "If the question needs reasoning, think step by step inside <think> </think> first; "
        "otherwise answer directly. Put the final answer in \\boxed{}."
    ),
}


def _answer_hint(sample: MathVistaSample) -> Optional[str]:
    if sample.question_type == "multi_choice":
        return "Answer with the option's letter."
    if sample.answer_type == "integer":
        hint = "The answer is an integer"
    elif sample.answer_type == "float":
        places = sample.precision if sample.precision is not None else 1
        hint = f"The answer is a number with {places} decimal place{'s' if places != 1 else ''}"
    elif sample.answer_type == "list":
        hint = "The answer is a list, e.g. [1, 2, 3]"
    else:
        return None if not sample.unit else f"Give the answer in {sample.unit}."
    return hint + (f" (in {sample.unit})." if sample.unit else ".")


def question_text(sample: MathVistaSample, mode: PromptMode = "think") -> str:
    """The user text: question, choices "(A) .. (B) ..", answer hint, instruction.

    >>> s = MathVistaSample(pid="1", question="Which bar is tallest?", image="x.png", answer="blue",
    ...                     question_type="multi_choice", answer_type="text", choices=["red", "blue"])
    >>> print(question_text(s, "direct"))
    Which bar is tallest?
    Choices: (A) red (B) blue
    Answer with the option's letter.
    Answer with the final answer in \\boxed{} directly.
    """
    if mode not in INSTRUCTIONS:
        raise ValueError(f"prompt mode must be one of {', '.join(INSTRUCTIONS)}, got {mode!r}")
    lines = [sample.question.strip()]
    if sample.question_type == "multi_choice" and sample.choices:
        lines.append("Choices: " + " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(sample.choices)))
    hint = _answer_hint(sample)
    if hint:
        lines.append(hint)
    lines.append(INSTRUCTIONS[mode])
    return "\n".join(lines)


def build_prompt(sample: MathVistaSample, mode: PromptMode = "think"):
    """(messages, images) for one sample: one user turn, its images (or video) first, then the text.

    `mode="auto"` leaves the think/direct choice to the model (thinking-fusion / judging).
    Returns `([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": str}]}],
    [PIL.Image.Image in RGB])`; several images give several image parts, a video one
    `{"type": "video"}` part and a `Video` of sampled frames in the list.
    """
    from sail_rl.model.image_processing import load_image
    from sail_rl.model.video import Video

    text = question_text(sample, mode)
    visuals = [v if isinstance(v, Video) else load_image(v, f"sample {sample.pid}") for v in sample.visuals()]
    parts = [{"type": "video" if isinstance(v, Video) else "image"} for v in visuals]
    messages = [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]
    return messages, visuals


def prompt_modes(cfg: DataConfig, n: int, seed: str) -> list[str]:
    """The prompt mode of each of `n` prompts (by dataset index). `prompt_mode: mixed` (the
    thinking-fusion mix): exactly round(n * think_ratio) prompts think, the rest answer directly,
    which ones drawn from `seed` (so a prompt keeps its mode for the whole run); else every prompt
    has `cfg.prompt_mode`.

    >>> cfg = DataConfig(prompt_mode="mixed", think_ratio=0.25)
    >>> modes = prompt_modes(cfg, 8, "0:train")
    >>> modes.count("think"), modes == prompt_modes(cfg, 8, "0:train"), prompt_modes(DataConfig(prompt_mode="direct"), 2, "0")
    (2, True, ['direct', 'direct'])
    """
    if cfg.prompt_mode != "mixed":
        return [cfg.prompt_mode] * n
    thinking = set(random.Random(seed).sample(range(n), round(n * float(cfg.think_ratio))))
    return ["think" if i in thinking else "direct" for i in range(n)]
