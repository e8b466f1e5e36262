"""Prompt building: chat structure, choice listing, mode instructions, MC -> free-form rewrite."""

from __future__ import annotations

from PIL import Image

from sail_rl.data import MathVistaSample, build_prompt, question_text, rewrite_mc_to_free_form


def _mc(tmp_path) -> MathVistaSample:
    Image.new("RGB", (16, 16), (0, 0, 255)).save(tmp_path / "x.png")
    return MathVistaSample(
        pid="7", question="Which bar is the tallest?", image=str(tmp_path / "x.png"), answer="blue",
        question_type="multi_choice", answer_type="text", choices=["red", "blue", "12"],
        think_target="<think>\nheights\n</think>\n\\boxed{B}", direct_target="\\boxed{B}",
    )


def test_messages_have_image_then_text_and_no_system_prompt(tmp_path):
    messages, images = build_prompt(_mc(tmp_path), mode="think")
    assert [m["role"] for m in messages] == ["user"]
    content = messages[0]["content"]
    assert content[0] == {"type": "image"} and content[1]["type"] == "text"
    assert content[1]["text"].splitlines() == [
        "Which bar is the tallest?",
        "Choices: (A) red (B) blue (C) 12",
        "Answer with the option's letter.",
        "Think step by step inside <think> </think>, then put the final answer in \\boxed{}.",
    ]
    assert len(images) == 1 and images[0].mode == "RGB" and images[0].size == (16, 16)


def test_modes_and_free_form_hints(tmp_path):
    s = MathVistaSample(pid="1", question="Sum?", image="x.png", answer="3.5", question_type="free_form",
                        answer_type="float", precision=1)
    direct = question_text(s, "direct")
    assert direct.endswith("Answer with the final answer in \\boxed{} directly.")
    assert "The answer is a number with 1 decimal place." in direct and "Choices" not in direct
    assert "otherwise answer directly" in question_text(s, "auto")


def test_rewrite_mc_to_free_form(tmp_path):
    r = rewrite_mc_to_free_form(_mc(tmp_path))
    assert (r.question_type, r.answer, r.answer_type, r.choices) == ("free_form", "blue", "text", None)
    assert r.question == _mc(tmp_path).question.rstrip()  # the options are gone: no guessing among them
    assert r.metadata["original_choices"] == ["red", "blue", "12"]
    assert r.think_target.endswith("\\boxed{blue}") and r.direct_target == "\\boxed{blue}"
    assert r.metadata["rewritten_from"] == "multi_choice"
    numeric = rewrite_mc_to_free_form(MathVistaSample(**{**_mc(tmp_path).__dict__, "answer": "12"}))
    assert (numeric.answer, numeric.answer_type) == ("12", "integer")
    text = build_prompt(r, mode="direct")[0][0]["content"][1]["text"]
    for option in ("Choices:", "(A)", "red", "12"):
        assert option not in text, (option, text)
