"""A second tiny checkpoint (another seed): weights that make a sync visible."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_seed1(tmp_path_factory):
    from sail_rl.model.builder import init_model, load_model

    out = tmp_path_factory.mktemp("tiny_seed1")
    init_model("tiny", out, seed=1)
    return load_model(out)
