"""`sail-rl convert-checkpoint SRC DST`: a released SAIL-VL2 checkpoint -> sail-rl's layout."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="released SAIL-VL2 checkpoint folder (config.json, *.safetensors, tokenizer)")
    parser.add_argument("dst", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="empty DST first when it holds files (a trained run, a model)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sail_rl.errors import ConfigError
    from sail_rl.rundir import claim_output_dir, make_readable

    # a guard before anything is written: SRC must be a checkpoint, DST empty, this job's own, or --overwrite
    if not (Path(args.src) / "config.json").is_file():
        raise ConfigError(f"SRC {args.src} is no checkpoint folder (no config.json); pass the released model's folder")
    claim_output_dir(args.dst, "convert-checkpoint", {"src": str(Path(args.src).resolve())}, flag="DST",
                     overwrite=args.overwrite, same_job_reuse=True, inputs=[args.src])
    from sail_rl.model.convert import convert_checkpoint

    out = convert_checkpoint(args.src, args.dst)
    make_readable(out)
    print(f"converted {args.src} -> {out}; load it with AutoModelForImageTextToText.from_pretrained('{out}')")
    return 0
