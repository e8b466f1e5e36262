"""Read a clock's hour hand, or the angle between two rays.

`clock_hour` (integer 1-12): a black dial with 12 ticks and a thick red hour hand. Level 2
adds a thin blue minute hand pointing at 12; level 3 adds grey specks too.
`angle` (multi_choice): two black rays from a common vertex; options in degrees. Level 1:
one ray horizontal, 3 options; level 2-3: rotated, 4 options (level 3 with specks).
"""

from __future__ import annotations

import math
import random

from sail_rl.data.synth.canvas import BLACK, PALETTE, SynthItem, add_noise, new_canvas, noise_specks

HAND_COLOUR = "red"
MINUTE_COLOUR = "blue"
ANGLES_DEG = (30, 45, 60, 90, 120, 135, 150)


def _point(cx: float, cy: float, radius: float, clock_deg: float) -> tuple[int, int]:
    """Point at `radius` from the centre; 0 deg = 12 o'clock, clockwise (image y grows down)."""
    rad = math.radians(clock_deg)
    return round(cx + radius * math.sin(rad)), round(cy - radius * math.cos(rad))


def make_clock_hour(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    hour = rng.randint(1, 12)
    img, draw = new_canvas(size_px)
    c = (size_px - 1) / 2
    r = size_px * 0.45
    line_px = max(1, size_px // 32)
    draw.ellipse((c - r, c - r, c + r, c + r), outline=BLACK, width=line_px)
    for h in range(12):  # ticks just inside the rim
        draw.line((_point(c, c, r * 0.8, h * 30), _point(c, c, r * 0.95, h * 30)), fill=BLACK, width=line_px)
    if difficulty >= 2:
        draw.line(((round(c), round(c)), _point(c, c, r * 0.75, 0)), fill=PALETTE[MINUTE_COLOUR], width=line_px)
    draw.line(((round(c), round(c)), _point(c, c, r * 0.55, hour * 30)), fill=PALETTE[HAND_COLOUR], width=3 * line_px)
    add_noise(draw, rng, size_px, noise_specks(difficulty, size_px))
    steps = [
        f"The short {HAND_COLOUR} hand is the hour hand.",
        f"It points {hour * 30} degrees clockwise from 12, at {hour}.",
        f"The hour is {hour}.",
    ]
    return SynthItem(
        family="clock_hour",
        image=img,
        question=f"The {HAND_COLOUR} hand is the hour hand. What hour does the clock show?",
        answer=str(hour),
        answer_type="integer",
        question_type="free_form",
        steps=steps,
        should_think=difficulty >= 2,
        difficulty=difficulty,
        task="visual question answering",
        category="general-vqa",
        context="abstract scene",
        skills=["numeric commonsense"],
        truth={"hour": hour, "hand_deg": hour * 30, "centre_px": c, "radius_px": r},
    )


def make_angle(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    angle = rng.choice(ANGLES_DEG)
    n_options = 3 if difficulty == 1 else 4
    options = [angle] + rng.sample([a for a in ANGLES_DEG if a != angle], n_options - 1)
    options.sort()
    base_deg = 90 if difficulty == 1 else rng.choice(range(60, 121, 15))  # 90 = pointing right
    img, draw = new_canvas(size_px)
    line_px = max(2, size_px // 24)
    vx, vy = size_px * 0.5, size_px * 0.7  # vertex low in the picture, rays go up
    length = size_px * 0.42
    ray1 = _point(vx, vy, length, base_deg)
    ray2 = _point(vx, vy, length, base_deg - angle)  # counter-clockwise from the first ray
    vertex = (round(vx), round(vy))
    draw.line((vertex, ray1), fill=BLACK, width=line_px)
    draw.line((vertex, ray2), fill=BLACK, width=line_px)
    add_noise(draw, rng, size_px, noise_specks(difficulty, size_px))
    choices = [f"{a}°" for a in options]
    answer = f"{angle}°"
    letter = "ABCD"[choices.index(answer)]
    steps = ["The two rays meet at the vertex.", f"The angle between them is {angle} degrees.", f"That is option {letter}."]
    return SynthItem(
        family="angle",
        image=img,
        question="What is the angle between the two lines?",
        answer=answer,
        answer_type="text",
        question_type="multi_choice",
        choices=choices,
        steps=steps,
        should_think=difficulty >= 2,
        difficulty=difficulty,
        task="geometry problem solving",
        category="math-targeted-vqa",
        context="geometry diagram",
        skills=["geometry reasoning"],
        truth={"angle_deg": angle, "base_deg": base_deg, "vertex_px": list(vertex), "rays_px": [list(ray1), list(ray2)]},
    )
