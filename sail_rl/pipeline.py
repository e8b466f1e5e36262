"""The progressive SAIL-VL2 post-training pipeline, one stage after another.

    LongCoT SFT -> RL with verifiable rewards -> rejection sampling -> think-fusion SFT
    -> RL with mixed rewards

Each stage is an ordinary sail-rl job (its own recipe, with overrides). A stage's model
goes to the next as `{prev_model}`; any stage's output as `{stages.NAME}`.

Before the first stage starts, every stage's recipe is loaded and validated (with the
paths earlier stages will write), and the plan is printed: which stages run, which are
reused, and why. A stage is reused only when its inputs are those it ran with: its
resolved recipe, and the fingerprint (size, mtime) of every file or folder that recipe
names (the initial model, data files, earlier stages' outputs). An edited stage reruns,
and so does every stage after it. A stage interrupted midway continues (`--resume`) when
its inputs are unchanged, and starts over (`--overwrite`) when they changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

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
        if self.k < 1 or self.max_response_tokens < 1:
            raise ConfigError(f"stage '{self.name}': k and max_response_tokens must be >= 1")


@dataclass
class PipelineRecipe:
    output_dir: str = "runs/pipeline"
    initial_model: str = "runs/tiny-init"
    initial_model_preset: Optional[str] = None  # write this preset to initial_model when it is missing; null: an error
    stages: list[StageConfig] = field(default_factory=list)

    def validate(self) -> None:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline stage names must be unique, got {names}")
        if not self.stages:
            raise ConfigError("pipeline has no stages")


@dataclass
class StagePlan:
    index: int
    stage: StageConfig
    stage_dir: Path
    argv: list[str]  # the sail-rl command line, without --resume / --overwrite
    inputs: dict[str, Any]  # resolved recipe + fingerprints of what it names
    output: str  # where the stage's output will be
    action: Literal["run", "reuse"] = "run"
    reason: str = ""


def _fill(text: str, values: dict[str, str], stage: str) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    if "{prev_model}" in text or "{stages." in text:
        raise ConfigError(f"stage '{stage}': override '{text}' names a stage that does not run before it")
    return text


def fingerprint(path: str | Path) -> Any:
    """(size, mtime_ns) of a file, or of every top-level file of a folder; None when missing."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    if p.is_dir():
        return sorted([c.name, c.stat().st_size, c.stat().st_mtime_ns] for c in p.iterdir()
                      if c.is_file() and not c.name.startswith("."))
    return None


def _named_paths(data: Any, own_dir: Path) -> list[str]:
    """Every string in a resolved recipe that names an existing file or folder outside the stage's own."""
    if isinstance(data, dict):
        return [p for v in data.values() for p in _named_paths(v, own_dir)]
    if isinstance(data, list):
        return [p for v in data for p in _named_paths(v, own_dir)]
    if isinstance(data, str) and data and "\n" not in data and len(data) < 4096:
        p = Path(data)
        try:
            if p.exists() and own_dir.resolve() not in [p.resolve(), *p.resolve().parents]:
                return [data]
        except OSError:
            return []
    return []


def _resolve_stage(stage: StageConfig, stage_dir: Path, prev_model: str, values: dict[str, str]) -> tuple[list[str], dict, str]:
    """Validate one stage's recipe now; returns (argv, resolved recipe, its output path)."""
    from sail_rl.config import load_recipe, to_dict

    overrides = [_fill(o, values, stage.name) for o in stage.overrides]
    if stage.kind == "sft":
        from sail_rl.sft.config import SFTRecipe

        out = stage_dir / "sft"
        argv = ["sft", stage.recipe, f"model.path={prev_model}", f"train.output_dir={out}", *overrides]
        return argv, to_dict(load_recipe(SFTRecipe, stage.recipe, argv[2:])), str(out)
    if stage.kind == "rl":
        from sail_rl.rl.config import RunRecipe

        run_dir = stage_dir / "run"
        argv = ["run", stage.recipe, f"model.path={prev_model}", f"run.output_dir={run_dir}", *overrides]
        recipe = load_recipe(RunRecipe, stage.recipe, argv[2:])
        return argv, to_dict(recipe), str(run_dir / "checkpoints" / f"step_{recipe.run.total_steps}" / "model")
    out = stage_dir / "cot.jsonl"
    argv = ["data", "rejection-sample", "--model", prev_model, "--data", _fill(stage.data, values, stage.name),
            "--out", str(out), "--k", str(stage.k), "--engine", stage.engine,
            "--max-response-tokens", str(stage.max_response_tokens)]
    return argv, {"argv": argv}, str(out)


def _inputs(stage: StageConfig, resolved: dict, stage_dir: Path) -> dict[str, Any]:
    from sail_rl.config import to_dict
    from sail_rl.rundir import as_json

    return as_json({"stage": to_dict(stage), "recipe": resolved,
                    "files": {p: fingerprint(p) for p in sorted(set(_named_paths(resolved, stage_dir)))}})


def _key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def make_plan(recipe: PipelineRecipe) -> list[StagePlan]:
    """Validate every stage (a bad key in the last one is found before the first runs) and
    decide which run and which are reused."""
    from sail_rl.rundir import describe_diff, recipe_diff

    root = Path(recipe.output_dir)
    plans: list[StagePlan] = []
    outputs: dict[str, str] = {}
    prev_model, rerun_before = recipe.initial_model, None
    for i, stage in enumerate(recipe.stages):
        stage_dir = root / f"{i + 1:02d}_{stage.name}"
        values = {"prev_model": prev_model, **{f"stages.{k}": v for k, v in outputs.items()}}
        try:
            argv, resolved, output = _resolve_stage(stage, stage_dir, prev_model, values)
        except SailRLError as exc:
            raise type(exc)(f"pipeline stage {i + 1} '{stage.name}': {exc}") from None
        plan = StagePlan(i + 1, stage, stage_dir, argv, _inputs(stage, resolved, stage_dir), output)
        done = _read_json(stage_dir / "DONE")
        if rerun_before:
            plan.reason = f"an earlier stage ({rerun_before}) reruns"
        elif done is None or "inputs" not in done:
            plan.reason = "not run yet"
        elif done["inputs"] != plan.inputs:
            changed = recipe_diff(done["inputs"], plan.inputs)
            plan.reason = "its inputs changed: " + describe_diff(done["inputs"], plan.inputs, changed, limit=3)
        elif fingerprint(done["output"]) != done.get("output_fingerprint"):
            plan.reason = f"its output {done['output']} changed on disk"
        else:
            plan.action, plan.reason, plan.output = "reuse", "done with these inputs", done["output"]
        if plan.action == "run":
            rerun_before = rerun_before or stage.name
        plans.append(plan)
        outputs[stage.name] = plan.output
        if stage.kind != "rejection_sample":
            prev_model = plan.output
    return plans


def print_plan(plans: list[StagePlan], log=print) -> None:
    log(f"pipeline plan ({len(plans)} stages):")
    for p in plans:
        log(f"  {p.index}. {p.stage.name} ({p.stage.kind}): {p.action.upper()} - {p.reason}")


def _run_cli(argv: list[str]) -> None:
    from sail_rl.cli import main

    code = main(argv)
    if code:
        raise SailRLError(f"pipeline stage command `sail-rl {' '.join(argv)}` failed with exit code {code}")


def _run_stage(plan: StagePlan, log=print) -> str:
    """Run one planned stage: continue it when it was interrupted with the same inputs, else start over.

    The stage folder holds the pipeline's STARTED / DONE and the job's own folder or file
    (`sft/`, `run/`, `cot.jsonl`), which `--overwrite` empties when the inputs changed."""
    from sail_rl.rundir import atomic_write_text

    stage_dir, key = plan.stage_dir, _key(plan.inputs)
    started = _read_json(stage_dir / "STARTED")
    resume = started is not None and started.get("key") == key and plan.stage.kind in ("sft", "rl")
    flags = ["--resume"] if resume else ["--overwrite"]
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / "DONE").unlink(missing_ok=True)
    atomic_write_text(stage_dir / "STARTED", json.dumps({"key": key}))
    log(f"pipeline: stage {plan.index} {plan.stage.name} ({plan.stage.kind}): sail-rl {' '.join(plan.argv + flags)}")
    _run_cli(plan.argv + flags)
    if plan.stage.kind == "rl":
        from sail_rl.trainer.checkpoint import latest_checkpoint

        return str(latest_checkpoint(stage_dir / "run") / "model")
    return plan.output


def run_pipeline(recipe: PipelineRecipe, log=print) -> dict[str, str]:
    from sail_rl.rundir import atomic_write_text, lock_dir

    init = Path(recipe.initial_model)
    if not (init / "config.json").is_file() and not recipe.initial_model_preset:
        raise ConfigError(f"initial_model {init} has no model (no config.json); fix the path, create it with "
                          f"`sail-rl init-model --preset tiny --out {init}`, or set initial_model_preset: tiny")
    plans = make_plan(recipe)
    print_plan(plans, log)
    root = Path(recipe.output_dir)
    lock_dir(root)
    if not (init / "config.json").is_file():
        from sail_rl.model.builder import init_model
        from sail_rl.rundir import make_readable

        init_model(recipe.initial_model_preset, init)
        make_readable(init)
        log(f"pipeline: wrote a fresh '{recipe.initial_model_preset}' model to {init} (initial_model_preset)")
        plans = make_plan(recipe)  # the initial model's fingerprint is part of stage 1's inputs
    outputs: dict[str, str] = {}
    for plan in plans:
        if plan.action == "reuse":
            log(f"pipeline: stage {plan.index} {plan.stage.name} reused -> {plan.output}")
            output = plan.output
        else:
            if plan.index > 1 and any(p.action == "run" for p in plans[: plan.index - 1]):
                plan = make_plan(recipe)[plan.index - 1]  # inputs now hold the fresh upstream outputs
            output = _run_stage(plan, log)
            # recorded after the run: files the stage's own bootstrap wrote are inputs of its next check
            inputs = _inputs(plan.stage, plan.inputs["recipe"], plan.stage_dir)
            done = {"key": _key(inputs), "inputs": inputs, "output": output, "output_fingerprint": fingerprint(output)}
            atomic_write_text(plan.stage_dir / "DONE", json.dumps(done, indent=1, default=str))
        outputs[plan.stage.name] = output
    atomic_write_text(root / "outputs.json", json.dumps(outputs, indent=1))
    return outputs
