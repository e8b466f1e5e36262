"""benchmarks/gpu_check.py imports without a GPU; its arguments and FLOP count are right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments_and_model_flops(tiny):
    gpu_check = _module()
    args = gpu_check.parse_args(["--batch", "4", "--skip", "sft"])
    assert (args.batch, args.seq, args.steps, args.skip) == (4, 2048, 5, ["sft"])
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--skip", "everything"])
    model, _ = tiny
    llm = model.model.language_model
    layers = sum(p.numel() for layer in llm.layers for p in layer.parameters()) + llm.norm.weight.numel()
    head = model.config.text_config.vocab_size * model.config.text_config.hidden_size
    assert gpu_check.flops_per_token(model) == 6.0 * (layers + head) > 0
