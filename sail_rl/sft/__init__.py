"""Supervised fine-tuning for SAIL-VL: LongCoT and thinking-fusion cold starts.

    from sail_rl.config import load_recipe
    from sail_rl.sft import SFTRecipe, SFTTrainer
    recipe = load_recipe(SFTRecipe, "recipes/thinking_fusion_sft.yaml", ["train.max_steps=50"])
    summary = SFTTrainer(recipe).train(resume=False)

Pieces: `config` (the recipe), `records` (random access to a data file's records),
`examples` (data sources, per-epoch mixtures, CoT records from rejection sampling), `masks`
(exact loss masks, collator), `loader` (micro-batches built on the fly, data-loader workers),
`loss` (padded and packed loss), `trainer` (the loop, sharded checkpoints, resume),
`checkpoint` (the atomic HF export, LoRA merge), `format_eval` (greedy check of the think /
direct formats). Heavy imports (torch, peft) stay in the
submodules; importing this package is cheap.
"""

from sail_rl.sft.config import SFTRecipe

__all__ = ["SFTRecipe", "SFTTrainer"]


def __getattr__(name):
    if name == "SFTTrainer":
        from sail_rl.sft.trainer import SFTTrainer

        return SFTTrainer
    raise AttributeError(name)
