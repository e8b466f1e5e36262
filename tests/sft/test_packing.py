"""train.packing: the rows of a micro-batch as one sequence give the padded loss and gradients."""

from __future__ import annotations

import pytest
import torch

from sail_rl.sft.trainer import SFTTrainer


def _loss_and_grads(trainer, batch):
    trainer.model.zero_grad(set_to_none=True)
    loss_sum, n_tokens, n_correct, _ = trainer._forward_loss(dict(batch))
    (loss_sum / n_tokens).backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return float(loss_sum.detach()), n_tokens, n_correct, grads


def test_packed_loss_and_gradients_equal_padded(make_recipe):
    trainer = SFTTrainer(make_recipe(per_device_train_batch_size=6), log=lambda _m: None)
    batch = trainer.next_micro_batch()
    assert (batch["attention_mask"] == 0).any() and batch["pixel_values"].shape[0] > 0  # padding and images
    assert trainer.packing is True  # the default on sdpa
    assert trainer.optimizer.defaults["fused"]  # precision.adamw, as the RL trainer
    packed = _loss_and_grads(trainer, batch)
    trainer.packing = False
    padded = _loss_and_grads(trainer, batch)
    assert packed[1:3] == padded[1:3]  # the same supervised tokens, the same argmax hits
    assert abs(packed[0] - padded[0]) <= 1e-5 * abs(padded[0])
    assert packed[3].keys() == padded[3].keys()
    for name, g in padded[3].items():
        torch.testing.assert_close(packed[3][name], g, atol=1e-6 * max(1.0, float(g.abs().max())), rtol=1e-4, msg=name)


def test_packed_training_takes_the_padded_steps(make_recipe):
    losses = {}
    for packing in (False, True):
        trainer = SFTTrainer(make_recipe(f"p{packing}", packing=packing, max_steps=3), log=lambda _m: None)
        losses[packing] = [trainer.train_step()["loss"] for _ in range(3)]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_packing_defaults_to_the_attention_kernel():
    from sail_rl.trainer.batch import packing_pays

    assert packing_pays("flash_attention_2") and packing_pays("flash_attention_3") and packing_pays("sdpa")
    assert packing_pays("flash_attention_2", length_grouped=True)
    assert not packing_pays("sdpa", length_grouped=True)  # RL's grouped micro-batches gain nothing more
    assert not packing_pays("eager")
