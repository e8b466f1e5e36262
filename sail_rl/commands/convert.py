"""`sail-rl convert-checkpoint SRC DST`: a released SAIL-VL2 checkpoint -> sail-rl's layout."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="released SAIL-VL2 checkpoint folder (config.json, *.safetensors, tokenizer)")
    parser.add_argument("dst", help="output folder")


def run(args: argparse.Namespace) -> int:
    from sail_rl.model.convert import convert_checkpoint

    out = convert_checkpoint(args.src, args.dst)
    print(f"converted {args.src} -> {out}; load it with AutoModelForImageTextToText.from_pretrained('{out}')")
    return 0
