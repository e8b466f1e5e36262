"""Data-parallel SFT (ddp and fsdp2 over 2 gloo processes) takes the steps one process takes; its
sharded checkpoints resume in the same world size and in another (2 -> 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.multiprocess import assert_same_grads, full_grads, run_ranks

STEPS = 3


def _quiet(_msg: str) -> None:
    pass


def _final_weights(out_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(out_dir) / "model.safetensors"))


def _step_2(out_dir) -> Path:
    return Path(out_dir) / "checkpoints" / "step_2"


def _sft_worker(rank, world_size, recipe, resumed_recipe, out_path):
    import torch.distributed as dist

    from sail_rl.sft.trainer import SFTTrainer
    from sail_rl.trainer import parallel

    trainer = SFTTrainer(recipe, log=_quiet)
    steps, train_step = [], trainer.train_step

    def recorded_step():
        metrics = train_step()
        steps.append({"loss": metrics["loss"], "grad_norm": metrics["grad_norm"], "num_tokens": metrics["num_tokens"],
                      "grads": full_grads(trainer.model)})
        if trainer.step == 2:  # what checkpoint step_2 holds (a collective under fsdp2)
            steps[-1]["weights"] = {k: v.clone() for k, v in parallel.full_model_state(trainer.model).items()} \
                if trainer.fsdp else {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        return metrics

    trainer.train_step = recorded_step
    trainer.train()  # checkpoints/step_2, then the final model at step 3
    # a fresh run resumes from step_2 alone and must end on the same weights
    if rank == 0:
        shutil.copytree(_step_2(trainer.output_dir), _step_2(resumed_recipe.train.output_dir))
    if world_size > 1:
        dist.barrier()
    resumed = SFTTrainer(resumed_recipe, log=_quiet)
    resumed.train(resume=True)
    if rank == 0:
        torch.save({"steps": steps, "param_type": type(next(trainer.model.parameters()).data).__name__}, out_path)


def _resume_in_one_process(recipe, checkpoint_dir, out_name):
    """A 1-process trainer loads a 2-process run's step_2 (resharded by DCP); returns its weights."""
    import dataclasses

    from sail_rl.sft.trainer import SFTTrainer

    train = dataclasses.replace(recipe.train, output_dir=str(Path(recipe.train.output_dir).parent / out_name),
                                strategy="ddp", per_device_train_batch_size=8)  # the same global batch
    shutil.copytree(checkpoint_dir, _step_2(train.output_dir))
    trainer = SFTTrainer(dataclasses.replace(recipe, train=train), log=_quiet)
    trainer.resume()
    assert (trainer.step, trainer.position) == (2, 32)
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.slow
def test_two_process_sft_equals_one_process(make_recipe, tmp_path):
    """Same global batch (8 x 2 accumulation): gradients, loss and grad norm of every step, the final
    weights, a resume from a mid-run checkpoint, for ddp and fsdp2; and 2 -> 1 process resumes."""
    common = dict(max_steps=STEPS, save_steps=2, gradient_accumulation_steps=2, learning_rate=1e-4,
                  lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1e9)  # no clipping: raw gradients
    runs = {"one": (1, dict(per_device_train_batch_size=8)),
            "ddp": (2, dict(per_device_train_batch_size=4, strategy="ddp")),
            "fsdp2": (2, dict(per_device_train_batch_size=4, strategy="fsdp2"))}
    results = {}
    for name, (world_size, train) in runs.items():
        recipe = make_recipe(name, **common, **train)
        resumed = make_recipe(f"{name}_resumed", **common, **train)
        run_ranks(_sft_worker, world_size, recipe, resumed, str(tmp_path / f"{name}.pt"))
        results[name] = torch.load(tmp_path / f"{name}.pt", weights_only=False)
        straight, again = _final_weights(recipe.train.output_dir), _final_weights(resumed.train.output_dir)
        assert straight.keys() == again.keys() and all(torch.equal(straight[k], again[k]) for k in straight), name
        results[name]["weights"] = straight
        if world_size == 2:  # 2 -> 1: the sharded step_2 loads into one process as exactly the weights it holds
            loaded = _resume_in_one_process(recipe, _step_2(recipe.train.output_dir), f"{name}_to_one")
            held = results[name]["steps"][1]["weights"]
            assert loaded.keys() == held.keys() and all(torch.equal(loaded[k], held[k]) for k in held), name
    from sail_rl.model.builder import load_model

    initial = load_model(make_recipe().model.path).state_dict()
    one = results["one"]
    assert one["steps"][0]["grad_norm"] > 0
    for name in ("ddp", "fsdp2"):
        for step, (a, b) in enumerate(zip(one["steps"], results[name]["steps"])):
            label = f"{name} step {step}"
            assert_same_grads(a["grads"], b["grads"], label)
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-5), label
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5), label
        w1, w2 = one["weights"], results[name]["weights"]
        assert w1.keys() == w2.keys()
        d1, d2 = (torch.cat([(w[k] - initial[k]).flatten() for k in w1]) for w in (w1, w2))
        assert (d1 != 0).float().mean() > 0.5
        # the same three AdamW steps: any gap is AdamW dividing float noise by a ~0 second moment
        assert (d2 - d1).norm() <= 0.01 * d1.norm(), name
    assert results["fsdp2"]["param_type"] == "DTensor" and results["ddp"]["param_type"] == "Tensor"
