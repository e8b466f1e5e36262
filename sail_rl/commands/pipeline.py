"""`sail-rl pipeline RECIPE`: the progressive SAIL-VL2 pipeline (see sail_rl/pipeline.py).

    sail-rl pipeline recipes/sailvl2_pipeline.yaml              # validate all stages, print the plan, run
    sail-rl pipeline recipes/sailvl2_pipeline.yaml --plan-only  # validate and print the plan
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="pipeline recipe, e.g. recipes/sailvl2_pipeline.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. output_dir=runs/p2")
    parser.add_argument("--print-config", action="store_true")
    parser.add_argument("--plan-only", action="store_true", help="validate every stage, print which run and which are reused, stop")


def run(args: argparse.Namespace) -> int:
    from sail_rl.config import dump_yaml, load_recipe
    from sail_rl.pipeline import PipelineRecipe, make_plan, print_plan, run_pipeline

    recipe = load_recipe(PipelineRecipe, args.recipe, args.overrides)
    if args.print_config:
        print(dump_yaml(recipe), end="")
        return 0
    if args.plan_only:
        print_plan(make_plan(recipe))
        return 0
    print(json.dumps(run_pipeline(recipe), indent=1))
    return 0
