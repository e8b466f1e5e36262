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


def test_bench_step_image_workload_arguments_parse():
    args = build_parser().parse_args(["bench", "step", "--workload", "image", "--engine", "vllm-native", "--steps", "2"])
    assert (args.bench_command, args.workload, args.engine, args.steps, args.max_tokens) == ("step", "image", "vllm-native", 2, None)
    assert build_parser().parse_args(["bench", "step"]).workload == "text"  # the text workload stays the default


def test_bench_step_image_workload_is_mathvista_shaped(tiny):
    """One synthetic image a prompt, tiled 1-4 tiles by the checkpoint's processor; 8 x 128 tokens."""
    from sail_rl.bench.step import WORKLOADS, workload

    _, processor = tiny
    items = workload("image", 8, processor.image_processor.image_size)
    tiles = [processor.num_tiles(img.height, img.width) for _, img in items]
    assert min(tiles) == 1 and max(tiles) == 4 and len(set(tiles)) == 3
    assert all(q.strip() for q, _ in items)
    assert WORKLOADS["image"] == dict(prompts=8, n=8, max_tokens=128)
    assert all(img is None for _, img in workload("text", 3, 64))


def test_bench_rollout_images_need_the_native_engine(capsys, tiny_dir):
    assert main(["bench", "rollout", "--model", str(tiny_dir), "--images"]) == 2  # before Ray and vLLM start
    assert "--engine vllm-native" in capsys.readouterr().err
