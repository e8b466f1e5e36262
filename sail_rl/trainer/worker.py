"""`PolicyTrainer`: the actor side of RL in one process, without Ray.

    trainer = PolicyTrainer(model_dir, trainer_cfg, algo_cfg, total_steps=100)
    batch = collate(samples, ...)                       # rollouts of one step
    trainer.compute_log_probs(batch)                    # old (and reference, values) in place
    batch.advantages, batch.returns = compute_advantages(...)
    metrics = trainer.update(batch)                     # PPO epochs x mini-batches x micro-batches
    engine.update_weights(trainer.weights_for_sync())   # merged LoRA, text + vision

Data parallel: `world_size` processes share `torch.distributed` (gloo on CPU, NCCL on GPU).
Each rank takes its share of every mini-batch's rows; losses are divided by the GLOBAL
token/sequence counts and gradients all-reduced with SUM, so N ranks take the same step as
one process on the whole mini-batch.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.distributed as dist

from sail_rl.algorithms import AlgorithmConfig, compute_policy_loss, value_loss
from sail_rl.trainer.batch import TrainBatch, split_rows
from sail_rl.trainer.config import TrainerConfig
from sail_rl.schedule import lr_lambda
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
    ):
        from rollouts.engine import banned_token_ids
        from sail_rl.model.builder import load_model, load_processor

        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.cfg, self.algo = cfg, algo
        self.model_dir = str(model_dir)
        self.rank, self.world_size = rank, world_size
        self.device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        self.model = load_model(model_dir, dtype=dtype).to(self.device)
        self.suppress_ids = banned_token_ids(load_processor(model_dir).tokenizer)
        self.model.train()
        if cfg.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.model.vision_model.requires_grad_(not cfg.freeze_vision)
        self.model.projector.requires_grad_(not cfg.freeze_projector)
        needs_ref = cfg.use_reference if cfg.use_reference is not None else (algo.kl_coef > 0 or algo.kl_loss_coef > 0)
        self.reference = None
        if needs_ref and not cfg.lora.enabled:
            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        if cfg.lora.enabled:
            self.model = _wrap_lora(self.model, cfg)
        self.critic = None
        if algo.advantage_estimator == "gae":
            self.critic = ValueModel(copy.deepcopy(self._base())).to(self.device)
            self.critic.backbone.vision_model.requires_grad_(False)
        self.needs_ref = needs_ref
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay,
                                           fused=self.device.type == "cuda")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.lr_schedule, cfg.warmup_steps, total_steps)
        )
        self.critic_optimizer = None
        if self.critic is not None:
            critic_params = [p for p in self.critic.parameters() if p.requires_grad]
            self.critic_optimizer = torch.optim.AdamW(critic_params, lr=cfg.critic_learning_rate)
        self.global_step = 0

    # ------------------------------------------------------------------ helpers

    def _base(self):
        """The SAIL-VL model under any PEFT wrapper."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def local_rows(self, rows: list[int]) -> list[int]:
        """This rank's share of `rows` (strided, so every rank gets a similar mix)."""
        return rows[self.rank :: self.world_size]

    def _all_reduce_grads(self, params) -> None:
        if self.world_size == 1:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    # ------------------------------------------------------------------ log-probs

    @torch.no_grad()
    def compute_log_probs(self, batch: TrainBatch, rows: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Old log-probs (and reference log-probs, critic values) for `rows` of the batch.

        Returns tensors [len(rows), L-1]; with rows=None also writes them into `batch`.
        """
        rows_given = rows is not None
        rows = list(range(len(batch))) if rows is None else rows
        out: dict[str, list[torch.Tensor]] = {"old_log_probs": [], "ref_log_probs": [], "old_values": []}
        was_training = self.model.training
        self.model.eval()
        for chunk in split_rows(len(rows), self.cfg.micro_batch_size):
            micro = batch.select([rows[i] for i in chunk]).to(self.device)
            out["old_log_probs"].append(policy_forward(self.model, micro, self.cfg.temperature, suppress_ids=self.suppress_ids)[0])
            if self.needs_ref:
                out["ref_log_probs"].append(self._reference_log_probs(micro))
            if self.critic is not None:
                out["old_values"].append(self.critic(micro))
        self.model.train(was_training)
        result = {k: torch.cat(v).cpu() for k, v in out.items() if v}
        if not rows_given:
            for key, value in result.items():
                setattr(batch, key, value)
        return result

    def _reference_log_probs(self, micro: TrainBatch) -> torch.Tensor:
        if self.reference is not None:
            return policy_forward(self.reference, micro, self.cfg.temperature, suppress_ids=self.suppress_ids)[0]
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return policy_forward(self.model, micro, self.cfg.temperature, suppress_ids=self.suppress_ids)[0]

    # ------------------------------------------------------------------ update

    def update(self, batch: TrainBatch) -> dict[str, float]:
        """PPO epochs over mini-batches; returns mean metrics. `batch` carries old log-probs and advantages."""
        assert batch.old_log_probs is not None and batch.advantages is not None, "compute_log_probs and advantages first"
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + self.global_step)
        sums: dict[str, float] = {}
        count = 0
        for _ in range(self.cfg.ppo_epochs):
            for mini_rows in split_rows(len(batch), self.cfg.mini_batch_size, generator, shuffle=True):
                metrics = self._mini_batch_step(batch, mini_rows)
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        self.scheduler.step()
        self.global_step += 1
        result = {f"actor/{k}": v / max(count, 1) for k, v in sums.items()}
        result["actor/lr"] = self.scheduler.get_last_lr()[0]
        result["time/update_s"] = time.perf_counter() - start
        return result

    def _mini_batch_step(self, batch: TrainBatch, mini_rows: list[int]) -> dict[str, float]:
        mini = batch.select(mini_rows)
        # Normalisers over the whole mini-batch (all ranks): summing micro-batch losses and
        # SUM-reducing gradients then equals one big batch.
        global_tokens = mini.response_mask.sum().to(self.device)
        global_seqs = (mini.response_mask.sum(dim=1) > 0).sum().to(self.device)
        local = self.local_rows(list(range(len(mini))))
        self.optimizer.zero_grad(set_to_none=True)
        if self.critic_optimizer is not None:
            self.critic_optimizer.zero_grad(set_to_none=True)
        metric_sums: dict[str, float] = {}
        n_micro = 0
        for chunk in split_rows(len(local), self.cfg.micro_batch_size):
            micro = mini.select([local[i] for i in chunk]).trimmed().to(self.device)
            metrics = self._micro_step(micro, global_tokens, global_seqs)
            for k, v in metrics.items():
                metric_sums[k] = metric_sums.get(k, 0.0) + v
            n_micro += 1
        params = [p for p in self.model.parameters() if p.requires_grad]
        self._all_reduce_grads(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
        self.optimizer.step()
        out = {k: v / max(n_micro, 1) for k, v in metric_sums.items()}
        out["grad_norm"] = float(grad_norm)
        if self.critic is not None:
            critic_params = [p for p in self.critic.parameters() if p.requires_grad]
            self._all_reduce_grads(critic_params)
            out["critic_grad_norm"] = float(torch.nn.utils.clip_grad_norm_(critic_params, self.cfg.max_grad_norm))
            self.critic_optimizer.step()
        return out

    def _micro_step(self, micro: TrainBatch, global_tokens, global_seqs) -> dict[str, float]:
        with_entropy = self.algo.entropy_coef != 0.0
        log_probs, entropy, aux_loss = policy_forward(self.model, micro, self.cfg.temperature, with_entropy=with_entropy, suppress_ids=self.suppress_ids)
        loss, metrics = compute_policy_loss(
            self.algo,
            log_probs,
            micro.old_log_probs,
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
        loss.backward()
        if self.critic is not None:
            values = self.critic(micro)
            v_loss, v_metrics = value_loss(
                values, micro.old_values, micro.returns, micro.response_mask,
                value_clip=self.algo.value_clip, loss_agg_mode=self.algo.loss_agg_mode,
                global_token_count=global_tokens, global_seq_count=global_seqs,
            )
            v_loss.backward()
            metrics.update({f"critic_{k}": v for k, v in v_metrics.items()})
        return metrics

    # ------------------------------------------------------------------ weights out

    @torch.no_grad()
    def weights_for_sync(self) -> dict[str, torch.Tensor]:
        """The full SAIL-VL state dict the rollout engine needs (LoRA merged in, names unprefixed)."""
        if hasattr(self.model, "merge_adapter"):
            self.model.merge_adapter()
            try:
                state = {k: v.detach().cpu().clone() for k, v in _clean_peft_names(self.model.get_base_model().state_dict()).items()}
            finally:
                self.model.unmerge_adapter()
            return state
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def save_pretrained(self, out_dir: str) -> None:
        """Save a loadable SAIL-VL checkpoint (LoRA merged) with its processor and tokenizer."""
        from sail_rl.model.builder import load_processor

        base = copy.deepcopy(self._base())
        base.load_state_dict(self.weights_for_sync(), strict=False)
        base.save_pretrained(out_dir)
        load_processor(self.model_dir).save_pretrained(out_dir)

    def state_dict(self) -> dict:
        """Everything to resume: weights (incl. adapter), optimizers, scheduler, step."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "global_step": self.global_step,
        }
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
            state["critic_optimizer"] = self.critic_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.global_step = state["global_step"]
        if self.critic is not None and "critic" in state:
            self.critic.load_state_dict(state["critic"])
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])


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
    return get_peft_model(model, peft_cfg)


def _clean_peft_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Merged PEFT state dict -> plain names (drop lora_* tensors, strip `.base_layer`)."""
    return {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
