"""A step's reward metrics have one owner: computed once over every group the step scored,
across dynamic-sampling refill rounds (the RL loop with a fake engine and the real scorer)."""

from __future__ import annotations

import pytest
from PIL import Image

from rewards import RewardSpec, ScoringPool, register_reward
from rollouts.types import Rollout
from sail_rl.data.mathvista import MathVistaSample
from sail_rl.rl.config import RunRecipe
from sail_rl.rl.loop import RLLoop


@register_reward("t_step_answer")
def t_step_answer(inputs):
    """1.0 for the response "right", 0.0 for "wrong"; raises on "boom" (on_error: zero counts it)."""
    if any(x.response == "boom" for x in inputs):
        raise ValueError("boom")
    return [1.0 if x.response == "right" else 0.0 for x in inputs]


class FakeEngine:
    """Answers prompt i with a fixed list of responses: pid p0 all right (uninformative), p1 mixed."""

    RESPONSES = {"p0": ["right", "right"], "p1": ["right", "boom"], "p2": ["wrong", "wrong"], "p3": ["right", "wrong"]}

    def __init__(self):
        self.seen_inputs = []

    def generate(self, requests, sampling):
        out = []
        for req in requests:
            for text in self.RESPONSES[req.metadata["pid"]]:
                out.append(Rollout(req.request_id, 0, [1, 2], [3, 4, 5], [-0.1] * 3, text, "stop"))
        return out

    def generate_iter(self, requests, sampling):
        yield self.generate(requests, sampling)


@pytest.fixture
def samples(tmp_path):
    image = tmp_path / "img.png"
    Image.new("RGB", (8, 8), (0, 0, 255)).save(image)
    return [MathVistaSample(pid=f"p{i}", question=f"q{i}", image=str(image), answer="right", question_type="free_form",
                            answer_type="text", metadata={"category": "toy"}) for i in range(4)]


class PidRequests(RLLoop):
    def _requests(self, indices, samples, tag):
        requests = super()._requests(indices, samples, tag)
        for r, s in zip(requests, samples):
            r.metadata["pid"] = s.pid
        return requests


def test_reward_metrics_are_computed_once_over_every_refill_round(samples):
    recipe = RunRecipe()
    recipe.rewards = [RewardSpec(name="t_step_answer", on_error="zero")]
    recipe.rollout.rollouts_per_prompt = 2
    recipe.run.prompts_per_step = 2
    recipe.run.max_refill_rounds = 3
    recipe.data.shuffle = False
    with ScoringPool(recipe.rewards_config(), max_workers=1) as scorer:
        loop = PidRequests(recipe, samples, [], trainer=None, rollout=FakeEngine(), scorer=scorer,
                           pad_token_id=0, image_size=8)
        collected = loop.collect()
        kept, metrics, drawn = collected.groups, collected.metrics, collected.drawn
    # round 1: p0 (all right: dropped), p1 (right + an error zeroed: kept); round 2: p2 (dropped); round 3: p3 (kept)
    assert [g.sample.pid for g in kept] == ["p1", "p3"] and drawn == [0, 1, 2, 3]
    assert metrics["rollout/generation_rounds"] == 3.0
    rewards = [1, 1, 1, 0, 0, 0, 1, 0]  # every scored sample of the step, both rounds
    assert metrics["reward/mean"] == pytest.approx(sum(rewards) / 8)
    assert metrics["reward/t_step_answer/mean"] == pytest.approx(sum(rewards) / 8)
    assert metrics["reward/t_step_answer/errors"] == 1.0  # summed over groups and rounds, not averaged or overwritten
    assert metrics["reward/t_step_answer/timeouts"] == 0.0


def test_reward_inputs_carry_the_dataset_columns_and_the_conversational_prompt(samples):
    recipe = RunRecipe()
    loop = RLLoop(recipe, samples, [], trainer=None, rollout=None, scorer=None, pad_token_id=0, image_size=8)
    request = loop._requests([1], [samples[1]], "s0")[0]
    rollout = Rollout(request.request_id, 0, [1], [7, 8], [0.0, 0.0], "right", "stop")
    x = loop._reward_inputs(samples[1], request, [rollout])[0]
    assert x.prompt_messages == request.messages and x.images == request.images and x.response_ids == [7, 8]
    assert x.extra["answer"] == "right" and x.extra["question"] == "q1" and x.extra["category"] == "toy"
    assert x.ground_truth == "right" and x.extra["pid"] == "p1"
