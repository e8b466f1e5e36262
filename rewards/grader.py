"""`grade(prediction, answer)`: is a model's final answer the reference answer?

One grader for rewards and eval. Cheap rule-based checks run in-process (option letters,
numbers with precision/percent/units/degrees/thousands separators, lists, normalised
text); only expressions that need algebra (`\\frac{\\sqrt3}{2}`, intervals, sets) go to
math_verify, which runs in child processes with a hard wall-clock limit
(`rewards.sympy_sandbox`), so `grade` is safe in any thread and never hangs.

Conventions (math-verify's where they apply):
- `50%` equals both `0.5` and `50`; `5 cm` equals `5`; `30^\\circ` equals `30`.
- `1,000` is one thousand unless `answer_type="list"`; lists compare in order.
- `precision=p` rounds both numbers to p decimals (MathVista); without it floats must
  agree to a relative 1e-6 and integers exactly.
- With `choices`, the answer and the prediction may each be an option letter or the
  option text; without `choices`, a single capital letter answer is an option letter.
- Text answers compare case-, whitespace- and punctuation-insensitively.

    >>> grade("<think>...</think> The answer is \\\\boxed{\\\\dfrac{1}{2}}", "0.5")
    True
    >>> grade("Option (b)", "B"), grade("\\\\boxed{145°}", "B", choices=["120°", "145°"])
    (True, True)
    >>> grade("\\\\boxed{3.14159}", "3.14", answer_type="float", precision=2)
    True
    >>> grade("\\\\boxed{[1, 3, 2]}", "[1, 2, 3]", answer_type="list")
    False
"""

from __future__ import annotations

import math
import re

from rewards.answer_extraction import extract_answer, find_boxed, option_letter, strip_answer
from rewards.sympy_sandbox import SympySandbox

# Answers longer than this are not graded (no real final answer is this long).
MAX_ANSWER_CHARS = 1000
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
_NUMBER_RE = re.compile(r"[-+]?(?:\d{1,100}(?:\.\d{0,100})?|\.\d{1,100})(?:[eE][-+]?\d{1,3})?")
_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SCI_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)(?:\\times|\\cdot|\*|×)10\^\{?([-+]?\d{1,3})\}?")
_FRAC_RE = re.compile(r"([-+]?)\\frac\{([-+]?\d+(?:\.\d+)?)\}\{([-+]?\d+(?:\.\d+)?)\}")
_SLASH_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)")
_LETTER_ANSWER_RE = re.compile(r"^\(?([A-Z])\)?\.?$")
_FUNCTION_WORDS_RE = re.compile(r"sin|cos|tan|log|ln|exp|sqrt|pi|inf")


def _unwrap(text: str) -> str:
    for _ in range(3):
        text = _WRAPPERS_RE.sub(r"\1", text)
    return text


def normalize_text(text: str) -> str:
    """Lower case, no LaTeX wrappers, punctuation (but not decimal points) as spaces.

    >>> normalize_text("  The  \\\\text{Eiffel} Tower. ")
    'the eiffel tower'
    """
    text = _unwrap(text).replace("\\%", "%").replace("$", "")
    for token in ("\\left", "\\right", "\\!", "\\displaystyle"):
        text = text.replace(token, "")
    text = text.replace("\\,", " ").replace("~", " ").lower()
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    text = re.sub(r"[,!?;:'\"`]", " ", text)
    return " ".join(text.split())


def parse_number(text: str, thousands: bool = True) -> list[float] | None:
    """The values a numeric answer can mean (two for a percentage), or None.

    >>> parse_number("50\\\\%"), parse_number("1,000"), parse_number("-\\\\dfrac{3}{4} cm")
    ([50.0, 0.5], [1000.0], [-0.75])
    >>> parse_number("30^\\\\circ"), parse_number("1.5\\\\times10^{3}"), parse_number("x+1")
    ([30.0], [1500.0], None)
    """
    text = _unwrap(strip_answer(text))
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\ ", "~", "\\displaystyle", "\\$"):
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("−", "-")
    text = re.sub(r"^[a-zA-Z]\s*=\s*", "", text.strip())
    text = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree", "", text).strip()
    percent = text.endswith("%")
    text = text.rstrip("%").rstrip("\\").strip()
    value = _plain_number(text.replace(" ", ""), thousands)
    if value is None:
        stripped = _UNIT_RE.sub("", text)
        if stripped != text and stripped:
            value = _plain_number(stripped.replace(" ", ""), thousands)
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return [value, value / 100] if percent else [value]


def _plain_number(text: str, thousands: bool) -> float | None:
    if thousands and _THOUSANDS_RE.fullmatch(text):
        text = text.replace(",", "")
    if _NUMBER_RE.fullmatch(text):
        return float(text)
    if match := _SCI_RE.fullmatch(text):
        return float(match.group(1)) * 10.0 ** int(match.group(2))
    if match := _FRAC_RE.fullmatch(text):
        sign, num, den = match.groups()
        if float(den) != 0:
            return (-1 if sign == "-" else 1) * float(num) / float(den)
    if match := _SLASH_RE.fullmatch(text):
        if float(match.group(2)) != 0:
            return float(match.group(1)) / float(match.group(2))
    return None


def _numbers_match(pred: list[float], gold: list[float], answer_type: str | None, precision: int | None) -> bool:
    for p in pred:
        for g in gold:
            if precision is not None and answer_type != "integer":
                if round(p, precision) == round(g, precision):
                    return True
            elif answer_type == "integer":
                if abs(p - g) < 1e-9:
                    return True
            elif math.isclose(p, g, rel_tol=1e-6, abs_tol=1e-9):
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


def _grade_free(pred: str, gold: str, answer_type: str | None, precision: int | None, timeout_s: float) -> bool:
    if normalize_text(pred) == normalize_text(gold):
        return True
    if answer_type == "text":
        return False
    thousands = answer_type != "list"
    gold_values, pred_values = parse_number(gold, thousands), parse_number(pred, thousands)
    if gold_values is not None and pred_values is not None:
        return _numbers_match(pred_values, gold_values, answer_type, precision)
    if gold_values is not None and answer_type in ("integer", "float"):
        if not (_looks_mathematical(pred) and safe_for_sympy(pred)):
            return False
        value = SympySandbox.shared().number(f"${pred}$", timeout_s)
        return value is not None and _numbers_match([value], gold_values, answer_type, precision)
    return _sympy_equal(pred, gold, timeout_s)


def _split_list(text: str) -> list[str]:
    text = strip_answer(text)
    if len(text) >= 2 and text[0] in "[(" and text[-1] in "])":
        text = text[1:-1]
    return [item.strip() for item in re.split(r"[,;]", text) if item.strip()]


def _grade_list(pred: str, gold: str, precision: int | None, timeout_s: float) -> bool:
    pred_items, gold_items = _split_list(pred), _split_list(gold)
    if len(pred_items) != len(gold_items) or not gold_items:
        return False
    return all(_grade_free(p, g, "list", precision, timeout_s) for p, g in zip(pred_items, gold_items))


def _choice_index(text: str, choices: list[str], letter_first: bool) -> int | None:
    """Which option `text` names, by its text, its number or its letter."""
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
    return by_letter


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
        gold_index = _choice_index(gold, choices, letter_first=bool(_LETTER_ANSWER_RE.match(gold)))
        if gold_index is not None:
            pred_index = _choice_index(pred, choices, letter_first=len(normalize_text(pred)) <= 10)
            return pred_index == gold_index
    elif answer_type in (None, "text") and (match := _LETTER_ANSWER_RE.match(gold)):
        return option_letter(pred) == match.group(1)
    if answer_type == "list":
        return _grade_list(pred, gold, precision, timeout_s)
    return _grade_free(pred, gold, answer_type, precision, timeout_s)
