"""Mixed precision: fp32 master weights, bf16 compute. A tiny lr-1e-6 step must not round away."""

from __future__ import annotations

import torch

from sail_rl.algorithms import AlgorithmConfig, compute_advantages
from sail_rl.trainer.config import TrainerConfig
from sail_rl.trainer.worker import PolicyTrainer
from tests.trainer.helpers import fake_batch


def update_delta(model_dir, dtype: str) -> tuple[torch.Tensor, PolicyTrainer]:
    """All weights' change [n_params] after one lr-1e-6 AdamW update with compute dtype `dtype`."""
    algo = AlgorithmConfig(kl_loss_coef=0.01)  # with a reference model
    cfg = TrainerConfig(learning_rate=1e-6, mini_batch_size=16, micro_batch_size=8, seed=0)
    trainer = PolicyTrainer(str(model_dir), cfg, algo, dtype=dtype)
    before = {k: v.clone() for k, v in trainer.weights_for_sync().items()}
    batch = fake_batch(model_dir)
    trainer.compute_log_probs(batch)
    batch.advantages, batch.returns = compute_advantages(algo, batch.rewards, batch.group_ids, batch.response_mask)
    trainer.update(batch)
    after = trainer.weights_for_sync()
    return torch.cat([(after[k] - before[k]).flatten() for k in before]), trainer


def assert_same_update(fp32: torch.Tensor, bf16: torch.Tensor) -> None:
    """bf16 compute moves as many weights as fp32 and in the same direction."""
    changed_fp32, changed_bf16 = (fp32 != 0).float().mean(), (bf16 != 0).float().mean()
    assert changed_fp32 > 0.5, changed_fp32
    assert changed_bf16 >= 0.98 * changed_fp32, (changed_bf16, changed_fp32)  # bf16-held weights: ~2%
    assert torch.nn.functional.cosine_similarity(fp32, bf16, dim=0) >= 0.99


def test_bf16_compute_keeps_fp32_weights_and_takes_the_fp32_step(tiny_dir):
    fp32, _ = update_delta(tiny_dir, "float32")
    bf16, trainer = update_delta(tiny_dir, "bfloat16")
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    state = trainer.optimizer.state_dict()["state"]
    assert {v.dtype for s in state.values() for k, v in s.items() if k != "step"} == {torch.float32}
    assert {p.dtype for p in trainer.reference.parameters()} == {torch.bfloat16}  # frozen: compute dtype
    assert all(v.dtype == torch.float32 for v in trainer.weights_for_sync().values())  # the engine casts
    assert_same_update(fp32, bf16)
