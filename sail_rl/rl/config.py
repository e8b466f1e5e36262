"""`RunRecipe`: everything `sail-rl run` reads, one dataclass per component.

    model:     ModelConfig      (sail_rl/model/builder.py)   the policy checkpoint
    data:      DataConfig       (sail_rl/data/mathvista.py)  train/eval files, prompt mode
    rollout:   RolloutConfig    (rollouts/types.py)          engine, sampling, lengths
    algorithm: AlgorithmConfig  (sail_rl/algorithms)         advantages, loss, KL, clip
    trainer:   TrainerConfig    (sail_rl/trainer/config.py)  optimiser and batch sizes
    rewards:   [RewardSpec]     (rewards/registry.py)        with reward_combine / reward_alpha / reward_floor
    resources: ResourcesConfig  (below)                      Ray placement
    run:       RunConfig        (below)                      steps, batch, eval, checkpoints, logging

Values that must agree are derived in one place, `RunRecipe.derive` (the loader calls it):
the trainer's temperature, the seeds, absolute paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rewards.registry import RewardsConfig, RewardSpec
from rollouts.types import RolloutConfig
from sail_rl.algorithms import AlgorithmConfig
from sail_rl.algorithms.registry import is_group_relative
from sail_rl.config import absolute_path, check_bounds
from sail_rl.data.mathvista import DataConfig
from sail_rl.errors import ConfigError
from sail_rl.model.builder import ModelConfig
from sail_rl.rl.placement import check_rollout_settings
from sail_rl.trainer.config import TrainerConfig


@dataclass
class ResourcesConfig:
    """Where the actors go. Colocated: trainer and rollout share one placement-group bundle set."""

    colocate: bool = True
    num_trainer_workers: int = 1  # data-parallel ranks
    trainer_cpus: float = 1.0
    trainer_gpus: float = 0.0
    rollout_cpus: float = 1.0  # per rollout worker (rollout.num_workers of them)
    rollout_gpus: float = 0.0
    reward_workers: int = 1
    reward_cpus: float = 0.0  # reward actors mostly wait on judges: no reserved CPU by default
    address: str | None = None  # Ray cluster address; None: $RAY_ADDRESS or a local Ray
    # custom Ray resources each trainer rank / rollout worker needs (`ray start --resources`), e.g. {rollout_node: 1}
    trainer_resources: dict[str, float] = field(default_factory=dict)
    rollout_resources: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        check_bounds(self, "resources", {
            "num_trainer_workers": ">= 1", "reward_workers": ">= 1", "trainer_cpus": ">= 0", "trainer_gpus": ">= 0",
            "rollout_cpus": ">= 0", "rollout_gpus": ">= 0", "reward_cpus": ">= 0",
        })


@dataclass
class RunConfig:
    output_dir: str = "runs/rl"
    total_steps: int = 50
    prompts_per_step: int = 16  # groups per update; each has rollout.rollouts_per_prompt samples
    dynamic_sampling: bool = True  # DAPO: drop groups whose rewards are all equal, refill
    max_refill_rounds: int = 3  # cap on extra generation rounds per step to refill the batch
    eval_every_steps: int = 10  # 0: only before and after training
    eval_before_training: bool = True
    eval_max_samples: int | None = 100
    eval_samples_per_prompt: int = 4  # k samples at the rollout temperature for eval/accuracy_sampled; 0: greedy only
    save_every_steps: int = 10
    keep_last_checkpoints: int = 2
    loggers: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])  # + "wandb"
    wandb_project: str | None = None
    progress_bar: bool = True
    mode: Literal["ray", "local"] = "ray"  # local: everything in this process (debugging, tests)
    seed: int = 0  # the prompt sampler's; also data.seed, trainer.seed and rollout.seed where those are not set

    def validate(self) -> None:
        unknown = [x for x in self.loggers if x not in ("jsonl", "tensorboard", "wandb")]
        if unknown:
            raise ConfigError(f"run.loggers: unknown logger(s) {unknown}; use jsonl, tensorboard, wandb", key="loggers")
        check_bounds(self, "run", {
            "total_steps": ">= 1", "prompts_per_step": ">= 1", "max_refill_rounds": ">= 0",
            "eval_every_steps": (">= 0", "0: only before and after training"), "eval_max_samples": ">= 0",
            "eval_samples_per_prompt": (">= 0", "0: greedy only"), "save_every_steps": (">= 0", "0: only at the end"),
            "keep_last_checkpoints": (">= 0", "0 keeps all"),
        })


@dataclass
class RunRecipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    rewards: list[RewardSpec] = field(default_factory=lambda: [RewardSpec(name="accuracy", weight=0.9), RewardSpec(name="format", weight=0.1)])
    reward_combine: Literal["weighted_sum", "sail_rl_product"] = "weighted_sum"
    reward_alpha: float = 0.9
    reward_floor: float = 0.5  # sail_rl_product: a right answer keeps >= alpha * floor (rewards/registry.py)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def derive(self, given: frozenset[str] = frozenset()) -> None:
        """Fill the values that follow from others, once, at load (before `validate`).

        `given`: the dotted keys the recipe set. The trainer's temperature is the sampling
        temperature (1.0 for greedy rollouts, whose log-probs are then the model's own); each
        seed not set is `run.seed` (0 gives every seed its old default of 0); relative paths
        become absolute from the working directory, so every process (Ray actors on any node
        and directory) reads the same files.
        """
        self.trainer.temperature = self.rollout.temperature if self.rollout.temperature > 0 else 1.0
        for section in ("data", "trainer", "rollout"):
            if f"{section}.seed" not in given:
                getattr(self, section).seed = self.run.seed
        self.model.path = absolute_path(self.model.path)
        self.data.train_files = [absolute_path(f) for f in self.data.train_files]
        self.data.eval_files = [absolute_path(f) for f in self.data.eval_files]
        self.data.image_root = absolute_path(self.data.image_root)
        self.rollout.work_dir = absolute_path(self.rollout.work_dir)
        self.run.output_dir = absolute_path(self.run.output_dir)
        # reward `path:` files are made absolute by RewardSpec.validate (rewards built outside a recipe too)

    def rewards_config(self) -> RewardsConfig:
        return RewardsConfig(list(self.rewards), self.reward_combine, self.reward_alpha, self.reward_floor)

    def validate(self) -> None:
        self.rewards_config().validate()  # loads every reward: plug-in mistakes fail here, before Ray starts
        check_rollout_settings(self)  # sleep mode, weight sync, TP placement (sail_rl/rl/placement.py)
        if self.model.gradient_checkpointing:
            raise ConfigError("model.gradient_checkpointing is the SFT switch; in an RL recipe set trainer.gradient_checkpointing: true",
                              key="model.gradient_checkpointing")
        if self.model.max_tiles is not None:
            # the rollout engines tile with the checkpoint's own processor (vllm-native inside vLLM)
            raise ConfigError("model.max_tiles is an SFT setting; RL rollouts tile images with the checkpoint's processor: "
                              "set max_tiles in MODEL/preprocessor_config.json (or the SFT run that wrote it) and drop "
                              "model.max_tiles here", key="model.max_tiles")
        if not self.data.train_files:
            raise ConfigError("data.train_files is empty; point it at MathVista-format jsonl (sail-rl data synth makes some)",
                              key="data.train_files")
        if is_group_relative(self.algorithm.advantage_estimator) and self.rollout.rollouts_per_prompt < 2:
            raise ConfigError(
                f"algorithm.advantage_estimator {self.algorithm.advantage_estimator} compares the rollouts of a prompt, "
                "so with rollout.rollouts_per_prompt 1 every advantage is 0 and nothing trains; set "
                "rollout.rollouts_per_prompt >= 2 or use reinforce_pp / gae", key="rollout.rollouts_per_prompt",
            )
        if is_group_relative(self.algorithm.advantage_estimator) and self.rollout.temperature == 0:
            raise ConfigError(
                f"rollout.temperature 0 (greedy) gives the rollouts of a prompt the same response, so "
                f"{self.algorithm.advantage_estimator}'s advantages are all 0 and nothing trains; sample, e.g. temperature 1.0",
                key="rollout.temperature",
            )
        groups = self.run.prompts_per_step * self.rollout.rollouts_per_prompt
        if self.trainer.mini_batch_size > groups:
            raise ConfigError(
                f"trainer.mini_batch_size ({self.trainer.mini_batch_size}) exceeds the rollouts per step "
                f"({self.run.prompts_per_step} x {self.rollout.rollouts_per_prompt} = {groups}); lower it",
                key="trainer.mini_batch_size",
            )
