"""`sail-rl bench rollout|step|update|gpu|sft`: throughput against a baseline measured in the same run.

Every benchmark lives in `sail_rl/bench/` (one module each, with its own arguments); this
command only dispatches:

    sail-rl bench rollout --model DIR   rollout tokens/s vs raw vllm.LLM.generate   (bench/rollout.py)
    sail-rl bench step                  one RL step vs TRL's GRPOTrainer            (bench/step.py)
    sail-rl bench update                trainer tokens/s: ways to batch rows         (bench/update.py)
    sail-rl bench gpu                   2b-preset tokens/s, MFU, memory on one GPU   (bench/gpu.py)
    sail-rl bench sft [--rss N]         SFT tokens/s vs TRL's SFTTrainer; peak RSS   (bench/sft.py)
"""

from __future__ import annotations

import argparse
import importlib

from sail_rl.errors import SailRLError

BENCHMARKS = {
    "rollout": "rollout tokens/s: sail-rl (Ray + vLLM) vs raw vllm.LLM.generate",
    "step": "RL step time vs TRL GRPOTrainer (peer figure)",
    "update": "trainer tokens/s: length-grouped and padding-free vs padded",
    "gpu": "one GPU: 2b preset tokens/s, MFU and peak memory as JSON",
    "sft": "SFT tokens/s vs TRL SFTTrainer; --rss N: peak RSS at N and 10N samples",
}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_command", metavar="BENCH")
    for name, help_text in BENCHMARKS.items():
        module = importlib.import_module(f"sail_rl.bench.{name}")  # top levels are cheap: heavy imports sit in run()
        bench = sub.add_parser(name, help=help_text)
        module.add_arguments(bench)
        bench.set_defaults(_bench=module.run)


def run(args: argparse.Namespace) -> int:
    bench = getattr(args, "_bench", None)
    if bench is None:
        raise SailRLError("name a benchmark: " + ", ".join(f"`sail-rl bench {b}`" for b in BENCHMARKS))
    return bench(args)
