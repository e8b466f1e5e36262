"""The second tiny checkpoint (tests/conftest.py's tiny_seed1_dir), loaded."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_seed1(tiny_seed1_dir):
    from sail_rl.model.builder import load_model

    return load_model(tiny_seed1_dir)
