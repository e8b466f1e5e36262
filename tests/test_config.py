"""Recipes: YAML -> dataclasses, overrides, unknown keys and wrong types as one-line errors."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal

import pytest

from sail_rl.config import dump_yaml, from_dict, load_recipe
from sail_rl.errors import ConfigError


@dataclass
class Inner:
    learning_rate: float = 1e-6
    micro_batch_size: int = 2
    mode: Literal["token-mean", "seq-mean"] = "token-mean"


@dataclass
class Recipe:
    trainer: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    seed: int = 0
    name: str | None = None


def _write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_yaml_and_overrides(tmp_path):
    p = _write(tmp_path, "trainer:\n  learning_rate: 2.0e-6\n  micro_batch_size: 4\ntags: [a, b]\n")
    r = load_recipe(Recipe, p, ["trainer.mode=seq-mean", "seed=7"])
    assert r.trainer.learning_rate == 2e-6 and r.trainer.micro_batch_size == 4
    assert r.trainer.mode == "seq-mean" and r.seed == 7 and r.tags == ["a", "b"]
    assert "learning_rate: 2.0e-06" in dump_yaml(r)


def test_unknown_key_names_line_and_nearest(tmp_path):
    p = _write(tmp_path, "seed: 1\ntrainer:\n  learning_rte: 1.0e-6\n")
    with pytest.raises(ConfigError) as exc:
        load_recipe(Recipe, p)
    msg = str(exc.value)
    assert f"{p}:3" in msg and "'trainer.learning_rte'" in msg and "did you mean 'learning_rate'" in msg
    assert "\n" not in msg


def test_wrong_type_names_expected_type(tmp_path):
    p = _write(tmp_path, "trainer:\n  micro_batch_size: two\n")
    with pytest.raises(ConfigError, match=r"r.yaml:2: 'trainer.micro_batch_size' expects int, got str 'two'"):
        load_recipe(Recipe, p)
    with pytest.raises(ConfigError, match="must be one of token-mean, seq-mean, got 'tokenmean'; did you mean 'token-mean'"):
        from_dict(Recipe, {"trainer": {"mode": "tokenmean"}})


def test_override_of_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="unknown key 'sed'.*did you mean 'seed'"):
        load_recipe(Recipe, None, ["sed=3"])


def test_missing_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(Recipe, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_recipe(Recipe, _write(tmp_path, "trainer: [unclosed\n"))


@pytest.mark.slow  # 10-26 s: too heavy for make test-fast; make test (CI) runs it
def test_cli_unknown_subcommand_state_and_exit_codes(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "sail_rl.cli", *a], capture_output=True, text=True)  # noqa: E731
    out = run("init-model", "--preset", "2b", "--out", str(tmp_path / "x"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "--tokenizer" in out.stderr and "Traceback" not in out.stderr
    debug = run("--debug", "init-model", "--preset", "2b", "--out", str(tmp_path / "x"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr
