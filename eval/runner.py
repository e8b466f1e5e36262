"""`evaluate(cfg)`: samples -> prompts -> k responses each -> scores -> report folder.

Two ways to get responses: generate them with a rollout engine (`_generate` over
`rollouts.make_engine`), or read a responses jsonl written earlier
(`cfg.responses_file` / `sail-rl eval --responses FILE`), which needs no model at all.

A responses file has one JSON object per line: `{"pid": str, "response": str}` plus
optional `"response_tokens": int` and `"prompt": str`; k lines with the same pid are k
samples. `{"pid": str, "responses": [str, ...]}` lines are accepted too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from eval.extractor import judge_extractor
from eval.report import write_report
from eval.scoring import EvalResult, score
from rewards.judge import JudgeConfig
from sail_rl.data.jsonl import read_jsonl
from sail_rl.data.mathvista import MathVistaSample, load_samples, rewrite_mc_to_free_form
from sail_rl.data.prompts import build_prompt
from sail_rl.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Recipe section `eval:`."""

    model_path: str = ""
    data_files: list[str] = field(default_factory=list)
    image_root: Optional[str] = None
    max_samples: Optional[int] = None  # first N samples of the files, in order
    k_samples: int = 1  # responses per sample; pass@k and mean@k need k > 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_response_tokens: int = 1024
    max_model_len: int = 4096  # prompt (images expanded) + response, tokens
    prompt_mode: Literal["think", "direct", "auto"] = "think"
    rewrite_mc_to_free_form: bool = False
    engine: Literal["vllm", "hf"] = "vllm"
    seed: int = 0
    output_dir: str = "runs/eval"
    responses_file: Optional[str] = None  # score these instead of generating
    plot: bool = True
    # An OpenAI-compatible endpoint that extracts the answers the rules cannot read
    # (MathVista/VLMEvalKit style); null: rules only.
    llm_extractor: Optional[JudgeConfig] = None

    def validate(self) -> None:
        if not self.data_files:
            raise ConfigError("eval.data_files is empty; list the benchmark's .jsonl/.json/.parquet file(s)")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"eval.max_samples must be >= 1 or null (every sample), got {self.max_samples}")
        if self.k_samples < 1:
            raise ConfigError(f"eval.k_samples must be >= 1, got {self.k_samples}")
        if self.k_samples > 1 and self.temperature == 0.0:
            raise ConfigError("eval.k_samples > 1 with temperature 0 gives k identical answers; set eval.temperature > 0")
        judge = self.llm_extractor
        if judge is not None and (not judge.base_url or not judge.model or judge.max_concurrency < 1
                                  or judge.timeout_s <= 0 or judge.max_retries < 0 or judge.max_tokens < 1):
            raise ConfigError(
                "eval.llm_extractor needs a base_url and model, max_concurrency >= 1, timeout_s > 0, "
                f"max_retries >= 0 and max_tokens >= 1; got {judge}"
            )
        if not 1 <= self.max_response_tokens < self.max_model_len:
            raise ConfigError(
                f"eval.max_response_tokens must be in [1, eval.max_model_len={self.max_model_len}), got {self.max_response_tokens}"
            )


@dataclass
class EvalRecipe:
    """What `sail-rl eval RECIPE` loads: one `eval:` section."""

    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        self.eval.validate()


def load_eval_samples(cfg: EvalConfig) -> list[MathVistaSample]:
    samples = [s for f in cfg.data_files for s in load_samples(f, cfg.image_root)]
    if cfg.max_samples is not None:
        samples = samples[: cfg.max_samples]
    if cfg.rewrite_mc_to_free_form:
        samples = [rewrite_mc_to_free_form(s) for s in samples]
    return samples


def load_responses(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """{pid: [{"response": str, "response_tokens"?: int, "prompt"?: str}, ...]} from a jsonl file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"responses file not found: {path}; pass the jsonl written by a generation run")
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lineno, rec in read_jsonl(path, "write one object per line"):
        if not isinstance(rec, dict) or "pid" not in rec or ("response" not in rec and "responses" not in rec):
            raise DataError(f"{path}:{lineno}: expected {{\"pid\": ..., \"response\": ...}}; add the missing field")
        pid = str(rec["pid"])
        if "responses" in rec:
            out[pid] += [{"response": str(r)} for r in rec["responses"]]
        else:
            out[pid].append({k: rec[k] for k in ("response", "response_tokens", "prompt") if k in rec})
    return dict(out)


def build_requests(samples: list[MathVistaSample], cfg: EvalConfig) -> list[Any]:
    """One `rollouts.GenerationRequest` per sample (request_id = pid). The mode instruction is in
    the user text (`build_prompt`), so `thinking=None`: the processor adds no system prompt."""
    from rollouts.types import GenerationRequest

    requests = []
    for s in samples:
        messages, images = build_prompt(s, mode=cfg.prompt_mode)
        requests.append(GenerationRequest(messages=messages, images=images, request_id=s.pid, thinking=None))
    return requests


def _generate(engine: Any, samples: list[MathVistaSample], cfg: EvalConfig) -> dict[str, list[dict[str, Any]]]:
    """`cfg.k_samples` responses per sample from a rollout engine (`rollouts.RolloutEngine`).

    Rollouts are matched to samples by `request_id`. A prompt the engine skipped (too long
    after image expansion) gets k empty responses, graded wrong, so accuracy keeps the
    benchmark's denominator. Returns {pid: [{"response", "response_tokens", "prompt"}]}.
    """
    from rollouts.types import SamplingConfig

    requests = build_requests(samples, cfg)
    sampling = SamplingConfig(rollouts_per_prompt=cfg.k_samples, temperature=cfg.temperature, top_p=cfg.top_p,
                              max_response_tokens=cfg.max_response_tokens, seed=cfg.seed)
    prompts = {r.request_id: r.messages[0]["content"][-1]["text"] for r in requests}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rollout in engine.generate(requests, sampling):
        if rollout.request_id not in prompts:
            raise DataError(f"engine returned a rollout for unknown request '{rollout.request_id}'")
        out[rollout.request_id].append(
            {"response": rollout.text, "response_tokens": len(rollout.response_token_ids), "prompt": prompts[rollout.request_id]}
        )
    skipped = [pid for pid in prompts if pid not in out]
    if skipped:
        log.warning("%d prompts were skipped by the engine (first pid %s); scored as wrong", len(skipped), skipped[0])
    for pid in skipped:
        out[pid] = [{"response": "", "response_tokens": 0, "prompt": prompts[pid]}] * cfg.k_samples
    return dict(out)


def model_max_len(model_path: str | Path) -> Optional[int]:
    """The LLM's `max_position_embeddings` from the checkpoint's config.json (top level or a sub-config)."""
    import json

    config = json.loads((Path(model_path) / "config.json").read_text())
    found = [config.get("max_position_embeddings")] + [v.get("max_position_embeddings") for v in config.values() if isinstance(v, dict)]
    return next((int(x) for x in found if x), None)


def check_model(cfg: EvalConfig) -> None:
    """Before an engine starts: the checkpoint exists and takes eval.max_model_len tokens."""
    if not cfg.model_path:
        raise ConfigError("eval.model_path is empty; set it to a sail-rl checkpoint folder, or score existing responses with --responses FILE")
    from sail_rl.rundir import check_model_folder

    check_model_folder(cfg.model_path, "eval.model_path")
    limit = model_max_len(cfg.model_path)
    if limit is not None and cfg.max_model_len > limit:
        raise ConfigError(f"eval.max_model_len={cfg.max_model_len} exceeds the model's {limit} positions "
                          f"({cfg.model_path}/config.json); set eval.max_model_len={limit} or less")


def _make_engine(cfg: EvalConfig) -> Any:
    """The rollout engine `cfg.engine` on the checkpoint `cfg.model_path` (`rollouts.make_engine`)."""
    check_model(cfg)
    from rollouts.engine import make_engine
    from rollouts.types import RolloutConfig

    rollout_cfg = RolloutConfig(engine=cfg.engine, rollouts_per_prompt=cfg.k_samples, temperature=cfg.temperature,
                                top_p=cfg.top_p, max_response_tokens=cfg.max_response_tokens, seed=cfg.seed,
                                max_model_len=cfg.max_model_len, max_prompt_tokens=cfg.max_model_len - cfg.max_response_tokens)
    rollout_cfg.validate()
    return make_engine(rollout_cfg, cfg.model_path)


def _check_k(responses: dict[str, list], cfg: EvalConfig) -> None:
    """eval.k_samples must not promise more responses per sample than the file holds."""
    most = max((len(r) for r in responses.values()), default=0)
    if responses and most < cfg.k_samples:
        raise ConfigError(f"eval.k_samples={cfg.k_samples} but {cfg.responses_file} holds at most {most} response(s) "
                          f"per pid; set eval.k_samples={most} or give {cfg.k_samples} responses per sample")


def _write_report_atomically(result: EvalResult, cfg: EvalConfig, config: dict) -> None:
    """The report goes to a staging folder, then file by file into `cfg.output_dir` (`os.replace`,
    atomic per file), metrics.json last: a reader never sees a torn or half-replaced result."""
    import os
    import shutil

    from sail_rl.rundir import make_readable

    out = Path(cfg.output_dir)
    staging = out / f".report.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_report(result, staging, config=config, plot=cfg.plot)
        make_readable(staging)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == "metrics.json"):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def evaluate(cfg: EvalConfig, engine: Any = None, responses: Optional[dict[str, list]] = None,
             grade_fn=None, llm_extractor=None, overwrite: bool = False) -> EvalResult:
    """Score the benchmark and write the report to `cfg.output_dir`.

    Responses come from `responses`, else `cfg.responses_file`, else generation with
    `engine` (built from `cfg` when None). The output folder is claimed first
    (`sail_rl.rundir`): one writer at a time, and a folder holding another evaluation's
    results is refused unless `overwrite`; the same evaluation rerun replaces its results."""
    from sail_rl.config import to_dict
    from sail_rl.rundir import claim_output_dir

    config = to_dict(cfg)
    samples = load_eval_samples(cfg)
    if responses is None and cfg.responses_file:
        responses = load_responses(cfg.responses_file)
        wanted = {s.pid for s in samples}
        if cfg.max_samples is not None:  # a cut benchmark scores the matching responses only
            responses = {pid: r for pid, r in responses.items() if pid in wanted}
        _check_k(responses, cfg)
    if responses is None and engine is None:
        check_model(cfg)
    claim_output_dir(cfg.output_dir, "eval", config, flag="eval.output_dir", overwrite=overwrite, same_job_reuse=True,
                     ignore_keys=("output_dir", "plot"), inputs=[cfg.model_path, *cfg.data_files, cfg.responses_file])
    if responses is None:
        responses = _generate(engine if engine is not None else _make_engine(cfg), samples, cfg)
    if llm_extractor is None and cfg.llm_extractor is not None:
        llm_extractor = judge_extractor(cfg.llm_extractor)
    result = score(samples, responses, grade_fn=grade_fn, llm_extractor=llm_extractor)
    _write_report_atomically(result, cfg, config)
    return result
