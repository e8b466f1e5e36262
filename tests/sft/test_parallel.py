"""Data-parallel SFT (ddp and fsdp2 over 2 gloo processes) takes the steps one process takes."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

STEPS = 3


def _quiet(_msg: str) -> None:
    pass


def _final_weights(out_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(out_dir) / "model.safetensors"))


def _sft_worker(rank, world_size, port, recipe, resumed_recipe, out_path):
    import torch.distributed as dist

    from sail_rl.sft.trainer import SFTTrainer
    from tests.trainer.test_worker import full_grads

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
    trainer = SFTTrainer(recipe, log=_quiet)
    steps, train_step = [], trainer.train_step

    def recorded_step():
        metrics = train_step()
        steps.append({"loss": metrics["loss"], "grad_norm": metrics["grad_norm"], "num_tokens": metrics["num_tokens"],
                      "grads": full_grads(trainer.model)})
        return metrics

    trainer.train_step = recorded_step
    trainer.train()  # checkpoint-2, then the final model at step 3
    # a fresh run resumes from checkpoint-2 alone and must end on the same weights
    resumed_dir = Path(resumed_recipe.train.output_dir)
    if rank == 0:
        resumed_dir.mkdir(parents=True)
        shutil.copytree(trainer.output_dir / "checkpoint-2", resumed_dir / "checkpoint-2")
    if world_size > 1:
        dist.barrier()
    resumed = SFTTrainer(resumed_recipe, log=_quiet)
    resumed.train(resume=True)
    if rank == 0:
        torch.save({"steps": steps, "param_type": type(next(trainer.model.parameters()).data).__name__}, out_path)
    if world_size > 1:
        dist.destroy_process_group()


def _run(world_size, recipe, resumed_recipe, out_path) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_sft_worker, args=(r, world_size, port, recipe, resumed_recipe, str(out_path)))
             for r in range(world_size)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=900)
        assert proc.exitcode == 0, f"rank exited with {proc.exitcode}"
    return torch.load(out_path, weights_only=False)


@pytest.mark.slow
def test_two_process_sft_equals_one_process(make_recipe, tmp_path):
    """Same global batch (8 x 2 accumulation): gradients, loss and grad norm of every step, the final
    weights, and a resume from a mid-run checkpoint, for ddp and fsdp2."""
    from tests.trainer.test_worker import assert_same_grads

    common = dict(max_steps=STEPS, save_steps=2, gradient_accumulation_steps=2, learning_rate=1e-4,
                  lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1e9)  # no clipping: raw gradients
    runs = {"one": (1, dict(per_device_train_batch_size=8)),
            "ddp": (2, dict(per_device_train_batch_size=4, strategy="ddp")),
            "fsdp2": (2, dict(per_device_train_batch_size=4, strategy="fsdp2"))}
    results = {}
    for name, (world_size, train) in runs.items():
        recipe = make_recipe(name, **common, **train)
        resumed = make_recipe(f"{name}_resumed", **common, **train)
        results[name] = _run(world_size, recipe, resumed, tmp_path / f"{name}.pt")
        straight, again = _final_weights(recipe.train.output_dir), _final_weights(resumed.train.output_dir)
        assert straight.keys() == again.keys() and all(torch.equal(straight[k], again[k]) for k in straight), name
        results[name]["weights"] = straight
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
