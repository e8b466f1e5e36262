"""`sail-rl init-model --preset tiny --out DIR`: a randomly initialised SAIL-VL checkpoint."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from sail_rl.model.presets import PRESETS

    parser.add_argument("--preset", required=True, choices=list(PRESETS), help="model shape")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--tokenizer", default=None, help="local tokenizer folder (needed for the Qwen-sized presets)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="empty --out first when it holds files (a trained run, a model)")


def run(args: argparse.Namespace) -> int:
    from sail_rl.rundir import claim_output_dir, make_readable

    # a guard before anything is written: --out must be empty, this command's own, or --overwrite
    claim_output_dir(args.out, "init-model", {"preset": args.preset, "seed": args.seed, "tokenizer": args.tokenizer},
                     flag="--out", overwrite=args.overwrite, same_job_reuse=True, inputs=[args.tokenizer])
    from sail_rl.model.builder import init_model

    model, processor = init_model(args.preset, args.out, tokenizer_path=args.tokenizer, seed=args.seed)
    make_readable(args.out)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.preset} SAIL-VL model to {args.out}: {n_params / 1e6:.2f}M parameters, "
          f"{processor.tokens_per_tile} tokens per {processor.image_processor.image_size}px tile, "
          f"vocab {len(processor.tokenizer)}")
    return 0
