"""Calling styles (verl, easyr1, trl, sailrl) chosen explicitly, and every plug-in mistake found at
recipe load as one line with exit code 2, in both run modes."""

from __future__ import annotations

import re
import textwrap
from concurrent.futures import Future

import pytest

from rewards import RewardInput, RewardScorer, RewardSpec
from rewards.contract import call_reward
from sail_rl.errors import ConfigError, RewardError

# Written as a verl user writes a custom reward (verl's custom_reward_function.path).
VERL_FILE = '''
import re


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    match = re.search(r"\\\\boxed\\{([^}]*)\\}", solution_str)
    pred = match.group(1).strip() if match else None
    acc = pred is not None and pred == ground_truth
    return {"score": 1.0 if acc else -0.5, "acc": acc, "pred": pred or ""}
'''

# Written as an EasyR1 user writes one (EasyR1's examples/reward_function/math.py shape).
EASYR1_FILE = '''
import re
from typing import Any


def format_reward(response: str) -> float:
    return 1.0 if re.fullmatch(r"<think>.*</think>.*\\\\boxed\\{.*\\}.*", response, re.DOTALL) else 0.0


def accuracy_reward(response: str, ground_truth: str) -> float:
    match = re.search(r"\\\\boxed\\{([^}]*)\\}", response)
    return 1.0 if match and match.group(1).strip() == ground_truth else 0.0


def compute_score(reward_inputs: list[dict[str, Any]], format_weight: float = 0.1) -> list[dict[str, float]]:
    if not isinstance(reward_inputs, list):
        raise ValueError("Please use `reward_type=batch` for math reward function.")
    scores = []
    for reward_input in reward_inputs:
        format_score = format_reward(reward_input["response"])
        accuracy_score = accuracy_reward(reward_input["response"], reward_input["ground_truth"])
        scores.append({
            "overall": (1 - format_weight) * accuracy_score + format_weight * format_score,
            "format": format_score,
            "accuracy": accuracy_score,
        })
    return scores
'''

BATCH = [
    RewardInput("q", "<think>x</think> \\boxed{4}", "4", extra={"pid": "a", "data_source": "mathvista"}, response_ids=[1, 2]),
    RewardInput("q", "\\boxed{5}", "4", extra={"pid": "b"}, response_ids=[1, 2, 3]),
]


def _file(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_verl_reward_runs_unchanged(tmp_path):
    path = _file(tmp_path, VERL_FILE, "verl_reward.py")
    result = RewardScorer([RewardSpec(path=f"{path}:compute_score", style="verl")]).score(BATCH)
    assert result.components["compute_score"] == [1.0, -0.5]
    assert result.components["compute_score/acc"] == [1.0, 0.0]  # logged; the text "pred" is not a metric
    assert "compute_score/pred" not in result.components
    assert result.totals == [1.0, -0.5]


def test_verl_receives_data_source_ground_truth_and_extra_info():
    seen = []

    def compute_score(data_source, solution_str, ground_truth, extra_info=None):
        seen.append((data_source, solution_str, ground_truth, extra_info["pid"]))
        return 1

    call_reward(compute_score, "verl", BATCH, {}, "compute_score")
    assert seen == [("mathvista", BATCH[0].response, "4", "a"), (None, BATCH[1].response, "4", "b")]


def test_an_easyr1_reward_runs_unchanged_with_its_kwargs(tmp_path):
    path = _file(tmp_path, EASYR1_FILE, "easyr1_reward.py")
    spec = RewardSpec(path=f"{path}:compute_score", style="easyr1", kwargs={"format_weight": 0.2}, label="math")
    result = RewardScorer([spec]).score(BATCH)
    assert result.components["math"] == pytest.approx([1.0, 0.0])
    assert result.components["math/format"] == [1.0, 0.0] and result.components["math/accuracy"] == [1.0, 0.0]


def test_easyr1_receives_response_length_from_the_token_ids():
    seen = []

    def compute_score(reward_inputs):
        seen.extend(reward_inputs)
        return [{"overall": 0.0} for _ in reward_inputs]

    call_reward(compute_score, "easyr1", BATCH, {}, "compute_score")
    assert seen == [{"response": BATCH[0].response, "response_length": 2, "ground_truth": "4"},
                    {"response": BATCH[1].response, "response_length": 3, "ground_truth": "4"}]


def test_a_style_marker_in_the_module_chooses_the_style(tmp_path):
    path = _file(tmp_path, 'REWARD_STYLE = "verl"\n' + VERL_FILE, "marked.py")
    assert RewardScorer([RewardSpec(path=f"{path}:compute_score")]).score(BATCH).totals == [1.0, -0.5]
    with pytest.raises(ConfigError, match="the recipe says style: easyr1 but .*marked.py sets REWARD_STYLE = 'verl'"):
        RewardSpec(path=f"{path}:compute_score", style="easyr1").validate()


@pytest.mark.parametrize("text, style, message", [
    ("def score(inputs, bonus=0.0):\n    return [0.0] * len(inputs)\n", None,
     r"reward 'score' is style trl \(fn\(prompts, completions, completion_ids, \*\*columns\)\) but its signature "
     r"\(inputs, bonus=0.0\) cannot take that call: it takes none of prompts, completions, completion_ids"),
    ("def compute_score(data_source, solution_str, ground_truth):\n    return 0.0\n", "verl",
     r"is style verl .* cannot take that call: got an unexpected keyword argument 'extra_info'"),
    ("def compute_score(reward_inputs, tokenizer):\n    return []\n", "easyr1",
     r"is style easyr1 .* cannot take that call: missing a required argument: 'tokenizer'"),
])
def test_a_signature_that_cannot_take_its_style_is_refused_at_load(tmp_path, text, style, message):
    path = _file(tmp_path, text, "sig.py")
    fn = text.split("(")[0].split()[-1]
    with pytest.raises(ConfigError, match=message):
        RewardSpec(path=f"{path}:{fn}", style=style).validate()


def test_kwargs_a_reward_does_not_take_are_refused_at_load():
    with pytest.raises(ConfigError, match=r"reward 'format' is style sailrl .* with kwargs \['mdoe'\] cannot take "
                                          r"that call: got an unexpected keyword argument 'mdoe'"):
        RewardSpec(name="format", kwargs={"mdoe": "direct"}).validate()
    with pytest.raises(ConfigError, match="'accuracy' is registered with style sailrl, the recipe says style: trl"):
        RewardSpec(name="accuracy", style="trl").validate()


# ---------------------------------------------------------------- at recipe load, via the CLI


RECIPE = """
model: {{path: runs/none}}
data: {{train_files: [data.jsonl]}}
rewards:
  - {{path: {path}, weight: 1.0}}
run: {{mode: {mode}}}
"""


@pytest.mark.parametrize("mode", ["ray", "local"])
@pytest.mark.parametrize("body, ref, message", [
    (None, "nowhere.py:score", "file not found: .*nowhere.py; fix the path \\(a relative path starts at the directory "
                               "you run sail-rl from\\)"),
    ("def score(prompts, completions, **kw):\n    return [\n", "rw.py:score", "rw.py line 2 failed: SyntaxError"),
    ("def other(prompts, completions, **kw):\n    return []\n", "rw.py:score", "defines no 'score'; callables there: other"),
])
def test_plugin_mistakes_exit_2_with_one_line_before_anything_starts(tmp_path, monkeypatch, capsys, mode, body, ref, message):
    from sail_rl.cli import main

    monkeypatch.chdir(tmp_path)
    if body is not None:
        (tmp_path / "rw.py").write_text(body)
    (tmp_path / "r.yaml").write_text(RECIPE.format(path=ref, mode=mode))
    assert main(["run", "r.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sail-rl run: error: r.yaml:")
    assert re.search(message, err), err


def test_a_relative_path_starts_at_the_working_directory_not_the_recipe(tmp_path, monkeypatch):
    from sail_rl.config import load_recipe
    from sail_rl.rl.config import RunRecipe

    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text(RECIPE.format(path="rw.py:score", mode="local"))
    (tmp_path / "recipes" / "rw.py").write_text("def score(completions, **kw):\n    return [1.0] * len(completions)\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"file not found: {tmp_path}/rw.py"):
        load_recipe(RunRecipe, "recipes/r.yaml")
    (tmp_path / "rw.py").write_text("def score(completions, **kw):\n    return [0.5] * len(completions)\n")
    recipe = load_recipe(RunRecipe, "recipes/r.yaml")
    assert recipe.rewards[0].path == f"{tmp_path}/rw.py:score"  # made absolute once, for the reward actors
    assert RewardScorer(recipe.rewards_config()).score(BATCH).totals == [0.5, 0.5]


# ---------------------------------------------------------------- Ray mode: one line, not a Ray dump


def test_a_reward_error_from_a_ray_actor_is_the_one_line_error():
    from ray.exceptions import RayTaskError

    from rewards.pool import one_line_errors

    cause = RewardError("reward 'x' raised on sample 0: ValueError: bad; fix the reward or set on_error: zero")
    remote = Future()
    remote.set_exception(RayTaskError("RewardActor.score", "Traceback (most recent call last):\n ... 70 lines", cause)
                         .as_instanceof_cause())
    with pytest.raises(RewardError) as info:
        one_line_errors(remote).result()
    assert str(info.value) == str(cause) and type(info.value) is RewardError
    assert isinstance(info.value.__cause__, RayTaskError)  # the dump, for --debug
    ok = Future()
    ok.set_result(42)
    assert one_line_errors(ok).result() == 42
