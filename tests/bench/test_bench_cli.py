"""`sail-rl bench`: sub-benchmarks parse, and a missing step benchmark is a one-line error."""

from __future__ import annotations



from sail_rl.cli import build_parser, main


def test_bench_rollout_arguments_parse():
    args = build_parser().parse_args(["bench", "rollout", "--model", "m", "--prompts", "4", "--n", "2", "--max-tokens", "16"])
    assert (args.bench_command, args.model, args.prompts, args.n, args.max_tokens) == ("rollout", "m", 4, 2, 16)


def test_bench_without_benchmark_is_an_error(capsys):
    assert main(["bench"]) == 1
    assert "name a benchmark" in capsys.readouterr().err


def test_bench_rollout_missing_model_is_one_line(capsys, tmp_path):
    assert main(["bench", "rollout", "--model", str(tmp_path / "none")]) == 2  # a bad path: exit 2
    assert "init-model" in capsys.readouterr().err
