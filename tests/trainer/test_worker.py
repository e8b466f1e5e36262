"""PolicyTrainer: updates change the right parameters, LoRA syncs merged weights, DP equals 1 process."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from sail_rl.algorithms import AlgorithmConfig, compute_advantages
from sail_rl.trainer.config import LoraConfig, TrainerConfig
from sail_rl.trainer.worker import PolicyTrainer
from tests.trainer.helpers import fake_batch


def _prepare(trainer, batch, algo):
    trainer.compute_log_probs(batch)
    batch.advantages, batch.returns = compute_advantages(algo, batch.rewards, batch.group_ids, batch.response_mask, values=batch.old_values)
    return batch


def _cfg(**kw):
    base = dict(learning_rate=1e-3, mini_batch_size=8, micro_batch_size=4, ppo_epochs=1, seed=0)
    base.update(kw)
    return TrainerConfig(**base)


def test_old_log_probs_match_current_before_update(tiny_dir):
    algo = AlgorithmConfig()
    trainer = PolicyTrainer(str(tiny_dir), _cfg(mini_batch_size=16), algo)
    batch = _prepare(trainer, fake_batch(tiny_dir), algo)
    metrics = trainer.update(batch)
    # one mini-batch, taken before any change: ratio == 1, nothing clipped
    assert abs(metrics["actor/ratio_mean"] - 1.0) < 1e-5 and metrics["actor/pg_clipfrac"] == 0.0
    assert metrics["actor/grad_norm"] > 0


def test_update_changes_llm_and_projector_not_frozen_vision(tiny_dir):
    algo = AlgorithmConfig()
    trainer = PolicyTrainer(str(tiny_dir), _cfg(freeze_vision=True), algo)
    before = {k: v.clone() for k, v in trainer.weights_for_sync().items()}
    trainer.update(_prepare(trainer, fake_batch(tiny_dir), algo))
    after = trainer.weights_for_sync()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("language_model.") for k in changed)
    assert any(k.startswith("projector.") for k in changed)
    assert not any(k.startswith("vision_model.") for k in changed)


def test_lora_syncs_merged_weights_and_reference_is_base(tiny_dir):
    algo = AlgorithmConfig(kl_loss_coef=0.1)
    trainer = PolicyTrainer(str(tiny_dir), _cfg(lora=LoraConfig(enabled=True, rank=4, alpha=8)), algo)
    batch = _prepare(trainer, fake_batch(tiny_dir), algo)
    torch.testing.assert_close(batch.ref_log_probs, batch.old_log_probs)  # B = 0 at init: adapter is identity
    base = {k: v.clone() for k, v in trainer.weights_for_sync().items()}
    trainer.update(batch)
    synced = trainer.weights_for_sync()
    assert not any("lora_" in k or "base_layer" in k for k in synced)
    changed = [k for k in base if not torch.equal(base[k], synced[k])]
    assert changed and all(k.startswith("language_model.") for k in changed)
    # the merged weights reproduce the adapter model's outputs
    from sail_rl.model.builder import load_model

    plain = load_model(tiny_dir)
    plain.load_state_dict(synced)
    with torch.no_grad():
        lp_adapter = trainer.compute_log_probs(batch, rows=[0, 1])["old_log_probs"]
        from sail_rl.trainer.logprobs import policy_forward

        lp_plain = policy_forward(plain.eval(), batch.select([0, 1]), 1.0, suppress_ids=trainer.suppress_ids)[0]
    torch.testing.assert_close(lp_plain, lp_adapter, atol=1e-5, rtol=0)


def test_ppo_critic_trains_values(tiny_dir):
    algo = AlgorithmConfig(advantage_estimator="gae", whiten_advantages=False)
    trainer = PolicyTrainer(str(tiny_dir), _cfg(), algo)
    batch = _prepare(trainer, fake_batch(tiny_dir), algo)
    assert batch.old_values is not None and torch.count_nonzero(batch.old_values) == 0  # zero-init head
    head = trainer.critic.value_head.weight.clone()
    metrics = trainer.update(batch)
    assert "actor/critic_vf_loss" in metrics and not torch.equal(head, trainer.critic.value_head.weight)


def _dp_worker(rank, world_size, model_dir, port, out_path):
    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    algo = AlgorithmConfig()
    trainer = PolicyTrainer(model_dir, _cfg(mini_batch_size=16, micro_batch_size=2, torch_threads=1), algo, rank=rank, world_size=world_size)
    batch = _prepare(trainer, fake_batch(model_dir), algo)
    trainer.update(batch)
    if rank == 0:
        torch.save(trainer.weights_for_sync(), out_path)
    if world_size > 1:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_data_parallel_equals_one_process(tiny_dir, tmp_path):
    import socket

    def port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    ctx = mp.get_context("spawn")
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    ctx.Process(target=_dp_worker, args=(0, 1, str(tiny_dir), port(), one)).start()
    procs = []
    p = port()
    for rank in range(2):
        procs.append(ctx.Process(target=_dp_worker, args=(rank, 2, str(tiny_dir), p, two)))
        procs[-1].start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    import time

    for _ in range(300):
        if one.exists():
            break
        time.sleep(1)
    time.sleep(1)
    a, b = torch.load(one), torch.load(two)
    assert a.keys() == b.keys()
    initial = PolicyTrainer(str(tiny_dir), _cfg(), AlgorithmConfig()).weights_for_sync()
    deltas_1 = torch.cat([(a[k] - initial[k]).flatten() for k in a])
    deltas_2 = torch.cat([(b[k] - initial[k]).flatten() for k in a])
    moved = deltas_1.abs() > 0
    assert moved.float().mean() > 0.1  # the step did something
    # Same update up to float summation order. Adam's first step is lr * g / |g|, so an element
    # whose gradient is ~0 may differ by up to 2 * lr; every other element must agree closely.
    close = (deltas_1 - deltas_2).abs() <= 1e-6 + 1e-3 * deltas_1.abs()
    assert close.float().mean() > 0.999
    assert (deltas_1 - deltas_2).abs().max() <= 2 * 1e-3 + 1e-6
