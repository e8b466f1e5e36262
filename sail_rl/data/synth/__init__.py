"""Synthetic visual-math tasks with exact answers, small enough for a tiny VLM on a CPU.

Each family is `make(rng: random.Random, size_px: int, difficulty: int) -> SynthItem`;
`generate_dataset` writes MathVista-format jsonl plus PNGs (see `writer.py`); the video
families (`motion.py`) write mp4 clips.
"""

from sail_rl.data.synth.arith import make_arith_sum, make_arith_sum_float
from sail_rl.data.synth.bars import make_bars_extreme, make_bars_value
from sail_rl.data.synth.canvas import PALETTE, SynthItem
from sail_rl.data.synth.clock import make_angle, make_clock_hour
from sail_rl.data.synth.shapes import make_count_shapes, make_shape_colour
from sail_rl.data.synth.writer import FAMILIES, VIDEO_FAMILIES, generate_dataset, item_to_record, parse_difficulty

__all__ = [
    "FAMILIES",
    "VIDEO_FAMILIES",
    "PALETTE",
    "SynthItem",
    "generate_dataset",
    "item_to_record",
    "make_angle",
    "make_arith_sum",
    "make_arith_sum_float",
    "make_bars_extreme",
    "make_bars_value",
    "make_clock_hour",
    "make_count_shapes",
    "make_shape_colour",
    "parse_difficulty",
]
