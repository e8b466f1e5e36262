"""`sail-rl bench sft`: SFT tokens/s, sail-rl vs TRL's `SFTTrainer`, in one run; `--rss`: peak memory at 1x and 10x data.

Throughput. The same tiny model, data and batch on both sides: the `tiny` preset's text model
(TRL's VLM path was not tried with SAIL-VL's processor, so both train text conversations: the
synthetic set's question -> its think target), sail-rl with the
vision tower and projector frozen (the same trainable weights as TRL's causal LM), TRL with
`completion_only_loss` on prompt/completion records (the same supervised tokens) and, like
sail-rl here, without gradient checkpointing (TRL's default turns it on). Each side batches
its own default way: sail-rl packs a micro-batch's rows into one sequence (`train.packing`, one
sdpa attention per row), TRL pads them (`--trl-padding-free`: TRL flattens them too). Each round
builds both trainers afresh (not timed), runs `--warmup` steps, then times `--steps` steps; rounds
alternate (sail-rl, TRL, sail-rl, ...) so machine noise hits both alike. tokens/s counts the
non-pad tokens of the timed steps (TRL: `num_input_tokens_seen`, non_padding). Prints the median
of each side and the ratio sail-rl / TRL.

Packing (`--packing`). sail-rl against itself: `train.packing` on and off, on image
conversations with the whole model trained (the workload packing is for), alternating rounds.

Memory (`--rss`). One `sail-rl sft` process per data size over N and 10N synthetic samples, one
epoch each (every sample seen once in each mode): its peak RSS from `wait4` (the child alone)
and the largest RSS sampled in the last third of its run (what training settles at). With
`--code DIR` the runs use another checkout's code (e.g. an older commit's) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=256, help="conversations in the data set (throughput)")
    parser.add_argument("--batch", type=int, default=8, help="per-device batch size, both sides")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared small CPUs)")
    parser.add_argument("--workers", type=int, default=0,
                        help="sail-rl's train.dataloader_num_workers (TRL tokenises the whole set before its first step)")
    parser.add_argument("--trl-padding-free", action="store_true",
                        help="TRL with padding_free=True (its rows flattened into one sequence; on sdpa transformers masks it densely)")
    parser.add_argument("--packing", action="store_true",
                        help="instead: sail-rl's packed rows against its padded rows on image conversations")
    parser.add_argument("--rss", type=int, default=None, metavar="N",
                        help="instead: peak RSS of one-epoch `sail-rl sft` runs over N and 10N samples")
    parser.add_argument("--code", default=None, help="with --rss: PYTHONPATH of the code to run (another checkout)")


# ---------------------------------------------------------------- throughput


def _conversations(synth_dir: Path, n: int) -> list[tuple[dict, dict]]:
    """(user message, assistant message) pairs, text only: the synth question and its think target."""
    records = [json.loads(line) for line in (synth_dir / "data.jsonl").read_text().splitlines()[:n]]
    return [({"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["think_target"]}) for r in records]


def _sail_rl_round(model_dir: str, data_file: Path, out_dir: str, args, packing: bool | None = None,
                   frozen_vision: bool = True) -> tuple[float, int]:
    from sail_rl.config import from_dict
    from sail_rl.sft.config import SFTRecipe
    from sail_rl.sft.trainer import SFTTrainer

    recipe = from_dict(SFTRecipe, {
        "model": {"path": model_dir},
        "data": {"sources": [{"path": str(data_file), "mode": "think"}]},
        "train": {"output_dir": out_dir, "per_device_train_batch_size": args.batch, "max_steps": args.warmup + args.steps,
                  "learning_rate": 1e-4, "lr_scheduler_type": "constant", "warmup_steps": 0, "max_length": 1024,
                  "dataloader_num_workers": args.workers, "packing": packing,
                  "freeze_vision_tower": frozen_vision, "freeze_projector": frozen_vision},
    })
    trainer = SFTTrainer(recipe, log=lambda _m: None)
    for _ in range(args.warmup):
        trainer.train_step()
    start, tokens = time.perf_counter(), 0
    for _ in range(args.steps):
        tokens += trainer.train_step()["num_tokens"]
    return time.perf_counter() - start, tokens


def _trl_round(text_dir: str, pairs: list[tuple[dict, dict]], out_dir: str, args) -> tuple[float, int]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    marks: list[tuple[float, int]] = []  # (time, tokens seen) at the end of every step

    class StepClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            marks.append((time.perf_counter(), state.num_input_tokens_seen))

        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), state.num_input_tokens_seen))

    data = Dataset.from_dict({"prompt": [[u] for u, _ in pairs], "completion": [[a] for _, a in pairs]})
    config = SFTConfig(output_dir=out_dir, per_device_train_batch_size=args.batch, max_steps=args.warmup + args.steps,
                       learning_rate=1e-4, lr_scheduler_type="constant", completion_only_loss=True,
                       max_length=None if args.trl_padding_free else 1024,  # TRL: padding-free does not truncate; no sample nears 1024
                       gradient_checkpointing=False,  # TRL's default is on; sail-rl's (model.gradient_checkpointing) off
                       use_cpu=True, bf16=False, report_to=[], save_strategy="no", logging_steps=10_000,
                       dataloader_num_workers=0, disable_tqdm=True, include_num_input_tokens_seen="non_padding", seed=0,
                       padding_free=args.trl_padding_free)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(text_dir), args=config, train_dataset=data,
                         processing_class=AutoTokenizer.from_pretrained(text_dir), callbacks=[StepClock()])
    trainer.train()
    (t0, n0), (t1, n1) = marks[args.warmup], marks[-1]  # from the end of the warm-up to the last step
    return t1 - t0, n1 - n0


def _alternating_rounds(args, workload: str, sides: dict) -> dict[str, list[float]]:
    """tokens/s of each side (name -> round index -> (seconds, tokens)) over `args.rounds` rounds,
    the sides taking turns within each round; prints every round and each side's median."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.rounds):
        for name, one_round in sides.items():
            seconds, tokens = one_round(r)
            rates[name].append(tokens / seconds)
        print(f"round {r}: " + "   ".join(f"{name} {rates[name][-1]:8.0f} tok/s" for name in sides), flush=True)
    print(f"{workload}, {args.samples} conversations, batch {args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up, {args.rounds} alternating rounds, {args.threads} thread(s)")
    for name in sides:
        print(f"  {name:10s} {statistics.median(rates[name]):8.0f} tokens/s (median)")
    return rates


def _packing(args) -> int:
    """sail-rl's packed rows against its padded rows, on the synthetic set's image conversations
    (question + image -> think target), the whole model trained; rounds alternate."""
    import torch

    from sail_rl.data.synth import generate_dataset
    from sail_rl.model.builder import init_model

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="sail-rl-bench-packing-"))
    init_model("tiny", work / "tiny")
    generate_dataset(work / "synth", n=args.samples, seed=0)
    rates = _alternating_rounds(args, "tiny model with images", {
        name: lambda r, name=name: _sail_rl_round(str(work / "tiny"), work / "synth" / "data.jsonl", str(work / f"{name}{r}"),
                                                  args, packing=name == "packed", frozen_vision=False)
        for name in ("packed", "padded")})
    packed, padded = statistics.median(rates["packed"]), statistics.median(rates["padded"])
    print(f"ratio packed / padded: {packed / padded:.2f} (packed: one sdpa attention per row)")
    return 0


def _throughput(args) -> int:
    import torch

    from sail_rl.data.synth import generate_dataset
    from sail_rl.model.builder import init_model, load_model, load_processor
    from sail_rl.sft.examples import write_jsonl

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="sail-rl-bench-sft-"))
    model_dir, text_dir = str(work / "tiny"), str(work / "text")
    init_model("tiny", model_dir)
    load_model(model_dir).save_text_model(text_dir, load_processor(model_dir).tokenizer)
    generate_dataset(work / "synth", n=args.samples, seed=0)
    pairs = _conversations(work / "synth", args.samples)
    data_file = write_jsonl([{"id": str(i), "messages": [u, a]} for i, (u, a) in enumerate(pairs)], work / "text.jsonl")
    rates = _alternating_rounds(args, "tiny text model", {
        "sail-rl": lambda r: _sail_rl_round(model_dir, data_file, str(work / f"ours{r}"), args),
        "TRL": lambda r: _trl_round(text_dir, pairs, str(work / f"trl{r}"), args)})
    ours, theirs = statistics.median(rates["sail-rl"]), statistics.median(rates["TRL"])
    paired = statistics.median(a / b for a, b in zip(rates["sail-rl"], rates["TRL"]))
    print(f"ratio sail-rl / TRL: {ours / theirs:.2f} (above 1 = sail-rl faster); median of the rounds' ratios {paired:.2f}")
    return 0


# ---------------------------------------------------------------- memory


def rss_mib(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """Run `argv` to the end: (its peak resident memory from `wait4`, the largest resident memory seen
    in the last third of its run), in MiB. The second is the memory training settles at: the peak
    may come from start-up (imports, model load) and hide a cache that grows through the epoch."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []  # (time, VmRSS MiB), every 0.2 s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            status_text = Path(f"/proc/{proc.pid}/status").read_text()
            kib = next(int(line.split()[1]) for line in status_text.splitlines() if line.startswith("VmRSS:"))
            samples.append((time.perf_counter(), kib / 1024))
        except (OSError, StopIteration):
            pass
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}")
    peak = usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    if not samples:  # over before the first sample
        return peak, peak
    start, end = samples[0][0], samples[-1][0]
    return peak, max(m for t, m in samples if t >= start + 2 * (end - start) / 3)


def _rss(args) -> int:
    from sail_rl.data.synth import generate_dataset
    from sail_rl.model.builder import init_model

    work = Path(tempfile.mkdtemp(prefix="sail-rl-bench-rss-"))
    init_model("tiny", work / "tiny")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(args.code) if args.code else os.environ.get("PYTHONPATH", ""))
    figures = {}
    for n in (args.rss, 10 * args.rss):
        generate_dataset(work / f"synth{n}", n=n, seed=0)
        data = work / f"synth{n}" / "data.jsonl"
        steps = max(1, 2 * n // args.batch)  # one epoch: every sample once in each mode (direct, think)
        argv = [sys.executable, "-m", "sail_rl.cli", "sft", str(_rss_recipe(work, n)), f"model.path={work / 'tiny'}",
                f"data.sources=[{{path: {data}, mode: direct, ratio: 0.5}}, {{path: {data}, mode: think, ratio: 0.5}}]",
                f"train.output_dir={work / f'out{n}'}", f"train.max_steps={steps}",
                f"train.per_device_train_batch_size={args.batch}", f"train.torch_num_threads={args.threads}"]
        start = time.perf_counter()
        figures[n] = rss_mib(argv, env, cwd=work)  # not this checkout: `python -m` puts the cwd before PYTHONPATH
        print(f"{n:7d} samples, {steps} steps: peak RSS {figures[n][0]:6.0f} MiB, last third of the run "
              f"{figures[n][1]:6.0f} MiB ({time.perf_counter() - start:.0f} s)", flush=True)
    one, ten = figures[args.rss], figures[10 * args.rss]
    print(f"ratio 10x / 1x data: peak {ten[0] / one[0]:.2f}, last third {ten[1] / one[1]:.2f}")
    return 0


def _rss_recipe(work: Path, n: int) -> Path:
    path = work / f"rss{n}.yaml"
    path.write_text("train:\n  learning_rate: 1.0e-3\n  max_length: 512\n  logging_steps: 100000\n  save_steps: 0\n")
    return path


def run(args: argparse.Namespace) -> int:
    if args.rss:
        return _rss(args)
    return _packing(args) if args.packing else _throughput(args)
