"""`sail-rl data {synth,filter,rejection-sample,label-think}`: make and curate MathVista-format data.

    sail-rl data synth --out data/synth --n 2000 --seed 0 --split-eval 200
    sail-rl data filter --data data.jsonl --results runs/eval/results.jsonl --out filtered.jsonl
    sail-rl data rejection-sample --data data.jsonl --results runs/eval/results.jsonl --out cot.jsonl
    sail-rl data label-think --data data.jsonl --model runs/sft --out labelled.jsonl

`filter` and `rejection-sample` read graded results (`results.jsonl` of `sail-rl eval`
with k_samples > 1), or generate and grade them here with `--model DIR` (rollout engine).
`label-think` needs two: the model's direct and thinking answers (`--results` gives the
thinking ones, `--results-direct` the direct ones), or `--model` to generate both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from sail_rl.commands import ranged
from sail_rl.data.jsonl import read_jsonl
from sail_rl.errors import ConfigError, DataError

DEFAULT_MAX_GIB = 5.0  # data synth refuses to write more than this without --max-gib


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    synth = sub.add_parser("synth", help="write a synthetic visual-math dataset (MathVista format, PNG images)")
    synth.add_argument("--out", required=True, help="output folder (data.jsonl, eval.jsonl, images/, info.json)")
    synth.add_argument("--n", type=ranged(int, 1), required=True, help="number of training samples")
    synth.add_argument("--seed", type=int, default=0, help="same seed -> byte-identical files (default 0)")
    synth.add_argument("--size", type=ranged(int, 32, 512), default=64, help="image side in pixels, 32-512 (default 64)")
    synth.add_argument("--difficulty", default="mixed", help="1, 2, 3, a list like 1,2, or mixed (default)")
    synth.add_argument("--split-eval", type=ranged(int, 0), default=0, metavar="N", help="also write N held-out samples to eval.jsonl")
    synth.add_argument("--families", default=None, help="comma-separated task families (default: every image family; video families "
                       "dot_direction, flash_count, last_shape by name)")
    synth.add_argument("--max-gib", type=ranged(float, 0.0), default=DEFAULT_MAX_GIB,
                       help=f"refuse when the estimated size exceeds this many GiB (default {DEFAULT_MAX_GIB:g})")
    synth.add_argument("--overwrite", action="store_true", help="empty --out first when it holds other files")
    synth.set_defaults(_data_run=_run_synth)

    for name, helptext in (
        ("filter", "keep prompts by pass rate (drop always-solved; optionally never-solved)"),
        ("rejection-sample", "collect correct, well-formed thinking responses as CoT SFT records"),
        ("label-think", "label each question should_think from the model's direct vs thinking pass rates"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--data", required=True, help="MathVista-format data file")
        p.add_argument("--out", required=True, help="output jsonl")
        p.add_argument("--results", default=None, help="graded results.jsonl from 'sail-rl eval' (no model needed)")
        p.add_argument("--model", default=None, help="generate the results with this model (needs the rollout engine)")
        p.add_argument("--k", type=ranged(int, 1), default=4, help="responses per prompt when generating (default 4)")
        p.add_argument("--engine", choices=["vllm", "hf"], default="vllm", help="rollout engine for --model (default vllm)")
        p.add_argument("--temperature", type=ranged(float, 0.0, 100.0), default=1.0, help="sampling temperature for --model (default 1.0)")
        p.add_argument("--max-response-tokens", type=ranged(int, 1), default=1024, help="response limit for --model (default 1024)")
        p.add_argument("--image-root", default=None, help="image folder (default: the data file's folder)")
        p.add_argument("--overwrite", action="store_true", help="replace --out when it exists")
        if name == "label-think":
            p.add_argument("--results-direct", default=None, help="graded results of direct answers (with --results: thinking ones)")
            p.add_argument("--margin", type=ranged(float, 0.0, 1.0), default=0.0,
                           help="think only where its pass rate beats direct by more than this (default 0)")
            p.set_defaults(_data_run=_run_label_think)
        elif name == "filter":
            p.add_argument("--keep-all-correct", action="store_true", help="keep prompts the model always solves")
            p.add_argument("--drop-all-wrong", action="store_true", help="drop prompts the model never solves")
            p.set_defaults(_data_run=_run_filter)
        else:
            p.add_argument("--max-per-sample", type=ranged(int, 1), default=1, help="CoT responses kept per prompt (default 1)")
            p.set_defaults(_data_run=_run_rejection_sample)


def run(args: argparse.Namespace) -> int:
    return args._data_run(args)


def _run_synth(args: argparse.Namespace) -> int:
    from sail_rl.data.synth import generate_dataset

    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    info = generate_dataset(args.out, n=args.n, seed=args.seed, size_px=args.size, difficulty=args.difficulty,
                            eval_n=args.split_eval, families=families, overwrite=args.overwrite,
                            max_bytes=int(args.max_gib * 2**30))
    counts = ", ".join(f"{split} {sum(c.values())}" for split, c in info["counts"].items())
    print(f"wrote {counts} samples to {args.out} ({args.size}x{args.size} px, seed {args.seed})")
    return 0


def _generate_results(args: argparse.Namespace, samples: list, mode: str = "think") -> list[dict[str, Any]]:
    """Graded results (results.jsonl dicts) of `args.k` responses per sample in prompt mode `mode`
    from `args.model`, generated with the rollout engine and graded like `sail-rl eval`."""
    from eval import runner
    from eval.scoring import score

    from sail_rl.rundir import check_model_folder

    check_model_folder(args.model, "--model")
    cfg = runner.EvalConfig(model_path=args.model, data_files=[args.data], image_root=args.image_root, k_samples=args.k,
                            temperature=args.temperature, max_response_tokens=args.max_response_tokens,
                            engine=args.engine, prompt_mode=mode,
                            max_model_len=runner.model_max_len(args.model) or runner.EvalConfig.max_model_len)
    cfg.validate()
    responses = runner._generate(runner._make_engine(cfg), samples, cfg)
    return [r.to_dict() for r in score(samples, responses).records]


def _load_results(args: argparse.Namespace, samples: list, path: str | None = None, mode: str = "think") -> list[dict[str, Any]]:
    """Graded results from `path` (default --results), or generated with --model in `mode`."""
    path = args.results if path is None else path
    if path is None and args.model is None:
        raise ConfigError(f"'sail-rl data {args.data_command}' needs --results FILE (or --model PATH)")
    if path is None:
        return _generate_results(args, samples, mode)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"results file not found: {path}; pass the results.jsonl written by 'sail-rl eval'")
    results = []
    for lineno, rec in read_jsonl(path, "pass the results.jsonl of 'sail-rl eval'"):
        if not isinstance(rec, dict) or "pid" not in rec or "correct" not in rec:
            raise DataError(f"{path}:{lineno}: a result needs 'pid' and 'correct'; use results.jsonl from 'sail-rl eval'")
        results.append(rec)
    return results


def _check_out(args: argparse.Namespace) -> None:
    """Before reading or generating anything: --out is not an input and replaces nothing unasked."""
    from sail_rl.rundir import check_not_input

    out = Path(args.out)
    check_not_input(out, [args.data, args.results, getattr(args, "results_direct", None)], "--out")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a .jsonl file path")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"--out {out} already exists; pass --overwrite to replace it, or choose another file")
    parent = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"--out {out}: {parent} is not a writable folder; choose another path")


def _check_ids(samples: list, results: list[dict[str, Any]], args: argparse.Namespace, unmatched_fate: str) -> None:
    """Results of another data set would keep everything (filter) or nothing (rejection-sample)."""
    pids = {s.pid for s in samples}
    graded = {str(r["pid"]) for r in results}
    if not graded & pids:
        raise DataError(f"no pid in {args.results or 'the results'} matches a sample of {args.data}; "
                        "pass the results of this data set")
    missing = len(pids - graded)
    if missing:
        print(f"sail-rl data {args.data_command}: warning: {missing} of {len(pids)} samples have no graded result; "
              f"they are {unmatched_fate}", file=sys.stderr)


def _write_lines(records: list[dict[str, Any]], out: Path) -> None:
    from sail_rl.rundir import atomic_write_text

    atomic_write_text(out, "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records))


def _run_filter(args: argparse.Namespace) -> int:
    from sail_rl.data.filtering import filter_by_pass_rate, pass_rate_table
    from sail_rl.data.mathvista import load_samples, sample_to_record

    _check_out(args)
    samples = load_samples(args.data, args.image_root)
    results = _load_results(args, samples)
    _check_ids(samples, results, args, "kept")
    rates = pass_rate_table(results)
    kept = filter_by_pass_rate(samples, rates, drop_all_correct=not args.keep_all_correct, drop_all_wrong=args.drop_all_wrong)
    out = Path(args.out)
    _write_lines([sample_to_record(s, out.parent) for s in kept], out)
    print(f"kept {len(kept)} of {len(samples)} samples ({len(samples) - len(kept)} dropped by pass rate) -> {args.out}")
    return 0


def _run_rejection_sample(args: argparse.Namespace) -> int:
    from sail_rl.data.filtering import select_correct_cot
    from sail_rl.data.mathvista import load_samples

    _check_out(args)
    samples = load_samples(args.data, args.image_root)
    results = _load_results(args, samples)
    _check_ids(samples, results, args, "skipped")
    responses: dict[str, list[str]] = defaultdict(list)
    grades: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        responses[str(r["pid"])].append(str(r.get("response", "")))
        grades[str(r["pid"])].append(bool(r["correct"]))
    out = Path(args.out)
    from rewards.layout import follows_layout

    records = select_correct_cot(samples, responses, grades, max_per_sample=args.max_per_sample,
                                 well_formed=lambda text: follows_layout(text, "think"), image_base=out.parent)
    _write_lines(records, out)
    if not records:
        print(f"sail-rl data rejection-sample: warning: no correct, well-formed thinking response among "
              f"{len(results)} results; {out} is empty", file=sys.stderr)
    print(f"wrote {len(records)} CoT records from {len(samples)} samples -> {out}")
    return 0


def _run_label_think(args: argparse.Namespace) -> int:
    from sail_rl.data.filtering import label_think, pass_rate_table
    from sail_rl.data.mathvista import load_samples, sample_to_record

    _check_out(args)
    if (args.results is None) != (args.results_direct is None) or (args.results is None and args.model is None):
        raise ConfigError("'sail-rl data label-think' needs --results (thinking) and --results-direct (direct) "
                          "graded results, or --model PATH to generate both")
    samples = load_samples(args.data, args.image_root)
    rates = {}
    for mode, path in (("direct", args.results_direct), ("think", args.results)):
        results = _load_results(args, samples, path, mode)
        _check_ids(samples, results, args, "left unlabelled")
        rates[mode] = pass_rate_table(results)
    labelled = label_think(samples, rates["direct"], rates["think"], margin=args.margin)
    out = Path(args.out)
    _write_lines([sample_to_record(s, out.parent) for s in labelled], out)
    thinking = sum(bool(s.should_think) for s in labelled)
    print(f"labelled {len(labelled)} samples: {thinking} think, {len(labelled) - thinking} direct -> {args.out}")
    return 0
