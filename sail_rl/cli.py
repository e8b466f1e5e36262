"""The `sail-rl` command.

Each subcommand lives in `sail_rl/commands/<name>.py` with two functions:
`configure(parser)` adds its arguments (cheap: no torch/vllm import) and `run(args) -> int`
does the work.

Errors the user can fix (`SailRLError`) print one line and exit non-zero; `--debug` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from sail_rl.errors import SailRLError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init-model": ("sail_rl.commands.init_model", "write a SAIL-VL model, tokenizer and processor from a preset"),
    "convert-checkpoint": ("sail_rl.commands.convert", "convert a released SAIL-VL2 checkpoint to sail-rl's layout"),
    "sft": ("sail_rl.commands.sft", "supervised fine-tuning (LongCoT / thinking-fusion cold start)"),
    "run": ("sail_rl.commands.run", "RL training: vLLM rollouts, rewards, PPO/GRPO-family updates on Ray"),
    "eval": ("sail_rl.commands.eval", "evaluate a model on a MathVista-format benchmark"),
    "data": ("sail_rl.commands.data", "make, filter and sample data (synth, filter, rejection-sample)"),
    "bench": ("sail_rl.commands.bench", "benchmarks against a baseline measured in the same run"),
    "pipeline": ("sail_rl.commands.pipeline", "the progressive SAIL-VL2 post-training pipeline"),
    "report": ("sail_rl.commands.report", "draw reward, accuracy and length curves of a run"),
    "export": ("sail_rl.commands.export", "write a full HF model from an RL run's sharded checkpoint"),
}



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sail-rl", description="RL post-training for SAIL-VL models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        module = importlib.import_module(module_name)
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` overrides may follow flags (`sail-rl sft r.yaml --resume train.max_steps=9`)
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = list(args.overrides or []) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False)) or os.environ.get("SAIL_RL_DEBUG") == "1"
    try:
        code = args._run(args)
    except SailRLError as exc:
        if debug:
            raise
        print(f"sail-rl {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"sail-rl {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
