"""Sharded trainer checkpoints (one process here; other world sizes in test_worker's DP test) and the export."""

from __future__ import annotations

import torch

from sail_rl.algorithms import AlgorithmConfig, compute_advantages
from sail_rl.trainer.checkpoint import SHARDS_DIR, save_checkpoint
from sail_rl.trainer.config import TrainerConfig
from sail_rl.trainer.policy_trainer import PolicyTrainer
from tests.trainer.helpers import fake_batch


def _step(trainer, algo, seed):
    batch = fake_batch(trainer.model_dir, seed=seed)
    trainer.compute_log_probs(batch)
    batch.advantages, batch.returns = compute_advantages(algo, batch.rewards, batch.group_ids, batch.response_mask)
    return trainer.update(batch)


def test_sharded_state_resumes_the_same_next_step(tiny_dir, tmp_path):
    algo = AlgorithmConfig()
    cfg = TrainerConfig(learning_rate=1e-3, mini_batch_size=16, micro_batch_size=8, lr_schedule="cosine", warmup_steps=1)
    trainer = PolicyTrainer(str(tiny_dir), cfg, algo, total_steps=4)
    _step(trainer, algo, 0)
    path = save_checkpoint(tmp_path, 1, {}, {}, save_shards=lambda d: trainer.save_state(str(d)))
    assert not (path / "model").exists()  # no HF export at a save in the middle of a run
    fresh = PolicyTrainer(str(tiny_dir), cfg, algo, total_steps=4)
    fresh.load_state(str(path / SHARDS_DIR))
    assert fresh.global_step == 1 and fresh.scheduler.get_last_lr() == trainer.scheduler.get_last_lr()
    a, b = _step(trainer, algo, 1), _step(fresh, algo, 1)  # Adam moments restored: the same second step
    assert a["actor/grad_norm"] == b["actor/grad_norm"]
    wa, wb = trainer.weights_for_sync(), fresh.weights_for_sync()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_export_writes_the_merged_lora_policy(tiny_dir, tmp_path):
    import argparse

    from sail_rl.commands import export
    from sail_rl.config import dump_yaml, from_dict
    from sail_rl.model.builder import load_model
    from sail_rl.rl.config import RunRecipe

    algo = AlgorithmConfig(kl_loss_coef=0.1)
    recipe = from_dict(RunRecipe, {"model": {"path": str(tiny_dir)}, "data": {"train_files": ["unused.jsonl"]}, "algorithm": {"kl_loss_coef": 0.1},
                                   "trainer": {"learning_rate": 1e-2, "mini_batch_size": 16, "micro_batch_size": 8,
                                               "lora": {"enabled": True, "rank": 4, "alpha": 8}}})
    trainer = PolicyTrainer(str(tiny_dir), recipe.trainer, algo)
    _step(trainer, algo, 0)
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir, 1, {}, {}, save_shards=lambda d: trainer.save_state(str(d)))
    (run_dir / "recipe.yaml").write_text(dump_yaml(recipe))
    assert export.run(argparse.Namespace(run_dir=str(run_dir), step=None, out=str(tmp_path / "hf"), overwrite=False)) == 0
    exported = load_model(tmp_path / "hf").state_dict()  # AutoModelForImageTextToText
    synced = trainer.weights_for_sync()
    assert any(not torch.equal(synced[k], load_model(tiny_dir).state_dict()[k]) for k in synced)
    for k, v in synced.items():
        torch.testing.assert_close(exported[k], v, atol=0, rtol=0)
