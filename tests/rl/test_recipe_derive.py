"""Values an RL recipe derives once at load (`RunRecipe.derive`): the trainer's temperature
from the rollout's, the seeds from run.seed, absolute paths; a derived key set in a recipe
is refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollouts.types import RolloutConfig, SamplingConfig
from sail_rl.config import dump_yaml, load_recipe, to_dict
from sail_rl.data.mathvista import DataConfig
from sail_rl.errors import ConfigError
from sail_rl.rl.config import RunRecipe
from sail_rl.trainer.config import TrainerConfig

RECIPE = "recipes/mathvista_grpo.yaml"
SEEDED = ("data", "trainer", "rollout")


def _seeds(recipe: RunRecipe) -> dict[str, int | None]:
    return {s: getattr(recipe, s).seed for s in SEEDED}


def test_trainer_temperature_in_a_recipe_is_refused_naming_its_source(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_recipe(RunRecipe, RECIPE, ["trainer.temperature=0.7"])
    assert str(exc.value) == ("command-line override 'trainer.temperature=0.7': 'trainer.temperature' is not a recipe key: "
                              "it is set from rollout.temperature (the trainer's log-probs use the sampling temperature); drop it")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(open(RECIPE).read().replace("  ppo_epochs: 1\n", "  ppo_epochs: 1\n  temperature: 1.0\n"))
    line = recipe.read_text().splitlines().index("  temperature: 1.0", 30) + 1
    with pytest.raises(ConfigError, match=rf"^{recipe}:{line}: 'trainer.temperature' is not a recipe key: it is set from rollout.temperature"):
        load_recipe(RunRecipe, recipe)


def test_trainer_temperature_is_the_sampling_temperature():
    assert load_recipe(RunRecipe, RECIPE, ["rollout.temperature=0.7"]).trainer.temperature == 0.7
    assert load_recipe(RunRecipe, RECIPE).trainer.temperature == 1.0
    # greedy rollouts (allowed for a non-group estimator): log-probs of the model itself, as before
    greedy = load_recipe(RunRecipe, RECIPE, ["rollout.temperature=0", "algorithm.advantage_estimator=reinforce_pp"])
    assert greedy.trainer.temperature == 1.0


def test_seed_zero_keeps_every_seed_at_its_old_default():
    recipe = load_recipe(RunRecipe, RECIPE)
    assert recipe.run.seed == 0
    assert _seeds(recipe) == {"data": DataConfig().seed, "trainer": TrainerConfig().seed, "rollout": RolloutConfig().seed} == dict.fromkeys(SEEDED, 0)


def test_run_seed_reaches_every_seed_not_set():
    # the demo's `--seed 1` is `run.seed=1`: before, it left data/trainer/rollout at seed 0
    assert _seeds(load_recipe(RunRecipe, RECIPE, ["run.seed=1"])) == dict.fromkeys(SEEDED, 1)
    mixed = load_recipe(RunRecipe, RECIPE, ["run.seed=3", "trainer.seed=5", "data.seed=0", "rollout.seed=null"])
    assert _seeds(mixed) == {"data": 0, "trainer": 5, "rollout": None}  # set: kept (null: an unseeded engine)


def test_a_dumped_recipe_loads_back_the_same(tmp_path):
    recipe = load_recipe(RunRecipe, RECIPE, ["run.seed=4", "trainer.seed=9", "rollout.temperature=0.8"])
    dumped = tmp_path / "recipe.yaml"
    dumped.write_text(dump_yaml(recipe))
    assert "temperature" not in to_dict(recipe)["trainer"]
    again = load_recipe(RunRecipe, dumped)
    assert to_dict(again) == to_dict(recipe) and again.trainer.temperature == 0.8 and _seeds(again) == {"data": 4, "trainer": 9, "rollout": 4}


def test_relative_paths_become_absolute_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(RunRecipe, Path(os.path.dirname(__file__)).parents[1] / RECIPE,
                         ["model.path=ckpt/m", "data.eval_files=[e.jsonl, /abs/e2.jsonl]", "data.image_root=imgs",
                          "run.output_dir=out", "rollout.work_dir=w"])
    cwd = str(tmp_path)
    assert recipe.model.path == f"{cwd}/ckpt/m" and recipe.run.output_dir == f"{cwd}/out"
    assert recipe.data.train_files == [f"{cwd}/data/synth/data.jsonl"] and recipe.data.eval_files == [f"{cwd}/e.jsonl", "/abs/e2.jsonl"]
    assert recipe.data.image_root == f"{cwd}/imgs" and recipe.rollout.work_dir == f"{cwd}/w"
    assert load_recipe(RunRecipe, Path(os.path.dirname(__file__)).parents[1] / RECIPE).data.image_root is None


def test_sampling_keys_are_rollout_keys_declared_once():
    recipe = load_recipe(RunRecipe, RECIPE, ["rollout.top_p=0.5", "rollout.stop=[END]", "rollout.seed=7"])
    sampling = recipe.rollout.sampling()
    assert type(sampling) is SamplingConfig and (sampling.top_p, sampling.stop, sampling.seed, sampling.n) == (0.5, ["END"], 7, 8)
    sampling.stop.append("x")  # a copy: the recipe's list is not shared
    assert recipe.rollout.stop == ["END"]
    with pytest.raises(ConfigError, match=r"^command-line override 'rollout.top_p=0': rollout.top_p must be in \(0, 1\]"):
        load_recipe(RunRecipe, RECIPE, ["rollout.top_p=0"])
