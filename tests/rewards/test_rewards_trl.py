"""Every reward in `trl.rewards`, plugged in unchanged, scores exactly what TRL's GRPOTrainer gives.

The TRL side is TRL's own `GRPOTrainer._calculate_rewards` (its reward-calling code, run on
a stand-in `self`) followed by its combination, `nansum(rewards_per_func * weights)`; the
sail-rl side is a `sail-rl` recipe naming a file that only re-exports TRL's functions.
"""

from __future__ import annotations

import math
import textwrap
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from rewards import RewardInput, RewardScorer, RewardSpec

pytest.importorskip("trl")
pytest.importorskip("math_verify")

from trl.data_utils import prepare_multimodal_messages  # noqa: E402
from trl.trainer.grpo_trainer import GRPOTrainer  # noqa: E402

TRL_FILE = """
from trl.rewards import (accuracy_reward, get_cosine_scaled_reward, get_repetition_penalty_reward,
                         get_soft_overlong_punishment, reasoning_accuracy_reward, think_format_reward)

cosine = get_cosine_scaled_reward(max_len=12)
repetition = get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0)
overlong = get_soft_overlong_punishment(max_completion_len=10, soft_punish_cache=4)
"""
NAMES = ["think_format_reward", "accuracy_reward", "reasoning_accuracy_reward", "cosine", "repetition", "overlong"]
WEIGHTS = [0.1, 0.3, 0.2, 0.2, 0.1, 0.1]

RESPONSES = [
    "<think>\nhalf of two thirds</think>\nThe answer is \\boxed{\\frac{1}{3}}",
    "<think>guess</think> \\boxed{\\frac{1}{2}}",
    "no think at all \\boxed{\\frac{1}{3}}",
    "<think>a a a a a a</think> the answer is 7",
    "\\boxed{12}",
    "<think>twelve</think>\\boxed{12}",
]
SOLUTIONS = ["\\frac{1}{3}", "\\frac{1}{3}", "\\frac{1}{3}", "7", "12", "not latex at all ((("]
IDS = [[1] * n for n in (3, 6, 9, 12, 7, 15)]  # token ids: their lengths drive cosine and overlong


def _rows():
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    return image, messages


def _trl_values() -> tuple[torch.Tensor, torch.Tensor]:
    """rewards_per_func [batch, funcs] and the totals, computed by TRL's own code."""
    namespace: dict = {}
    exec(TRL_FILE, namespace)  # the same functions, built the same way, outside sail-rl
    image, messages = _rows()
    funcs = [namespace[n] for n in NAMES]
    inputs = [{"prompt": messages, "images": [image], "solution": s} for s in SOLUTIONS]
    prompts = [prepare_multimodal_messages(messages, images=[image]) for _ in SOLUTIONS]
    completions = [[{"role": "assistant", "content": r}] for r in RESPONSES]
    trainer = SimpleNamespace(
        accelerator=SimpleNamespace(device=torch.device("cpu"), is_main_process=True), reward_funcs=funcs,
        reward_processing_classes=[None] * len(funcs), reward_func_names=NAMES,
        state=SimpleNamespace(global_step=0), args=SimpleNamespace(report_to=[]),
        _log_completion_extra=lambda *a, **k: None, _log_metric=lambda *a, **k: None, environments=None,
    )
    per_func = GRPOTrainer._calculate_rewards(trainer, inputs, prompts, completions, IDS)
    totals = (per_func * torch.tensor(WEIGHTS).unsqueeze(0)).nansum(dim=1)
    return per_func, totals


def test_every_trl_reward_gives_trls_values_and_totals(tmp_path):
    (tmp_path / "trl_rewards.py").write_text(textwrap.dedent(TRL_FILE))
    specs = [RewardSpec(path=f"{tmp_path}/trl_rewards.py:{n}", weight=w) for n, w in zip(NAMES, WEIGHTS)]
    scorer = RewardScorer(specs)  # no style: key: a path reward is called TRL's way
    image, messages = _rows()
    batch = [RewardInput("What is it?", r, s, images=[image], prompt_messages=messages, response_ids=ids)
             for r, s, ids in zip(RESPONSES, SOLUTIONS, IDS)]
    result = scorer.score(batch)

    per_func, totals = _trl_values()
    for j, name in enumerate(NAMES):
        ours = [math.nan if v is None else v for v in result.components[name]]
        theirs = per_func[:, j].tolist()
        assert ours == pytest.approx(theirs, nan_ok=True, abs=1e-6), name
    assert result.totals == pytest.approx(totals.tolist(), abs=1e-6)
    # the values are not trivial: each reward separates the samples, and None reaches both sides
    assert all(len({v for v in result.components[n] if v is not None}) > 1 for n in NAMES)
    assert result.components["accuracy_reward"][5] is None and math.isnan(per_func[5, 1])


def test_plain_text_prompts_give_string_completions():
    seen = {}

    def trl_fn(prompts, completions, completion_ids, solution, **kwargs):
        seen.update(prompts=prompts, completions=completions, completion_ids=completion_ids, solution=solution, **kwargs)
        return [1.0] * len(completions)

    from rewards.contract import call_reward

    batch = [RewardInput("2+2?", "4", "4", extra={"category": "sum"}, response_ids=[5])]
    call_reward(trl_fn, "trl", batch, {"scale": 2}, "trl_fn")
    assert seen["prompts"] == ["2+2?"] and seen["completions"] == ["4"] and seen["completion_ids"] == [[5]]
    assert seen["solution"] == ["4"] and seen["category"] == ["sum"] and seen["scale"] == 2
