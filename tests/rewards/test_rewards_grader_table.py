"""The grader's answer table: (prediction, answer, kwargs, expected), True and False cases."""

from __future__ import annotations

import pytest

from rewards import grade

T, F = True, False
MC = {"choices": ["120°", "145°", "160°", "175°"]}
MC_TEXT = {"choices": ["cat", "dog", "bird", "fish"]}
INT = {"answer_type": "integer"}
FLT1 = {"answer_type": "float", "precision": 1}
FLT2 = {"answer_type": "float", "precision": 2}
LST = {"answer_type": "list"}
TXT = {"answer_type": "text"}

CASES = [
    # --- extraction: boxes, fbox, answer phrases, think blocks, short replies
    ("<think>so 4</think>\nThe answer is \\boxed{42}", "42", {}, T),
    ("\\boxed{42}", "42", {}, T),
    ("\\boxed{41}", "42", {}, F),
    ("\\fbox{7}", "7", {}, T),
    ("first \\boxed{3} then \\boxed{4}", "4", {}, T),
    ("first \\boxed{3} then \\boxed{4}", "3", {}, F),
    ("<think>maybe \\boxed{5}</think> so \\boxed{6}", "6", {}, T),
    ("<think>maybe \\boxed{5}</think> so \\boxed{6}", "5", {}, F),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}", {}, T),
    ("The answer is 12.", "12", {}, T),
    ("Answer: 12", "12", {}, T),
    ("After some thought, the final answer: 12", "12", {}, T),
    ("The final answer is $12$.", "12", {}, T),
    ("The correct answer is **12**.", "12", {}, T),
    ("12", "12", {}, T),
    ("  12  ", "12", {}, T),
    ("$12$", "12", {}, T),
    ("word " * 40 + "12", "12", {}, F),  # long, no box, no phrase: no answer
    ("", "12", {}, F),
    ("\\boxed{}", "12", {}, F),
    ("\\boxed{12", "12", {}, F),  # unbalanced box is not an answer; long? no: short text
    ("I think it is 13. The answer is 12", "12", {}, T),
    ("The answer is 12. Wait, the answer is 13", "12", {}, F),
    ("<think>long reasoning</think>", "12", {}, F),
    # --- multiple choice by letter
    ("B", "B", {}, T),
    ("(B)", "B", {}, T),
    ("B.", "B", {}, T),
    ("Option B", "B", {}, T),
    ("option (b)", "B", {}, T),
    ("\\boxed{B}", "B", {}, T),
    ("\\boxed{\\text{(B)}}", "B", {}, T),
    ("The answer is (C).", "B", {}, F),
    ("C", "B", {}, F),
    ("B. 145°", "B", {}, T),
    ("Bob", "B", {}, F),
    ("\\boxed{A}", "(A)", {}, T),
    ("\\boxed{D}", "A", {}, F),
    # --- multiple choice by option text, with choices
    ("B", "145°", MC, T),
    ("(B)", "145°", MC, T),
    ("\\boxed{145°}", "145°", MC, T),
    ("\\boxed{145^\\circ}", "145°", MC, T),
    ("\\boxed{145}", "145°", MC, T),
    ("\\boxed{A}", "145°", MC, F),
    ("\\boxed{120°}", "145°", MC, F),
    ("\\boxed{145°}", "B", MC, T),
    ("\\boxed{160°}", "B", MC, F),
    ("option c", "C", MC, T),
    ("\\boxed{dog}", "dog", MC_TEXT, T),
    ("\\boxed{Dog}", "B", MC_TEXT, T),
    ("\\boxed{B}", "dog", MC_TEXT, T),
    ("\\boxed{cat}", "dog", MC_TEXT, F),
    ("\\boxed{D}", "dog", MC_TEXT, F),
    ("The answer is (D) fish", "fish", MC_TEXT, T),
    # --- integers
    ("\\boxed{7}", "7", INT, T),
    ("\\boxed{7.0}", "7", INT, T),
    ("\\boxed{7.5}", "7", INT, F),
    ("\\boxed{-7}", "-7", INT, T),
    ("\\boxed{-7}", "7", INT, F),
    ("\\boxed{1,000}", "1000", INT, T),
    ("\\boxed{1000}", "1,000", INT, T),
    ("\\boxed{1,234,567}", "1234567", INT, T),
    ("\\boxed{1,001}", "1000", INT, F),
    ("\\boxed{x = 5}", "5", INT, T),
    ("\\boxed{5 apples}", "5", INT, T),  # a noun after the number is read as its unit
    ("\\boxed{\\frac{10}{2}}", "5", INT, T),
    ("\\boxed{2^{3}}", "8", INT, T),
    ("\\boxed{8}", "9", INT, F),
    ("The answer is 3", "3", INT, T),
    ("\\boxed{0}", "0", INT, T),
    ("\\boxed{10}", "100", INT, F),
    # --- floats with precision (MathVista rounding)
    ("\\boxed{3.14159}", "3.14", FLT2, T),
    ("\\boxed{3.149}", "3.14", FLT2, F),
    ("\\boxed{3.144}", "3.15", FLT2, F),
    ("\\boxed{2.5}", "2.5", FLT1, T),
    ("\\boxed{2.46}", "2.5", FLT1, T),
    ("\\boxed{2.44}", "2.5", FLT1, F),
    ("\\boxed{\\frac{1}{3}}", "0.33", FLT2, T),
    ("\\boxed{\\dfrac{1}{4}}", "0.25", FLT2, T),
    ("\\boxed{\\tfrac{3}{4}}", "0.75", FLT2, T),
    ("\\boxed{\\sqrt{2}}", "1.41", FLT2, T),
    ("\\boxed{\\sqrt{3}}", "1.41", FLT2, F),
    ("\\boxed{-0.5}", "-0.5", FLT1, T),
    ("\\boxed{0.5}", "-0.5", FLT1, F),
    ("\\boxed{1.5e3}", "1500", FLT1, T),
    ("\\boxed{1.5\\times10^{3}}", "1500", FLT1, T),
    ("\\boxed{2.5E-3}", "0.0025", {"answer_type": "float", "precision": 4}, T),
    ("\\boxed{1.50}", "1.5", {"answer_type": "float"}, T),
    ("\\boxed{1.51}", "1.5", {"answer_type": "float"}, F),
    ("\\boxed{\\pi}", "3.14", FLT2, T),
    # --- percentages (math-verify: 50% equals 0.5 and 50)
    ("\\boxed{50\\%}", "50", {}, T),
    ("\\boxed{50\\%}", "0.5", {}, T),
    ("\\boxed{50%}", "50", {}, T),
    ("\\boxed{50}", "50\\%", {}, T),
    ("\\boxed{40\\%}", "50", {}, F),
    ("\\boxed{12.5\\%}", "0.125", {}, T),
    # --- units and degrees
    ("\\boxed{5 cm}", "5", {}, T),
    ("\\boxed{5\\text{ cm}}", "5", {}, T),
    ("\\boxed{5 \\mathrm{cm}^2}", "5", {}, T),
    ("\\boxed{6 cm}", "5", {}, F),
    ("\\boxed{12 meters}", "12", {}, T),
    ("\\boxed{\\$15}", "15", {}, T),
    ("\\boxed{15 dollars}", "15", {}, T),
    ("\\boxed{30^\\circ}", "30", {}, T),
    ("\\boxed{30^{\\circ}}", "30", {}, T),
    ("\\boxed{30°}", "30", {}, T),
    ("\\boxed{30}", "30°", {}, T),
    ("\\boxed{60^\\circ}", "30", {}, F),
    ("\\boxed{45 degrees}", "45", INT, T),
    # --- LaTeX expressions
    ("\\boxed{\\frac{1}{2}}", "0.5", {}, T),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", {}, T),
    ("\\boxed{\\tfrac{1}{2}}", "1/2", {}, T),
    ("\\boxed{\\frac{2}{3}}", "\\frac{1}{2}", {}, F),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{1}{2}\\sqrt{3}", {}, T),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", {}, T),
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{8}", {}, F),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", {}, T),
    ("\\boxed{x^2+1}", "(x+1)^2", {}, F),
    ("\\boxed{2\\pi}", "6.283185307", {}, T),
    ("\\boxed{\\left(1, 2\\right]}", "(1,2]", {}, T),
    ("\\boxed{\\text{5}}", "5", {}, T),
    ("\\boxed{y = 2x+1}", "2x+1", {}, T),
    ("\\boxed{-\\frac{3}{4}}", "-0.75", {}, T),
    ("\\boxed{\\frac{3}{4}}", "-0.75", {}, F),
    # --- intervals and sets
    ("\\boxed{[1, 3)}", "[1,3)", {}, T),
    ("\\boxed{[1, 3]}", "[1,3)", {}, F),
    ("\\boxed{(-\\infty, 3)}", "(-\\infty,3)", {}, T),
    ("\\boxed{(-\\infty, 3]}", "(-\\infty,3)", {}, F),
    ("\\boxed{\\{1, 2\\}}", "\\{2, 1\\}", {}, T),
    ("\\boxed{\\{1, 3\\}}", "\\{1, 2\\}", {}, F),
    ("\\boxed{(0, \\infty)}", "(0,\\infty)", {}, T),
    # --- lists (order matters with answer_type="list")
    ("\\boxed{[1, 2, 3]}", "[1, 2, 3]", LST, T),
    ("\\boxed{1,2,3}", "[1, 2, 3]", LST, T),
    ("\\boxed{(1, 2, 3)}", "1, 2, 3", LST, T),
    ("\\boxed{[1, 3, 2]}", "[1, 2, 3]", LST, F),
    ("\\boxed{[1, 2]}", "[1, 2, 3]", LST, F),
    ("\\boxed{[1.0, 2.50]}", "[1, 2.5]", LST, T),
    ("\\boxed{[1,000]}", "[1000]", LST, F),  # no thousands separators in lists
    ("\\boxed{1, 0}", "[1, 0]", LST, T),
    ("\\boxed{[0.33, 0.67]}", "[0.333, 0.667]", {"answer_type": "list", "precision": 2}, T),
    ("\\boxed{[a, b]}", "[A, B]", LST, T),
    # --- scientific notation, negatives, big numbers
    ("\\boxed{3 \\times 10^{8}}", "300000000", {}, T),
    ("\\boxed{3 \\cdot 10^{-2}}", "0.03", {}, T),
    ("\\boxed{6.02e23}", "6.02\\times10^{23}", {}, T),
    ("\\boxed{-12}", "-12", {}, T),
    ("\\boxed{−12}", "-12", {}, T),
    ("\\boxed{12}", "-12", {}, F),
    ("\\boxed{+5}", "5", {}, T),
    ("\\boxed{.5}", "0.5", {}, T),
    ("\\boxed{1000000}", "10^6", {}, T),
    ("\\boxed{1000001}", "10^6", {}, F),
    # --- text answers
    ("\\boxed{Paris}", "paris", TXT, T),
    ("\\boxed{\\text{Paris}}", "Paris", {}, T),
    ("The answer is  the  Eiffel tower!", "The Eiffel Tower", TXT, T),
    ("\\boxed{London}", "Paris", TXT, F),
    ("\\boxed{London}", "Paris", {}, F),
    ("\\boxed{yes}", "Yes", {}, T),
    ("\\boxed{no}", "Yes", {}, F),
    ("\\boxed{ab}", "ba", TXT, F),
    ("\\boxed{red, green}", "red green", TXT, T),
    ("\\boxed{don't know}", "dont know", TXT, F),
    ("\\boxed{New York}", "new york.", {}, T),
    # --- inputs that must not crash
    ("\\boxed{\\frac{}{}}", "1", {}, F),
    ("\\boxed{)(}", "1", {}, F),
    ("\\boxed{1/0}", "1", {}, F),
    ("\\boxed{nan}", "1", {}, F),
    ("\\boxed{inf}", "1", {}, F),
    ("\\boxed{" + "9" * 5000 + "}", "1", {}, F),
    (None, "1", {}, F),
    ("\\boxed{1}", None, {}, F),
]


def test_the_table_has_enough_cases_of_both_kinds():
    assert len(CASES) >= 150
    assert sum(1 for case in CASES if case[3]) >= 60
    assert sum(1 for case in CASES if not case[3]) >= 50


@pytest.mark.parametrize("prediction, answer, kwargs, expected", CASES)
def test_grade(prediction, answer, kwargs, expected):
    assert grade(prediction, answer, **kwargs) is expected
