"""`grade(prediction, answer)`: is a model's final answer the reference answer?

One grader for rewards and eval. `rewards.answer_extraction` finds where the answer is;
this module reads its value for the answer type and compares. Cheap rule-based checks run
in-process (option letters and option texts, numbers with precision/percent/units/degrees/
thousands separators/number words, lists, normalised text); only expressions that need
algebra (`\\frac{\\sqrt3}{2}`, intervals, sets) go to math_verify, which runs in child
processes with a hard wall-clock limit (`rewards.sympy_sandbox`), so `grade` is safe in any
thread and never hangs.

Conventions (math-verify's where they apply):
- Numbers are exact (`fractions.Fraction` from the decimal text): integers compare exactly
  (`12345678901234567891` is not `12345678901234567890`).
- `precision=p` rounds both numbers to p decimals, half away from zero as `Decimal`'s
  ROUND_HALF_UP does, on the exact value (MathVista); without it, two integers compare
  exactly and anything else must agree to a relative 1e-6.
- `50%` (or "50 percent") equals both `0.5` and `50`; `5 cm`, "5 birds" and "five" equal `5`;
  `30^\\circ` equals `30`; "$6", "6 dollars" equal "$6.00".
- A sentence answers with the one number in it ("There are 7 birds"), the number after its
  last "=" or "is", or the number it ends on; a hedge ("3 or 4", "maybe 3") answers nothing.
- `1,000` is one thousand unless `answer_type="list"`; lists compare in order, also when
  written in prose ("2007 and 2008").
- With `choices`, the answer and the prediction may each be an option letter ("B", "(B)",
  "B) 8/11", "choice B"), the option text ("A circle."), or a sentence that names exactly one
  option; naming several options answers nothing. Without `choices`, a single capital
  letter answer is an option letter.
- Text answers compare case-, whitespace-, hyphen-, article- and punctuation-insensitively.

    >>> grade("<think>...</think> The answer is \\\\boxed{\\\\dfrac{1}{2}}", "0.5")
    True
    >>> grade("Option (b)", "B"), grade("\\\\boxed{145°}", "B", choices=["120°", "145°"])
    (True, True)
    >>> grade("\\\\boxed{3.14159}", "3.14", answer_type="float", precision=2)
    True
    >>> grade("\\\\boxed{[1, 3, 2]}", "[1, 2, 3]", answer_type="list"), grade("There are 7 birds.", "7")
    (False, True)
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Optional

from rewards.answer_extraction import extract_answer, find_boxed, named_letters, option_letter, strip_answer
from rewards.sympy_sandbox import SympySandbox

# Answers longer than this are not graded (no real final answer is this long).
MAX_ANSWER_CHARS = 1000
# Numbers past this magnitude are not read (they only come from overflow tricks).
_MAX_ABS_NUMBER = 10**300
# Inputs past these limits never reach sympy: they are how adversarial answers hang it.
_SYMPY_MAX_CHARS = 400
_SYMPY_MAX_DIGITS = 50
_SYMPY_MAX_NESTING = 20

_WRAPPERS_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|operatorname|mbox)\s*\{([^{}]*)\}")
_UNIT_RE = re.compile(
    r"\s*(?:cm|mm|km|m|kg|mg|g|s|sec|secs|seconds?|mins?|minutes?|h|hrs?|hours?|days?|weeks?|"
    r"months?|years?|ml|l|liters?|litres?|dollars?|cents?|units?|degrees?|deg|inch(?:es)?|in|"
    r"ft|feet|foot|yards?|miles?|mph|km/h|m/s|meters?|metres?|centimeters?|millimeters?|"
    r"kilometers?|grams?|kilograms?|pounds?|lbs?|oz|people|persons?|times|points?|pixels?|px)"
    r"(?:\^\{?[23]\}?|²|³)?\s*$",
    re.IGNORECASE,
)
# The last word of an answer, when it may be a unit or noun after a number ("7 birds", "0.04 mol/L").
_LAST_NOUN_RE = re.compile(r"\s*(?:[A-Za-z]{2,}(?:/[A-Za-z]+)?|/[A-Za-z]+)\.?\s*$")
# Words after a number that make it part of an expression or a hedge, not a noun.
_NOT_NOUNS = {"or", "and", "to", "more", "less", "than", "plus", "minus", "over", "under", "times", "pi",
              "sin", "cos", "tan", "log", "ln", "sqrt", "exp", "divided", "by", "of", "not", "but"}
_PERCENT_WORDS_RE = re.compile(r"\s*(?:percent|per\s*cent|pct)\s*$", re.IGNORECASE)
_NUMBER_RE = re.compile(r"[-+]?(?:\d{1,100}(?:\.\d{0,100})?|\.\d{1,100})(?:[eE][-+]?\d{1,3})?")
_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SCI_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|×)10\^\{?([-+]?\d{1,3})\}?")
_FRAC_RE = re.compile(r"([-+]?)\\frac\{([-+]?\d+(?:\.\d+)?)\}\{([-+]?\d+(?:\.\d+)?)\}")
_SLASH_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)")
_LETTER_ANSWER_RE = re.compile(r"^\(?([A-Z])\)?\.?$")
_FUNCTION_WORDS_RE = re.compile(r"sin|cos|tan|log|ln|exp|sqrt|pi|inf")
# A number inside a sentence: thousands-separated, decimal, or a/b.
_NUMBER_IN_TEXT_RE = re.compile(
    r"(?<![\w.^])(?:[-−](?=\d))?\$?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:/\d+)?|\.\d+)"
    r"(?:\s*(?:%|percent\b))?(?![\w^])"
)
_HEDGE_RE = re.compile(r"\b(?:or|either|maybe|perhaps|possibly|unsure|not\s+sure|can\s*not|can't|cannot)\b",
                       re.IGNORECASE)
# A negated part of a sentence, up to the next punctuation: it names what the answer is not.
_NEGATED_RE = re.compile(r"(?:\bnot|n't|\bnever)\b[^,.;]*", re.IGNORECASE)
_NEGATION_RE = re.compile(r"\b(?:not|no|never|isn't|aren't|wasn't)\b|n't\b", re.IGNORECASE)
_CONCLUDES_RE = re.compile(
    r"\b(?:so|thus|therefore|hence|making|giving|for\s+a\s+total\s+of|which\s+(?:gives|makes|means))\b", re.IGNORECASE)
# "There are no birds", "none": a count of zero.
_ZERO_RE = re.compile(r"\bthere\s+(?:are|is|were|was)\s+no\b|^\W*none\b", re.IGNORECASE)
_COPULA_RE = re.compile(r"(?:=|\b(?:is|are|was|were|equals?|be|becomes|gives|totals?)\b)", re.IGNORECASE)
_FRAME_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence)\s+)?(?:i\s+think\s+)?(?:it\s+is|it's|this\s+is|that\s+is|these\s+are|"
    r"there\s+is|there\s+are|they\s+are|the\s+answer\s+is|the\s+image\s+shows|it\s+shows)\s+",
    re.IGNORECASE,
)

_SMALL_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_NUMBER_WORD = "|".join(list(_SMALL_NUMBERS) + list(_TENS) + list(_SCALES) + ["dozen", "half"])
_NUMBER_WORDS_RE = re.compile(
    rf"\b(?:(?:negative|minus)\s+)?(?:{_NUMBER_WORD})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORD}))*\b", re.IGNORECASE
)


def _unwrap(text: str) -> str:
    for _ in range(3):
        text = _WRAPPERS_RE.sub(r"\1", text)
    return text


def normalize_text(text: str) -> str:
    """Lower case, no LaTeX wrappers, no leading article, punctuation and hyphens as spaces.

    >>> normalize_text("  The  \\\\text{Eiffel} Tower. "), normalize_text("dark-blue"), normalize_text("A")
    ('eiffel tower', 'dark blue', 'a')
    """
    text = _unwrap(text).replace("\\%", "%").replace("$", "")
    for token in ("\\left", "\\right", "\\!", "\\displaystyle"):
        text = text.replace(token, "")
    text = text.replace("\\,", " ").replace("~", " ").lower()
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    text = re.sub(r"[,!?;:'\"`*]|(?<=[a-z])[-\u2010-\u2014](?=[a-z])", " ", text)
    words = text.split()
    if len(words) > 1 and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def words_to_number(text: str) -> Optional[Fraction]:
    """The value of a number written in words, or None.

    >>> [words_to_number(t) for t in ["Four", "negative three", "twenty-one", "1.5 million", "a dozen", "blue"]]
    [Fraction(4, 1), Fraction(-3, 1), Fraction(21, 1), Fraction(1500000, 1), Fraction(12, 1), None]
    """
    words = [w for w in re.split(r"[\s-]+", text.strip().lower()) if w and w != "and"]
    sign = 1
    if words and words[0] in ("negative", "minus"):
        sign, words = -1, words[1:]
    if not words:
        return None
    total, current = Fraction(0), Fraction(0)
    for i, word in enumerate(words):
        if word in _SMALL_NUMBERS:
            current += _SMALL_NUMBERS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word in _SCALES:
            total, current = total + (current or 1) * _SCALES[word], Fraction(0)
        elif word == "dozen":
            current = (current or 1) * 12
        elif word == "half" and i == len(words) - 1:
            current = current + Fraction(1, 2) if current else Fraction(1, 2)
        elif i == 0 and word in ("a", "an") and len(words) > 1:
            continue
        elif i == 0 and _NUMBER_RE.fullmatch(word):
            current = Fraction(Decimal(word))
        else:
            return None
    return sign * (total + current)


def parse_number(text: str, thousands: bool = True) -> list[Fraction] | None:
    """The exact values a numeric answer can mean (two for a percentage), or None.

    >>> [[str(v) for v in parse_number(t)] for t in ["50\\\\%", "1,000", "-\\\\dfrac{3}{4} cm", "$6.00", "Four"]]
    [['50', '1/2'], ['1000'], ['-3/4'], ['6'], ['4']]
    >>> parse_number("30^\\\\circ"), parse_number("1.5\\\\times10^{3}"), parse_number("x+1")
    ([Fraction(30, 1)], [Fraction(1500, 1)], None)
    """
    text = _unwrap(strip_answer(text))
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\ ", "~", "\\displaystyle", "\\$"):
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("−", "-")
    text = re.sub(r"^[a-zA-Z]\s*=\s*", "", text.strip())
    text = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree", "", text).strip()
    text = re.sub(r"^([-+]?)\s*(?:\$|€|£|¥|USD\s*)", r"\1", text).strip()
    percent = text.endswith("%") or bool(_PERCENT_WORDS_RE.search(text))
    text = _PERCENT_WORDS_RE.sub("", text).rstrip("%").rstrip("\\").strip()
    value = _plain_number(text.replace(" ", ""), thousands)
    if value is None:
        value = _number_with_words(text, thousands)
    if value is None or abs(value) > _MAX_ABS_NUMBER:
        return None
    return [value, value / 100] if percent else [value]


def _number_with_words(text: str, thousands: bool) -> Optional[Fraction]:
    """A number followed by a unit or up to three nouns ("5 cm", "7 birds", "12 years old"),
    or written in words ("twenty-one", "1.5 million", "four apples")."""
    stripped = _UNIT_RE.sub("", text)
    if stripped != text and stripped:
        value = _plain_number(stripped.replace(" ", ""), thousands)
        if value is not None:
            return value
    head = text.strip()
    for _ in range(4):
        value = _plain_number(head.replace(" ", ""), thousands)
        if value is None and re.fullmatch(r"[A-Za-z\s\-.\d]+", head):
            value = words_to_number(head)
        if value is not None:
            return value
        last = _LAST_NOUN_RE.search(head)
        if not last or last.start() == 0 or last.group().strip(" .").lower() in _NOT_NOUNS:
            return None
        head = head[: last.start()].strip()
    return None


def _plain_number(text: str, thousands: bool) -> Optional[Fraction]:
    if thousands and _THOUSANDS_RE.fullmatch(text):
        text = text.replace(",", "")
    try:
        if _NUMBER_RE.fullmatch(text):
            return Fraction(Decimal(text))
        if match := _SCI_RE.fullmatch(text):
            return Fraction(Decimal(match.group(1))) * Fraction(10) ** int(match.group(2))
        if match := _FRAC_RE.fullmatch(text):
            sign, num, den = match.groups()
            if Decimal(den) != 0:
                return (-1 if sign == "-" else 1) * Fraction(Decimal(num)) / Fraction(Decimal(den))
        if match := _SLASH_RE.fullmatch(text):
            if Decimal(match.group(2)) != 0:
                return Fraction(Decimal(match.group(1))) / Fraction(Decimal(match.group(2)))
    except (InvalidOperation, ValueError):
        return None
    return None


def numbers_in_sentence(text: str) -> list[Fraction] | None:
    """The answer a sentence gives, as values (two for a percentage), or None.

    The one number in it; else the one number after its last "=" or "is"; else the number
    it ends on, unless that last clause is negated. A hedge ("or", "maybe") gives None.

    >>> [numbers_in_sentence(t) for t in ["There are 7 birds", "3 + 4 = 7", "3 or 4", "7 birds and 3 dogs"]]
    [[Fraction(7, 1)], [Fraction(7, 1)], None, None]
    """
    if _HEDGE_RE.search(text) or len(text) > MAX_ANSWER_CHARS:
        return None
    text = _NEGATED_RE.sub(" ", text)  # "It is 6, not 5" -> "It is 6"
    concludes = list(_CONCLUDES_RE.finditer(text))
    if concludes:  # "2 red and 5 blue, so 7 in total": what the sentence concludes
        concluded = numbers_in_sentence(text[concludes[-1].end():])
        if concluded is not None:
            return concluded
    found = list(_NUMBER_IN_TEXT_RE.finditer(text))
    if not found and _ZERO_RE.search(text) and not _NUMBER_WORDS_RE.search(text):
        return [Fraction(0)]
    if not found:
        words = [m for m in _NUMBER_WORDS_RE.finditer(text)
                 if not re.search(r"\b(?:the|this|that|which|each|every|no|any)\s+$", text[: m.start()].lower())]
        values = {str(words_to_number(m.group())): m for m in words if words_to_number(m.group()) is not None}
        return parse_number(next(iter(values.values())).group()) if len(values) == 1 else None
    values = {tuple(parse_number(m.group()) or ()): m for m in found}
    values.pop((), None)
    if len(values) == 1:
        return list(next(iter(values)))
    copulas = list(_COPULA_RE.finditer(text))
    if copulas:
        after = [m for m in found if m.start() >= copulas[-1].end()]
        if len({m.group() for m in after}) == 1:
            return parse_number(after[0].group())
    last = found[-1]
    ending = text[last.end():].strip(" .")
    listed = re.search(r"(?:,|\band|&)\s*$", text[: last.start()], re.IGNORECASE)  # "1, 2 and 3" lists, not answers
    if (not ending or _UNIT_RE.fullmatch(" " + ending)) and not listed:
        return parse_number(last.group())
    return None


def _read_number(text: str, thousands: bool) -> list[Fraction] | None:
    """A number answer, whole or said in a sentence."""
    values = parse_number(text, thousands)
    if values is None and re.search(r"[A-Za-z]{2,}", text):
        values = numbers_in_sentence(_unwrap(text))
    return values


def round_half_up(value: Fraction, places: int) -> Fraction:
    """`value` rounded to `places` decimals, half away from zero (exact; Decimal's ROUND_HALF_UP).

    >>> str(round_half_up(Fraction(5, 2), 0)), str(round_half_up(Fraction("-2.45"), 1)), str(round_half_up(Fraction(1, 3), 2))
    ('3', '-5/2', '33/100')
    """
    scale = Fraction(10) ** places
    magnitude = math.floor(abs(value) * scale + Fraction(1, 2))
    return (magnitude if value >= 0 else -magnitude) / scale


def _numbers_match(pred: list[Fraction], gold: list[Fraction], answer_type: str | None, precision: int | None) -> bool:
    for p in pred:
        for g in gold:
            if answer_type == "integer" or (precision is None and p.denominator == 1 and g.denominator == 1):
                if p == g:
                    return True
            elif precision is not None:
                if round_half_up(p, precision) == round_half_up(g, precision):
                    return True
            elif math.isclose(float(p), float(g), rel_tol=1e-6, abs_tol=1e-9):
                return True
    return False


def safe_for_sympy(text: str) -> bool:
    """False for inputs that can make sympy hang: towers of powers, huge numbers, deep nesting.

    >>> safe_for_sympy("\\\\frac{x^2+1}{2}"), safe_for_sympy("9^{9^{9^{9}}}"), safe_for_sympy("(" * 50 + "1" + ")" * 50)
    (True, False, False)
    """
    if len(text) > _SYMPY_MAX_CHARS or re.search(r"\d{%d,}" % (_SYMPY_MAX_DIGITS + 1), text):
        return False
    depth = deepest = 0
    for char in text:
        depth += 1 if char in "({[" else -1 if char in ")}]" else 0
        deepest = max(deepest, depth)
    if deepest > _SYMPY_MAX_NESTING:
        return False
    if re.search(r"\^\s*\{?\s*[-+]?\d{4,}", text) or "!" in re.sub(r"(?<![\d.])\d{1,2}\s*!", "", text):
        return False  # 9^{12345}; a factorial of anything but a small literal (1000!, (10^100)!)
    if re.search(r"\^\s*[\w.]+\s*\^", text) or text.count("**") > 1:
        return False  # 9^9^9 without braces
    for match in re.finditer(r"\^\s*\{", text):
        level, i = 1, match.end()
        while i < len(text) and level:
            level += {"{": 1, "}": -1}.get(text[i], 0)
            if text[i] == "^" and level > 0:
                return False  # an exponent inside an exponent
            i += 1
    return True


def _looks_mathematical(text: str) -> bool:
    """Worth handing to sympy: no plain words (a word would parse as a product of symbols)."""
    bare = re.sub(r"\\[a-zA-Z]+", " ", re.sub(r"\\text\s*\{[^{}]*\}", " ", text))
    bare = _FUNCTION_WORDS_RE.sub(" ", bare)
    return not re.search(r"[A-Za-z]{3,}", bare)


def _sympy_equal(pred: str, gold: str, timeout_s: float) -> bool:
    if not (_looks_mathematical(gold) and _looks_mathematical(pred)):
        return False
    if not (safe_for_sympy(gold) and safe_for_sympy(pred)):
        return False
    return SympySandbox.shared().verify(f"${gold}$", f"${pred}$", timeout_s)


def _text_equal(pred: str, gold: str) -> bool:
    """Normalised equality, also after a leading frame ("It is the Eiffel Tower") and for
    a yes/no answer given first in a sentence ("Yes, the line is straight")."""
    norm_gold = normalize_text(gold)
    if normalize_text(pred) == norm_gold:
        return True
    framed = _FRAME_RE.sub("", strip_answer(pred))
    if normalize_text(framed) == norm_gold and not _NEGATION_RE.search(framed):
        return True
    if norm_gold in ("yes", "no"):
        lead = re.match(r"^\W*(yes|no)\b", pred, re.IGNORECASE)
        return bool(lead) and lead.group(1).lower() == norm_gold
    return False


def _grade_free(pred: str, gold: str, answer_type: str | None, precision: int | None, timeout_s: float) -> bool:
    thousands = answer_type != "list"
    gold_values = parse_number(gold, thousands) if answer_type != "text" else None
    pred_values = parse_number(pred, thousands) if gold_values is not None else None
    if pred_values is not None:  # the common case: two numbers
        return _numbers_match(pred_values, gold_values, answer_type, precision)
    if _text_equal(pred, gold):
        return True
    if answer_type == "text":
        return False
    if gold_values is None:
        return _sympy_equal(pred, gold, timeout_s)
    if _looks_mathematical(pred):
        if answer_type not in ("integer", "float"):
            return _sympy_equal(pred, gold, timeout_s)
        if not safe_for_sympy(pred):
            return False
        value = SympySandbox.shared().number(f"${pred}$", timeout_s)
        return value is not None and math.isfinite(value) and _numbers_match(
            [Fraction(value)], gold_values, answer_type, precision)
    pred_values = _read_number(pred, thousands)
    return pred_values is not None and _numbers_match(pred_values, gold_values, answer_type, precision)


def _split_list(text: str) -> list[str]:
    text = strip_answer(text)
    if len(text) >= 2 and text[0] in "[(" and text[-1] in "])":
        text = text[1:-1]
    return [item.strip() for item in re.split(r"[,;]|\band\b|&", text) if item.strip()]


def _grade_list(pred: str, gold: str, precision: int | None, timeout_s: float) -> bool:
    gold_items = _split_list(gold)
    pred_items = _split_list(pred)
    if not gold_items:
        return False
    if len(pred_items) != len(gold_items) and re.search(r"[A-Za-z]{2,}", pred) and all(
            parse_number(g, False) for g in gold_items):
        if _HEDGE_RE.search(pred):  # "2007 or 2008" is not a list
            return False
        pred_items = [m.group() for m in _NUMBER_IN_TEXT_RE.finditer(pred)]  # a list said in prose
    if len(pred_items) != len(gold_items):
        return False
    return all(_grade_free(p, g, "list", precision, timeout_s) for p, g in zip(pred_items, gold_items))


def _options_in_sentence(text: str, choices: list[str]) -> set[int]:
    """Options whose text appears in a sentence as whole words (longest match wins)."""
    sentence = f" {normalize_text(text)} "
    spans = []
    for i, choice in enumerate(choices):
        norm = normalize_text(str(choice))
        if norm:
            spans += [(m.start(), m.start() + len(norm), i) for m in re.finditer(re.escape(f" {norm} "), sentence)]
    kept = {i for s, e, i in spans if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)}
    return kept


def choice_index(text: str, choices: list[str], letter_first: bool = True) -> int | None:
    """Which option `text` names: by its letter, its text, its number, or the one option a
    sentence mentions. None when it names none, or several.

    >>> [choice_index(t, ["circle", "square"]) for t in ["B", "A circle.", "It is a square", "circle or square"]]
    [1, 0, 1, None]
    """
    if _HEDGE_RE.search(text):
        return None
    normalized = normalize_text(text)
    letter = option_letter(text)
    by_letter = ord(letter) - ord("A") if letter and ord(letter) - ord("A") < len(choices) else None
    if letter_first and by_letter is not None:
        return by_letter
    for i, choice in enumerate(choices):
        if normalize_text(str(choice)) == normalized:
            return i
    values = parse_number(text)
    if values is not None:
        for i, choice in enumerate(choices):
            choice_values = parse_number(str(choice))
            if choice_values is not None and _numbers_match(values, choice_values, None, None):
                return i
    if by_letter is not None:
        return by_letter
    return _choice_in_sentence(text, choices) if len(text) <= MAX_ANSWER_CHARS else None


def _choice_in_sentence(text: str, choices: list[str]) -> int | None:
    """The one option a sentence names: "... choice B", "Yes, ...", "The green bar is the
    tallest", "The angle measures 60 degrees"."""
    letters = [ord(x) - ord("A") for x in named_letters(text)]
    if letters:
        return letters[0] if len(letters) == 1 and letters[0] < len(choices) else None
    lead = re.match(r"^\W*(yes|no)\b", text, re.IGNORECASE)
    by_text = [normalize_text(str(c)) for c in choices]
    if lead and lead.group(1).lower() in by_text:
        return by_text.index(lead.group(1).lower())
    named = _options_in_sentence(_NEGATED_RE.sub(" ", text), choices)
    if len(named) == 1:
        return next(iter(named))
    values = numbers_in_sentence(_unwrap(text)) if not named else None
    if values is not None:
        matching = {i for i, c in enumerate(choices)
                    if (cv := parse_number(str(c))) is not None and _numbers_match(values, cv, None, None)}
        if len(matching) == 1:
            return matching.pop()
    return None


def grade(
    prediction: str,
    answer: str,
    *,
    answer_type: str | None = None,
    choices: list[str] | None = None,
    precision: int | None = None,
    timeout_s: float = 2.0,
) -> bool:
    """True when the final answer of `prediction` equals `answer` (see the module doc).

    `prediction` is a whole response (its answer is found with `extract_answer`) or a bare
    answer; `answer` may be bare or boxed. `answer_type` is "integer", "float", "text",
    "list" or None (anything). `timeout_s` bounds the sympy part of one call.
    """
    if prediction is None or answer is None:
        return False
    pred = extract_answer(str(prediction))
    gold_text = str(answer)
    boxes = find_boxed(gold_text)
    gold = strip_answer(boxes[-1][2] if boxes else gold_text)
    if not pred or not gold or len(pred) > MAX_ANSWER_CHARS:
        return False
    if choices:
        gold_index = choice_index(gold, choices, letter_first=bool(_LETTER_ANSWER_RE.match(gold)))
        if gold_index is not None:
            return choice_index(pred, choices, letter_first=len(normalize_text(pred)) <= 10) == gold_index
    elif answer_type in (None, "text") and (match := _LETTER_ANSWER_RE.match(gold)):
        letters = named_letters(pred)
        return (option_letter(pred) or (letters.pop() if len(letters) == 1 else None)) == match.group(1)
    if answer_type == "list":
        return _grade_list(pred, gold, precision, timeout_s)
    return _grade_free(pred, gold, answer_type, precision, timeout_s)


def readable(answer: str | None, *, answer_type: str | None = None, choices: list[str] | None = None) -> bool:
    """Whether the rules can read an answer of this type out of `answer` (an extracted answer):
    an option for a multiple-choice question, a number for a numeric one. Eval asks the
    optional LLM extractor only about answers that are not readable.

    >>> readable("There are 7 birds", answer_type="integer"), readable("many birds", answer_type="integer")
    (True, False)
    >>> readable("it is the second one", choices=["red", "blue"]), readable("choice B", choices=["red", "blue"])
    (False, True)
    """
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return False
    if choices:
        return choice_index(answer, choices, letter_first=len(normalize_text(answer)) <= 10) is not None
    if answer_type in ("integer", "float"):
        return _read_number(answer, True) is not None or (_looks_mathematical(answer) and safe_for_sympy(answer))
    return True
