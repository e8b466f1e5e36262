"""`sail-rl export RUN_DIR [--step N] [--out DIR]`: a full HF model from a run's sharded checkpoint.

    sail-rl export runs/grpo                  # newest checkpoint -> runs/grpo/checkpoints/step_N/model
    sail-rl export runs/grpo --step 200 --out models/grpo-200

Checkpoints hold `torch.distributed.checkpoint` shards (one per trainer rank); the run writes a
full export only at its last step. RUN_DIR is an RL run's `run.output_dir` (recipe.yaml) or an SFT
run's `train.output_dir` (sft_recipe.yaml): both keep checkpoints/step_N in the same layout. This gathers the policy's weights (any world size, LoRA
merged) in one process and writes `save_pretrained` files with the processor, loadable by
`AutoModelForImageTextToText` and by `sail-rl run` / `sft` / `eval` as `model.path`.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="an RL or SFT run's output_dir (holds recipe.yaml or sft_recipe.yaml, and checkpoints/)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--out", default=None, help="output folder (default: CHECKPOINT/model)")
    parser.add_argument("--overwrite", action="store_true", help="empty --out first when it holds files")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from sail_rl.config import load_recipe
    from sail_rl.errors import ConfigError
    from sail_rl.rl.config import RunRecipe
    from sail_rl.sft.config import SFTRecipe
    from sail_rl.trainer.checkpoint import SHARDS_DIR, checkpoint_dir, latest_checkpoint
    from sail_rl.trainer.policy_trainer import PolicyTrainer

    from sail_rl.sft.trainer import RECIPE_FILE as SFT_RECIPE

    run_dir = Path(args.run_dir)
    sft = (run_dir / SFT_RECIPE).is_file()
    if not sft and not (run_dir / "recipe.yaml").is_file():
        raise ConfigError(f"{run_dir}: no recipe.yaml or {SFT_RECIPE}; give the output_dir of a `sail-rl run` or `sail-rl sft`")
    path = latest_checkpoint(run_dir) if args.step is None else checkpoint_dir(run_dir) / f"step_{args.step}"
    if path is None or not (path / SHARDS_DIR).is_dir():
        raise ConfigError(f"{run_dir}: no sharded checkpoint {'' if args.step is None else f'step_{args.step} '}"
                          f"in {checkpoint_dir(run_dir)}; pass --step with one that exists")
    out = Path(args.out) if args.out else path / "model"
    if args.out:  # a folder of the user's: never replace what it holds without --overwrite
        from sail_rl.rundir import claim_output_dir

        claim_output_dir(out, "export", {"checkpoint": str(path.resolve())}, flag="--out", overwrite=args.overwrite,
                         same_job_reuse=True, inputs=[run_dir])
    if sft:
        _export_sft(load_recipe(SFTRecipe, str(run_dir / SFT_RECIPE), []), path / SHARDS_DIR, out)
        print(f"exported {path.name} of {run_dir} to {out}")
        return 0
    recipe = load_recipe(RunRecipe, str(run_dir / "recipe.yaml"), [])
    # the policy alone: no reference model or critic is built for an export
    trainer_cfg = dataclasses.replace(recipe.trainer, use_reference=False, strategy="ddp")
    algo = dataclasses.replace(recipe.algorithm, advantage_estimator="grpo")
    trainer = PolicyTrainer(recipe.model.path, trainer_cfg, algo, dtype=recipe.model.dtype,
                            attn_implementation=recipe.model.attn_implementation)
    trainer.load_weights(str(path / SHARDS_DIR))
    trainer.save_pretrained(str(out))
    from sail_rl.rundir import make_readable

    make_readable(out)  # safetensors writes 0600
    print(f"exported {path.name} of {run_dir} to {out}")
    return 0


def _export_sft(recipe, shards_dir, out) -> None:
    """The SFT model (LoRA wrapped as trained) with the checkpoint's weights, saved merged in HF layout."""
    from sail_rl.model.builder import load_processor
    from sail_rl.sft.checkpoint import save_model_files
    from sail_rl.sft.trainer import build_model
    from sail_rl.trainer.checkpoint import load_sharded

    model = build_model(recipe, recipe.model.path)
    load_sharded(shards_dir, {"model": (model, None)})
    out.mkdir(parents=True, exist_ok=True)
    save_model_files(model, load_processor(recipe.model.path), out)
