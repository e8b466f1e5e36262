"""Colocation: sleep/wake order around the update (a recorder around the engine and the handles),
the placement arithmetic, and the rollout settings refused at recipe load. No Ray, no vLLM: fast."""

from __future__ import annotations

import pytest
import torch

from rewards import ScoreResult
from rollouts.types import Rollout, RolloutConfig
from sail_rl.config import from_dict
from sail_rl.data.mathvista import MathVistaSample
from sail_rl.errors import ConfigError
from sail_rl.rl.config import ResourcesConfig, RunRecipe
from sail_rl.rl.loop import Collected, Group, RLLoop
from sail_rl.rl.placement import check_cluster, plan_placement


class Recorder:
    """Trainer, rollout and weight-transfer handles that log their calls into one list."""

    def __init__(self):
        self.calls: list[str] = []

    # trainer
    def compute_log_probs(self, batch, old=True):
        self.calls.append("trainer.compute_log_probs")
        batch.old_log_probs = batch.rollout_log_probs.clone()

    def update(self, batch):
        self.calls.append("trainer.update")
        return {"actor/grad_norm": 1.0}

    def weights_for_sync(self):
        self.calls.append("trainer.weights_for_sync")
        return {"w": torch.ones(2)}

    # rollout
    def sleep(self):
        self.calls.append("rollout.sleep")

    def wake(self, tags=None):
        self.calls.append(f"rollout.wake{list(tags) if tags else ''}")

    def update_weights(self, weights):
        self.calls.append("rollout.update_weights")


def _loop(tmp_path, sleep_mode: bool):
    recipe = RunRecipe()
    recipe.rollout.enable_sleep_mode = sleep_mode
    recipe.run.output_dir = str(tmp_path)
    sample = MathVistaSample(pid="1", question="2+2?", image="", answer="4", question_type="free_form", answer_type="integer")
    rec = Recorder()
    loop = RLLoop(recipe, [sample], [], rec, rec, scorer=None, pad_token_id=0, image_size=28)

    def collect():
        rec.calls.append("rollout.generate")
        rollouts = [Rollout("r", k, [1, 2, 3], [4, 5], [-0.5, -0.7], "x", "stop") for k in range(2)]
        return Collected([Group(0, sample, rollouts, ScoreResult(totals=[0.0, 1.0], components={}))], {}, [0])

    loop.collect = collect
    return loop, rec


def test_sleep_mode_sleeps_through_the_update_and_wakes_weights_then_kv_cache(tmp_path):
    loop, rec = _loop(tmp_path, sleep_mode=True)
    metrics = loop.train_step().metrics
    loop.train_step()
    one_step = [
        "rollout.generate", "rollout.sleep", "trainer.compute_log_probs", "trainer.update",
        "rollout.wake['weights']", "trainer.weights_for_sync", "rollout.update_weights", "rollout.wake['kv_cache']",
    ]
    assert rec.calls == one_step * 2  # the next generation starts fully awake, with the new weights
    assert metrics["time/weight_sync_s"] >= 0


def test_without_sleep_mode_the_rollout_is_never_put_to_sleep(tmp_path):
    loop, rec = _loop(tmp_path, sleep_mode=False)
    loop.train_step()
    assert rec.calls == ["rollout.generate", "trainer.compute_log_probs", "trainer.update",
                         "trainer.weights_for_sync", "rollout.update_weights"]


class FakeLLM:
    def __init__(self):
        self.calls = []

    def sleep(self, level):
        self.calls.append(("sleep", level))

    def wake_up(self, tags=None):
        self.calls.append(("wake_up", tags))

    def collective_rpc(self, method, kwargs):
        self.calls.append((method, len(list(kwargs["weights_iterator"]))))

    def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache",))


def _engine(sleep_mode: bool):
    from rollouts.vllm_engine import VLLMEngine

    engine = VLLMEngine.__new__(VLLMEngine)  # the engine's own methods around a recording vllm.LLM
    engine.cfg = RolloutConfig(enable_sleep_mode=sleep_mode)
    engine.llm, engine.embedder, engine.in_process, engine.asleep = FakeLLM(), None, True, False
    return engine


def test_vllm_engine_sleep_wake_calls_reach_vllm_in_order():
    engine = _engine(sleep_mode=True)
    engine.sleep()
    engine.sleep()  # already asleep: no second call
    engine.wake(("weights",))
    engine.update_weights({"lm_head.weight": torch.zeros(3, 2), "model.vision_tower.x": torch.zeros(1)})
    engine.wake(("kv_cache",))
    assert engine.llm.calls == [("sleep", 1), ("wake_up", ["weights"]), ("reload_weights", 1), ("wake_up", ["kv_cache"])]
    assert not engine.asleep
    engine.update_weights({"lm_head.weight": torch.zeros(3, 2)})  # awake: the stale prefix cache goes
    assert engine.llm.calls[-1] == ("reset_prefix_cache",)
    off = _engine(sleep_mode=False)
    off.sleep()
    off.wake(("weights",))
    assert off.llm.calls == []


# ---------------------------------------------------------------- placement arithmetic


def test_colocated_bundles_share_each_gpu_between_a_trainer_rank_and_a_rollout_worker():
    res = ResourcesConfig(num_trainer_workers=4, trainer_gpus=1, rollout_gpus=1, trainer_cpus=2, rollout_cpus=1)
    plan = plan_placement(res, RolloutConfig(num_workers=2))
    assert plan.bundles == [{"CPU": 3.0, "GPU": 1.0}] * 4
    assert [(s.bundle, s.gpus) for s in plan.trainer] == [(0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5)]
    assert [(s.bundle, s.gpus) for s in plan.rollout] == [(0, 0.5), (1, 0.5)]


def test_split_tp_rollout_gets_whole_gpus_and_custom_resources_reach_the_bundles():
    res = ResourcesConfig(colocate=False, num_trainer_workers=4, trainer_gpus=1, rollout_gpus=1,
                          trainer_resources={"trainer_node": 1}, rollout_resources={"rollout_node": 1})
    plan = plan_placement(res, RolloutConfig(num_workers=2, tensor_parallel_size=2))
    assert [s.gpus for s in plan.rollout] == [2.0, 2.0] and [s.bundle for s in plan.rollout] == [4, 5]
    assert plan.bundles[4] == {"CPU": 1.0, "GPU": 2.0, "rollout_node": 1.0}
    assert plan.totals() == {"CPU": 6.0, "GPU": 8.0, "trainer_node": 4.0, "rollout_node": 2.0}
    check_cluster(plan, {"CPU": 16, "GPU": 8, "trainer_node": 4, "rollout_node": 2}, [8.0])
    with pytest.raises(ConfigError, match=r"needs 8 GPU \(4 trainer ranks x 1 \+ 2 rollout workers x 2 \(tensor_parallel_size 2\)\) but the Ray cluster has 6"):
        check_cluster(plan, {"CPU": 16, "GPU": 6, "trainer_node": 4, "rollout_node": 2}, [6.0])
    with pytest.raises(ConfigError, match="needs 2 rollout_node"):
        check_cluster(plan, {"CPU": 16, "GPU": 8, "trainer_node": 4}, [8.0])
    with pytest.raises(ConfigError, match="one actor needs 2 GPUs on one node .* largest node has 1"):
        check_cluster(plan, {"CPU": 16, "GPU": 8, "trainer_node": 4, "rollout_node": 2}, [1.0] * 8)


# ---------------------------------------------------------------- refused at recipe load


def _recipe(**sections) -> RunRecipe:
    base = {"data": {"train_files": ["x.jsonl"]}}
    for key, value in sections.items():
        base[key] = value
    return from_dict(RunRecipe, base)


@pytest.mark.parametrize("sections, message", [
    ({"rollout": {"enable_sleep_mode": True}}, "enable_sleep_mode needs the rollouts on GPUs .*rollout_gpus is 0"),
    ({"rollout": {"enable_sleep_mode": True, "engine": "hf"}}, "engine hf has none to free"),
    ({"rollout": {"enable_sleep_mode": True}, "resources": {"colocate": False, "rollout_gpus": 1}}, "colocate: false"),
    ({"rollout": {"weight_sync": "nccl"}}, r"nccl needs GPUs on both ends \(resources.trainer_gpus 0, rollout_gpus 0\)"),
    ({"rollout": {"weight_sync": "object_store"}, "run": {"mode": "local"}}, "applies to Ray runs"),
    ({"rollout": {"tensor_parallel_size": 2}, "resources": {"trainer_gpus": 1, "rollout_gpus": 1}}, "tensor_parallel_size 2 with resources.colocate: true"),
    ({"rollout": {"tensor_parallel_size": 2}, "resources": {"colocate": False, "rollout_gpus": 0.5}}, "must be 1 when"),
    ({"rollout": {"weight_sync": "reload"}}, "must be one of collective, nccl, object_store"),
])
def test_settings_that_cannot_act_are_refused_at_load(sections, message):
    with pytest.raises(ConfigError, match=message) as err:
        _recipe(**sections)
    assert "\n" not in str(err.value)


def test_settings_that_can_act_load():
    recipe = _recipe(rollout={"enable_sleep_mode": True, "weight_sync": "nccl"}, resources={"trainer_gpus": 1, "rollout_gpus": 1})
    assert recipe.rollout.enable_sleep_mode and recipe.rollout.weight_sync == "nccl"
    assert _recipe(rollout={"tensor_parallel_size": 2}, resources={"colocate": False, "rollout_gpus": 1}).rollout.tensor_parallel_size == 2
