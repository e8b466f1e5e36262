"""The SFT loop: loss falls, LoRA merges exactly, checkpoints are atomic, resume is bit-exact."""

from __future__ import annotations

import shutil

import pytest
import torch

from sail_rl.errors import ConfigError
from sail_rl.sft.trainer import SFTTrainer, lr_lambda


def _quiet(_msg: str) -> None:
    pass


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_loss_falls_on_a_fixed_batch(make_recipe):
    trainer = SFTTrainer(make_recipe(lr_scheduler_type="constant", warmup_steps=0), log=_quiet)
    fixed = trainer.next_micro_batch()
    trainer.next_micro_batch = lambda: fixed
    losses = [trainer.train_step()["loss"] for _ in range(6)]
    assert losses[-1] < 0.7 * losses[0], losses
    assert trainer.step == 6


def test_frozen_towers_do_not_change(make_recipe):
    trainer = SFTTrainer(make_recipe(freeze_vision_tower=True, freeze_projector=True), log=_quiet)
    vision = {k: v.clone() for k, v in trainer.model.model.vision_tower.state_dict().items()}
    embed = trainer.model.get_input_embeddings().weight.clone()
    trainer.train_step()
    assert all(torch.equal(v, trainer.model.model.vision_tower.state_dict()[k]) for k, v in vision.items())
    assert not torch.equal(embed, trainer.model.get_input_embeddings().weight)


def test_lora_merged_checkpoint_matches_adapter_model(make_recipe, tmp_path):
    from peft import PeftModel

    from sail_rl.model.builder import load_model

    trainer = SFTTrainer(make_recipe(lora={"enabled": True, "r": 4}, max_steps=3, learning_rate=1e-2), log=_quiet)
    assert isinstance(trainer.model, PeftModel)
    assert all("lora_" in n for n, p in trainer.model.named_parameters() if p.requires_grad and "language_model" in n)
    summary = trainer.train()
    batch = trainer.next_micro_batch()
    batch.pop("labels")
    trainer.model.eval()
    with torch.no_grad():
        adapter_logits = trainer.model(**batch).logits
        merged = load_model(summary["output_dir"]).eval()
        merged_logits = merged(**batch).logits
    assert not any("lora" in k for k in _weights(trainer.output_dir))
    torch.testing.assert_close(merged_logits, adapter_logits, atol=1e-5, rtol=1e-5)


def test_checkpoints_are_sharded_atomic_and_pruned(make_recipe):
    from sail_rl.trainer import checkpoint

    trainer = SFTTrainer(make_recipe(max_steps=4, save_steps=1, save_total_limit=2), log=_quiet)
    trainer.train()
    out = trainer.output_dir
    assert [p.name for p in checkpoint.list_checkpoints(out)] == ["step_2", "step_3"]
    (out / "checkpoints" / "step_9.tmp").mkdir()  # a save that crashed half-way
    newest = checkpoint.latest_checkpoint(out)
    assert newest.name == "step_3" and (newest / checkpoint.SHARDS_DIR / ".metadata").is_file()
    assert not list(newest.glob("*.safetensors"))  # no HF export per save: only at the end of the stage
    assert (out / "config.json").is_file() and not (out / ".final.tmp").exists()
    from sail_rl.model.builder import load_model, load_processor

    load_model(out), load_processor(out)  # the final export, the HF layout load_model reads


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_gives_the_same_weights_as_a_straight_run(make_recipe, workers):
    """Killed after checkpoint-2 and resumed = straight; with 2 data-loader workers too (the streaming
    path builds micro-batches ahead of the step, and the checkpoint's data position must not count them)."""
    train = dict(max_steps=4, save_steps=2, gradient_accumulation_steps=2, dataloader_num_workers=workers)
    straight = SFTTrainer(make_recipe("straight", **train), log=_quiet)
    straight.train()
    resumed_dir = straight.output_dir.parent / "resumed"
    shutil.copytree(straight.output_dir / "checkpoints" / "step_2", resumed_dir / "checkpoints" / "step_2")
    resumed = SFTTrainer(make_recipe("resumed", **train), log=_quiet)
    resumed.train(resume=True)
    assert (resumed.step, resumed.epoch, resumed.position) == (straight.step, straight.epoch, straight.position)
    a, b = _weights(straight.output_dir), _weights(resumed_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_seed_is_refused(make_recipe):
    first = SFTTrainer(make_recipe("s", max_steps=2, save_steps=1), log=_quiet)
    first.train()
    with pytest.raises(ConfigError, match="train.seed"):
        SFTTrainer(make_recipe("s", max_steps=2, save_steps=1, seed=1), log=_quiet).train(resume=True)


def test_cosine_schedule_warms_up_then_decays():
    f = lr_lambda("cosine", warmup_steps=2, total_steps=10)
    assert [round(f(s), 3) for s in (0, 1, 2, 6, 10)] == [0.5, 1.0, 1.0, 0.5, 0.0]


def test_moe_step_adds_the_router_aux_loss(tiny_moe_dir, make_recipe):
    import dataclasses

    recipe = make_recipe(max_steps=1)
    recipe.model = dataclasses.replace(recipe.model, path=str(tiny_moe_dir))
    trainer = SFTTrainer(recipe, log=_quiet)
    batch = trainer.next_micro_batch()
    _, n_tokens, _, aux = trainer._forward_loss(batch)
    assert n_tokens > 0 and float(aux.detach()) > 0
    assert trainer.train_step()["loss"] > 0


def _sft_step_delta(make_recipe, dtype: str) -> tuple[torch.Tensor, SFTTrainer]:
    import dataclasses

    recipe = make_recipe(f"p_{dtype}", learning_rate=1e-6, lr_scheduler_type="constant", warmup_steps=0)
    recipe.model = dataclasses.replace(recipe.model, dtype=dtype)
    trainer = SFTTrainer(recipe, log=_quiet)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train_step()
    return torch.cat([(p.detach() - before[k]).flatten() for k, p in trainer.model.named_parameters()]), trainer


def test_bf16_compute_keeps_fp32_weights_and_takes_the_fp32_step(make_recipe):
    from tests.trainer.test_precision import assert_same_update

    fp32, _ = _sft_step_delta(make_recipe, "float32")
    bf16, trainer = _sft_step_delta(make_recipe, "bfloat16")
    assert trainer.compute_dtype == torch.bfloat16
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    assert_same_update(fp32, bf16)


def test_bf16_flag_must_agree_with_the_compute_dtype(make_recipe):
    with pytest.raises(ConfigError, match="train.bf16=true contradicts model.dtype=float32"):
        SFTTrainer(make_recipe(bf16=True), log=_quiet)


@pytest.mark.slow  # 10-26 s: too heavy for make test-fast; make test (CI) runs it
def test_export_of_an_sft_checkpoint_is_the_model_a_run_ending_there_saves(make_recipe, tmp_path):
    """`sail-rl export OUTPUT_DIR --step 2` (LoRA merged) = the final model of the same run stopped at step 2."""
    from sail_rl.cli import main

    train = dict(lora={"enabled": True, "r": 4}, learning_rate=1e-2, lr_scheduler_type="constant", warmup_steps=0)
    longer = SFTTrainer(make_recipe("longer", max_steps=3, save_steps=1, **train), log=_quiet)
    longer.train()
    shorter = SFTTrainer(make_recipe("shorter", max_steps=2, **train), log=_quiet)
    shorter.train()
    assert main(["export", str(longer.output_dir), "--step", "2", "--out", str(tmp_path / "exported")]) == 0
    a, b = _weights(tmp_path / "exported"), _weights(shorter.output_dir)
    assert not any("lora" in k for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], v) for k, v in _weights(longer.output_dir).items())  # step 3 differs
