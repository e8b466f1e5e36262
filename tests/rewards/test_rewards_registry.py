"""Registry, plug-in loading and the recipe config: each failure is one clear RewardError/ConfigError."""

from __future__ import annotations

import textwrap

import pytest

from rewards import RewardInput, RewardScorer, RewardsConfig, RewardSpec, get_reward, register_reward
from rewards.registry import load_reward_path
from sail_rl.config import from_dict
from sail_rl.errors import ConfigError, RewardError


def test_builtins_are_registered():
    for name in ("format", "accuracy", "overlong", "repetition", "think_quality", "judging", "llm_verifier"):
        assert callable(get_reward(name))


def test_duplicate_names_are_rejected_with_the_valid_names():
    @register_reward("test_only_unique_reward")
    def first(inputs, **kwargs):
        return [1.0] * len(inputs)

    with pytest.raises(RewardError, match="already registered.*registered: .*accuracy"):
        @register_reward("test_only_unique_reward")
        def second(inputs, **kwargs):
            return [0.0] * len(inputs)


def test_unknown_name_suggests_the_nearest_and_lists_valid_names():
    with pytest.raises(RewardError, match="unknown reward 'acuracy'; did you mean 'accuracy'.*valid names: .*format"):
        get_reward("acuracy")


def test_a_wrong_signature_cannot_be_registered():
    with pytest.raises(RewardError, match="is style sailrl .* but its signature \\(a, b\\) cannot take that call"):
        @register_reward("test_only_bad_signature")
        def bad(a, b):
            return []


def _write(tmp_path, text, name="my_rewards.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    "body, ref, message",
    [
        (None, "missing.py:score", r"reward 'missing.py:score': file not found: .*missing.py; fix the path \(a relative "
                                   r"path starts at the directory you run sail-rl from\)"),
        ("def other(inputs): return []\n", "{p}:score", r"defines no 'score'; callables there: other"),
        ("score = 3\n", "{p}:score", r"'score' is a int, not a function"),
        ("raise ImportError('no such dep')\n", "{p}:score", r"importing .*my_rewards.py failed: ImportError: no such dep"),
        ("def score(inputs):\n    return [\n", "{p}:score", r"importing .*my_rewards.py line 2 failed: SyntaxError: "),
        ("def score(inputs): return []\n", "{p}", r"has no function; write it as path/to/file.py:function_name"),
    ],
)
def test_plugin_failures_name_the_reward_and_the_fix(tmp_path, monkeypatch, body, ref, message):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, body) if body is not None else tmp_path / "missing.py"
    with pytest.raises(RewardError, match=message):
        load_reward_path(ref.format(p=path))


def test_spec_needs_exactly_one_of_name_and_path():
    with pytest.raises(ConfigError, match="exactly one of 'name'.*or 'path'"):
        from_dict(RewardsConfig, {"rewards": [{"name": "accuracy", "path": "x.py:f", "weight": 1.0}]})
    with pytest.raises(ConfigError, match="exactly one of"):
        from_dict(RewardsConfig, {"rewards": [{"weight": 1.0}]})


def test_weights_must_sum_to_one_and_the_message_says_the_sum():
    with pytest.raises(ConfigError, match=r"weights sum to 0.9 \(accuracy 0.8 \+ format 0.1\); make them sum to 1"):
        from_dict(RewardsConfig, {"rewards": [{"name": "accuracy", "weight": 0.8}, {"name": "format", "weight": 0.1}]})
    with pytest.raises(ConfigError, match="weight must be a finite number >= 0, got -1.0"):
        from_dict(RewardsConfig, {"rewards": [{"name": "accuracy", "weight": -1.0}]})


def test_unknown_reward_name_in_a_recipe_is_a_config_error():
    with pytest.raises(ConfigError, match="did you mean 'format'"):
        from_dict(RewardsConfig, {"rewards": [{"name": "formatt", "weight": 1.0}]})


def test_product_combination_needs_answer_and_format_roles():
    with pytest.raises(ConfigError, match="needs a reward with role 'format'"):
        from_dict(RewardsConfig, {"combine": "sail_rl_product", "rewards": [{"name": "accuracy"}]})
    cfg = from_dict(RewardsConfig, {"combine": "sail_rl_product",
                                    "rewards": [{"name": "accuracy"}, {"name": "repetition", "role": "format"}]})
    assert [s.resolved_role for s in cfg.rewards] == ["answer", "format"]


def test_a_custom_reward_from_a_file_gets_the_dataset_columns_and_reaches_the_total(tmp_path, monkeypatch):
    _write(tmp_path, """
        SEEN = []

        def score(inputs, bonus=0.0):
            SEEN.extend(x.extra["category"] for x in inputs)
            return [1.0 + bonus if x.extra["category"] == "geometry" else 0.0 for x in inputs]

        def trl_style(prompts, completions, solution, category, **kwargs):
            return [float(c == "geometry" and s == "4") for c, s in zip(category, solution)]
    """)
    monkeypatch.chdir(tmp_path)  # relative paths start at the working directory
    recipe = {"rewards": [
        {"name": "accuracy", "weight": 0.5},
        {"path": "my_rewards.py:score", "weight": 0.25, "kwargs": {"bonus": 1.0}, "style": "sailrl"},
        {"path": "my_rewards.py:trl_style", "weight": 0.25},
    ]}
    scorer = RewardScorer(from_dict(RewardsConfig, recipe))
    batch = [RewardInput("q", "\\boxed{4}", "4", extra={"category": "geometry"}),
             RewardInput("q", "\\boxed{4}", "4", extra={"category": "algebra"})]
    result = scorer.score(batch)
    module = scorer._rewards[1].loaded.fn.__globals__
    assert module["SEEN"] == ["geometry", "algebra"]
    assert result.components["score"] == [2.0, 0.0]
    assert result.components["trl_style"] == [1.0, 0.0]
    assert result.totals == [0.5 * 1 + 0.25 * 2 + 0.25 * 1, 0.5]


def test_a_trl_reward_needing_a_missing_column_says_which(tmp_path):
    _write(tmp_path, "def needs(prompts, completions, difficulty):\n    return [0.0] * len(prompts)\n")
    scorer = RewardScorer([RewardSpec(path=f"{tmp_path}/my_rewards.py:needs")])
    with pytest.raises(RewardError, match="reward 'needs' needs column\\(s\\) difficulty that the dataset lacks; columns: "):
        scorer.score([RewardInput("q", "r")])
