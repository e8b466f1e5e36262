"""`sail-rl convert-checkpoint SRC DST`: a released SAIL-VL2 or an old sail-rl checkpoint -> sail-rl's layout."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="released SAIL-VL2 checkpoint folder (config.json, *.safetensors, tokenizer), "
                                    "or a sail-rl checkpoint in the old layout")
    parser.add_argument("dst", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="empty DST first when it holds files (a trained run, a model)")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="cast every floating tensor; default: keep each tensor's own dtype")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sail_rl.errors import ConfigError
    from sail_rl.rundir import claim_output_dir, make_readable

    # a guard before anything is written: SRC must be a checkpoint, DST empty, this job's own, or --overwrite
    if not (Path(args.src) / "config.json").is_file():
        raise ConfigError(f"SRC {args.src} is no checkpoint folder (no config.json); pass the released model's folder")
    claim_output_dir(args.dst, "convert-checkpoint", {"src": str(Path(args.src).resolve()), "dtype": args.dtype}, flag="DST",
                     overwrite=args.overwrite, same_job_reuse=True, inputs=[args.src])
    from sail_rl.model.convert import convert_checkpoint

    report = convert_checkpoint(args.src, args.dst, dtype=args.dtype)
    make_readable(report['dst'])
    print(f"converted {report['source']} checkpoint {args.src} -> {report['dst']}; "
          f"{len(report['dropped'])} vision tensors past the selected layer dropped, "
          f"{len(report['zero_filled'])} absent biases zero-filled; "
          f"load it with AutoModelForImageTextToText.from_pretrained('{report['dst']}')")
    return 0
