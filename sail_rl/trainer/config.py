"""`TrainerConfig`: the `trainer:` section of an RL recipe (the policy update side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sail_rl.config import DERIVED_FROM, check_bounds
from sail_rl.errors import ConfigError


@dataclass
class LoraConfig:
    """PEFT LoRA on the LLM's linear layers; merged weights go to the rollout engine."""

    enabled: bool = False
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

    def validate(self) -> None:
        check_bounds(self, "trainer.lora", {"rank": ">= 1", "alpha": "> 0", "dropout": "[0, 1)"})
        if self.enabled and not self.target_modules:
            raise ConfigError(
                "trainer.lora.target_modules is empty: LoRA would train no parameters; name the LLM's linear "
                "layers (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)", key="target_modules"
            )


@dataclass
class TrainerConfig:
    learning_rate: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    ppo_epochs: int = 1  # passes over each step's rollouts
    mini_batch_size: int = 64  # sequences per optimizer step (global, across data-parallel ranks)
    micro_batch_size: int = 16  # sequences per forward/backward (per rank)
    # log-probs are of logits / temperature; a recipe sets it from rollout.temperature (RunRecipe.derive)
    temperature: float = field(default=1.0, metadata={DERIVED_FROM: "rollout.temperature (the trainer's log-probs use the sampling temperature)"})
    freeze_vision: bool = True
    freeze_projector: bool = False
    gradient_checkpointing: bool = False
    # Pack each micro-batch into one sequence (exact; no compute on pad tokens). None: on with a
    # varlen flash-attention kernel (model.attn_implementation); on sdpa only without group_by_length,
    # whose micro-batches are already nearly pad-free (packing them as well gains nothing: `sail-rl
    # bench update`); off on eager, whose packed block-diagonal mask is dense.
    padding_free: bool | None = None
    group_by_length: bool = True  # micro-batches of similar-length rows (less padding; the same update)
    strategy: Literal["ddp", "fsdp2"] = "ddp"  # data parallel: full replicas + gradient all-reduce, or FSDP2 sharding
    lora: LoraConfig = field(default_factory=LoraConfig)
    use_reference: bool | None = None  # None: when the algorithm needs it (kl_coef or kl_loss_coef > 0)
    critic_learning_rate: float = 1e-5  # PPO with a critic (advantage_estimator: gae)
    torch_threads: int | None = None  # CPU threads for the trainer process (None: all cores)
    seed: int = 0  # a recipe without trainer.seed takes run.seed

    def validate(self) -> None:
        # every bound that would make the update a no-op (0 epochs, empty micro-batches, clipping
        # to a zero norm) or a crash (a zero learning rate, a negative thread count) is refused here
        check_bounds(self, "trainer", {
            "learning_rate": "> 0", "critic_learning_rate": "> 0", "weight_decay": ">= 0", "adam_betas": "[0, 1)",
            "warmup_steps": ">= 0", "max_grad_norm": ("> 0", "it is the gradient clipping norm, e.g. 1.0"),
            "ppo_epochs": ">= 1", "mini_batch_size": ">= 1", "micro_batch_size": ">= 1",
            "torch_threads": ">= 1",
        })
        if self.micro_batch_size > self.mini_batch_size:
            raise ConfigError(
                f"trainer.micro_batch_size ({self.micro_batch_size}) exceeds trainer.mini_batch_size "
                f"({self.mini_batch_size}); lower micro_batch_size", key="micro_batch_size"
            )
        if self.strategy == "fsdp2" and self.lora.enabled:
            raise ConfigError(
                "trainer.strategy fsdp2 with trainer.lora.enabled is not supported (merging adapters into "
                "sharded weights); use trainer.strategy: ddp for LoRA runs", key="strategy"
            )
        if len(self.adam_betas) != 2:
            raise ConfigError("trainer.adam_betas must be two numbers, e.g. [0.9, 0.999]", key="adam_betas")
