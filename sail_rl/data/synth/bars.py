"""Bar charts of coloured bars over a grey unit grid (values 1-6).

`bars_extreme` (multi_choice): "Which bar is the tallest/shortest?" -> the bar's colour.
`bars_value` (free_form integer): "What is the value of the blue bar?" -> grid lines under its top.
Level 1: 3 bars, choices in bar order. Level 2: 4 bars, shuffled choices. Level 3: 5 bars,
shuffled choices and grey specks.
"""

from __future__ import annotations

import random

from sail_rl.data.synth.canvas import BLACK, GRID_GREY, PALETTE, SynthItem, add_noise, new_canvas, noise_specks

MAX_VALUE = 6
_N_BARS = {1: 3, 2: 4, 3: 5}


def chart_geometry(size_px: int) -> dict[str, int]:
    """Pixel layout shared by both bar tasks: margins, baseline row and one unit's height."""
    margin_px = max(2, size_px // 16)
    baseline_y = size_px - margin_px - 1  # black axis row; bars stand on the row above it
    unit_px = (baseline_y - margin_px) // MAX_VALUE
    return {"margin_px": margin_px, "baseline_y": baseline_y, "unit_px": unit_px}


def _draw_chart(rng: random.Random, size_px: int, difficulty: int, distinct: bool):
    n_bars = _N_BARS[difficulty]
    colours = rng.sample(list(PALETTE), n_bars)
    values = rng.sample(range(1, MAX_VALUE + 1), n_bars) if distinct else [rng.randint(1, MAX_VALUE) for _ in colours]
    geo = chart_geometry(size_px)
    img, draw = new_canvas(size_px)
    m, base, unit = geo["margin_px"], geo["baseline_y"], geo["unit_px"]
    for v in range(1, MAX_VALUE + 1):  # grid line at each unit, full width
        draw.line((0, base - v * unit, size_px - 1, base - v * unit), fill=GRID_GREY)
    draw.line((0, base, size_px - 1, base), fill=BLACK)
    slot_px = (size_px - 2 * m) // n_bars
    bar_px = max(3, slot_px - max(2, slot_px // 4))
    bars = []
    for i, (colour, value) in enumerate(zip(colours, values)):
        x0 = m + i * slot_px + (slot_px - bar_px) // 2
        top_y = base - value * unit
        draw.rectangle((x0, top_y, x0 + bar_px - 1, base - 1), fill=PALETTE[colour])
        bars.append({"colour": colour, "value": value, "x0": x0, "width_px": bar_px})
    add_noise(draw, rng, size_px, noise_specks(difficulty, size_px))
    return img, colours, values, {"bars": bars, **geo}


def _common(difficulty: int) -> dict:
    return dict(
        difficulty=difficulty,
        task="figure question answering",
        category="math-targeted-vqa",
        context="bar chart",
        skills=["statistical reasoning"],
    )


def make_bars_extreme(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    img, colours, values, truth = _draw_chart(rng, size_px, difficulty, distinct=True)
    tallest = rng.random() < 0.5
    pick = max if tallest else min
    best = colours[values.index(pick(values))]
    choices = list(colours)
    if difficulty >= 2:
        rng.shuffle(choices)
    word = "tallest" if tallest else "shortest"
    heights = ", ".join(f"{c} {v}" for c, v in zip(colours, values))
    steps = [f"Bar heights: {heights}.", f"The {word} is {best}.", f"{best} is option {'ABCDEFGH'[choices.index(best)]}."]
    return SynthItem(
        family="bars_extreme",
        image=img,
        question=f"Which bar is the {word}?",
        answer=best,
        answer_type="text",
        question_type="multi_choice",
        choices=choices,
        steps=steps,
        should_think=difficulty >= 3,
        truth=dict(truth, asked=word),
        **_common(difficulty),
    )


def make_bars_value(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    img, colours, values, truth = _draw_chart(rng, size_px, difficulty, distinct=False)
    i = rng.randrange(len(colours))
    colour, value = colours[i], values[i]
    steps = [
        f"The {colour} bar is bar {i + 1} from the left.",
        f"Its top is at grid line {value}.",
        f"So its value is {value}.",
    ]
    return SynthItem(
        family="bars_value",
        image=img,
        question=f"What is the value of the {colour} bar? Each grid line is one unit.",
        answer=str(value),
        answer_type="integer",
        question_type="free_form",
        steps=steps,
        should_think=difficulty >= 2,
        truth=dict(truth, asked=colour),
        **_common(difficulty),
    )
