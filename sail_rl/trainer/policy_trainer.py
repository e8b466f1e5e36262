"""`PolicyTrainer`: the actor side of RL in one process, without Ray.

    trainer = PolicyTrainer(model_dir, trainer_cfg, algo_cfg, total_steps=100)
    batch = collate(samples, ...)                       # rollouts of one step
    trainer.compute_log_probs(batch)                    # old (and reference, values) in place
    batch.advantages, batch.returns = compute_advantages(...)
    metrics = trainer.update(batch)                     # PPO epochs x mini-batches x micro-batches
    engine.update_weights(trainer.weights_for_sync())   # merged LoRA, text + vision

Data parallel: `world_size` processes share `torch.distributed` (gloo on CPU, NCCL on GPU).
Each rank takes its share of every mini-batch's rows; losses are divided by the GLOBAL
token/sequence counts and gradients summed over ranks, so N ranks take the same step as
one process on the whole mini-batch. `trainer.strategy` picks full replicas with an
all-reduce (ddp) or FSDP2 sharding (fsdp2); see `sail_rl.trainer.parallel`. Under fsdp2
`weights_for_sync`, `save_state` and `save_pretrained` are collectives: call them on every
rank; rank 0 gets the result, the others an empty dict.

Precision (`sail_rl.trainer.precision`): parameters and optimizer state are float32 whatever
`dtype` says; `dtype` (the recipe's `model.dtype`) is the compute dtype of forwards and
backwards. `weights_for_sync` hands out fp32 weights; the rollout engine casts to its own dtype.
"""

from __future__ import annotations

import copy
import time

import torch

from sail_rl.algorithms import AlgorithmConfig, compute_policy_loss, value_loss
from sail_rl.model.lora import is_peft, merged_lora_weights
from sail_rl.trainer.batch import TrainBatch, packing_pays, split_rows
from sail_rl.schedule import lr_lambda
from sail_rl.trainer import checkpoint, parallel, precision
from sail_rl.trainer.config import TrainerConfig
from sail_rl.trainer.logprobs import ValueModel, policy_forward


class PolicyTrainer:
    def __init__(
        self,
        model_dir: str,
        cfg: TrainerConfig,
        algo: AlgorithmConfig,
        total_steps: int = 1000,
        dtype: str = "float32",
        rank: int = 0,
        world_size: int = 1,
        attn_implementation: str = "sdpa",
    ):
        from sail_rl.model.builder import load_model, load_processor
        from sail_rl.model.processing import banned_token_ids

        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.cfg, self.algo = cfg, algo
        self.model_dir, self.dtype = str(model_dir), dtype  # dtype: the compute dtype; weights stay fp32
        self.compute_dtype = precision.compute_dtype(dtype)
        self.rank, self.world_size = rank, world_size
        self.fsdp = cfg.strategy == "fsdp2" and world_size > 1
        self.padding_free = cfg.padding_free if cfg.padding_free is not None else packing_pays(attn_implementation, cfg.group_by_length)
        self.device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        self.model = load_model(model_dir, dtype="float32", attn_implementation=attn_implementation).to(self.device)
        self.suppress_ids = banned_token_ids(load_processor(model_dir).tokenizer)
        self.model.train()
        if cfg.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.model.model.vision_tower.requires_grad_(not cfg.freeze_vision)
        self.model.model.multi_modal_projector.requires_grad_(not cfg.freeze_projector)
        self.needs_ref = cfg.use_reference if cfg.use_reference is not None else (algo.kl_coef > 0 or algo.kl_loss_coef > 0)
        self.reference = None
        if self.needs_ref and not cfg.lora.enabled:
            # frozen: no master copy needed, so held in the compute dtype (half the memory in bf16)
            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False).to(self.compute_dtype)
        self.critic = None
        if algo.advantage_estimator == "gae":
            self.critic = ValueModel(copy.deepcopy(self.model)).to(self.device)
            self.critic.backbone.model.vision_tower.requires_grad_(False)
        if cfg.lora.enabled:
            self.model = _wrap_lora(self.model, cfg)
        if self.fsdp:  # after the copies: reference and critic are sharded alike
            for module in (self.model, self.reference, self.critic):
                if module is not None:
                    parallel.shard_fsdp2(module, world_size, self.device.type, self.compute_dtype)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:  # an update would be a no-op
            from sail_rl.errors import ConfigError

            raise ConfigError("the policy has no trainable parameters (check trainer.freeze_* and trainer.lora.target_modules)")
        self.optimizer = precision.adamw(params, lr=cfg.learning_rate, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.lr_schedule, cfg.warmup_steps, total_steps)
        )
        self.critic_optimizer = None
        if self.critic is not None:
            critic_params = [p for p in self.critic.parameters() if p.requires_grad]
            self.critic_optimizer = precision.adamw(critic_params, lr=cfg.critic_learning_rate)
        self.global_step = 0

    # ------------------------------------------------------------------ helpers

    def _base(self):
        """The SAIL-VL model under any PEFT wrapper."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def _reduce_grads(self, params) -> None:
        """ddp: sum gradients over ranks (fsdp2 reduce-scatters them in the backward)."""
        if self.world_size > 1 and not self.fsdp:
            parallel.all_reduce_grads(params)

    def _micro_batches(self, batch: TrainBatch, rows: list[int], n_total: int):
        """Yield (micro, positions in `rows`, is_stand_in) over `rows` of `batch`, on the device.

        With `group_by_length` the rows go longest first, so each micro-batch holds rows of
        similar length and pads little (the sum of micro-batch losses does not depend on the
        grouping). Under fsdp2 every rank runs as many forwards as the largest share of
        `n_total` rows needs; the missing ones are a stand-in row whose result the caller drops.
        """
        size = self.cfg.micro_batch_size
        order = list(range(len(rows)))
        if self.cfg.group_by_length and rows:
            lengths = batch.attention_mask[rows].sum(dim=1)
            order = torch.argsort(lengths, descending=True, stable=True).tolist()
        chunks = [order[i : i + size] for i in range(0, len(order), size)]
        if self.fsdp:
            chunks += [[]] * (parallel.forwards_per_rank(n_total, self.world_size, size) - len(chunks))
        for chunk in chunks:
            yield batch.select([rows[i] for i in chunk] or [0]).trimmed().to(self.device), chunk, not chunk

    # ------------------------------------------------------------------ log-probs

    def _autocast(self):
        return precision.autocast(self.device.type, self.compute_dtype)

    def _log_probs(self, model, micro: TrainBatch, with_entropy: bool = False):
        with self._autocast():
            return policy_forward(model, micro, self.cfg.temperature, with_entropy=with_entropy,
                                  suppress_ids=self.suppress_ids, padding_free=self.padding_free)

    def _values(self, micro: TrainBatch) -> torch.Tensor:
        with self._autocast():
            return self.critic(micro)

    @torch.no_grad()
    def compute_log_probs(self, batch: TrainBatch, rows: list[int] | None = None, old: bool = True) -> dict[str, torch.Tensor]:
        """Old log-probs (and reference log-probs, critic values) for `rows` of the batch.

        Returns tensors [len(rows), L-1]; with rows=None also writes them into `batch`.
        old=False skips the policy's forward (see `on_policy_update`): only reference
        log-probs and values are computed, and nothing when neither is needed.
        """
        if not (old or self.needs_ref or self.critic is not None):
            return {}
        rows_given = rows is not None
        rows = list(range(len(batch))) if rows is None else rows
        result: dict[str, torch.Tensor] = {}
        was_training = self.model.training
        self.model.eval()
        width = batch.response_mask.shape[1]
        for micro, positions, stand_in in self._micro_batches(batch, rows, len(batch)):
            values = {"old_log_probs": self._log_probs(self.model, micro)[0]} if old else {}
            if self.needs_ref:
                values["ref_log_probs"] = self._reference_log_probs(micro)
            if self.critic is not None:
                values["old_values"] = self._values(micro)
            if stand_in:
                continue
            for key, value in values.items():  # micro-batches are trimmed: the rest of each row is 0
                full = result.setdefault(key, torch.zeros(len(rows), width))
                full[positions, : value.shape[1]] = value.float().cpu()
        self.model.train(was_training)
        if not rows_given:
            for key, value in result.items():
                setattr(batch, key, value)
        return result

    def _reference_log_probs(self, micro: TrainBatch) -> torch.Tensor:
        if self.reference is not None:
            return self._log_probs(self.reference, micro)[0]
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return self._log_probs(self.model, micro)[0]

    # ------------------------------------------------------------------ update

    def on_policy_update(self, n_rows: int) -> bool:
        return on_policy_update(self.cfg, self.algo, n_rows)

    def update(self, batch: TrainBatch) -> dict[str, float]:
        """PPO epochs over mini-batches; returns mean metrics. `batch` carries old log-probs and advantages."""
        assert batch.advantages is not None, "compute advantages first"
        assert batch.old_log_probs is not None or self.on_policy_update(len(batch)), "compute_log_probs first"
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + self.global_step)
        sums: dict[str, float] = {}
        count = zero_grad_steps = 0
        for _ in range(self.cfg.ppo_epochs):
            for mini_rows in split_rows(len(batch), self.cfg.mini_batch_size, generator, shuffle=True):
                metrics = self._mini_batch_step(batch, mini_rows)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                zero_grad_steps += metrics["grad_norm"] == 0.0  # no gradient signal in this mini-batch
        self.scheduler.step()
        self.global_step += 1
        result = {f"actor/{k}": v / max(count, 1) for k, v in sums.items()}
        result["actor/zero_grad_norm_steps"] = float(zero_grad_steps)  # a count, not a mean
        result["actor/lr"] = self.scheduler.get_last_lr()[0]
        result["time/update_s"] = time.perf_counter() - start
        return result

    def _mini_batch_step(self, batch: TrainBatch, mini_rows: list[int]) -> dict[str, float]:
        mini = batch.select(mini_rows)
        # Normalisers over the whole mini-batch (all ranks): summing micro-batch losses and
        # SUM-reducing gradients then equals one big batch.
        global_tokens = mini.response_mask.sum().to(self.device)
        global_seqs = (mini.response_mask.sum(dim=1) > 0).sum().to(self.device)
        local = list(range(len(mini)))[self.rank :: self.world_size]
        self.optimizer.zero_grad(set_to_none=True)
        if self.critic_optimizer is not None:
            self.critic_optimizer.zero_grad(set_to_none=True)
        metric_sums: dict[str, float] = {}
        n_micro = 0
        for micro, _, stand_in in self._micro_batches(mini, local, len(mini)):
            metrics = self._micro_step(micro, global_tokens, global_seqs, weight=0.0 if stand_in else 1.0)
            if not stand_in:
                for k, v in metrics.items():
                    metric_sums[k] = metric_sums.get(k, 0.0) + v
                n_micro += 1
        params = [p for p in self.model.parameters() if p.requires_grad]
        self._reduce_grads(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
        self.optimizer.step()
        out = {k: v / max(n_micro, 1) for k, v in metric_sums.items()}
        # each micro-batch's loss is its share of the mini-batch loss (global normalisers): the sum is the loss
        out["loss"] = parallel.sum_over_ranks(metric_sums.get("loss", 0.0), self.world_size, self.device)
        out["grad_norm"] = parallel.full_value(grad_norm)
        if self.critic is not None:
            critic_params = [p for p in self.critic.parameters() if p.requires_grad]
            self._reduce_grads(critic_params)
            out["critic_grad_norm"] = parallel.full_value(torch.nn.utils.clip_grad_norm_(critic_params, self.cfg.max_grad_norm))
            self.critic_optimizer.step()
        return out

    def _micro_step(self, micro: TrainBatch, global_tokens, global_seqs, weight: float = 1.0) -> dict[str, float]:
        """Forward and backward of one micro-batch; weight 0 runs a stand-in for FSDP2's collectives."""
        with_entropy = self.algo.entropy_coef != 0.0
        log_probs, entropy, aux_loss = self._log_probs(self.model, micro, with_entropy)
        loss, metrics = compute_policy_loss(
            self.algo,
            log_probs,
            log_probs.detach() if micro.old_log_probs is None else micro.old_log_probs,
            micro.advantages,
            micro.response_mask,
            ref_log_probs=micro.ref_log_probs,
            entropy=entropy,
            rollout_log_probs=micro.rollout_log_probs,
            global_token_count=global_tokens,
            global_seq_count=global_seqs,
        )
        if aux_loss is not None:
            coef = self._base().config.text_config.router_aux_loss_coef
            share = len(micro) / float(global_seqs) if global_seqs else 0.0
            loss = loss + coef * aux_loss * share
            metrics["moe_aux_loss"] = float(aux_loss)
        (loss * weight).backward()
        if self.critic is not None:
            values = self._values(micro)
            v_loss, v_metrics = value_loss(
                values, micro.old_values, micro.returns, micro.response_mask,
                value_clip=self.algo.value_clip, loss_agg_mode=self.algo.loss_agg_mode,
                global_token_count=global_tokens, global_seq_count=global_seqs,
            )
            (v_loss * weight).backward()
            metrics.update({f"critic_{k}": v for k, v in v_metrics.items()})
        return metrics

    # ------------------------------------------------------------------ weights out

    @torch.no_grad()
    def weights_for_sync(self) -> dict[str, torch.Tensor]:
        """The full SAIL-VL state dict the rollout engine needs (LoRA merged in, names unprefixed), on CPU."""
        if self.fsdp:
            return parallel.full_model_state(self.model)
        items = merged_lora_weights(self.model) if is_peft(self.model) else self.model.state_dict().items()
        return {k: v.detach().cpu() for k, v in items}

    def save_pretrained(self, out_dir: str) -> None:
        """Save a loadable SAIL-VL checkpoint (LoRA merged) with its processor and tokenizer (rank 0 writes)."""
        from sail_rl.model.builder import load_model, load_processor

        state = self.weights_for_sync()
        if self.rank != 0:
            return
        model = load_model(self.model_dir, dtype=self.dtype)  # on CPU: no second copy on the accelerator
        model.load_state_dict(state)
        model.save_pretrained(out_dir)
        load_processor(self.model_dir).save_pretrained(out_dir)

    def _trained_pairs(self) -> dict:
        pairs = {"model": (self.model, self.optimizer)}
        if self.critic is not None:
            pairs["critic"] = (self.critic, self.critic_optimizer)
        return pairs

    def save_state(self, out_dir: str) -> None:
        """Everything to resume (weights incl. adapter, optimizers, scheduler, step): each rank writes
        its own shard into `out_dir` (a collective; see `sail_rl.trainer.checkpoint.save_sharded`)."""
        meta = {"scheduler": self.scheduler.state_dict(), "global_step": self.global_step}
        checkpoint.save_sharded(out_dir, self._trained_pairs(), meta, self.rank)

    def load_state(self, in_dir: str) -> None:
        """Resume from `save_state`'s files, written by any world size and strategy (a collective)."""
        meta = checkpoint.load_sharded(in_dir, self._trained_pairs())
        self.scheduler.load_state_dict(meta["scheduler"])
        self.global_step = meta["global_step"]

    def load_weights(self, in_dir: str) -> None:
        """The policy's weights alone from `save_state`'s files (for an export; no optimizer state read)."""
        checkpoint.load_sharded(in_dir, {"model": (self.model, None)})


def on_policy_update(cfg: TrainerConfig, algo: AlgorithmConfig, n_rows: int) -> bool:
    """True when a step's update is one optimizer step on the weights that generated its
    rollouts (one PPO epoch, one mini-batch): the old log-probs then equal the update's own
    forward, detached, and a separate pass for them is waste (TRL skips it likewise). A KL
    penalty in the reward needs them before the update, so it keeps the pass."""
    return cfg.ppo_epochs == 1 and cfg.mini_batch_size >= n_rows and algo.kl_coef == 0


def _wrap_lora(model, cfg: TrainerConfig):
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    names = "|".join(cfg.lora.target_modules)
    peft_cfg = PeftLoraConfig(
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=rf".*language_model.*\.({names})",
    )
    try:
        return get_peft_model(model, peft_cfg)
    except ValueError as exc:  # no module matched: the adapter would train nothing
        from sail_rl.errors import ConfigError

        raise ConfigError(f"trainer.lora.target_modules {cfg.lora.target_modules} match no layer of the LLM ({exc})") from None

