"""Before `sail-rl sft` spends anything: check its inputs exist, then create what the recipe's
`bootstrap:` section names (and only that: see `BootstrapConfig`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sail_rl.errors import ConfigError, DataError
from sail_rl.sft.config import SFTRecipe


def _same(a: str | Path, b: str | Path | None) -> bool:
    return b is not None and Path(a).resolve() == Path(b).resolve()


def _synth_creates(path: str | Path, recipe: SFTRecipe) -> bool:
    """True when bootstrap's data generator writes `path` (data.jsonl, or eval.jsonl with synth_eval_n)."""
    boot, path = recipe.bootstrap, Path(path)
    if not boot.synth_dir or not _same(path.parent, boot.synth_dir):
        return False
    fresh = not (path.parent / "data.jsonl").is_file()  # the generator writes both files at once
    return fresh and (path.name == "data.jsonl" or (path.name == "eval.jsonl" and boot.synth_eval_n > 0))


def check_inputs(recipe: SFTRecipe, train: bool = True) -> None:
    """One-line errors for a missing model or data file that bootstrap will not create."""
    from sail_rl.rundir import check_model_folder

    model = Path(recipe.model.path)
    if not (model / "config.json").is_file() and not _same(model, recipe.bootstrap.model_path):
        hint = f"sail-rl init-model --preset tiny --out {model}"
        raise ConfigError(f"model.path {model} has no model (no config.json); fix the path, create it with `{hint}`, "
                          f"or set bootstrap.model_path={model} and bootstrap.model_preset to let this recipe create it")
    if (model / "config.json").is_file():
        check_model_folder(model, "model.path")
    files = [(f"data.sources[{i}].path", s.path) for i, s in enumerate(recipe.data.sources)] if train else []
    if recipe.format_eval.data_file:
        files.append(("format_eval.data_file", recipe.format_eval.data_file))
    for key, path in files:
        if not Path(path).is_file() and not _synth_creates(path, recipe):
            raise DataError(f"{key}: data file not found: {path}; fix the path, write it with `sail-rl data synth "
                            f"--out {Path(path).parent} ...`, or set bootstrap.synth_dir to let this recipe create it")


def bootstrap(recipe: SFTRecipe, log: Callable[[str], None] = print) -> None:
    """Init `bootstrap.model_path` and synthesise `bootstrap.synth_dir` when they are missing."""
    boot = recipe.bootstrap
    if _same(recipe.model.path, boot.model_path) and not (Path(boot.model_path) / "config.json").is_file():
        from sail_rl.model.builder import init_model
        from sail_rl.rundir import make_readable

        init_model(boot.model_preset, boot.model_path, seed=boot.model_seed)
        make_readable(boot.model_path)
        log(f"sft: bootstrap wrote a fresh '{boot.model_preset}' model to {boot.model_path}")
    wanted = [s.path for s in recipe.data.sources] + [recipe.format_eval.data_file or ""]
    if any(p and not Path(p).is_file() and _synth_creates(p, recipe) for p in wanted):
        from sail_rl.data.synth import generate_dataset

        generate_dataset(boot.synth_dir, n=boot.synth_n, seed=boot.synth_seed, eval_n=boot.synth_eval_n,
                         families=boot.synth_families or None, difficulty=boot.synth_difficulty,
                         teacher_error=boot.synth_teacher_error or None)
        log(f"sft: bootstrap wrote {boot.synth_n} synthetic samples (+{boot.synth_eval_n} held out) to {boot.synth_dir}")
