"""Shared fixtures: tiny SAIL-VL checkpoints built once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from sail_rl.model.builder import init_model

    out = tmp_path_factory.mktemp("tiny")
    init_model("tiny", out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_seed1_dir(tmp_path_factory):
    """A second tiny checkpoint (another seed): weights that make a sync visible."""
    from sail_rl.model.builder import init_model

    out = tmp_path_factory.mktemp("tiny_seed1")
    init_model("tiny", out, seed=1)
    return out


@pytest.fixture(scope="session")
def tiny_moe_dir(tmp_path_factory):
    from sail_rl.model.builder import init_model

    out = tmp_path_factory.mktemp("tiny_moe")
    init_model("tiny-moe", out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    """(model, processor) of the tiny preset, fp32, in train mode with dropout off."""
    from sail_rl.model.builder import load_model, load_processor

    return load_model(tiny_dir), load_processor(tiny_dir)


@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory):
    """A real `vllm serve` judge (tiny random Qwen3, text only) on loopback, once per session:
    {"base_url": ..., "model": "tiny-judge"}. Its replies never parse (random weights)."""
    from tests.judge_server import serve_tiny_judge

    with serve_tiny_judge(tmp_path_factory.mktemp("judge")) as base_url:
        yield {"base_url": base_url, "model": "tiny-judge"}
