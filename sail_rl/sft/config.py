"""`SFTRecipe`: what `sail-rl sft RECIPE` loads. Sections: model, data, train, bootstrap, format_eval.

Training keys follow TRL's `SFTConfig` names where one exists (`learning_rate`,
`per_device_train_batch_size`, `gradient_accumulation_steps`, `lr_scheduler_type`,
`warmup_ratio`, `max_steps`, `num_train_epochs`, `max_length`, `completion_only_loss`,
`packing`, `save_steps`, `save_total_limit`, `logging_steps`, `bf16`, `seed`), so a TRL
recipe reads the same here.

>>> from sail_rl.config import from_dict
>>> r = from_dict(SFTRecipe, {"data": {"sources": [{"path": "a.jsonl", "mode": "direct", "ratio": 0.9},
...                                                {"path": "a.jsonl", "mode": "think", "ratio": 0.1}]}})
>>> [(s.mode, s.ratio) for s in r.data.sources]
[('direct', 0.9), ('think', 0.1)]
>>> from_dict(SFTRecipe, {"train": {"dataloader_num_workers": -1}})
Traceback (most recent call last):
...
sail_rl.errors.ConfigError: <dict>: train.dataloader_num_workers must be >= 0, got -1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from sail_rl.errors import ConfigError
from sail_rl.model.builder import ModelConfig

LLM_LINEAR_LAYERS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class SourceConfig:
    """One entry of `data.sources`: a data file, the mode its targets are trained in, its share."""

    path: str = ""
    mode: Literal["think", "direct", "auto"] = "think"  # auto: the auto prompt, think or direct target by should_think
    ratio: float = 1.0  # share of each epoch, normalised over all sources
    image_root: Optional[str] = None  # default: the data file's folder

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("data.sources[].path is empty; give a .jsonl/.json/.parquet file")
        if not 0 <= self.ratio < float("inf"):
            raise ConfigError(f"data.sources[].ratio must be a finite number >= 0, got {self.ratio}")


@dataclass
class SFTDataConfig:
    """Recipe section `data:`: the mixture. Each epoch draws round(ratio x samples_per_epoch)
    samples from every source, deterministically from (train.seed, epoch)."""

    sources: list[SourceConfig] = field(default_factory=list)
    samples_per_epoch: Optional[int] = None  # None: the largest epoch in which no source repeats a sample
    check_images: bool = False  # open every image at load time (slow on big sets)

    def validate(self) -> None:
        if self.sources and sum(s.ratio for s in self.sources) <= 0:
            raise ConfigError("data.sources ratios sum to 0; give at least one source a positive ratio")
        if self.samples_per_epoch is not None and self.samples_per_epoch <= 0:
            raise ConfigError(f"data.samples_per_epoch must be positive or null, got {self.samples_per_epoch}")


@dataclass
class LoraSection:
    """Recipe section `train.lora:`: PEFT LoRA on the LLM's linear layers (merged on final save)."""

    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LLM_LINEAR_LAYERS))

    def validate(self) -> None:
        if self.r <= 0 or self.alpha <= 0:
            raise ConfigError(f"train.lora.r and train.lora.alpha must be positive, got {self.r}, {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"train.lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ConfigError(f"train.lora.target_modules is empty; list LLM linear layers, e.g. {LLM_LINEAR_LAYERS}")


@dataclass
class SFTTrainConfig:
    """Recipe section `train:`."""

    output_dir: str = "runs/tiny-sft"  # final model (HF) here; sharded checkpoints in output_dir/checkpoints/step_N
    learning_rate: float = 2e-3
    max_steps: int = -1  # -1: num_train_epochs decides
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = 0.05
    warmup_steps: int = 0  # > 0 overrides warmup_ratio
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    seed: int = 0
    bf16: Optional[bool] = None  # TRL's name; model.dtype is the compute dtype, and a set bf16 must agree with it
    max_length: int = 2048  # tokens per sample, image tokens included; longer samples are an error
    completion_only_loss: bool = True  # False: loss on every non-image, non-pad token
    assistant_turns: Literal["all", "last"] = "all"  # which assistant turns of a conversation are supervised
    # the rows of each micro-batch packed into one sequence with per-row position ids (no pad tokens; the
    # loss is exact). None: on with a kernel that reads the rows' bounds (flash-attention, and sdpa: one
    # attention per row, sail_rl/model/attention.py), off on eager, whose packed mask is dense
    packing: Optional[bool] = None
    dataloader_num_workers: int = 0  # processes building micro-batches ahead of the step (0: in the training process)
    freeze_vision_tower: bool = False
    freeze_projector: bool = False
    lora: LoraSection = field(default_factory=LoraSection)
    # data parallel over the processes of a torchrun launch: full replicas + gradient all-reduce, or FSDP2 sharding
    strategy: Literal["ddp", "fsdp2"] = "ddp"
    torch_num_threads: Optional[int] = None  # CPU intra-op threads; None: torch's default. 1 on shared small CPUs
    logging_steps: int = 10
    save_steps: int = 0  # 0: only the final save
    save_total_limit: int = 2  # checkpoints kept (the newest)

    def validate(self) -> None:
        if self.strategy == "fsdp2" and self.lora.enabled:
            raise ConfigError("train.strategy fsdp2 with train.lora.enabled is not supported (merging adapters into "
                              "sharded weights); use train.strategy: ddp for LoRA runs")
        if self.dataloader_num_workers < 0:
            raise ConfigError(f"train.dataloader_num_workers must be >= 0, got {self.dataloader_num_workers}")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "logging_steps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"train.max_steps must be positive or -1 (use num_train_epochs), got {self.max_steps}")
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.save_total_limit < 1:
            raise ConfigError(f"train.save_total_limit must be >= 1, got {self.save_total_limit}")


@dataclass
class BootstrapConfig:
    """Recipe section `bootstrap:`: create what is missing, on purpose, at the paths named here.

    A missing `model.path` is an error unless it is `bootstrap.model_path` (then
    `model_preset` is written there, random init); a missing data file is an error unless
    it lies in `bootstrap.synth_dir` (then `synth_n` samples + `synth_eval_n` held out in
    eval.jsonl are written there with `sail-rl data synth`'s generator). So a typo in a
    path is a one-line error, never a freshly invented model or data set.
    """

    model_path: Optional[str] = None  # the one model folder this recipe may create
    model_preset: Optional[str] = None
    model_seed: int = 0
    synth_dir: Optional[str] = None  # the one data folder this recipe may create
    synth_n: int = 0
    synth_eval_n: int = 0
    synth_seed: int = 0
    synth_families: list[str] = field(default_factory=list)  # empty: every family
    synth_difficulty: str = "mixed"  # 1, 2, 3, "1,2" or mixed
    # a biased teacher writes the training split's SFT targets: {gold: {wrong: probability}}
    # (sail_rl/data/synth/teacher.py); `answer` stays the ground truth. Empty: the true answers.
    synth_teacher_error: dict[str, dict[str, float]] = field(default_factory=dict)

    def validate(self) -> None:
        if bool(self.model_path) != bool(self.model_preset):
            raise ConfigError("bootstrap.model_path and bootstrap.model_preset go together (the folder to create "
                              "and the preset to write there); set both or neither")
        if bool(self.synth_dir) != (self.synth_n > 0):
            raise ConfigError("bootstrap.synth_dir and bootstrap.synth_n > 0 go together (the folder to create and "
                              "how many samples to write there); set both or neither")
        if self.synth_n < 0 or self.synth_eval_n < 0:
            raise ConfigError(f"bootstrap.synth_n and synth_eval_n must be >= 0, got {self.synth_n}, {self.synth_eval_n}")


@dataclass
class FormatEvalConfig:
    """Recipe section `format_eval:`: after training, greedy-generate held-out prompts per mode
    and report well-formed think %, direct-skip % and accuracy (written to format_eval.json)."""

    data_file: Optional[str] = None  # None: skip
    samples_per_mode: int = 50
    modes: list[Literal["think", "direct"]] = field(default_factory=lambda: ["think", "direct"])
    max_new_tokens: int = 96
    batch_size: int = 25

    def validate(self) -> None:
        for name in ("samples_per_mode", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"format_eval.{name} must be >= 1, got {getattr(self, name)}")
        if not self.modes:
            raise ConfigError("format_eval.modes is empty; list think and/or direct, or unset format_eval.data_file")


@dataclass
class SFTRecipe:
    """What `sail-rl sft RECIPE` loads."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    train: SFTTrainConfig = field(default_factory=SFTTrainConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    format_eval: FormatEvalConfig = field(default_factory=FormatEvalConfig)

    def require_sources(self) -> None:
        if not self.data.sources:
            raise ConfigError("data.sources is empty; list files like {path: data/synth/data.jsonl, mode: think, ratio: 1.0}")
