"""Add the numbers drawn in the image (bitmap digits, one number per row).

`arith_sum` (integer): level 1: two numbers 1-5; level 2: three numbers 1-9; level 3: three
numbers 1-9 in mixed colours with grey specks.
`arith_sum_float` (float, precision 1): two numbers with one decimal, 0.1-4.9 (level 3: three).
Sums are computed on integers (tenths), never with binary floats, so answers are exact.
"""

from __future__ import annotations

import random

from sail_rl.data.synth.canvas import (
    BLACK,
    PALETTE,
    SynthItem,
    add_noise,
    draw_text,
    new_canvas,
    noise_specks,
    text_width_px,
)


def _draw_numbers(rng: random.Random, size_px: int, difficulty: int, texts: list[str]):
    img, draw = new_canvas(size_px)
    scale = max(1, size_px // 32)  # 3x5 glyphs -> 6x10 px at 64 px
    row_px = size_px // len(texts)
    placed = []
    for i, text in enumerate(texts):
        width_px = text_width_px(text, scale)
        x = rng.randint(1, max(1, size_px - width_px - 1))
        y = i * row_px + rng.randint(0, max(0, row_px - 5 * scale - 1))
        colour = rng.choice(list(PALETTE)) if difficulty >= 3 else "black"
        draw_text(draw, text, x, y, scale, PALETTE.get(colour, BLACK))
        placed.append({"text": text, "x": x, "y": y, "scale": scale, "colour": colour})
    add_noise(draw, rng, size_px, noise_specks(difficulty, size_px))
    return img, placed


def _common(difficulty: int) -> dict:
    return dict(
        difficulty=difficulty,
        task="math word problem",
        category="math-targeted-vqa",
        context="synthetic scene",
        skills=["arithmetic reasoning"],
        question_type="free_form",
    )


def make_arith_sum(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    count, high = (2, 5) if difficulty == 1 else (3, 9)
    numbers = [rng.randint(1, high) for _ in range(count)]
    texts = [str(n) for n in numbers]
    img, placed = _draw_numbers(rng, size_px, difficulty, texts)
    total = sum(numbers)
    steps = [f"The numbers are {', '.join(texts)}.", f"{' + '.join(texts)} = {total}."]
    return SynthItem(
        family="arith_sum",
        image=img,
        question="What is the sum of the numbers in the image?",
        answer=str(total),
        answer_type="integer",
        steps=steps,
        should_think=count >= 3,
        truth={"numbers": placed},
        **_common(difficulty),
    )


def make_arith_sum_float(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    count = 3 if difficulty >= 3 else 2
    tenths = [rng.randint(1, 49) for _ in range(count)]  # 0.1 .. 4.9
    texts = [f"{t // 10}.{t % 10}" for t in tenths]
    img, placed = _draw_numbers(rng, size_px, difficulty, texts)
    total = sum(tenths)
    answer = f"{total // 10}.{total % 10}"
    steps = [f"The numbers are {', '.join(texts)}.", f"{' + '.join(texts)} = {answer}."]
    return SynthItem(
        family="arith_sum_float",
        image=img,
        question="What is the sum of the numbers in the image?",
        answer=answer,
        answer_type="float",
        precision=1,
        steps=steps,
        should_think=True,
        truth={"numbers": placed},
        **_common(difficulty),
    )
