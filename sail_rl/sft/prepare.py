"""Create what a recipe's `bootstrap:` section allows when it is missing: the model, the data."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sail_rl.sft.config import SFTRecipe


def bootstrap(recipe: SFTRecipe, log: Callable[[str], None] = print) -> None:
    """Init `model.path` from `bootstrap.model_preset` and synthesise the first source's data
    file (into its folder) when they do not exist and the section asks for it."""
    boot = recipe.bootstrap
    model_dir = Path(recipe.model.path)
    if boot.model_preset and not (model_dir / "config.json").is_file():
        from sail_rl.model.builder import init_model

        init_model(boot.model_preset, model_dir, seed=boot.model_seed)
        log(f"sft: wrote a fresh '{boot.model_preset}' model to {model_dir}")
    if boot.synth_n and recipe.data.sources:
        first = Path(recipe.data.sources[0].path)
        if not first.is_file():
            from sail_rl.data.synth import generate_dataset

            generate_dataset(first.parent, n=boot.synth_n, seed=boot.synth_seed, eval_n=boot.synth_eval_n,
                             families=boot.synth_families or None, difficulty=boot.synth_difficulty)
            log(f"sft: wrote {boot.synth_n} synthetic samples (+{boot.synth_eval_n} held out) to {first.parent}")
