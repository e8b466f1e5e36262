"""`SFTTrainer`: a small supervised fine-tuning loop for SAIL-VL, following TRL's conventions.

Why not TRL's `SFTTrainer` itself (1.16 is installed)? Three constraints decided it:
- exact loss masks with images: TRL's VLM path builds labels in its own collator from a
  chat template it renders itself and masks by "assistant_masks" from a jinja
  `{% generation %}` template; SAIL-VL's ChatML + image-slot expansion lives in our
  processor, and our segment-wise tokenisation (`masks.py`) gives the exact positions by
  construction. With `skip_prepare_dataset` we would bypass all of TRL's SFT logic anyway.
- deterministic per-epoch mixtures and an exact resume (same weights as a straight run):
  HF Trainer's resume skips batches of a sampler it re-creates, and the mixture would need
  a custom sampler with epoch hooks; here the data position is (epoch, index) into a plan
  that is a pure function of (seed, epoch).
- speed: no accelerate or callbacks; `sail-rl bench sft` measures this loop against TRL's
  `SFTTrainer` on the same model, data and batch.
Data streams (`loader.py`: records read, images decoded and tokenised per micro-batch, in
`dataloader_num_workers` processes or in this one); `packing` packs a micro-batch's rows into
one sequence (`loss.py`); checkpoints are the RL trainer's sharded layout (`save_checkpoint`).
Data parallel runs on the RL trainer's machinery (`sail_rl.trainer.parallel`): launched with
`torchrun --nproc_per_node N -m sail_rl.cli sft RECIPE`, each rank takes a strided share of
every global micro-batch (per_device_train_batch_size x N samples), the loss is divided by the
supervised tokens of the whole step on all ranks, and gradients are SUMMED over ranks (ddp:
all-reduce; fsdp2: reduce-scatter into shards), so N ranks take the step one process takes on
the same global batch.
What is kept from TRL: the config names (see config.py), `completion_only_loss`, the loss
as a token mean over the supervised tokens of the whole accumulated batch (TRL's
`num_items_in_batch`), and its logging keys (loss, grad_norm, learning_rate, num_tokens,
mean_token_accuracy, epoch).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from sail_rl.config import dump_yaml
from sail_rl.errors import ConfigError
from sail_rl.sft import checkpoint as ckpt
from sail_rl.sft.config import SFTRecipe
from sail_rl.sft.examples import SourceData, default_epoch_size, epoch_plan
from sail_rl.sft.loader import Features, micro_batch_loader
from sail_rl.sft.loss import packed_loss, padded_loss
from sail_rl.sft.masks import IGNORE_INDEX
from sail_rl.trainer import checkpoint, parallel, precision
from sail_rl.trainer.batch import packing_pays
from sail_rl.schedule import lr_lambda  # noqa: F401  (re-exported: the SFT tests use it)

RECIPE_FILE = "sft_recipe.yaml"  # in train.output_dir: what `sail-rl export` reads


def check_lora_targets(model, prefix_pattern: str, targets: list[str]) -> None:
    """Every `train.lora.target_modules` name must match a linear layer (PEFT ignores a wrong one
    when another matches)."""
    import re

    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    for target in targets:
        if not any(re.fullmatch(prefix_pattern + re.escape(target), n) for n in names):
            valid = sorted({n.rsplit(".", 1)[-1] for n in names if re.match(prefix_pattern, n)})
            raise ConfigError(f"train.lora.target_modules: '{target}' is no linear layer of the LLM; valid: {', '.join(valid)}")



def sft_compute_dtype(model_dtype: str, bf16: Optional[bool]) -> torch.dtype:
    """`model.dtype` is the compute dtype (weights and optimizer state stay fp32, see
    `sail_rl.trainer.precision`); TRL's `train.bf16`, when set, must say the same."""
    if bf16 is not None and bf16 != (model_dtype == "bfloat16"):
        want = "bfloat16" if bf16 else "float32"
        raise ConfigError(f"train.bf16={str(bf16).lower()} contradicts model.dtype={model_dtype} (the compute dtype); "
                          f"set model.dtype: {want} or leave train.bf16 null")
    return precision.compute_dtype(model_dtype)


def _truncate_log(path: Path, after_step: int) -> None:
    """Drop log lines past `after_step` (and torn ones): the steps a resumed run will redo."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= after_step:
                kept.append(line)
        except (json.JSONDecodeError, AttributeError):
            continue
    from sail_rl.rundir import atomic_write_text

    atomic_write_text(path, "".join(k + "\n" for k in kept))


def build_model(recipe: SFTRecipe, path: str):
    """The model SFT trains, on CPU in fp32 (master weights): frozen towers, LoRA wrapped (seeded by
    train.seed). `sail-rl export` builds the same to load a checkpoint's shards into."""
    from sail_rl.model.builder import load_model

    cfg = recipe.train
    torch.manual_seed(cfg.seed)
    model = load_model(path, "float32", recipe.model.attn_implementation)
    if recipe.model.gradient_checkpointing:
        model.model.language_model.gradient_checkpointing_enable()
    model.model.vision_tower.requires_grad_(not cfg.freeze_vision_tower)
    model.model.multi_modal_projector.requires_grad_(not cfg.freeze_projector)
    if cfg.lora.enabled:
        from peft import LoraConfig, get_peft_model

        model.model.language_model.requires_grad_(False)
        model.lm_head.requires_grad_(False)
        lora = cfg.lora
        pattern = r".*\.language_model\..*\.(" + "|".join(lora.target_modules) + r")$"  # the text model only
        check_lora_targets(model, r".*\.language_model\..*\.", lora.target_modules)
        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=pattern))
    return model


class SFTTrainer:
    """Build the model, the data and the optimiser from a recipe; `train()` runs to the end.

    `self.step` counts optimiser steps; the data position is (`self.epoch`, `self.position`),
    the next index into `epoch_plan(..., epoch)`.
    """

    def __init__(self, recipe: SFTRecipe, log: Callable[[str], None] = print):
        from sail_rl.model.builder import load_processor

        recipe.require_sources()
        self.recipe, self.cfg = recipe, recipe.train
        self.output_dir = Path(self.cfg.output_dir)
        self.rank, self.world_size = parallel.join_process_group()
        self.fsdp = self.cfg.strategy == "fsdp2" and self.world_size > 1
        self.log = log if self.rank == 0 else (lambda _msg: None)
        self.device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        self.compute_dtype = sft_compute_dtype(recipe.model.dtype, self.cfg.bf16)
        # packing: the rows of a micro-batch as one sequence; by default where the attention kernel makes it pay
        self.packing = self.cfg.packing if self.cfg.packing is not None else packing_pays(recipe.model.attn_implementation)
        if self.cfg.torch_num_threads:
            torch.set_num_threads(self.cfg.torch_num_threads)
        self.processor = load_processor(recipe.model.path)
        self.sources = [SourceData(s.path, s.mode, s.image_root, recipe.data.check_images) for s in recipe.data.sources]
        self.ratios = [s.ratio for s in recipe.data.sources]
        sizes = [len(s) for s in self.sources]
        self.epoch_size = recipe.data.samples_per_epoch or default_epoch_size(sizes, self.ratios)
        self.global_batch_size = self.cfg.per_device_train_batch_size * self.world_size  # samples per micro-step
        self.batches_per_epoch = self.epoch_size // self.global_batch_size
        if self.batches_per_epoch < self.cfg.gradient_accumulation_steps:
            raise ConfigError(f"an epoch has {self.epoch_size} samples, fewer than one optimiser step needs "
                              f"({self.global_batch_size * self.cfg.gradient_accumulation_steps} on {self.world_size} "
                              "process(es)); lower train.per_device_train_batch_size or add data")
        steps_per_epoch = self.batches_per_epoch // self.cfg.gradient_accumulation_steps
        self.total_steps = self.cfg.max_steps if self.cfg.max_steps > 0 else max(1, int(steps_per_epoch * self.cfg.num_train_epochs))
        self.features = Features(self.sources, self.processor, self.cfg.assistant_turns, self.cfg.completion_only_loss,
                                 self.cfg.max_length, recipe.model.max_tiles)
        self._stream = None  # the micro-batch generator from the data position on (`_micro_batches`)
        self.step, self.epoch, self.position = 0, 0, 0
        self.model = self._build_model(recipe.model.path)
        self._build_optimizer()

    # ------------------------------------------------------------------ setup

    def _build_model(self, path: str):
        model = build_model(self.recipe, path).to(self.device).train()
        if self.fsdp:
            parallel.shard_fsdp2(model, self.world_size, self.device.type, self.compute_dtype)
        return model

    def _build_optimizer(self) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("nothing to train: every parameter is frozen; unfreeze a tower or enable train.lora")
        self.optimizer = precision.adamw(params, lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay,
                                         betas=(self.cfg.adam_beta1, self.cfg.adam_beta2))
        warmup = self.cfg.warmup_steps or int(self.cfg.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.cfg.lr_scheduler_type, warmup, self.total_steps))

    # ------------------------------------------------------------------ data

    def _micro_batches(self):
        """This rank's collated micro-batches from the data position (epoch, position) on, epoch after
        epoch. The position counts samples of the plan handed to the step (not those a worker built
        ahead), so a checkpoint taken between steps resumes exactly."""
        size, end = self.global_batch_size, self.batches_per_epoch * self.global_batch_size
        while True:
            if self.position + size > end:
                self.epoch, self.position = self.epoch + 1, 0
            plan = epoch_plan([len(s) for s in self.sources], self.ratios, self.epoch, self.cfg.seed, self.epoch_size)
            # this rank's share of each global micro-batch: rows rank, rank + N, ...
            chunks = [plan[at: at + size][self.rank:: self.world_size] for at in range(self.position, end, size)]
            for batch in micro_batch_loader(self.features, chunks, self.cfg.dataloader_num_workers):
                self.position += size
                yield batch

    def next_micro_batch(self) -> dict[str, torch.Tensor]:
        """The next collated micro-batch of this rank; advances the data position."""
        if self._stream is None:
            self._stream = self._micro_batches()
        return next(self._stream)

    # ------------------------------------------------------------------ training

    def _forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, int, torch.Tensor]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        labels = batch.pop("labels")
        moe = getattr(self.model.config.get_text_config(), "num_experts", None)
        extra = {"output_router_logits": True} if moe else {}
        forward = packed_loss if self.packing else padded_loss
        with precision.autocast(self.device.type, self.compute_dtype):
            loss_sum, n_tokens, n_correct, out = forward(self.model, batch, labels, **extra)
        aux = getattr(out, "aux_loss", None)
        aux = torch.zeros((), device=self.device) if aux is None else aux
        return loss_sum, n_tokens, n_correct, aux

    def train_step(self) -> dict[str, float]:
        """One optimiser step over `gradient_accumulation_steps` micro-batches.

        loss = sum of token losses / supervised tokens of the whole step on all ranks (+ MoE aux
        loss); this rank's share of each global micro-batch is rows rank, rank + N, ...
        """
        self.optimizer.zero_grad(set_to_none=True)  # here, not after the step: the gradients stay readable
        micro = [self.next_micro_batch() for _ in range(self.cfg.gradient_accumulation_steps)]
        n_local = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)
        n_items = self._sum(n_local)
        aux_coef = getattr(self.model.config.get_text_config(), "router_aux_loss_coef", 0.0) or 0.0
        total_loss, total_correct, total_tokens = 0.0, 0, 0
        for batch in micro:
            total_tokens += int(batch["attention_mask"].sum())
            loss_sum, _, n_correct, aux = self._forward_loss(batch)
            loss = loss_sum / max(1, n_items) + aux_coef * aux / (len(micro) * self.world_size)
            loss.backward()
            total_loss += float(loss_sum.detach())
            total_correct += n_correct
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.world_size > 1 and not self.fsdp:
            parallel.all_reduce_grads(params)  # fsdp2 reduce-scatters in the backward
        grad_norm = parallel.full_value(torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": self._sum(total_loss) / max(1, n_items), "grad_norm": grad_norm, "learning_rate": lr,
                "num_tokens": int(self._sum(total_tokens)), "mean_token_accuracy": self._sum(total_correct) / max(1, n_items)}

    def _sum(self, value: float) -> float:
        return parallel.sum_over_ranks(value, self.world_size, self.device)

    def train(self, resume: bool = False) -> dict[str, Any]:
        """Run to `total_steps`; checkpoint every `save_steps`; save the final model. Returns a summary."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:  # `sail-rl export` rebuilds the model of a checkpoint from it
            from sail_rl.rundir import atomic_write_text

            atomic_write_text(self.output_dir / RECIPE_FILE, dump_yaml(self.recipe))
        if resume:
            self.resume()
        _truncate_log(self.output_dir / "log.jsonl", self.step)  # a resumed run logs its steps once
        self.log(f"sft: {self.total_steps} steps, epoch of {self.epoch_size} samples, batch "
                 f"{self.cfg.per_device_train_batch_size}x{self.cfg.gradient_accumulation_steps}, "
                 f"{str(self.compute_dtype).removeprefix('torch.')} compute on {self.device}, from step {self.step}")
        start, tokens, last = time.perf_counter(), 0, {}
        log_path = self.output_dir / "log.jsonl" if self.rank == 0 else Path(os.devnull)
        with log_path.open("a", encoding="utf-8") as log_file:
            while self.step < self.total_steps:
                metrics = self.train_step()
                tokens += metrics["num_tokens"]
                if self.step % self.cfg.logging_steps == 0 or self.step == self.total_steps:
                    last = dict(metrics, step=self.step, epoch=round(self.epoch + self.position / self.epoch_size, 4),
                                num_tokens=tokens, elapsed_s=round(time.perf_counter() - start, 2))
                    log_file.write(json.dumps(last) + "\n")
                    log_file.flush()
                    self.log("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items()))
                if self.cfg.save_steps and self.step % self.cfg.save_steps == 0 and self.step < self.total_steps:
                    self.save_checkpoint()
        if self._stream is not None:  # stop the data-loader workers building batches past the last step
            self._stream.close()
            self._stream = None
        model = self._full_model()
        if self.rank == 0:  # the HF export, at the end of the stage only
            ckpt.save_final(self.output_dir, model, self.processor, {RECIPE_FILE: dump_yaml(self.recipe)})
        self._barrier()
        return {"steps": self.step, "train_s": round(time.perf_counter() - start, 2), "last": last,
                "output_dir": str(self.output_dir)}

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Optional[Path]:
        """output_dir/checkpoints/step_N in the RL layout (`sail_rl.trainer.checkpoint`): every rank writes
        its own shard of the weights and optimizer state; rank 0 the data position and RNGs. A collective."""
        pairs, meta = {"model": (self.model, self.optimizer)}, {"scheduler": self.scheduler.state_dict()}

        def save_shards(shards_dir: Optional[Path]) -> None:
            shards_dir = self._from_rank0(shards_dir and str(shards_dir))  # the other ranks learn rank 0's folder
            checkpoint.save_sharded(shards_dir, pairs, meta, self.rank)

        if self.rank != 0:
            save_shards(None)
            self._barrier()
            return None
        state = {"epoch": self.epoch, "position": self.position, "seed": self.cfg.seed}
        path = checkpoint.save_checkpoint(self.output_dir, self.step, {}, state, keep_last=self.cfg.save_total_limit,
                                          save_shards=save_shards, keep_key="train.save_total_limit",
                                          first_bytes=3 * ckpt.estimated_bytes(self.model))  # weights + 2 Adam moments
        self._barrier()
        return path

    def _from_rank0(self, value):
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _full_model(self):
        """The model to write: itself, or under fsdp2 an unsharded CPU copy on rank 0 (a collective)."""
        if not self.fsdp:
            return self.model
        state = parallel.full_model_state(self.model)
        if self.rank != 0:
            return None
        from sail_rl.model.builder import load_model

        model = load_model(self.recipe.model.path, "float32", self.recipe.model.attn_implementation)
        model.load_state_dict(state)
        return model

    def _barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def resume(self) -> Optional[Path]:
        """Load the newest complete checkpoint of output_dir: weights, optimizer, scheduler, RNG, data
        position. Its shards may come from any world size and strategy (DCP reshards them). A collective."""
        path = checkpoint.latest_checkpoint(self.output_dir)
        if path is None:
            self.log(f"sft: --resume: no checkpoint in {self.output_dir}; starting from step 0")
            return None
        _, state = checkpoint.load_checkpoint(path)  # restores the RNGs
        if state["seed"] != self.cfg.seed:
            raise ConfigError(f"{path}: written with train.seed={state['seed']}, resuming with {self.cfg.seed}; use the same seed")
        try:
            meta = checkpoint.load_sharded(path / checkpoint.SHARDS_DIR, {"model": (self.model, self.optimizer)})
        except (RuntimeError, KeyError) as exc:  # DCP names the first tensor it cannot place
            raise ConfigError(f"{path}: its shards do not fit this model ({str(exc).splitlines()[0][:200]}); "
                              "resume with the same model.path and train.lora") from None
        self.scheduler.load_state_dict(meta["scheduler"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self._stream = None  # the data stream restarts at the loaded position
        self.log(f"sft: resumed from {path} (step {self.step}, epoch {self.epoch}, position {self.position})")
        return path
