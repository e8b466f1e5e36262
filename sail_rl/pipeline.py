"""The progressive SAIL-VL2 post-training pipeline, one stage after another.

    LongCoT SFT -> RL with verifiable rewards -> rejection sampling -> think-fusion SFT
    -> RL with mixed rewards

Each stage is an ordinary sail-rl job (its own recipe, with overrides). A stage's model
goes to the next as `{prev_model}`; any stage's output as `{stages.NAME}`. A finished stage
writes `DONE` in its folder (after its outputs), so a rerun skips it: the pipeline resumes
at stage granularity, and a stage interrupted midway restarts (RL stages resume from their
own checkpoints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sail_rl.errors import ConfigError, SailRLError


@dataclass
class StageConfig:
    name: str
    kind: Literal["sft", "rl", "rejection_sample"]
    recipe: str | None = None  # sft / rl: the stage's recipe
    overrides: list[str] = field(default_factory=list)  # section.key=value, with {prev_model} / {stages.NAME}
    data: str | None = None  # rejection_sample: prompts to sample CoT answers for
    k: int = 4  # rejection_sample: samples per prompt
    engine: Literal["vllm", "hf"] = "vllm"
    max_response_tokens: int = 256

    def validate(self) -> None:
        if self.kind in ("sft", "rl") and not self.recipe:
            raise ConfigError(f"stage '{self.name}': a {self.kind} stage needs recipe: path/to/recipe.yaml")
        if self.kind == "rejection_sample" and not self.data:
            raise ConfigError(f"stage '{self.name}': rejection_sample needs data: path/to/data.jsonl")


@dataclass
class PipelineRecipe:
    output_dir: str = "runs/pipeline"
    initial_model: str = "runs/tiny-init"
    stages: list[StageConfig] = field(default_factory=list)

    def validate(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline stage names must be unique, got {names}")
        if not self.stages:
            raise ConfigError("pipeline has no stages")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    if "{" in text and "}" in text and ("{prev_model}" in text or "{stages." in text):
        raise ConfigError(f"pipeline override '{text}' names a stage that has not run yet")
    return text


def _run_cli(argv: list[str]) -> None:
    from sail_rl.cli import main

    code = main(argv)
    if code:
        raise SailRLError(f"pipeline stage command `sail-rl {' '.join(argv)}` failed with exit code {code}")


def run_stage(stage: StageConfig, stage_dir: Path, prev_model: str, values: dict[str, str]) -> str:
    """Run one stage; returns its output (a model folder, or a data file)."""
    overrides = [_fill(o, values) for o in stage.overrides]
    if stage.kind == "sft":
        _run_cli(["sft", stage.recipe, f"model.path={prev_model}", f"train.output_dir={stage_dir}", *overrides])
        return str(stage_dir)
    if stage.kind == "rl":
        from sail_rl.trainer.checkpoint import latest_checkpoint

        run_dir = stage_dir / "run"
        resume = ["--resume"] if latest_checkpoint(run_dir) is not None else []
        _run_cli(["run", stage.recipe, f"model.path={prev_model}", f"run.output_dir={run_dir}", *overrides, *resume])
        return str(latest_checkpoint(run_dir) / "model")
    out = stage_dir / "cot.jsonl"
    _run_cli(["data", "rejection-sample", "--model", prev_model, "--data", _fill(stage.data, values), "--out", str(out),
              "--k", str(stage.k), "--engine", stage.engine, "--max-response-tokens", str(stage.max_response_tokens)])
    return str(out)


def run_pipeline(recipe: PipelineRecipe, log=print) -> dict[str, str]:
    root = Path(recipe.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, str] = {}
    prev_model = recipe.initial_model
    for i, stage in enumerate(recipe.stages):
        stage_dir = root / f"{i + 1:02d}_{stage.name}"
        done = stage_dir / "DONE"
        values = {"prev_model": prev_model, **{f"stages.{k}": v for k, v in outputs.items()}}
        if done.is_file():
            output = json.loads(done.read_text())["output"]
            log(f"pipeline: stage {stage.name} already done -> {output}")
        else:
            log(f"pipeline: stage {i + 1}/{len(recipe.stages)} {stage.name} ({stage.kind}) from {prev_model}")
            stage_dir.mkdir(parents=True, exist_ok=True)
            output = run_stage(stage, stage_dir, prev_model, values)
            tmp = done.with_suffix(".tmp")
            tmp.write_text(json.dumps({"output": output}))
            tmp.replace(done)
        outputs[stage.name] = output
        if stage.kind != "rejection_sample":
            prev_model = output
    (root / "outputs.json").write_text(json.dumps(outputs, indent=1))
    return outputs
