"""Find the final answer in a model response: `\\boxed{}`, answer phrases, or a concluding sentence.

Shared by the rewards and eval (rewards and eval call the same grader). Extraction finds
*where* the answer is; `rewards.grader` then reads the value out of that text for the
answer type (a number in "There are 7 birds", an option in "it corresponds to choice B").

Rules, in order (each linear in the length of the response):
1. Trailing engine tokens (`<|im_end|>`, `</s>`, ...) are dropped; only the text after the
   last `</think>` is searched.
2. The last commitment wins: the last `\\boxed{}`/`\\fbox{}` or the last answer phrase
   ("The answer is X", "Answer: X", "The correct option is C", "I choose C"), whichever
   comes later, so "\\boxed{14} is what most say, but the correct answer is 17" gives 17.
   A phrase's answer ends at its clause ("14 because each ..." -> "14").
3. A self-correction after it ("Wait, ...", "On second thought ...") re-opens the answer:
   only what follows the correction counts.
4. Without box or phrase: a short reply is its own answer; a long one answers only in a
   concluding last sentence ("So ..., Therefore ...", "... choice B") or a short last line.

    >>> extract_answer("<think>2+2 is 4, not \\\\boxed{5}</think>\\nThe answer is \\\\boxed{4}")
    '4'
    >>> extract_answer("Some reasoning. The answer is (B) because it is blue.")
    '(B)'
    >>> extract_answer("42<|im_end|>"), extract_answer("word " * 40) is None
    ('42', True)
"""

from __future__ import annotations

import re

# A reply with no box and no answer phrase counts as the answer itself when this short.
SHORT_RESPONSE_CHARS = 100
# In a long reply without box or phrase, a last line this short is the answer ("...\n\nB").
SHORT_LAST_LINE_CHARS = 30
# An answer phrase is read this far (so the work per phrase is bounded).
_MAX_PHRASE_CHARS = 300

# One token per match, so one pass finds every box: a box opener, an escaped brace, a brace.
_BRACE_TOKEN_RE = re.compile(r"\\(?:boxed|fbox)\s*\{|\\[{}]|[{}]")
_SPECIAL_TOKEN_RE = re.compile(
    r"<\|[A-Za-z0-9_\-]{1,40}\|>|<｜[^<>\n]{1,40}｜>|</s>|<eos>|<end_of_turn>|<\|?endoftext\|?>"
)
_SUBJECT = (
    r"(?:\b(?:final|correct|right|best|true)\s+(?:answer|option|choice)"
    r"|\bmy\s+(?:final\s+)?answer|\bthe\s+answer|\banswer"
    r"|\bthe\s+(?:correct\s+|right\s+|best\s+)?(?:option|choice)(?!s)"
    r"|\bthe\s+(?:final\s+)?result)"
)
_VERB = r"(?:\*\*)?\s*(?:is(?:\s+therefore)?|would\s+be|should\s+be|must\s+be|will\s+be|:|=)(?:\s*\*\*)?\s*:?"
# "The answer is X", "**Answer:** X", "I choose C", "I would go with B".
_PHRASE_RE = re.compile(
    rf"(?:{_SUBJECT}\s*{_VERB}|\bI(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with))"
    r"(?=[ \t]*(?P<ans>[^\n]{0,%d}))" % _MAX_PHRASE_CHARS,
    re.IGNORECASE,
)
# Where an answer's clause ends: a sentence end, or the start of an explanation.
_CLAUSE_END_RE = re.compile(
    r"\.(?=\s|$)|[;!?\n]|\s+(?:because|since|due\s+to|based\s+on|given\s+that)\b|,?\s+which\b|,?\s+as\b"
    r"|,\s*(?:so|thus|hence|therefore|and\s+so|where|given|meaning|indicating|making|with|not)\b|\s+[-\u2013\u2014]\s"
    r"|\s+\((?=[^)]{4,})",
    re.IGNORECASE,
)
# Phrase contents that are not an answer ("the answer is consistent with the figure").
_NOT_AN_ANSWER_RE = re.compile(
    r"^(?:not|no\s+longer|unclear|unknown|uncertain|consistent|correct|incorrect|wrong|right|that|this|these|"
    r"based|shown|given|above|below|as\s+follows|the\s+following|determined|found|obtained|calculated|"
    r"to\s+be|in\s+(?:the|line)|clear|obvious|likely|probably|same)\b",
    re.IGNORECASE,
)
_CORRECTION_RE = re.compile(
    r"\b(?:wait|correction|on\s+second\s+thought|i\s+made\s+a\s+mistake|let\s+me\s+correct)\b"
    r"|\bactually,?\s+(?:it|the|that|this)\s+(?:is|was|should|answer)",
    re.IGNORECASE,
)
_CONCLUSION_RE = re.compile(
    r"^(?:so|thus|therefore|hence|consequently|in\s+conclusion|in\s+summary|in\s+total|overall|finally|"
    r"as\s+a\s+result|this\s+means|which\s+means)\b[,:]?\s*",
    re.IGNORECASE,
)
_CHOICE_NAMED_RE = re.compile(r"\b(?:option|choice)\b\s*:?\s*\(?[A-Z]\)?(?![\w])", re.IGNORECASE)
# "A, B", "(A) and (C)": option letters listed together.
_LETTER_LIST_RE = re.compile(r"\(?\b([A-Z])\b\)?\s*(?:,|/|&|\band\b)\s*\(?\b([A-Z])\b\)?")
# "It is C." / "I pick (B)": a capital letter as the object of the sentence, at its end.
_LETTER_OBJECT_RE = re.compile(r"\b(?:is|be|choose|pick|select)\s+\(?([A-Z])\)?(?=\s*[.,;!]|\s*$)")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_LETTER_RE = re.compile(
    r"^\s*(?:(?:the\s+)?(?:option|choice|answer)\b\s*:?\s*)?[\(\[]?\s*([A-Za-z])\s*[\)\]]?\s*(?:[.:)]|\s|$)",
    re.IGNORECASE,
)


def box_spans(text: str) -> list[tuple[int, int, int, int]]:
    """Every balanced `\\boxed{...}` / `\\fbox{...}`: (start, end, content_start, content_end),
    in order of start, found in one pass with a stack (linear in len(text))."""
    spans, stack = [], []  # stack: (box start, or -1 for a plain brace; content start)
    for match in _BRACE_TOKEN_RE.finditer(text):
        token = match.group()
        if len(token) == 2 and token[0] == "\\":
            continue  # \{ or \}: literal braces
        if token == "}":
            if stack:
                start, content_start = stack.pop()
                if start >= 0:
                    spans.append((start, match.end(), content_start, match.start()))
        else:
            stack.append((match.start() if token != "{" else -1, match.end()))
    spans.sort()
    return spans


def find_boxed(text: str) -> list[tuple[int, int, str]]:
    """The outermost `\\boxed{...}` / `\\fbox{...}` with balanced braces: (start, end, content).

    A box inside another box is part of the outer one's content (so the contents add up to
    at most the text's length, however many boxes it has).

    >>> find_boxed("a \\\\boxed{\\\\frac{1}{2}} b \\\\fbox{3}")
    [(2, 21, '\\\\frac{1}{2}'), (24, 32, '3')]
    """
    found, outer_end = [], -1
    for start, end, content_start, content_end in box_spans(text):
        if start >= outer_end:
            found.append((start, end, text[content_start:content_end]))
            outer_end = end
    return found


def final_part(response: str) -> str:
    """The text after the last `</think>` (the whole response when there is none)."""
    if "</think>" in response:
        return response.rsplit("</think>", 1)[1]
    return response


def strip_special_tokens(text: str) -> str:
    """Drop end-of-turn tokens other engines leave in the text ("B<|im_end|>" -> "B")."""
    return _SPECIAL_TOKEN_RE.sub("", text)


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


def answer_clause(text: str) -> str:
    """The answer at the start of a phrase's remainder, up to where its explanation begins.

    >>> answer_clause("14 because each number increases by 3."), answer_clause("$1.45. It costs")
    ('14', '$1.45')
    """
    text = text.strip()
    # Keep a leading "(B)" or "B." whole: the clause search starts after it.
    lead = re.match(r"^(?:\*\*)?\s*(?:\([A-Z]\)|[A-Z][.)]|\$)", text)
    offset = lead.end() if lead else 0
    end = _CLAUSE_END_RE.search(text, offset)
    return strip_answer(text[: end.start()] if end else text).rstrip(" ,;:")


def _last_phrase(text: str) -> tuple[int, int, str] | None:
    """The last answer phrase whose content reads as an answer: (start, end, answer)."""
    for match in reversed(list(_PHRASE_RE.finditer(text))):
        content = match.group("ans")
        if not content.strip():  # "The answer is:" then the answer on the next line
            rest = text[match.end() : match.end() + 2 * _MAX_PHRASE_CHARS].lstrip()
            content = rest.split("\n", 1)[0] if rest else ""
        answer = answer_clause(content)
        if answer and not _NOT_AN_ANSWER_RE.match(answer):
            return match.start(), match.start() + len(match.group(0)), answer
    return None


def _unmarked_answer(tail: str) -> str | None:
    """No box and no phrase: a short reply, a concluding last sentence, or a short last line."""
    tail = tail.strip()
    if not tail:
        return None
    if len(tail) <= SHORT_RESPONSE_CHARS:
        return strip_answer(tail)
    lines = [line.strip() for line in tail.split("\n") if line.strip()]
    sentences = [s.strip() for s in _SENTENCE_SPLIT_RE.split(lines[-1]) if s.strip()]
    last = strip_answer(sentences[-1]) if sentences else ""
    conclusion = _CONCLUSION_RE.match(last)
    if conclusion:
        return strip_answer(last[conclusion.end() :]) or None
    if _CHOICE_NAMED_RE.search(last):
        return last
    if len(lines[-1]) <= SHORT_LAST_LINE_CHARS and len(lines) > 1:
        return strip_answer(lines[-1])
    return None


def extract_answer(text: str | None) -> str | None:
    """The final answer of a response, or None when there is none to find (module doc)."""
    if not text:
        return None
    tail = final_part(strip_special_tokens(text))
    # The box that starts last: in `\boxed{\boxed{2}}` the inner one, so its content holds no box.
    box = max(box_spans(tail), default=None)
    phrase = _last_phrase(tail)
    if box is not None and (phrase is None or box[0] >= phrase[0]):
        answer, end = strip_answer(tail[box[2] : box[3]]), box[1]
    elif phrase is not None:
        answer, end = phrase[2], phrase[1]
    else:
        return _unmarked_answer(tail)
    correction = _CORRECTION_RE.search(tail, end)
    if correction:  # the response took its answer back: only what follows counts
        return _unmarked_answer(tail[correction.end() :].lstrip(" ,.:"))
    return answer or None


def option_letter(text: str) -> str | None:
    """The option letter a reply names: "B", "(B)", "B.", "B) 8/11", "Option B" -> "B".

    >>> [option_letter(t) for t in ["B", "(b)", "B. 145°", "Option C", "option (d)", "B) 8/11", "Bob", "A circle"]]
    ['B', 'B', 'B', 'C', 'D', 'B', None, None]
    """
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text).strip()
    match = _LETTER_RE.match(text)
    if not match:
        return None
    letter = match.group(1)
    rest = text[match.end() :].strip()
    bare = text.strip("()[]. ").lower() == letter.lower()
    # "B. 145°" and "B) 8/11" name B; a word starting with a letter ("Bob", "A circle") does not.
    after_letter = text[match.end(1) :].lstrip()[:1]
    if bare or (after_letter and after_letter in ".:)]") or re.match(r"^\s*[\(\[]", text) or re.match(
        r"^\s*(?:the\s+)?(option|choice|answer)\b", text, re.IGNORECASE
    ):
        return letter.upper()
    return None if rest else letter.upper()


def named_letters(text: str) -> set[str]:
    """Option letters a sentence names as "option B" / "choice (b)" anywhere in it.

    >>> sorted(named_letters("so it corresponds to choice B")), sorted(named_letters("option A or option C"))
    (['B'], ['A', 'C'])
    >>> sorted(named_letters("It is C.")), sorted(named_letters("It is A, B, C, D."))
    (['C'], ['A', 'B', 'C', 'D'])
    """
    letters = {re.sub(r"[^A-Za-z]", "", m.group())[-1].upper() for m in _CHOICE_NAMED_RE.finditer(text)}
    listed = {letter for m in _LETTER_LIST_RE.finditer(text) for letter in m.groups()}  # "A, B, C, D": all of them
    return letters | listed | {m.group(1) for m in _LETTER_OBJECT_RE.finditer(text)}
