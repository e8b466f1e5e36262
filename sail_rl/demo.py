"""`make demo`: the whole SAIL-VL2 recipe, end to end, on a laptop CPU.

    init-model (tiny) -> synthetic MathVista-format data -> thinking-fusion SFT cold start
    -> DAPO-style GRPO with vLLM rollouts on Ray -> held-out eval before and after RL

Each stage is skipped when its output already exists (delete `runs/` to start over); the SFT
recipe's `bootstrap:` keys, passed explicitly here, create the tiny model and the data.
Prints held-out accuracy before and after RL with the seed, and writes the curves. Beside it:
the best-constant ceiling (always answer each family's most frequent answer: what a model that
ignores the image can reach) and per-answer accuracy of both checkpoints, so a reader sees
whether RL taught the model to look at the image or only moved it to a better constant.
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


def answer_breakdown(model_dir: str, rl: Any, out_dir: Path) -> dict[str, Any]:
    """Greedy `sail-rl eval` of one checkpoint on the held-out file: accuracy per family and per
    gold answer, and how often each answer is given ({family: {answer: [correct, n, given]}}).
    It reads the file's first run.eval_max_samples questions: the RL loop's held-out set when the
    file holds no more (the demo's does: synth_eval_n = eval_max_samples)."""
    from eval.runner import EvalConfig, evaluate

    cfg = EvalConfig(model_path=model_dir, data_files=list(rl.data.eval_files), max_samples=rl.run.eval_max_samples,
                     prompt_mode=rl.data.prompt_mode, max_response_tokens=rl.rollout.max_response_tokens,
                     max_model_len=rl.rollout.max_model_len, output_dir=str(out_dir), plot=False)
    records = evaluate(cfg).records
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for r in records:
        fam = table[r.family or "all"]
        fam[r.answer][0] += int(r.correct)
        fam[r.answer][1] += 1
        fam[str(r.prediction)][2] += 1
    return {
        "accuracy": round(sum(r.correct for r in records) / max(1, len(records)), 4),
        "by_family": {f: round(sum(v[0] for v in t.values()) / max(1, sum(v[1] for v in t.values())), 4)
                      for f, t in sorted(table.items())},
        "by_answer": {f: {a: v for a, v in sorted(t.items())} for f, t in sorted(table.items())},
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_breakdown(ceiling: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    print("per family (greedy, sail-rl eval)   before RL   after RL   best constant")
    for fam, c in ceiling["by_family"].items():
        print(f"  {fam:<32} {_pct(before['by_family'].get(fam, 0)):>9}   {_pct(after['by_family'].get(fam, 0)):>8}"
              f"   {_pct(c['accuracy']):>7} ('{c['answer']}', {c['classes']} answers)")
    print("per gold answer: correct/n before -> after RL; [times given before -> after]")
    for fam, answers in after["by_answer"].items():
        gold = [a for a, v in answers.items() if v[1]]
        cells = []
        for a in gold:
            b = before["by_answer"].get(fam, {}).get(a, [0, 0, 0])
            v = answers[a]
            cells.append(f"{a} {b[0]}/{b[1]} -> {v[0]}/{v[1]} [{b[2]} -> {v[2]}]")
        print(f"  {fam}: " + "; ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sail_rl.demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rl-steps", type=int, default=None, help="override run.total_steps")
    parser.add_argument("--out", default=None, help="RL output dir (default runs/demo_grpo, runs/demo_grpo_seedN for seed N)")
    args = parser.parse_args(argv)
    args.out = args.out or ("runs/demo_grpo" if args.seed == 0 else f"runs/demo_grpo_seed{args.seed}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from sail_rl.cli import main as cli
    from sail_rl.commands.report import plot_run
    from sail_rl.commands.run import train
    from sail_rl.config import load_recipe
    from sail_rl.data.mathvista import load_split
    from sail_rl.rl.config import RunRecipe
    from sail_rl.trainer.checkpoint import latest_checkpoint

    start = time.perf_counter()
    # what the demo creates from nothing, said explicitly: a fresh tiny model and the synthetic data
    # (the recipe's bootstrap section may create these paths and no others); another seed gets its
    # own initial model and SFT run (the data stay the same)
    init_dir = "runs/tiny-init" if args.seed == 0 else f"runs/tiny-init-seed{args.seed}"
    sft_dirs = [f"model.path={init_dir}", f"bootstrap.model_path={init_dir}", "bootstrap.model_preset=tiny",
                "bootstrap.synth_dir=data/synth"]
    if args.seed:
        sft_dirs.append(f"train.output_dir=runs/tiny-sft-seed{args.seed}")
    rl = load_recipe(RunRecipe, RL_RECIPE, [f"run.output_dir={args.out}", f"run.seed={args.seed}"]
                     + ([f"model.path=runs/tiny-sft-seed{args.seed}"] if args.seed else [])
                     + ([f"run.total_steps={args.rl_steps}"] if args.rl_steps else []))
    if not (Path(rl.model.path) / "config.json").is_file():
        t = _stage(f"SFT cold start ({SFT_RECIPE}: init-model, synthetic data, thinking-fusion SFT)")
        resume_sft = ["--resume"] if Path(rl.model.path).is_dir() else []  # an interrupted cold start continues
        code = cli(["sft", SFT_RECIPE, f"train.seed={args.seed}", f"bootstrap.model_seed={args.seed}", *sft_dirs, *resume_sft])
        if code:
            return code
        print(f"SFT done in {time.perf_counter() - t:.0f} s", flush=True)
    else:
        print(f"using the SFT checkpoint at {rl.model.path}")

    t = _stage(f"GRPO ({RL_RECIPE}) with vLLM rollouts on Ray")
    resume = Path(rl.run.output_dir).is_dir()  # a rerun continues (or re-reports) the demo's own run
    summary = train(rl, resume=resume)
    print(f"RL done in {time.perf_counter() - t:.0f} s", flush=True)
    curves = plot_run(rl.run.output_dir)

    before = summary.get("eval_before", {}).get("eval/accuracy")
    after = summary["eval_after"]["eval/accuracy"]
    sampled = (summary.get("eval_before", {}).get("eval/accuracy_sampled"), summary["eval_after"].get("eval/accuracy_sampled"))
    held_out = load_split(rl.data, "eval")[: rl.run.eval_max_samples]
    ceiling = best_constant(held_out)
    t = _stage("per-answer breakdown of the checkpoints before and after RL (greedy, sail-rl eval)")
    final_model = str(latest_checkpoint(rl.run.output_dir) / "model")
    by_answer = {"before_rl": answer_breakdown(rl.model.path, rl, Path(rl.run.output_dir, "eval_before_rl")),
                 "after_rl": answer_breakdown(final_model, rl, Path(rl.run.output_dir, "eval_after_rl"))}
    print_breakdown(ceiling, by_answer["before_rl"], by_answer["after_rl"])
    print(f"breakdown done in {time.perf_counter() - t:.0f} s", flush=True)
    result = {
        "seed": args.seed,
        "heldout_samples": len(held_out),
        "accuracy_before_rl": before,
        "accuracy_after_rl": after,
        "gain_points": None if before is None else round(100 * (after - before), 1),
        "sampled_accuracy_before_rl": sampled[0],  # mean@k at the rollout temperature
        "sampled_accuracy_after_rl": sampled[1],
        "best_constant_accuracy": ceiling["accuracy"],  # image-blind ceiling: each family's most frequent answer
        "best_constant_by_family": ceiling["by_family"],
        "above_best_constant": after > ceiling["accuracy"],
        "breakdown": by_answer,
        "rl_steps": summary["final_step"],
        "wall_s": round(time.perf_counter() - start),
        "curves": curves,
    }
    Path(rl.run.output_dir, "demo_result.json").write_text(json.dumps(result, indent=1))
    print("\n=== result ===")
    k = rl.run.eval_samples_per_prompt
    if before is not None:
        print(f"held-out accuracy before RL: {_pct(before)} greedy" + (f", {_pct(sampled[0])} mean@{k}" if sampled[0] is not None else ""))
    print(f"held-out accuracy after RL:  {_pct(after)} greedy" + (f", {_pct(sampled[1])} mean@{k}" if sampled[1] is not None else "")
          + f"   (seed {args.seed}, {result['rl_steps']} GRPO steps, {len(held_out)} held-out questions)")
    print(f"best constant answer:        {_pct(ceiling['accuracy'])}   (each family's most frequent answer; "
          "a model that ignores the image gets at most this)")
    verdict = "above" if after > ceiling["accuracy"] else "NOT above"
    print(f"after-RL greedy accuracy is {verdict} the image-blind ceiling; per-answer table above")
    print(f"curves: {curves}; metrics: {rl.run.output_dir}/metrics.jsonl; total {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
