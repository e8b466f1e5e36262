"""Find the final answer in a model response: `\\boxed{}`, answer phrases, or a short reply.

Shared by the rewards and eval (DESIGN: rewards and eval call the same grader).

    >>> extract_answer("<think>2+2 is 4, not \\\\boxed{5}</think>\\nThe answer is \\\\boxed{4}")
    '4'
    >>> extract_answer("Some reasoning. The answer is (B).")
    '(B)'
    >>> extract_answer("42") , extract_answer("word " * 40) is None
    ('42', True)
"""

from __future__ import annotations

import re

# A reply with no box and no answer phrase counts as the answer itself when this short.
SHORT_RESPONSE_CHARS = 100

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
# MathVista / VLMEvalKit prefetch phrases: "The answer is X", "Answer: X", "final answer: X".
_PHRASE_RE = re.compile(
    r"(?:final\s+answer|correct\s+answer|the\s+answer|answer)\s*(?:is\s*:?|:|=)\s*(?P<ans>[^\n]+)",
    re.IGNORECASE,
)
_LETTER_RE = re.compile(
    r"^\s*(?:(?:option|choice)\s*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?\s*(?:[.:)]|\s|$)",
    re.IGNORECASE,
)


def find_boxed(text: str) -> list[tuple[int, int, str]]:
    """All `\\boxed{...}` / `\\fbox{...}` with balanced braces: (start, end, content).

    >>> find_boxed("a \\\\boxed{\\\\frac{1}{2}} b \\\\fbox{3}")
    [(2, 21, '\\\\frac{1}{2}'), (24, 32, '3')]
    """
    found = []
    for match in _BOX_RE.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
                i += 2
                continue
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append((match.start(), i, text[match.end() : i - 1]))
    return found


def final_part(response: str) -> str:
    """The text after the last `</think>` (the whole response when there is none)."""
    if "</think>" in response:
        return response.rsplit("</think>", 1)[1]
    return response


def strip_answer(text: str) -> str:
    """Remove wrappers around an answer: `$...$`, `\\(...\\)`, `**`, a final period."""
    text = text.strip()
    for _ in range(3):
        before = text
        text = text.strip().strip("*").strip()
        if text.endswith(".") and not re.search(r"\d\.$", text[-2:] if len(text) > 1 else ""):
            text = text[:-1].rstrip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
                text = text[len(left) : len(text) - len(right)].strip()
        if text == before:
            break
    return text


def extract_answer(text: str | None) -> str | None:
    """The final answer of a response, or None when there is none to find.

    Order: the last `\\boxed{}`/`\\fbox{}` after the thought; else the last answer phrase
    ("The answer is X", "Answer: X", "final answer: X"); else, for a reply of at most
    SHORT_RESPONSE_CHARS characters, the whole reply.
    """
    if not text:
        return None
    tail = final_part(text)
    boxes = find_boxed(tail)
    if boxes:
        return strip_answer(boxes[-1][2])
    phrases = list(_PHRASE_RE.finditer(tail))
    if phrases:
        answer = strip_answer(phrases[-1].group("ans"))
        return answer or None
    tail = tail.strip()
    if tail and len(tail) <= SHORT_RESPONSE_CHARS:
        return strip_answer(tail)
    return None


def option_letter(text: str) -> str | None:
    """The option letter a reply names: "B", "(B)", "B.", "Option B", "option (b)" -> "B".

    >>> [option_letter(t) for t in ["B", "(b)", "B. 145°", "Option C", "option (d)", "Bob"]]
    ['B', 'B', 'B', 'C', 'D', None]
    """
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text).strip()
    match = _LETTER_RE.match(text)
    if not match:
        return None
    letter = match.group(1)
    rest = text[match.end() :].strip()
    bare = text.strip("()[]. ").lower() == letter.lower()
    # "B. 145°" names B; a bare word starting with a letter ("Bob") does not.
    if bare or text[match.end() - 1 : match.end()] in ".:)" or re.match(r"^\s*[\(\[]", text) or re.match(
        r"^\s*(option|choice)", text, re.IGNORECASE
    ):
        return letter.upper()
    return None if rest else letter.upper()
