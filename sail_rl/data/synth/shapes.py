"""Count shapes: "How many red circles are there?" -> an integer from 1 to 6.

Level 1: 1-3 targets alone. Level 2: 1-5 targets and 1-2 distractors of other colours.
Level 3: 2-6 targets, 2-3 distractors (some the same shape in another colour) and grey specks.
Every shape sits in its own cell of a 3x3 grid, so shapes never touch: the count equals the
number of connected regions of the target colour.
"""

from __future__ import annotations

import random

from sail_rl.data.synth.canvas import PALETTE, SynthItem, add_noise, grid_cells, new_canvas, noise_specks

SHAPES = ("circle", "square", "triangle")
_TARGETS = {1: (1, 3), 2: (1, 5), 3: (2, 6)}  # difficulty -> (min, max) target count
_DISTRACTORS = {1: (0, 0), 2: (1, 2), 3: (2, 3)}


def _draw_shape(draw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)


def make_count_shapes(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    shape = rng.choice(SHAPES)
    colour = rng.choice(list(PALETTE))
    n_targets = rng.randint(*_TARGETS[difficulty])
    n_distractors = rng.randint(*_DISTRACTORS[difficulty])
    others = [c for c in PALETTE if c != colour]
    # distractors never share the target colour; at level 3 they may share its shape
    distractors = [
        (shape if difficulty >= 3 and rng.random() < 0.5 else rng.choice(SHAPES), rng.choice(others))
        for _ in range(n_distractors)
    ]
    objects = [(shape, colour)] * n_targets + distractors
    img, draw = new_canvas(size_px)
    placed = []
    for (obj_shape, obj_colour), (cx, cy, cell_px) in zip(objects, grid_cells(rng, size_px, len(objects))):
        side_px = max(4, int(cell_px * 0.6))  # large shapes: ~12 px on a 64 px image
        slack = cell_px - side_px - 2
        x0 = cx + 1 + rng.randint(0, max(0, slack))
        y0 = cy + 1 + rng.randint(0, max(0, slack))
        box = (x0, y0, x0 + side_px - 1, y0 + side_px - 1)
        _draw_shape(draw, obj_shape, box, PALETTE[obj_colour])
        placed.append({"shape": obj_shape, "colour": obj_colour, "box": list(box)})
    add_noise(draw, rng, size_px, noise_specks(difficulty, size_px))
    ordinals = ", ".join(str(i) for i in range(1, n_targets + 1))
    steps = [
        f"I look for {colour} {shape}s.",
        f"Counting them: {ordinals}.",
        f"There {'is' if n_targets == 1 else 'are'} {n_targets} {colour} {shape}{'' if n_targets == 1 else 's'}.",
    ]
    return SynthItem(
        family="count_shapes",
        image=img,
        question=f"How many {colour} {shape}s are there?",
        answer=str(n_targets),
        answer_type="integer",
        question_type="free_form",
        steps=steps,
        should_think=difficulty >= 2,
        difficulty=difficulty,
        task="visual question answering",
        category="general-vqa",
        context="synthetic scene",
        skills=["numeric commonsense", "counting"],
        truth={"target_shape": shape, "target_colour": colour, "objects": placed},
    )


_COLOUR_OBJECTS = {1: 1, 2: 2, 3: 3}  # difficulty -> shapes in the picture (distinct shapes and colours)


def make_shape_colour(rng: random.Random, size_px: int, difficulty: int) -> SynthItem:
    """"What colour is the triangle?" -> a colour name. Level 1: the shape is alone; levels 2-3:
    other shapes in other colours (the answer needs binding shape to colour), specks at 3."""
    n = _COLOUR_OBJECTS[difficulty]
    shapes = rng.sample(SHAPES, n)
    colours = rng.sample(list(PALETTE), n)
    img, draw = new_canvas(size_px)
    placed = []
    for shape, colour, (cx, cy, cell_px) in zip(shapes, colours, grid_cells(rng, size_px, n, per_side=2)):
        side_px = max(6, int(cell_px * 0.7))
        slack = cell_px - side_px - 2
        x0, y0 = cx + 1 + rng.randint(0, max(0, slack)), cy + 1 + rng.randint(0, max(0, slack))
        box = (x0, y0, x0 + side_px - 1, y0 + side_px - 1)
        _draw_shape(draw, shape, box, PALETTE[colour])
        placed.append({"shape": shape, "colour": colour, "box": list(box)})
    add_noise(draw, rng, size_px, noise_specks(difficulty, size_px))
    target = rng.randrange(n)
    shape, colour = shapes[target], colours[target]
    others = [f"a {c} {s}" for s, c in zip(shapes, colours) if s != shape]
    # level 1 (one shape): one short sentence, so think-mode RL rollouts stay cheap
    steps = ([f"I see {', '.join(others)} and the {shape}."] if others else []) + [f"The {shape} is {colour}."]
    return SynthItem(
        family="shape_colour",
        image=img,
        question=f"What colour is the {shape}?",
        answer=colour,
        answer_type="text",
        question_type="free_form",
        steps=steps,
        should_think=difficulty >= 2,
        difficulty=difficulty,
        task="visual question answering",
        category="general-vqa",
        context="synthetic scene",
        skills=["visual recognition"],
        truth={"target_shape": shape, "objects": placed},
    )
