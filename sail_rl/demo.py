"""`make demo`: the whole SAIL-VL2 recipe, end to end, on a laptop CPU.

    init-model (tiny) -> synthetic MathVista-format data whose SFT targets come from a biased
    teacher -> thinking-fusion SFT cold start (think + direct) -> DAPO-style GRPO with vLLM
    rollouts on Ray, prompts mixed think / direct -> held-out eval before and after RL

Why the RL gain holds by construction: the cold start imitates a teacher that calls purple
shapes "pink" and orange ones "yellow" 70% of the time (names no answer uses) (recipes/thinking_fusion_sft.yaml,
`bootstrap.synth_teacher_error`), so it answers those wrong greedily but still samples the
right name sometimes; GRPO, rewarded on the true answer, corrects it (docs/demo_experiments.md).

Each stage is skipped when its output already exists (delete `runs/` and `data/synth` to start
over); the SFT recipe's `bootstrap:` keys, passed explicitly here, create the tiny model and the
data. Prints held-out accuracy (greedy and mean@k; per prompt mode with the think rate) before
and after RL, the best-constant ceiling (always each family's most frequent answer: what a model
that ignores the image can reach) and per-answer tables of both checkpoints, so a reader sees
whether RL taught the model to look at the image or only moved it to a better constant. The
last line is JSON (`result_line`; with --seeds, `seeds_summary`) for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

SFT_RECIPE = "recipes/thinking_fusion_sft.yaml"
RL_RECIPE = "recipes/mathvista_grpo.yaml"


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def best_constant(samples: list) -> dict[str, Any]:
    """Accuracy of always giving each family's most frequent answer (the image-blind ceiling).

    >>> from types import SimpleNamespace as S
    >>> best_constant([S(answer=a, metadata={"family": "f"}) for a in "aab"])["accuracy"]
    0.6667
    """
    by_family: dict[str, Counter] = defaultdict(Counter)
    for s in samples:
        by_family[s.metadata.get("family") or "all"][s.answer] += 1
    families = {f: {"answer": c.most_common(1)[0][0], "accuracy": round(c.most_common(1)[0][1] / sum(c.values()), 4),
                    "samples": sum(c.values()), "classes": len(c)} for f, c in sorted(by_family.items())}
    hits = sum(c.most_common(1)[0][1] for c in by_family.values())
    return {"accuracy": round(hits / max(1, len(samples)), 4), "by_family": families}


def answer_breakdown(model_dir: str, rl: Any, out_dir: Path, modes: list[str]) -> dict[str, Any]:
    """Greedy `sail-rl eval` of one checkpoint on the held-out file, every question in each of
    `modes` (one engine): per mode, accuracy per family and per gold answer, and how often each
    answer is given ({mode: {family: {answer: [correct, n, given]}}}). It reads the file's first
    run.eval_max_samples questions: the RL loop's held-out set when the file holds no more (the
    demo's does: synth_eval_n = eval_max_samples)."""
    import dataclasses

    from eval.runner import EvalConfig, _make_engine, evaluate

    base = EvalConfig(model_path=model_dir, data_files=list(rl.data.eval_files), max_samples=rl.run.eval_max_samples,
                      max_response_tokens=rl.rollout.max_response_tokens, max_model_len=rl.rollout.max_model_len,
                      output_dir=str(out_dir), plot=False)
    engine = _make_engine(base)
    out = {}
    for mode in modes:
        records = evaluate(dataclasses.replace(base, prompt_mode=mode, output_dir=str(out_dir / mode)), engine=engine).records
        out[mode] = answer_table(records)
    return out


def answer_table(records: list) -> dict[str, Any]:
    """Accuracy, think rate, per-family accuracy and the per-answer table of graded eval records."""
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for r in records:
        fam = table[r.family or "all"]
        fam[r.answer][0] += int(r.correct)
        fam[r.answer][1] += 1
        fam[str(r.prediction)][2] += 1
    return {
        "accuracy": round(sum(r.correct for r in records) / max(1, len(records)), 4),
        "think_rate": round(sum(r.thought for r in records) / max(1, len(records)), 4),
        "by_family": {f: round(sum(v[0] for v in t.values()) / max(1, sum(v[1] for v in t.values())), 4)
                      for f, t in sorted(table.items())},
        "by_answer": {f: {a: v for a, v in sorted(t.items())} for f, t in sorted(table.items())},
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_breakdown(ceiling: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    """The per-mode tables of `answer_breakdown` before and after RL, beside the image-blind ceiling."""
    for mode in after:
        b, a = before[mode], after[mode]
        print(f"[{mode} prompts, all {sum(v[1] for t in a['by_answer'].values() for v in t.values())} questions] "
              f"accuracy {_pct(b['accuracy'])} -> {_pct(a['accuracy'])}, think rate {_pct(b['think_rate'])} -> {_pct(a['think_rate'])}")
        print("  per family (greedy, sail-rl eval)   before RL   after RL   best constant")
        for fam, c in ceiling["by_family"].items():
            print(f"    {fam:<32} {_pct(b['by_family'].get(fam, 0)):>9}   {_pct(a['by_family'].get(fam, 0)):>8}"
                  f"   {_pct(c['accuracy']):>7} ('{c['answer']}', {c['classes']} answers)")
        print("  per gold answer: correct/n before -> after RL; [times given before -> after]")
        for fam, answers in a["by_answer"].items():
            cells = []
            for ans in [x for x, v in answers.items() if v[1]]:
                was, now = b["by_answer"].get(fam, {}).get(ans, [0, 0, 0]), answers[ans]
                cells.append(f"{ans} {was[0]}/{was[1]} -> {now[0]}/{now[1]} [{was[2]} -> {now[2]}]")
            print(f"    {fam}: " + "; ".join(cells))


# ---------------------------------------------------------------- the machine-readable lines

_HEADLINE = {"accuracy": "accuracy", "mean_at_k": "accuracy_sampled", "think_rate": "think_rate"}


def result_line(seed: int, summary: dict[str, Any], k: int, ceiling: float, held_out: int, wall_s: float,
                modes: list[str]) -> dict[str, Any]:
    """The demo's last line for one seed, from the RL run's summary (its eval before and after
    RL: greedy accuracy, mean@k at the rollout temperature, think rate; overall and per prompt mode).

    >>> ev = lambda acc, think: {"eval/accuracy": acc, "eval/accuracy_sampled": acc - 0.1, "eval/think_rate": 0.5,
    ...     "eval/think/accuracy": acc, "eval/think/think_rate": think, "eval/direct/accuracy": acc, "eval/direct/think_rate": 0.0}
    >>> line = result_line(0, {"eval_before": ev(0.6, 1.0), "eval_after": ev(0.9, 0.98), "final_step": 100}, 4, 0.215, 200, 61.2,
    ...                    ["think", "direct"])
    >>> line["gain_points"], line["mean_at_k_after_rl"], line["by_mode"]["think"]["think_rate_after_rl"], line["above_best_constant"]
    (30.0, 0.8, 0.98, True)
    """
    before, after = summary.get("eval_before", {}), summary["eval_after"]

    def pair(prefix: str, key: str, name: str) -> dict[str, Any]:
        return {f"{name}_before_rl": before.get(f"eval/{prefix}{key}"), f"{name}_after_rl": after.get(f"eval/{prefix}{key}")}

    line: dict[str, Any] = {"seed": seed, "heldout_samples": held_out, "k": k}
    for name, key in _HEADLINE.items():
        line.update(pair("", key, name))
    acc0, acc1 = line["accuracy_before_rl"], line["accuracy_after_rl"]
    line["gain_points"] = None if acc0 is None else round(100 * (acc1 - acc0), 1)
    line["by_mode"] = {}
    for mode in modes if len(modes) > 1 else []:
        line["by_mode"][mode] = {}
        for name, key in _HEADLINE.items():
            line["by_mode"][mode].update(pair(f"{mode}/", key, name))
    line.update(best_constant_accuracy=ceiling, above_best_constant=acc1 > ceiling, rl_steps=summary["final_step"],
                wall_s=round(wall_s), load_avg_1_5_15m=[round(x, 2) for x in os.getloadavg()])
    return line


def _stats(values: list[float]) -> dict[str, float]:
    import statistics

    return {"mean": round(statistics.fmean(values), 4), "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def seeds_summary(lines: list[dict[str, Any]], min_gain_points: float = 10.0) -> dict[str, Any]:
    """`make demo-seeds`' last line: every seed's line, then mean / std (sample) / min / max of the
    headline figures, and whether every seed gained >= min_gain_points and beat the ceiling.

    >>> lines = [{"seed": s, "accuracy_before_rl": 0.6, "accuracy_after_rl": a, "gain_points": g, "above_best_constant": True,
    ...           "by_mode": {"think": {"accuracy_after_rl": a}}} for s, a, g in [(0, 0.9, 30.0), (1, 0.7, 10.0)]]
    >>> out = seeds_summary(lines)
    >>> out["summary"]["accuracy_after_rl"], out["summary"]["think/accuracy_after_rl"]["mean"], out["every_seed_gains"]
    ({'mean': 0.8, 'std': 0.1414, 'min': 0.7, 'max': 0.9}, 0.8, True)
    """
    summary: dict[str, dict[str, float]] = {}
    names = [k for k, v in lines[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("seed",)]
    for name in names:
        values = [line[name] for line in lines if isinstance(line.get(name), (int, float))]
        if len(values) == len(lines):
            summary[name] = _stats(values)
    for mode, figures in lines[0].get("by_mode", {}).items():
        for name in figures:
            values = [line["by_mode"][mode][name] for line in lines if isinstance(line["by_mode"].get(mode, {}).get(name), (int, float))]
            if len(values) == len(lines):
                summary[f"{mode}/{name}"] = _stats(values)
    gains = [line.get("gain_points") for line in lines]
    return {"seeds": lines, "summary": summary,
            "every_seed_gains": all(g is not None and g >= min_gain_points for g in gains),
            "min_gain_points": min_gain_points, "every_seed_above_best_constant": all(line["above_best_constant"] for line in lines)}


# ---------------------------------------------------------------- one seed, several seeds


def run_seed(seed: int, out: str | None, rl_steps: int | None) -> dict[str, Any]:
    """init-model -> synthetic data (biased teacher) -> thinking-fusion SFT -> GRPO -> eval, for one
    seed; prints the tables and returns the result line (the full result goes to demo_result.json)."""
    from sail_rl.cli import main as cli
    from sail_rl.commands.report import plot_run
    from sail_rl.commands.run import train
    from sail_rl.config import load_recipe
    from sail_rl.data.mathvista import load_split
    from sail_rl.data.prompts import THINK_OR_DIRECT
    from sail_rl.rl.config import RunRecipe
    from sail_rl.trainer.checkpoint import latest_checkpoint

    start = time.perf_counter()
    out = out or ("runs/demo_grpo" if seed == 0 else f"runs/demo_grpo_seed{seed}")
    # what the demo creates from nothing, said explicitly: a fresh tiny model and the synthetic data
    # (the recipe's bootstrap section may create these paths and no others); another seed gets its
    # own initial model, SFT and RL run (the data stay the same)
    init_dir = "runs/tiny-init" if seed == 0 else f"runs/tiny-init-seed{seed}"
    sft_dir = "runs/tiny-sft" if seed == 0 else f"runs/tiny-sft-seed{seed}"
    rl = load_recipe(RunRecipe, RL_RECIPE, [f"run.output_dir={out}", f"run.seed={seed}", f"model.path={sft_dir}"]
                     + ([f"run.total_steps={rl_steps}"] if rl_steps else []))
    if not (Path(sft_dir) / "config.json").is_file():
        t = _stage(f"SFT cold start ({SFT_RECIPE}: init-model, synthetic data from a biased teacher, thinking-fusion SFT)")
        resume_sft = ["--resume"] if Path(sft_dir).is_dir() else []  # an interrupted cold start continues
        code = cli(["sft", SFT_RECIPE, f"train.seed={seed}", f"bootstrap.model_seed={seed}", f"model.path={init_dir}",
                    f"bootstrap.model_path={init_dir}", "bootstrap.model_preset=tiny", "bootstrap.synth_dir=data/synth",
                    f"train.output_dir={sft_dir}", *resume_sft])
        if code:
            raise SystemExit(code)
        print(f"SFT done in {time.perf_counter() - t:.0f} s", flush=True)
    else:
        print(f"using the SFT checkpoint at {sft_dir}")

    t = _stage(f"GRPO ({RL_RECIPE}) with vLLM rollouts on Ray, prompts in {rl.data.prompt_mode} mode")
    summary = train(rl, resume=Path(rl.run.output_dir).is_dir())  # a rerun continues (or re-reports) the demo's own run
    if "eval_before" not in summary:  # a resumed run evaluates after RL only: the step-0 eval is in its metrics
        from sail_rl.rl.metrics import read_metrics

        first = next((r for r in read_metrics(rl.run.output_dir) if r.get("step") == 0 and "eval/accuracy" in r), None)
        if first is not None:
            summary["eval_before"] = {k: v for k, v in first.items() if k.startswith("eval/")}
    print(f"RL done in {time.perf_counter() - t:.0f} s", flush=True)
    curves = plot_run(rl.run.output_dir)
    held_out = load_split(rl.data, "eval")[: rl.run.eval_max_samples]
    ceiling = best_constant(held_out)
    modes = list(THINK_OR_DIRECT) if rl.data.prompt_mode == "mixed" else [rl.data.prompt_mode]
    t = _stage(f"per-answer breakdown before and after RL (greedy, sail-rl eval, every question in {' and '.join(modes)} mode)")
    final_model = str(latest_checkpoint(rl.run.output_dir) / "model")
    by_answer = {"before_rl": answer_breakdown(rl.model.path, rl, Path(rl.run.output_dir, "eval_before_rl"), modes),
                 "after_rl": answer_breakdown(final_model, rl, Path(rl.run.output_dir, "eval_after_rl"), modes)}
    print_breakdown(ceiling, by_answer["before_rl"], by_answer["after_rl"])
    print(f"breakdown done in {time.perf_counter() - t:.0f} s", flush=True)
    line = result_line(seed, summary, rl.run.eval_samples_per_prompt, ceiling["accuracy"], len(held_out),
                       time.perf_counter() - start, modes)
    full = {**line, "best_constant_by_family": ceiling["by_family"], "breakdown": by_answer, "curves": curves,
            "eval_before": summary.get("eval_before"), "eval_after": summary["eval_after"]}
    Path(rl.run.output_dir, "demo_result.json").write_text(json.dumps(full, indent=1))
    print_result(line, rl.run.output_dir, curves)
    return line


def print_result(line: dict[str, Any], run_dir: str, curves: Any) -> None:
    k = line["k"]
    print("\n=== result ===")
    print(f"held-out questions: {line['heldout_samples']}, prompt modes mixed as in training; seed {line['seed']}, "
          f"{line['rl_steps']} GRPO steps")
    for when in ("before", "after"):
        acc, mean_k = line[f"accuracy_{when}_rl"], line[f"mean_at_k_{when}_rl"]
        if acc is None:
            continue
        modes = "; ".join(f"{m}: {_pct(v[f'accuracy_{when}_rl'])}, think rate {_pct(v[f'think_rate_{when}_rl'])}"
                          for m, v in line["by_mode"].items())
        print(f"{when:>6} RL: {_pct(acc)} greedy, {_pct(mean_k)} mean@{k}" + (f"   ({modes})" if modes else ""))
    print(f"best constant answer: {_pct(line['best_constant_accuracy'])} (each family's most frequent answer; "
          "a model that ignores the image gets at most this)")
    verdict = "above" if line["above_best_constant"] else "NOT above"
    print(f"gain {line['gain_points']} points; after-RL greedy accuracy is {verdict} the image-blind ceiling")
    print(f"curves: {curves}; metrics: {run_dir}/metrics.jsonl; total {line['wall_s']} s, "
          f"load average (1/5/15 min) at the end {line['load_avg_1_5_15m']}")


def run_seeds(seeds: list[int], rl_steps: int | None) -> dict[str, Any]:
    """Each seed in its own process (its own Ray and vLLM), one after the other; its last line is its result."""
    import subprocess

    lines = []
    for seed in seeds:
        cmd = [sys.executable, "-m", "sail_rl.demo", "--seed", str(seed)] + (["--rl-steps", str(rl_steps)] if rl_steps else [])
        print(f"\n##### seed {seed}: {' '.join(cmd)}", flush=True)
        last = ""
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
            for text in proc.stdout:  # shown as it comes; the seed's result is its last JSON line
                print(text, end="", flush=True)
                last = text.strip() if text.startswith('{"seed"') else last  # a library's log at exit may follow it
        if proc.returncode or not last:
            raise SystemExit(f"demo seed {seed} failed (exit {proc.returncode}); its output is above")
        lines.append(json.loads(last))
    out = seeds_summary(lines)
    print("\n=== seeds ===")
    print("seed  greedy before -> after (gain)   mean@k before -> after   think: acc, think rate after   s")
    for line in lines:
        think = line["by_mode"].get("think", {})
        print(f"{line['seed']:>4}  {_pct(line['accuracy_before_rl'])} -> {_pct(line['accuracy_after_rl'])} ({line['gain_points']:+.1f})"
              f"      {_pct(line['mean_at_k_before_rl'])} -> {_pct(line['mean_at_k_after_rl'])}"
              f"        {_pct(think.get('accuracy_after_rl') or 0)}, {_pct(think.get('think_rate_after_rl') or 0)}   {line['wall_s']}")
    for name in ("accuracy_before_rl", "accuracy_after_rl", "gain_points"):
        st = out["summary"][name]
        print(f"{name}: mean {st['mean']}, std {st['std']}, min {st['min']}, max {st['max']}")
    print(f"every seed gains >= {out['min_gain_points']} points: {out['every_seed_gains']}; "
          f"every seed above the image-blind ceiling: {out['every_seed_above_best_constant']}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sail_rl.demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="run these seeds one after the other (make demo-seeds)")
    parser.add_argument("--rl-steps", type=int, default=None, help="override run.total_steps")
    parser.add_argument("--out", default=None, help="RL output dir (default runs/demo_grpo, runs/demo_grpo_seedN for seed N)")
    args = parser.parse_args(argv)
    if args.seeds and args.out:
        parser.error("--out names one run; with --seeds each seed writes runs/demo_grpo[_seedN]")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = run_seeds(args.seeds, args.rl_steps) if args.seeds else run_seed(args.seed, args.out, args.rl_steps)
    print(json.dumps(result, separators=(",", ":")), flush=True)  # the last line: machine-readable
    return 0


if __name__ == "__main__":
    sys.exit(main())
