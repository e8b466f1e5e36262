"""data.prompt_mode mixed: each prompt think or direct, fixed by the seed; think_ratio acts or is refused."""

from __future__ import annotations

import pytest

from sail_rl.data.mathvista import DataConfig
from sail_rl.data.prompts import prompt_modes
from sail_rl.errors import ConfigError


def test_mixed_modes_have_the_ratio_and_depend_on_the_seed_only():
    cfg = DataConfig(prompt_mode="mixed", think_ratio=0.25)
    modes = prompt_modes(cfg, 200, "0:train")
    assert modes.count("think") == 50 and modes.count("direct") == 150
    assert modes == prompt_modes(cfg, 200, "0:train")
    assert modes != prompt_modes(cfg, 200, "1:train")


def test_single_mode_recipes_keep_their_mode():
    assert prompt_modes(DataConfig(prompt_mode="think"), 3, "0") == ["think"] * 3


@pytest.mark.parametrize("mode, ratio, match", [
    ("mixed", None, "mixed needs data.think_ratio in"),
    ("mixed", 1.0, "mixed needs data.think_ratio in"),
    ("direct", 0.5, "think_ratio only acts with data.prompt_mode mixed"),
])
def test_think_ratio_acts_or_is_refused(mode, ratio, match):
    with pytest.raises(ConfigError, match=match):
        DataConfig(train_files=["x.jsonl"], prompt_mode=mode, think_ratio=ratio).validate()
