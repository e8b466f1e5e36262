"""What every synthetic task family shares: the item record, a few flat colours, a
white canvas, non-overlapping cell placement, grey noise and a 3x5 bitmap digit font.

Images are drawn without anti-aliasing (PIL's ImageDraw never blends), so every object
pixel has exactly its palette colour: a test can re-derive answers from the pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Optional

from PIL import Image, ImageDraw

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID_GREY = (200, 200, 200)  # chart grid lines
NOISE_GREY = (150, 150, 150)  # distractor specks; never an object colour

# name -> RGB: high contrast on white, far apart from each other and from the greys
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 30),
    "blue": (30, 60, 220),
    "orange": (240, 140, 0),
    "purple": (140, 40, 180),
}


@dataclass
class SynthItem:
    """One generated question. `steps` is the solution, in words, that the think target uses;
    `truth` is the structured scene (object positions, values) saved under metadata.synth."""

    family: str
    image: Image.Image
    question: str
    answer: str
    answer_type: str  # integer | float | text
    question_type: str  # multi_choice | free_form
    steps: list[str]
    should_think: bool
    difficulty: int
    task: str
    category: str
    context: str
    skills: list[str]
    choices: Optional[list[str]] = None
    precision: Optional[int] = None
    truth: dict[str, Any] = field(default_factory=dict)
    frames: Optional[list[Image.Image]] = None  # a video family's clip (`image` is then its first frame)

    @property
    def boxed(self) -> str:
        """What goes in \\boxed{}: the option letter for multi_choice, else the answer."""
        if self.question_type == "multi_choice" and self.choices:
            return "ABCDEFGH"[self.choices.index(self.answer)]
        return self.answer


def new_canvas(size_px: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (size_px, size_px), WHITE)
    return img, ImageDraw.Draw(img)


def add_noise(draw: ImageDraw.ImageDraw, rng: random.Random, size_px: int, specks: int) -> None:
    """Grey single-pixel specks: visual clutter that no answer depends on."""
    for _ in range(specks):
        x, y = rng.randrange(size_px), rng.randrange(size_px)
        draw.point((x, y), fill=NOISE_GREY)


def grid_cells(rng: random.Random, size_px: int, count: int, per_side: int = 3) -> list[tuple[int, int, int]]:
    """`count` distinct cells of a per_side x per_side grid: [(x0, y0, cell_px)], random order.
    Shapes drawn inside their cell with a 1 px margin can never touch each other."""
    cell_px = size_px // per_side
    cells = [(c * cell_px, r * cell_px, cell_px) for r in range(per_side) for c in range(per_side)]
    return rng.sample(cells, count)


# 3x5 bitmap glyphs ('#' = ink). Our own font: no system font files, identical on every machine.
GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    ".": ("...", "...", "...", "...", ".#."),
}


def text_width_px(text: str, scale: int) -> int:
    """Width of `text` drawn by `draw_text`: 3 columns per glyph plus 1 column of spacing."""
    return (4 * len(text) - 1) * scale


def draw_text(draw: ImageDraw.ImageDraw, text: str, x: int, y: int, scale: int, fill) -> None:
    """Draw digits / '.' with the bitmap font; each font pixel is a scale x scale square."""
    for i, ch in enumerate(text):
        for row, bits in enumerate(GLYPHS[ch]):
            for col, bit in enumerate(bits):
                if bit == "#":
                    x0 = x + (4 * i + col) * scale
                    y0 = y + row * scale
                    draw.rectangle((x0, y0, x0 + scale - 1, y0 + scale - 1), fill=fill)


def noise_specks(difficulty: int, size_px: int) -> int:
    """Level 3 adds clutter: about one speck per 64 pixels."""
    return (size_px * size_px) // 64 if difficulty >= 3 else 0
