"""Mixed precision: fp32 master weights, bf16 compute. A tiny lr-1e-6 step must not round away."""

from __future__ import annotations

import pytest
import torch

from sail_rl.algorithms import AlgorithmConfig, compute_advantages
from sail_rl.trainer.config import TrainerConfig
from sail_rl.trainer.policy_trainer import PolicyTrainer
from tests.trainer.helpers import fake_batch


def update_delta(model_dir, dtype: str, strategy: str = "ddp", rank: int = 0, world_size: int = 1):
    """(all weights' change [n_params], trainer) after one lr-1e-6 AdamW update with compute dtype `dtype`."""
    algo = AlgorithmConfig(kl_loss_coef=0.01)  # with a reference model
    cfg = TrainerConfig(learning_rate=1e-6, mini_batch_size=16, micro_batch_size=8, seed=0, strategy=strategy)
    trainer = PolicyTrainer(str(model_dir), cfg, algo, dtype=dtype, rank=rank, world_size=world_size)
    before = {k: v.clone() for k, v in trainer.weights_for_sync().items()}
    batch = fake_batch(model_dir)
    trainer.compute_log_probs(batch)
    batch.advantages, batch.returns = compute_advantages(algo, batch.rewards, batch.group_ids, batch.response_mask)
    trainer.update(batch)
    after = trainer.weights_for_sync()
    if not after:  # fsdp2 ranks other than 0 get no full weights
        return torch.empty(0), trainer
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
    assert trainer.optimizer.defaults["fused"]  # precision.adamw
    state = trainer.optimizer.state_dict()["state"]
    assert {v.dtype for s in state.values() for k, v in s.items() if k != "step"} == {torch.float32}
    assert {p.dtype for p in trainer.reference.parameters()} == {torch.bfloat16}  # frozen: compute dtype
    assert all(v.dtype == torch.float32 for v in trainer.weights_for_sync().values())  # the engine casts
    assert_same_update(fp32, bf16)


def test_fused_adamw_takes_torch_s_per_tensor_adamw_steps():
    from sail_rl.trainer.precision import adamw

    torch.manual_seed(0)
    weights = [torch.randn(8, 4), torch.randn(4)]
    fused = [torch.nn.Parameter(w.clone()) for w in weights]
    reference = [torch.nn.Parameter(w.clone()) for w in weights]
    settings = dict(lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    optimizers = [adamw(fused, **settings), torch.optim.AdamW(reference, foreach=False, **settings)]
    for step in range(3):
        grads = [torch.randn_like(w) for w in weights]
        for params, optimizer in zip((fused, reference), optimizers):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
    assert optimizers[0].defaults["fused"]
    for f, r, w in zip(fused, reference, weights):
        assert not torch.equal(f, w)
        torch.testing.assert_close(f, r, atol=1e-6, rtol=1e-5)


def _fsdp2_bf16_worker(rank, world_size, port, model_dir, out_path):
    import os

    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    delta, trainer = update_delta(model_dir, "bfloat16", strategy="fsdp2", rank=rank, world_size=world_size)
    if rank == 0:
        torch.save({"delta": delta, "shard_dtypes": {p.to_local().dtype for p in trainer.model.parameters()}}, out_path)
    dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp2_bf16_policy_takes_the_one_process_bf16_step(tiny_dir, tmp_path):
    """FSDP2's MixedPrecisionPolicy (bf16 gathers, fp32 shards and reduction) over 2 ranks vs autocast in one process."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "fsdp2.pt"
    procs = [mp.get_context("spawn").Process(target=_fsdp2_bf16_worker, args=(r, 2, port, str(tiny_dir), str(out)))
             for r in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=600)
        assert proc.exitcode == 0
    result = torch.load(out, weights_only=False)
    assert result["shard_dtypes"] == {torch.float32}
    one, _ = update_delta(tiny_dir, "bfloat16")
    assert_same_update(one, result["delta"])
