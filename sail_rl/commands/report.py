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

    records = _read_records(run_dir)
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
    import io

    from sail_rl.rundir import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())  # a reader never sees half a PNG
    return str(path)


def _read_records(run_dir: str) -> list[dict]:
    """metrics.jsonl's records; one-line errors for a missing folder or file, an empty file, a garbage line."""
    from pathlib import Path

    from sail_rl.errors import ConfigError, DataError
    from sail_rl.rl.metrics import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    if not Path(run_dir).is_dir():
        raise ConfigError(f"{run_dir} is not a folder; point at a run's output_dir (it holds metrics.jsonl)")
    if not path.is_file():
        raise DataError(f"no metrics.jsonl in {run_dir}; point at a run's output_dir")
    records = read_metrics(run_dir)  # a garbage line is a one-line DataError naming it
    if not records:
        raise DataError(f"{path} is empty: the run logged no step yet; report after its first step")
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict) or not isinstance(r.get("step"), int)), None)
    if bad is not None:
        raise DataError(f"{path}: record {bad + 1} has no integer 'step'; remove it and rerun")
    return records


def run(args: argparse.Namespace) -> int:
    print(f"wrote {plot_run(args.run_dir, args.out)}")
    return 0
