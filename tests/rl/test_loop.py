"""The RL loop's control flow with fake handles, in about a second (OpenRLHF's test_ppo_trainer.py is the model).

The fakes answer each prompt by a fixed policy per question: `always` (every rollout right:
an uninformative group), `never` (every rollout wrong: uninformative) or `mixed` (half right:
informative). Nothing here starts Ray, vLLM or a model.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest
from PIL import Image

from rewards.scorer import ScoreResult
from rollouts.types import Rollout
from sail_rl.data.mathvista import MathVistaSample
from sail_rl.rl.config import RunRecipe
from sail_rl.rl.loop import RLLoop

N = 4  # rollouts per prompt


class FakeRollout:
    def __init__(self, train, held_out):
        self.datasets = {"train": train, "eval": held_out}
        self.calls: list[list[str]] = []  # request ids per generate call
        self.weight_syncs = 0

    def generate(self, requests, sampling):
        self.calls.append([r.request_id for r in requests])
        out = []
        for req in requests:
            sample = self.datasets["eval" if req.request_id.startswith("eval") else "train"][req.metadata["index"]]
            policy, answer = sample.metadata["policy"], sample.answer
            for k in range(sampling.rollouts_per_prompt):
                right = policy == "always" or (policy == "mixed" and k % 2 == 0)
                if sampling.temperature == 0:
                    right = policy != "never"
                text = answer if right else "wrong"
                out.append(Rollout(request_id=req.request_id, sample_index=req.metadata["index"], prompt_token_ids=[1, 2, 3],
                                   response_token_ids=[4, 5], response_logprobs=[-0.5, -0.5], text=text, finish_reason="stop"))
        return out

    def generate_iter(self, requests, sampling):  # two chunks: the loop scores the first while the second "generates"
        rollouts = self.generate(requests, sampling)
        half = len(requests) // 2 * sampling.rollouts_per_prompt
        yield rollouts[:half]
        yield rollouts[half:]

    def update_weights(self, state_dict):
        self.weight_syncs += 1


class FakeScorer:
    def submit(self, inputs):
        future = Future()
        totals = [1.0 if x.response == x.ground_truth else 0.0 for x in inputs]
        future.set_result(ScoreResult(totals=totals, components={"accuracy": totals}))
        return future


class FakeTrainer:
    def __init__(self):
        self.updates: list[int] = []  # rows per update
        self.loaded = None

    def compute_log_probs(self, batch, old=True):
        if old:
            batch.old_log_probs = batch.rollout_log_probs.clone()

    def update(self, batch):
        assert batch.advantages is not None and batch.advantages.abs().sum() > 0  # only informative groups reach here
        self.updates.append(len(batch))
        return {"actor/loss": 0.0, "time/update_s": 0.01}

    def weights_for_sync(self):
        return {}

    def save_state(self, out_dir):  # every rank writes its own shard; here one JSON file
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "fake.json").write_text(json.dumps({"updates": self.updates}))

    def load_state(self, in_dir):
        self.loaded = json.loads((Path(in_dir) / "fake.json").read_text())
        self.updates = list(self.loaded["updates"])

    def save_pretrained(self, out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text("{}")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.new("RGB", (8, 8), "white").save(path)
    return str(path)


def samples(policies: list[str], image: str) -> list[MathVistaSample]:
    return [MathVistaSample(pid=f"q{i}-{p}", question="?", image=image, answer=str(i), question_type="free_form",
                            answer_type="integer", metadata={"policy": p}) for i, p in enumerate(policies)]


def make_loop(tmp_path, train, held_out=(), **run):
    recipe = RunRecipe()
    recipe.run.output_dir = str(tmp_path / "run")
    recipe.run.loggers, recipe.run.progress_bar = ["jsonl"], False
    recipe.run.eval_samples_per_prompt = 0
    recipe.data.shuffle = False
    recipe.rollout.rollouts_per_prompt = N
    for key, value in run.items():
        setattr(recipe.run, key, value)
    rollout = FakeRollout(train, list(held_out))
    return RLLoop(recipe, train, list(held_out), FakeTrainer(), rollout, FakeScorer(), pad_token_id=0, image_size=8)


def read_metrics(loop) -> list[dict]:
    return [json.loads(line) for line in (loop.run_dir / "metrics.jsonl").read_text().splitlines()]


def test_dynamic_sampling_refills_until_the_batch_is_informative(tmp_path, image):
    train = samples(["always", "never", "mixed", "always", "never", "mixed", "always", "never"], image)
    loop = make_loop(tmp_path, train, prompts_per_step=2, max_refill_rounds=3)
    collected = loop.collect()
    groups, metrics, drawn = collected.groups, collected.metrics, collected.drawn
    # round 0 draws 2 uninformative; round 1 draws (mixed, always); round 2 one (never); round 3 one (mixed)
    assert [g.sample.metadata["policy"] for g in groups] == ["mixed", "mixed"]
    assert metrics["rollout/generation_rounds"] == 4.0
    assert metrics["rollout/kept_groups"] == 2.0
    assert metrics["rollout/prompts_drawn"] == 6.0
    assert drawn == [0, 1, 2, 3, 4, 5]
    assert [len(c) for c in loop.rollout.calls] == [2, 2, 1, 1]


def test_refill_stops_at_the_cap_and_a_step_without_signal_skips_the_update(tmp_path, image):
    train = samples(["always", "never"] * 5, image)
    loop = make_loop(tmp_path, train, prompts_per_step=2, max_refill_rounds=2, total_steps=2,
                     eval_before_training=False, save_every_steps=0)
    loop.run()
    assert loop.trainer.updates == []  # nothing informative: no update, no weight sync
    assert loop.rollout.weight_syncs == 0
    steps = [m for m in read_metrics(loop) if "rollout/generation_rounds" in m]
    assert [m["rollout/generation_rounds"] for m in steps] == [3.0, 3.0]
    assert all(m["actor/skipped_no_signal"] == 1.0 for m in steps)


def test_without_dynamic_sampling_every_group_is_trained(tmp_path, image):
    train = samples(["mixed", "always", "never", "mixed"], image)
    loop = make_loop(tmp_path, train, prompts_per_step=4, dynamic_sampling=False)
    metrics = loop.train_step().metrics
    assert loop.trainer.updates == [4 * N]
    assert metrics["rollout/generation_rounds"] == 1.0
    assert loop.rollout.weight_syncs == 1


def test_a_draw_across_an_epoch_boundary_keeps_its_groups_apart(tmp_path, image):
    # 3 prompts, 4 per step: one draw holds an index twice; each copy is its own group of N rollouts.
    train = samples(["mixed", "mixed", "mixed"], image)
    loop = make_loop(tmp_path, train, prompts_per_step=4, dynamic_sampling=False)
    collected = loop.collect()
    groups, drawn = collected.groups, collected.drawn
    assert len(drawn) == 4 and len(set(drawn)) == 3
    assert [len(g.rollouts) for g in groups] == [N] * 4
    ids = loop.rollout.calls[0]
    assert len(ids) == len(set(ids))  # request ids are unique within a draw


def test_eval_and_checkpoint_cadence(tmp_path, image):
    train = samples(["mixed", "always", "mixed", "never"], image)
    held_out = samples(["always", "never"], image)
    loop = make_loop(tmp_path, train, held_out, prompts_per_step=2, total_steps=4, eval_every_steps=2,
                     save_every_steps=2, keep_last_checkpoints=5)
    summary = loop.run()
    evals = [m["step"] for m in read_metrics(loop) if "eval/accuracy" in m]
    assert evals == [0, 2, 4]  # before, every 2 steps, after (step 4's periodic eval is the final one)
    assert summary["eval_before"]["eval/accuracy"] == pytest.approx(0.5)
    saved = sorted(p.name for p in (loop.run_dir / "checkpoints").iterdir())
    assert saved == ["step_2", "step_4"]
    assert (loop.run_dir / "checkpoints" / "step_4" / "model" / "config.json").is_file()  # the HF export: last step only
    assert not (loop.run_dir / "checkpoints" / "step_2" / "model").exists()


def test_resume_continues_where_the_run_stopped(tmp_path, image):
    train = samples(["mixed"] * 5, image)
    straight = make_loop(tmp_path / "a", train, prompts_per_step=2, total_steps=4, save_every_steps=2,
                         eval_before_training=False)
    straight.run()
    straight_draws = [json.loads(x).get("prompts") for x in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]

    first = make_loop(tmp_path / "b", train, prompts_per_step=2, total_steps=2, save_every_steps=2,
                      eval_before_training=False)
    first.run()
    resumed = make_loop(tmp_path / "b", train, prompts_per_step=2, total_steps=4, save_every_steps=2,
                        eval_before_training=False)
    summary = resumed.run(resume=True)
    assert summary["resumed_from_step"] == 2
    assert resumed.trainer.loaded == {"updates": [2 * N, 2 * N]}
    assert resumed.trainer.updates == [2 * N] * 4
    assert resumed.rollout.weight_syncs == 1 + 2  # the resumed weights first, then one per step
    draws = [json.loads(x).get("prompts") for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert draws == straight_draws  # the same prompts, none lost or repeated
