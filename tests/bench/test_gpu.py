"""`sail-rl bench gpu` imports without a GPU; its arguments and FLOP count are right."""

from __future__ import annotations

import pytest

from sail_rl.bench import gpu as gpu_check
from sail_rl.cli import main


def test_without_a_gpu_it_is_one_line(capsys):
    assert main(["bench", "gpu", "--steps", "1"]) == 1
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_arguments_and_model_flops(tiny):
    args = gpu_check.parse_args(["--batch", "4", "--skip", "sft"])
    assert (args.batch, args.seq, args.steps, args.skip) == (4, 2048, 5, ["sft"])
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--skip", "everything"])
    model, _ = tiny
    llm = model.model.language_model
    layers = sum(p.numel() for layer in llm.layers for p in layer.parameters()) + llm.norm.weight.numel()
    head = model.config.text_config.vocab_size * model.config.text_config.hidden_size
    assert gpu_check.flops_per_token(model) == 6.0 * (layers + head) > 0
