"""`sail-rl pipeline RECIPE`: the progressive SAIL-VL2 pipeline (see sail_rl/pipeline.py)."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="pipeline recipe, e.g. recipes/sailvl2_pipeline.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. output_dir=runs/p2")
    parser.add_argument("--print-config", action="store_true")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sail_rl.config import dump_yaml, load_recipe
    from sail_rl.model.builder import init_model
    from sail_rl.pipeline import PipelineRecipe, run_pipeline

    recipe = load_recipe(PipelineRecipe, args.recipe, args.overrides)
    if args.print_config:
        print(dump_yaml(recipe), end="")
        return 0
    if not (Path(recipe.initial_model) / "config.json").is_file():
        init_model("tiny", recipe.initial_model)
        print(f"pipeline: wrote a fresh tiny model to {recipe.initial_model}")
    print(json.dumps(run_pipeline(recipe), indent=1))
    return 0
