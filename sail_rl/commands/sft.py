"""`sail-rl sft RECIPE [section.key=value ...] [--print-config] [--resume]`: supervised fine-tuning.

    sail-rl sft recipes/thinking_fusion_sft.yaml
    sail-rl sft recipes/longcot_sft.yaml train.max_steps=50 train.output_dir=runs/x
    sail-rl sft recipes/thinking_fusion_sft.yaml --resume        # continue from the newest checkpoint
    sail-rl sft recipes/thinking_fusion_sft.yaml --overwrite     # start over in a folder holding a run

train.output_dir is this run's (sail_rl/rundir.py): a folder holding another run, a model or
other files is refused; --resume with a recipe that changes the run names the differing keys.

Writes the final model (HF layout, LoRA merged) to train.output_dir, sharded checkpoints (the RL
layout; `sail-rl export` makes a model of one) to train.output_dir/checkpoints/step_N, metrics to
log.jsonl, and, when format_eval.data_file is set, format_eval.json (well-formed think %, direct-skip %, accuracy per mode).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sail_rl.errors import ConfigError
from sail_rl.rundir import add_output_flags, check_output_flags

# keys a resumed run may change: where and how often it logs and saves, and what runs after training
RESUME_IGNORED = ("train.output_dir", "train.logging_steps", "train.save_steps", "train.save_total_limit",
                  "train.torch_num_threads", "bootstrap", "format_eval")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="YAML recipe (sections model, data, train, bootstrap, format_eval)")
    parser.add_argument("overrides", nargs="*", default=[], help="section.key=value overrides, e.g. train.max_steps=50")
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    add_output_flags(parser, "train.output_dir")  # --resume, --allow-recipe-change, --overwrite
    parser.add_argument("--eval-only", action="store_true",
                        help="skip training: run format_eval on the model already in train.output_dir")


def run(args: argparse.Namespace) -> int:
    import time

    from sail_rl.config import dump_yaml, load_recipe, to_dict
    from sail_rl.rundir import atomic_write_text, claim_output_dir, lock_dir
    from sail_rl.sft.config import SFTRecipe

    recipe = load_recipe(SFTRecipe, args.recipe, list(args.overrides))
    if args.print_config:
        print(dump_yaml(recipe), end="")
        return 0
    check_output_flags(args)

    from sail_rl.sft.prepare import bootstrap, check_inputs

    start = time.perf_counter()
    out = Path(recipe.train.output_dir)
    if args.eval_only:
        if not recipe.format_eval.data_file:
            raise ConfigError("--eval-only needs format_eval.data_file (a held-out MathVista-format file)")
        if not (out / "config.json").is_file():
            raise ConfigError(f"--eval-only: train.output_dir {out} holds no trained model; train it first")
        check_inputs(recipe, train=False)
        lock_dir(out)
        _format_eval(recipe)
        return 0
    recipe.require_sources()
    check_inputs(recipe)
    claim_output_dir(out, "sft", to_dict(recipe), flag="train.output_dir", overwrite=args.overwrite, resume=args.resume,
                     allow_recipe_change=args.allow_recipe_change, ignore_keys=RESUME_IGNORED,
                     inputs=[recipe.model.path] + [s.path for s in recipe.data.sources])
    bootstrap(recipe)
    from sail_rl.sft.trainer import SFTTrainer

    trainer = SFTTrainer(recipe)
    try:
        summary = trainer.train(resume=args.resume)
    except OSError as exc:  # a full disk while logging: one line, and the checkpoints so far resume
        import errno

        from sail_rl.rundir import DiskSpaceError

        if exc.errno != errno.ENOSPC:
            raise
        raise DiskSpaceError(f"no space left on the device while training into {out}; free space and "
                             "continue with --resume") from None
    if trainer.rank != 0:  # under torchrun, rank 0 reports and runs format_eval
        return 0
    print(f"sft: saved the model to {summary['output_dir']} after {summary['steps']} steps ({summary['train_s']:.0f} s)")
    if recipe.format_eval.data_file:
        summary["format_eval"] = _format_eval(recipe)
    summary["wall_s"] = round(time.perf_counter() - start, 2)
    atomic_write_text(out / "sft_summary.json", json.dumps(summary, indent=2) + "\n")
    return 0


def _format_eval(recipe) -> dict:
    import torch

    from sail_rl.data.mathvista import load_samples
    from sail_rl.model.builder import load_model, load_processor
    from sail_rl.sft.format_eval import format_report

    cfg = recipe.format_eval
    samples = load_samples(cfg.data_file)[: cfg.samples_per_mode]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(recipe.train.output_dir, recipe.model.dtype).to(device)  # the saved (merged) model
    report = format_report(model, load_processor(recipe.train.output_dir), samples, cfg.modes, cfg.max_new_tokens, cfg.batch_size,
                           recipe.model.max_tiles)
    from sail_rl.rundir import atomic_write_text

    atomic_write_text(Path(recipe.train.output_dir) / "format_eval.json", json.dumps(report, indent=2) + "\n")
    for mode in cfg.modes:
        r = report[mode]
        form = f"well-formed {r['well_formed']:.1%}" if mode == "think" else f"skipped think {r['skipped_think']:.1%}"
        print(f"sft: format_eval {mode}: {form}, accuracy {r['accuracy']:.1%} on {r['n']} held-out prompts")
    return report
