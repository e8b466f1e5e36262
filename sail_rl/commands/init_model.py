"""`sail-rl init-model --preset tiny --out DIR`: a randomly initialised SAIL-VL checkpoint."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from sail_rl.model.presets import PRESETS

    parser.add_argument("--preset", required=True, choices=list(PRESETS), help="model shape")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--tokenizer", default=None, help="local tokenizer folder (needed for the Qwen-sized presets)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from sail_rl.model.builder import init_model

    model, processor = init_model(args.preset, args.out, tokenizer_path=args.tokenizer, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.preset} SAIL-VL model to {args.out}: {n_params / 1e6:.2f}M parameters, "
          f"{processor.tokens_per_tile} tokens per {processor.image_processor.image_size}px tile, "
          f"vocab {len(processor.tokenizer)}")
    return 0
