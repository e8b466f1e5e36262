"""`make demo`: the whole SAIL-VL2 recipe, end to end, on a laptop CPU.

    init-model (tiny) -> synthetic MathVista-format data -> thinking-fusion SFT cold start
    -> DAPO-style GRPO with vLLM rollouts on Ray -> held-out eval before and after RL

Each stage is skipped when its output already exists (delete `runs/` to start over).
Prints held-out accuracy before and after RL with the seed, and writes the curves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SFT_RECIPE = "recipes/thinking_fusion_sft.yaml"
RL_RECIPE = "recipes/mathvista_grpo.yaml"


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sail_rl.demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rl-steps", type=int, default=None, help="override run.total_steps")
    parser.add_argument("--out", default="runs/demo_grpo", help="RL output dir")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from sail_rl.cli import main as cli
    from sail_rl.commands.report import plot_run
    from sail_rl.commands.run import train
    from sail_rl.config import load_recipe
    from sail_rl.rl.config import RunRecipe
    from sail_rl.trainer.checkpoint import latest_checkpoint

    start = time.perf_counter()
    rl = load_recipe(RunRecipe, RL_RECIPE, [f"run.output_dir={args.out}", f"run.seed={args.seed}"]
                     + ([f"run.total_steps={args.rl_steps}"] if args.rl_steps else []))
    if not (Path(rl.model.path) / "config.json").is_file():
        t = _stage(f"SFT cold start ({SFT_RECIPE}: init-model, synthetic data, thinking-fusion SFT)")
        code = cli(["sft", SFT_RECIPE, f"train.seed={args.seed}"])
        if code:
            return code
        print(f"SFT done in {time.perf_counter() - t:.0f} s", flush=True)
    else:
        print(f"using the SFT checkpoint at {rl.model.path}")

    t = _stage(f"GRPO ({RL_RECIPE}) with vLLM rollouts on Ray")
    resume = latest_checkpoint(rl.run.output_dir) is not None
    summary = train(rl, resume=resume, base_dir=str(Path(RL_RECIPE).resolve().parent))
    print(f"RL done in {time.perf_counter() - t:.0f} s", flush=True)
    curves = plot_run(rl.run.output_dir)

    before = summary.get("eval_before", {}).get("eval/accuracy")
    after = summary["eval_after"]["eval/accuracy"]
    result = {
        "seed": args.seed,
        "heldout_samples": rl.run.eval_max_samples,
        "accuracy_before_rl": before,
        "accuracy_after_rl": after,
        "gain_points": None if before is None else round(100 * (after - before), 1),
        "rl_steps": summary["final_step"],
        "wall_s": round(time.perf_counter() - start),
        "curves": curves,
    }
    Path(rl.run.output_dir, "demo_result.json").write_text(json.dumps(result, indent=1))
    print("\n=== result ===")
    if before is not None:
        print(f"held-out accuracy before RL: {100 * before:.1f}%")
    print(f"held-out accuracy after RL:  {100 * after:.1f}%   (seed {args.seed}, {result['rl_steps']} GRPO steps)")
    print(f"curves: {curves}; metrics: {rl.run.output_dir}/metrics.jsonl; total {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
