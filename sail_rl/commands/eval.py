"""`sail-rl eval RECIPE [section.key=value ...]`: score a model on a MathVista-format benchmark.

    sail-rl eval eval.model_path=runs/tiny-sft eval.data_files=[data/synth/eval.jsonl] eval.k_samples=4 eval.temperature=0.7
    sail-rl eval eval.data_files=[data/synth/eval.jsonl] --responses resp.jsonl      # score only
    sail-rl eval my_eval.yaml --print-config                                         # a recipe with an `eval:` section

Writes results.jsonl, metrics.json, metrics.md and accuracy_by_category.png to eval.output_dir,
each file atomically; a second eval writing to the same folder at once is refused (a lock),
and so is a folder holding another evaluation's results, unless --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", default=None, help="YAML recipe with an 'eval:' section")
    parser.add_argument("overrides", nargs="*", default=[], help="section.key=value overrides, e.g. eval.k_samples=4")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--responses", default=None, metavar="FILE",
                        help="score this responses jsonl instead of generating (sets eval.responses_file)")
    parser.add_argument("--output-dir", default=None, help="where to write the report (sets eval.output_dir)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace another evaluation's results in eval.output_dir (the same evaluation rerun replaces its own)")


def run(args: argparse.Namespace) -> int:
    from eval.runner import EvalRecipe, evaluate
    from sail_rl.config import dump_yaml, load_recipe

    recipe, overrides = args.recipe, list(args.overrides)
    if recipe is not None and "=" in recipe and not Path(recipe).is_file():
        recipe, overrides = None, [recipe] + overrides  # only overrides, no recipe file
    if args.responses:
        overrides.append(f"eval.responses_file={args.responses}")
    if args.output_dir:
        overrides.append(f"eval.output_dir={args.output_dir}")
    cfg = load_recipe(EvalRecipe, recipe, overrides)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    result = evaluate(cfg.eval, overwrite=args.overwrite)
    m = result.metrics
    print(
        f"accuracy {m['accuracy']:.4f} on {m['num_samples']} samples (k={m['k']}, think rate {m['think_rate']:.2f}) "
        f"-> {cfg.eval.output_dir}"
    )
    return 0
