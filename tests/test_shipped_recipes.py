"""Every recipe the repository ships (recipes/, and the experiments' recipes under docs/) loads:
no unknown key, no refused setting. A recipe that rots fails here, not in a user's hands."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sail_rl.cli import main

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*REPO.glob("recipes/*.yaml"), *REPO.glob("docs/**/*.yaml")])


def command_for(recipe: Path) -> str:
    """The sail-rl command a recipe is for, from its top-level sections."""
    sections = set(yaml.safe_load(recipe.read_text()) or {})
    return "sft" if "train" in sections else "eval" if "eval" in sections else "pipeline" if "stages" in sections else "run"


def test_the_experiments_recipes_are_found():
    assert {"thinking_fusion_sft.yaml", "mathvista_grpo.yaml", "rl_mixed.yaml", "sft_auto.yaml"} <= {p.name for p in SHIPPED}


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_recipe_loads(recipe, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # recipes name repository-relative paths
    assert main([command_for(recipe), str(recipe.relative_to(REPO)), "--print-config"]) == 0, capsys.readouterr().err
