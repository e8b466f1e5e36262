"""A small synthetic data set for the SFT tests (MathVista format, written by the data package)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from sail_rl.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("sft_synth")
    generate_dataset(out, n=24, seed=0, eval_n=4)
    return out


@pytest.fixture
def make_recipe(tiny_dir, synth_dir, tmp_path):
    """SFTRecipe on the tiny model and the small synth set; `train` / `data` keys override."""
    from sail_rl.config import from_dict
    from sail_rl.sft.config import SFTRecipe

    def make(out_name: str = "out", **train):
        data = str(synth_dir / "data.jsonl")
        spec = {
            "model": {"path": str(tiny_dir)},
            "data": {"sources": [{"path": data, "mode": "direct", "ratio": 0.5}, {"path": data, "mode": "think", "ratio": 0.5}]},
            "train": {"output_dir": str(tmp_path / out_name), "per_device_train_batch_size": 4, "max_steps": 4,
                      "learning_rate": 3e-3, "warmup_steps": 1, "logging_steps": 1, "max_length": 512, **train},
        }
        return from_dict(SFTRecipe, spec)

    return make


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on 2 shared cores two threads spin against other jobs (10x slower seen)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
