"""PolicyTrainer: updates change the right parameters, LoRA syncs merged weights, DP equals 1 process."""

from __future__ import annotations

import pytest
import torch

from sail_rl.algorithms import AlgorithmConfig, compute_advantages
from sail_rl.trainer.config import LoraConfig, TrainerConfig
from sail_rl.trainer.policy_trainer import PolicyTrainer, on_policy_update
from tests.multiprocess import assert_same_grads, full_grads, run_ranks
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
    assert any(k.startswith("model.language_model.") for k in changed)
    assert any(k.startswith("model.multi_modal_projector.") for k in changed)
    assert not any(k.startswith("model.vision_tower.") for k in changed)


@pytest.mark.slow  # 10-26 s: too heavy for make test-fast; make test (CI) runs it
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
    assert changed and all(k.startswith("model.language_model.") for k in changed)
    # the merged weights reproduce the adapter model's outputs
    from sail_rl.model.builder import load_model

    plain = load_model(tiny_dir)
    plain.load_state_dict(synced)
    with torch.no_grad():
        lp_adapter = trainer.compute_log_probs(batch, rows=[0, 1])["old_log_probs"]
        from sail_rl.trainer.logprobs import policy_forward

        lp_plain = policy_forward(plain.eval(), batch.select([0, 1]), 1.0, suppress_ids=trainer.suppress_ids)[0]
    torch.testing.assert_close(lp_plain, lp_adapter, atol=1e-5, rtol=0)


@pytest.mark.slow  # 10-26 s: too heavy for make test-fast; make test (CI) runs it
def test_ppo_critic_trains_values(tiny_dir):
    algo = AlgorithmConfig(advantage_estimator="gae", whiten_advantages=False)
    trainer = PolicyTrainer(str(tiny_dir), _cfg(), algo)
    batch = _prepare(trainer, fake_batch(tiny_dir), algo)
    assert batch.old_values is not None and torch.count_nonzero(batch.old_values) == 0  # zero-init head
    head = trainer.critic.value_head.weight.clone()
    metrics = trainer.update(batch)
    assert "actor/critic_vf_loss" in metrics and not torch.equal(head, trainer.critic.value_head.weight)


DP_ALGO = AlgorithmConfig(advantage_estimator="gae", kl_loss_coef=0.01)
DP_STEPS = 3




def _dp_worker(rank, world_size, model_dir, out_path, strategy, other_checkpoint=None):
    # PPO with a critic and a KL loss: the critic and the reference model are sharded too. No
    # clipping (max_grad_norm huge), so the gradients read after a step are the raw ones.
    algo = DP_ALGO
    cfg = _cfg(mini_batch_size=16, micro_batch_size=3, torch_threads=1, strategy=strategy,  # 8 rows a rank: 3 + 3 + 2
               learning_rate=1e-5, max_grad_norm=1e9)
    trainer = PolicyTrainer(model_dir, cfg, algo, rank=rank, world_size=world_size)
    steps = []
    for step in range(DP_STEPS):
        metrics = trainer.update(_prepare(trainer, fake_batch(model_dir, seed=step), algo))
        steps.append({"loss": metrics["actor/loss"], "grad_norm": metrics["actor/grad_norm"],
                      "grads": full_grads(trainer.model), "critic_grads": full_grads(trainer.critic)})
    weights = trainer.weights_for_sync()  # a collective under fsdp2: every rank calls it
    trainer.save_state(f"{out_path}.shards")  # likewise: each rank writes its own shard
    result = {"steps": steps, "weights": weights, "critic_head": parallel_full(trainer.critic.value_head.weight),
              "param_type": type(next(trainer.model.parameters()).data).__name__}  # DTensor when sharded
    if other_checkpoint:  # another world size's checkpoint, resharded into this one
        other = PolicyTrainer(model_dir, cfg, algo, rank=rank, world_size=world_size)
        other.load_state(other_checkpoint)
        result["other_weights"], result["other_step"] = other.weights_for_sync(), other.global_step
    if strategy == "fsdp2":
        # resume: a fresh sharded trainer loads the shards and takes the same next step
        fresh = PolicyTrainer(model_dir, cfg, algo, rank=rank, world_size=world_size)
        fresh.load_state(f"{out_path}.shards")
        for t in (trainer, fresh):
            t.update(_prepare(t, fake_batch(model_dir, seed=DP_STEPS), algo))
        result["next"], result["next_resumed"] = trainer.weights_for_sync(), fresh.weights_for_sync()
        fresh.save_pretrained(f"{out_path}.model")
    if rank == 0:
        torch.save(result, out_path)


def parallel_full(tensor: torch.Tensor) -> torch.Tensor:
    return (tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor).detach().clone()


def _run_ranks(world_size, model_dir, out_path, strategy, other_checkpoint=None):
    run_ranks(_dp_worker, world_size, model_dir, str(out_path), strategy, other_checkpoint, timeout_s=600)
    return torch.load(out_path, weights_only=False)




@pytest.mark.slow
def test_two_process_data_parallel_equals_one_process(tiny_dir, tmp_path):
    """2 ranks (ddp and fsdp2) = 1 process on the same global batch: every step's gradients (policy
    and critic), loss and grad norm, and the weights after the steps. Sharded checkpoints load into
    another world size (1 -> 2 fsdp2, 2 fsdp2 -> 1) with the same weights."""
    baseline = _run_ranks(1, str(tiny_dir), tmp_path / "one.pt", "ddp")
    initial = PolicyTrainer(str(tiny_dir), _cfg(), DP_ALGO).weights_for_sync()
    one = baseline["weights"]
    deltas_1 = torch.cat([(one[k] - initial[k]).flatten() for k in one])
    assert (deltas_1.abs() > 0).float().mean() > 0.1  # the steps did something
    one_shards = str(tmp_path / "one.pt.shards")
    results = {s: _run_ranks(2, str(tiny_dir), tmp_path / f"two_{s}.pt", s, one_shards) for s in ("ddp", "fsdp2")}
    for strategy, result in results.items():
        for step, (a, b) in enumerate(zip(baseline["steps"], result["steps"])):
            label = f"{strategy} step {step}"
            assert_same_grads(a["grads"], b["grads"], label)
            assert_same_grads(a["critic_grads"], b["critic_grads"], label + " critic")
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-7), label
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5), label
        two = result["weights"]
        assert two.keys() == one.keys(), strategy
        deltas_2 = torch.cat([(two[k] - initial[k]).flatten() for k in one])
        # the same three steps: any gap is AdamW dividing float noise by a ~0 second moment
        assert (deltas_2 - deltas_1).norm() <= 0.01 * deltas_1.norm(), strategy
        # the critic took the same steps too (from a zero init)
        torch.testing.assert_close(result["critic_head"], baseline["critic_head"], atol=1e-6, rtol=1e-3)
        assert result["other_step"] == DP_STEPS  # 1 -> 2: the one-process checkpoint, exactly
        for k in one:
            torch.testing.assert_close(result["other_weights"][k], one[k], atol=0, rtol=0)
    assert results["fsdp2"]["param_type"] == "DTensor" and results["ddp"]["param_type"] == "Tensor"
    fsdp = results["fsdp2"]
    for k in fsdp["next"]:  # the resumed sharded trainer took exactly the same next step
        torch.testing.assert_close(fsdp["next_resumed"][k], fsdp["next"][k], atol=0, rtol=0)
    assert any(not torch.equal(fsdp["next"][k], fsdp["weights"][k]) for k in fsdp["next"])
    back = PolicyTrainer(str(tiny_dir), _cfg(learning_rate=1e-5), DP_ALGO)  # 2 (fsdp2) -> 1 process
    back.load_state(str(tmp_path / "two_fsdp2.pt.shards"))
    for k, v in back.weights_for_sync().items():
        torch.testing.assert_close(v, fsdp["weights"][k], atol=0, rtol=0)
    from sail_rl.model.builder import load_model

    saved = load_model(tmp_path / "two_fsdp2.pt.model").state_dict()
    for k in fsdp["next_resumed"]:
        torch.testing.assert_close(saved[k], fsdp["next_resumed"][k], atol=0, rtol=0)


def test_fsdp2_with_lora_is_a_config_error():
    from sail_rl.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy fsdp2"):
        _cfg(strategy="fsdp2", lora=LoraConfig(enabled=True)).validate()


def test_length_grouped_micro_batches_take_the_same_step(tiny_dir):
    algo = AlgorithmConfig()
    weights, log_probs, slots = [], [], []
    for grouped in (False, True):
        trainer = PolicyTrainer(str(tiny_dir), _cfg(mini_batch_size=16, micro_batch_size=3, group_by_length=grouped), algo)
        batch = _prepare(trainer, fake_batch(tiny_dir), algo)
        slots.append(sum(m.input_ids.numel() for m, _, _ in trainer._micro_batches(batch, list(range(len(batch))), len(batch))))
        log_probs.append(batch.old_log_probs)
        trainer.update(batch)
        weights.append(trainer.weights_for_sync())
    assert slots[1] < slots[0]  # grouping pads less
    torch.testing.assert_close(log_probs[1], log_probs[0], atol=1e-5, rtol=0)  # back in row order
    initial = PolicyTrainer(str(tiny_dir), _cfg(), algo).weights_for_sync()
    d0, d1 = (torch.cat([(w[k] - initial[k]).flatten() for k in initial]) for w in weights)
    assert (d0.abs() > 0).float().mean() > 0.1
    # the same step up to float summation order (see the data-parallel test for the bound)
    assert ((d0 - d1).abs() <= 1e-6 + 1e-3 * d0.abs()).float().mean() > 0.999


def test_on_policy_update_skips_the_old_log_prob_pass_and_takes_the_same_step(tiny_dir):
    algo = AlgorithmConfig()
    cfg = _cfg(mini_batch_size=16, micro_batch_size=4)  # one mini-batch, one epoch: on-policy
    results = []
    for old in (True, False):
        trainer = PolicyTrainer(str(tiny_dir), cfg, algo)
        assert trainer.on_policy_update(16) and not trainer.on_policy_update(17)
        batch = fake_batch(tiny_dir)
        assert (trainer.compute_log_probs(batch, old=old) == {}) is (not old)  # nothing else to compute
        batch.advantages, batch.returns = compute_advantages(algo, batch.rewards, batch.group_ids, batch.response_mask)
        metrics = trainer.update(batch)
        results.append((trainer.weights_for_sync(), metrics))
    (w_old, m_old), (w_skip, m_skip) = results
    for k in w_old:
        torch.testing.assert_close(w_skip[k], w_old[k], atol=1e-6, rtol=1e-5)
    for key in ("actor/ratio_mean", "actor/mismatch_abs_logprob_diff", "actor/pg_loss"):
        assert abs(m_skip[key] - m_old[key]) < 1e-5, key
    assert not on_policy_update(cfg, AlgorithmConfig(kl_coef=0.1), 16)  # a KL reward penalty needs them first
    assert not on_policy_update(_cfg(mini_batch_size=8), algo, 16) and not on_policy_update(_cfg(ppo_epochs=2), algo, 16)


def test_zero_gradient_steps_are_counted_and_warned_once(tiny_dir, tmp_path, caplog):
    from sail_rl.rl.metrics import MetricsLogger

    algo = AlgorithmConfig()
    trainer = PolicyTrainer(str(tiny_dir), _cfg(mini_batch_size=8, ppo_epochs=2), algo)
    batch = _prepare(trainer, fake_batch(tiny_dir), algo)  # 16 rows: 2 epochs x 2 mini-batches
    batch.advantages = torch.zeros_like(batch.advantages)  # no learning signal
    metrics = trainer.update(batch)
    assert metrics["actor/grad_norm"] == 0.0 and metrics["actor/zero_grad_norm_steps"] == 4.0
    signal = _prepare(trainer, fake_batch(tiny_dir, seed=1), algo)
    assert trainer.update(signal)["actor/zero_grad_norm_steps"] == 0.0
    logger = MetricsLogger(tmp_path, ["jsonl"], progress_bar=False)
    with caplog.at_level("WARNING", logger="sail_rl.rl.metrics"):
        logger.log(1, metrics)
        logger.log(2, metrics)
    warnings = [r for r in caplog.records if "gradient norm of exactly 0" in r.getMessage()]
    assert len(warnings) == 1 and "step 1: 4 optimizer step(s)" in warnings[0].getMessage()


def test_lora_targets_that_match_nothing_are_a_config_error(tiny_dir):
    from sail_rl.errors import ConfigError

    with pytest.raises(ConfigError, match=r"trainer.lora.target_modules \['qproj'\] match no layer"):
        PolicyTrainer(str(tiny_dir), _cfg(lora=LoraConfig(enabled=True, target_modules=["qproj"])), AlgorithmConfig())
