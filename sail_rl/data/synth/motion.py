"""Video families: questions about what happens across frames, with exact answers.

    dot_direction  "Which way does the dot move?"           -> left | right | up | down
    flash_count    "How many times does the square flash?"  -> 1..3 (an on-run after an off frame, or at the start)
    last_shape     "Which shape appears last?"              -> circle | square | triangle

Each item's `frames` (RGB, `size_px` squares, 8 of them) are written as a video file by the
writer; the record says `num_frames: 8`, so the loader keeps every frame. Objects are large
and flat-coloured, so the answers survive video compression (a test decodes the file and
re-derives them from the pixels).
"""

from __future__ import annotations

import random

from sail_rl.data.synth.canvas import PALETTE, SynthItem, new_canvas
from sail_rl.data.synth.shapes import SHAPES, _draw_shape

NUM_FRAMES = 8
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


def _item(family: str, frames, question: str, answer: str, answer_type: str, steps: list[str], difficulty: int,
          truth: dict) -> SynthItem:
    return SynthItem(
        family=family, image=frames[0], frames=frames, question=question, answer=answer, answer_type=answer_type,
        question_type="free_form", steps=steps, should_think=True, difficulty=difficulty,
        task="video question answering", category="video-qa", context="synthetic clip",
        skills=["temporal reasoning"], truth=truth,
    )


def make_dot_direction(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    """A dot crosses the frame in a straight line; level 2-3 add a still distractor square."""
    direction = rng.choice(list(DIRECTIONS))
    dx, dy = DIRECTIONS[direction]
    radius = max(3, size_px // 10)
    travel = size_px - 4 * radius
    fixed = rng.randint(2 * radius, size_px - 2 * radius)  # the coordinate that does not change
    colour = rng.choice(list(PALETTE))
    still = None
    if difficulty >= 2:
        others = [c for c in PALETTE if c != colour]
        still = (rng.choice(others), rng.randint(0, size_px - 8), rng.randint(0, size_px - 8))
    frames, path = [], []
    for t in range(NUM_FRAMES):
        along = 2 * radius + travel * t // (NUM_FRAMES - 1)
        if dx < 0 or dy < 0:
            along = size_px - along
        x, y = (along, fixed) if dx else (fixed, along)
        img, draw = new_canvas(size_px)
        if still:
            draw.rectangle((still[1], still[2], still[1] + 6, still[2] + 6), fill=PALETTE[still[0]])
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=PALETTE[colour])
        frames.append(img)
        path.append([x, y])
    steps = [f"The {colour} dot starts at ({path[0][0]}, {path[0][1]}) and ends at ({path[-1][0]}, {path[-1][1]}).",
             f"It moves {direction}."]
    return _item("dot_direction", frames, "Which way does the dot move: left, right, up or down?", direction, "text",
                 steps, difficulty, {"colour": colour, "path": path})


def make_flash_count(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    """A square is on in some frames and off in others; a flash is a run of on frames."""
    flashes = rng.randint(1, 3)
    # on/off pattern of NUM_FRAMES frames with exactly `flashes` on-runs
    while True:
        pattern = [rng.random() < 0.5 for _ in range(NUM_FRAMES)]
        runs = sum(1 for t, on in enumerate(pattern) if on and (t == 0 or not pattern[t - 1]))
        if runs == flashes:
            break
    colour = rng.choice(list(PALETTE))
    side = size_px // 3
    x0, y0 = rng.randint(0, size_px - side), rng.randint(0, size_px - side)
    frames = []
    for on in pattern:
        img, draw = new_canvas(size_px)
        if on:
            draw.rectangle((x0, y0, x0 + side - 1, y0 + side - 1), fill=PALETTE[colour])
        frames.append(img)
    steps = ["The square is " + ", ".join("on" if on else "off" for on in pattern) + ".",
             f"It turns on {flashes} time{'s' if flashes > 1 else ''}."]
    return _item("flash_count", frames, "How many times does the square flash?", str(flashes), "integer",
                 steps, difficulty, {"pattern": pattern, "colour": colour})


def make_last_shape(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    """Shapes appear one after another and stay; the question asks for the last to appear."""
    order = rng.sample(SHAPES, len(SHAPES))
    colours = rng.sample(list(PALETTE), len(order))
    cell = size_px // 2
    slots = rng.sample([(0, 0), (cell, 0), (0, cell), (cell, cell)], len(order))
    appear = sorted(rng.sample(range(1, NUM_FRAMES), len(order)))  # the frame each shape appears in
    frames = []
    for t in range(NUM_FRAMES):
        img, draw = new_canvas(size_px)
        for shape, colour, (x, y), start in zip(order, colours, slots, appear):
            if t >= start:
                _draw_shape(draw, shape, (x + 3, y + 3, x + cell - 4, y + cell - 4), PALETTE[colour])
        frames.append(img)
    steps = [f"First a {colours[0]} {order[0]} appears, then a {colours[1]} {order[1]}, then a {colours[2]} {order[2]}.",
             f"The last is the {order[-1]}."]
    return _item("last_shape", frames, "Which shape appears last: circle, square or triangle?", order[-1], "text",
                 steps, difficulty, {"order": order, "colours": colours, "appear_frame": appear})


__all__ = ["make_dot_direction", "make_flash_count", "make_last_shape", "NUM_FRAMES"]
