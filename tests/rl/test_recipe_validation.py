"""`sail-rl run` recipes: every setting that would make a run a no-op or crash after Ray and
vLLM started is refused when the recipe loads, as one line citing where it was set."""

from __future__ import annotations

import pytest

from sail_rl.algorithms import advantage_names
from sail_rl.algorithms.registry import is_group_relative
from sail_rl.cli import main
from sail_rl.config import load_recipe
from sail_rl.errors import ConfigError
from sail_rl.rl.config import RunRecipe

RECIPE = "recipes/mathvista_grpo.yaml"


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.micro_batch_size=-1", "trainer.micro_batch_size must be >= 1, got -1"),
        ("trainer.micro_batch_size=0", "trainer.micro_batch_size must be >= 1, got 0"),
        ("trainer.ppo_epochs=0", "trainer.ppo_epochs must be >= 1, got 0"),
        ("trainer.learning_rate=nan", "'trainer.learning_rate' must be a finite number, got 'nan'"),
        ("trainer.learning_rate=inf", "'trainer.learning_rate' must be a finite number, got 'inf'"),
        ("trainer.learning_rate=.inf", "'trainer.learning_rate' must be a finite number, got inf"),
        ("rollout.temperature=nan", "'rollout.temperature' must be a finite number"),
        ("algorithm.kl_coef=nan", "'algorithm.kl_coef' must be a finite number"),
        ("trainer.max_grad_norm=0", "trainer.max_grad_norm must be > 0"),
        ("trainer.lora.enabled=true trainer.lora.target_modules=[]", "LoRA would train no parameters"),
        ("trainer.adam_betas=[0.9,1.5]", r"trainer.adam_betas must be in \[0, 1\), got 1.5"),
        ("rollout.top_k=-5", "rollout.top_k must be >= -1"),
        ("resources.reward_workers=0", "resources.reward_workers must be >= 1"),
    ],
)
def test_bad_setting_is_refused_citing_the_override(override, message):
    overrides = override.split()
    with pytest.raises(ConfigError, match=message) as exc:
        load_recipe(RunRecipe, RECIPE, overrides)
    assert str(exc.value).startswith(f"command-line override '{overrides[-1]}': ")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("estimator", [n for n in advantage_names() if is_group_relative(n)])
def test_group_relative_estimator_with_one_rollout_per_prompt_is_refused(estimator):
    # all advantages are 0 by construction: the run would train nothing
    with pytest.raises(ConfigError, match=f"{estimator} compares the rollouts of a prompt.*every advantage is 0"):
        load_recipe(RunRecipe, RECIPE, [f"algorithm.advantage_estimator={estimator}", "rollout.rollouts_per_prompt=1",
                                        "trainer.mini_batch_size=16", "trainer.micro_batch_size=16"])


def test_greedy_sampling_with_a_group_relative_estimator_is_refused():
    with pytest.raises(ConfigError, match=r"^command-line override 'rollout.temperature=0': rollout.temperature 0 \(greedy\)"):
        load_recipe(RunRecipe, RECIPE, ["rollout.temperature=0"])


def test_group_relative_set_is_the_outcome_baselines():
    assert sorted(n for n in advantage_names() if is_group_relative(n)) == ["dr_grpo", "grpo", "reinforce_pp_baseline", "rloo"]
    one = ["rollout.rollouts_per_prompt=1", "trainer.mini_batch_size=16", "trainer.micro_batch_size=16"]
    assert load_recipe(RunRecipe, RECIPE, ["algorithm.advantage_estimator=reinforce_pp", *one]).rollout.rollouts_per_prompt == 1


def test_error_in_the_file_cites_the_line_of_the_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(open(RECIPE).read().replace("ppo_epochs: 1", "ppo_epochs: 0"))
    assert "ppo_epochs: 0" in recipe.read_text()
    line = recipe.read_text().splitlines().index("  ppo_epochs: 0") + 1
    with pytest.raises(ConfigError, match=rf"^{recipe}:{line}: trainer.ppo_epochs must be >= 1, got 0$"):
        load_recipe(RunRecipe, recipe)


def test_override_of_a_key_in_the_file_cites_the_override_not_the_file_line():
    with pytest.raises(ConfigError) as exc:
        load_recipe(RunRecipe, RECIPE, ["trainer.learning_rate=-1"])
    assert str(exc.value) == "command-line override 'trainer.learning_rate=-1': trainer.learning_rate must be > 0, got -1.0"


def test_missing_model_path_exits_2_with_one_line(tmp_path, capsys):
    code = main(["run", RECIPE, f"model.path={tmp_path / 'nope'}", f"run.output_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().count("\n") == 0 and "model.path" in err and "has no model (no config.json)" in err


def test_model_max_tiles_is_refused_in_rl(tmp_path, capsys):
    # the rollout engines tile with the checkpoint's processor: an RL model.max_tiles would be ignored
    code = main(["run", RECIPE, "model.max_tiles=2", f"run.output_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and "model.max_tiles is an SFT setting" in err and err.strip().count("\n") == 0
