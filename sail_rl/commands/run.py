"""`sail-rl run RECIPE [section.key=value ...]`: RL training (see sail_rl/rl/loop.py)."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="YAML recipe, e.g. recipes/mathvista_grpo.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. run.total_steps=10")
    from sail_rl.rundir import add_output_flags

    add_output_flags(parser, "run.output_dir")  # --resume, --allow-recipe-change, --overwrite
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    parser.add_argument("--address", default=None, help="join this Ray cluster (default: $RAY_ADDRESS or a local Ray)")


def run(args: argparse.Namespace) -> int:
    from sail_rl.config import dump_yaml, load_recipe
    from sail_rl.rl.config import RunRecipe

    recipe = load_recipe(RunRecipe, args.recipe, args.overrides)
    if args.address:
        recipe.resources.address = args.address
    if args.print_config:
        print(dump_yaml(recipe), end="")
        return 0
    from sail_rl.rundir import check_output_flags

    check_output_flags(args)
    summary = train(recipe, resume=args.resume, overwrite=args.overwrite, allow_recipe_change=args.allow_recipe_change)
    print(json.dumps({k: summary[k] for k in ("final_step", "eval_before", "eval_after") if k in summary}, indent=1))
    return 0


# keys a resumed RL run may change: placement, logging, evaluation and checkpoint cadence
RESUME_IGNORED = ("resources", "run.output_dir", "run.loggers", "run.wandb_project", "run.progress_bar",
                  "run.eval_every_steps", "run.eval_before_training", "run.eval_max_samples",
                  "run.eval_samples_per_prompt", "run.save_every_steps", "run.keep_last_checkpoints", "run.mode")


def train(recipe, resume: bool = False, overwrite: bool = False,
          allow_recipe_change: bool = False) -> dict:
    """Run RL from a resolved RunRecipe (used by the CLI, the pipeline and the demo)."""
    from pathlib import Path

    from sail_rl.config import dump_yaml, to_dict
    from sail_rl.data.mathvista import load_split
    from sail_rl.errors import ConfigError
    from sail_rl.model.builder import load_processor
    from sail_rl.rl.loop import RLLoop, seed_everything
    from sail_rl.rl.components import local_components, ray_components
    from sail_rl.rundir import check_model_folder
    from sail_rl.trainer.checkpoint import latest_checkpoint

    run_dir = Path(recipe.run.output_dir)
    if not resume and not overwrite and latest_checkpoint(run_dir) is not None:
        raise ConfigError(
            f"{run_dir} already holds checkpoints; pass --resume to continue it or set run.output_dir to a new folder"
        )
    check_model_folder(recipe.model.path, "model.path")
    seed_everything(recipe.run.seed)
    train_set = load_split(recipe.data, "train")
    held_out = load_split(recipe.data, "eval") if recipe.data.eval_files else []
    if recipe.run.eval_max_samples is not None:
        held_out = held_out[: recipe.run.eval_max_samples]
    from sail_rl.rundir import atomic_write_text, claim_output_dir

    claim_output_dir(run_dir, "run", to_dict(recipe), flag="run.output_dir", overwrite=overwrite, resume=resume,
                     allow_recipe_change=allow_recipe_change, ignore_keys=RESUME_IGNORED,
                     inputs=[recipe.model.path, *recipe.data.train_files, *recipe.data.eval_files])
    atomic_write_text(run_dir / "recipe.yaml", dump_yaml(recipe))
    processor = load_processor(recipe.model.path)
    build = local_components if recipe.run.mode == "local" else ray_components
    components = build(recipe)
    try:
        loop = RLLoop(recipe, train_set, held_out, components.trainer, components.rollout, components.scorer,
                      pad_token_id=processor.tokenizer.pad_token_id, image_size=processor.image_processor.image_size,
                      weight_transfer=components.weight_transfer)
        return loop.run(resume=resume)
    finally:
        components.close()
