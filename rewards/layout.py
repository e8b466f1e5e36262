"""The answer layouts SAIL-VL is trained to write, checked in one place.

    think:  `<think>reasoning</think>` at the start, a non-empty thought, then exactly one
            `\\boxed{}` and nothing after it but whitespace, a period or closing math delimiters
    direct: no think block, exactly one final `\\boxed{}`
    auto:   either

The think-or-not decision (thinking fusion, SAIL-RL's judging reward) is the response's first
token: a response that opens with `<think>` decided to think (`thinks`), any other decided to
answer directly. There is no separate decision block: the fusion SFT teaches it by its targets,
the judging reward reads it, eval's think rate counts it.

The format reward, evaluation's `think_well_formed` rate, SFT's format check and rejection
sampling all ask `follows_layout`, so "well-formed" means one thing everywhere.

>>> follows_layout("<think>2+2=4</think>\\nThe answer is \\\\boxed{4}."), follows_layout("<think></think>\\\\boxed{4}")
(True, False)
>>> thinks(" <think>ok</think>\\\\boxed{4}"), thinks("\\\\boxed{4}"), follows_layout("\\\\boxed{4} and \\\\boxed{5}", "direct")
(True, False, False)
>>> follows_layout("\\\\boxed{4}", "direct"), follows_layout("\\\\boxed{4}", "auto"), follows_layout("\\\\boxed{4} because", "auto")
(True, True, False)
"""

from __future__ import annotations

import re

from rewards.answer_extraction import find_boxed

# What may follow the final box: whitespace, a period, and closing math delimiters.
_AFTER_BOX_RE = re.compile(r"^[\s.$]*(?:\\\]|\\\))?[\s.$]*$")
MODES = ("think", "direct", "auto")


def one_final_box(text: str) -> bool:
    boxes = find_boxed(text)
    return (len(boxes) == 1 and text.count("\\boxed") + text.count("\\fbox") == 1
            and bool(_AFTER_BOX_RE.match(text[boxes[0][1]:])))


def thinks(response: str) -> bool:
    """The think-or-not decision: whether the response opens with `<think>`."""
    return response.lstrip().startswith("<think>")


def follows_layout(response: str, mode: str = "think") -> bool:
    """Whether `response` has `mode`'s layout (see the module docstring)."""
    body = response
    has_think = "<think>" in body or "</think>" in body
    if mode == "direct" or (mode == "auto" and not has_think):
        return not has_think and one_final_box(body)
    if not body.lstrip().startswith("<think>") or body.count("<think>") != 1 or body.count("</think>") != 1:
        return False
    thought, after = body.lstrip()[len("<think>"):].split("</think>", 1)
    return bool(thought.strip()) and one_final_box(after)


__all__ = ["follows_layout", "one_final_box", "thinks", "MODES"]
