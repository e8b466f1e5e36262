"""Subcommands of `sail-rl`: each module has configure(parser) and run(args)."""

from __future__ import annotations

import argparse


def ranged(kind, low: float, high: float = float("inf")):
    """An argparse type: a `kind` number in [low, high], checked at parse time (one line, exit 2).

    >>> ranged(int, 1)("3"), ranged(float, 0.0, 1.0)("0.5")
    (3, 0.5)
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got '{text}'") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {text}")
        return value

    return parse
