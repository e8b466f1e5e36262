"""`sail-rl report RUN_DIR`: reward, accuracy and response-length curves of a run, as PNG."""

from __future__ import annotations

import argparse

CURVES = [
    ("reward/mean", "reward (mean)"),
    ("rollout/accuracy", "rollout accuracy"),
    ("eval/accuracy", "held-out accuracy"),
    ("rollout/response_tokens_mean", "response length (tokens)"),
]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run's output_dir (holds metrics.jsonl)")
    parser.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/curves.png)")


def plot_run(run_dir: str, out: str | None = None) -> str:
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sail_rl.errors import SailRLError
    from sail_rl.rl.metrics import read_metrics

    records = read_metrics(run_dir)
    if not records:
        raise SailRLError(f"no metrics.jsonl in {run_dir}; point at a run's output_dir")
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.2))
    for ax, (key, title) in zip(axes, CURVES):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(out) if out else Path(run_dir) / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def run(args: argparse.Namespace) -> int:
    print(f"wrote {plot_run(args.run_dir, args.out)}")
    return 0
