"""`sail-rl bench sft`: its packing mode runs, and the memory runs use the code they are pointed at."""

from __future__ import annotations

import argparse
import sys

import pytest

from sail_rl.bench import sft


def test_a_memory_run_imports_from_the_folder_it_runs_in_first(tmp_path):
    """Why `_rss` runs its children in a scratch folder: `python -m` / `-c` put the child's folder
    before PYTHONPATH, so run inside a checkout, `--code DIR` would measure that checkout instead."""
    for marker in ("checkout", "code"):
        (tmp_path / marker / "probe").mkdir(parents=True)
        (tmp_path / marker / "probe" / "__init__.py").write_text(f"WHERE = {marker!r}\n")
    (tmp_path / "scratch").mkdir()
    out = tmp_path / "imported.txt"
    argv = [sys.executable, "-c", f"import probe; open({str(out)!r}, 'w').write(probe.WHERE)"]
    env = {"PYTHONPATH": str(tmp_path / "code")}
    peak, late = sft.rss_mib(argv, env, cwd=tmp_path / "checkout")
    assert out.read_text() == "checkout" and peak > 0 and late > 0
    sft.rss_mib(argv, env, cwd=tmp_path / "scratch")
    assert out.read_text() == "code"
    with pytest.raises(RuntimeError):
        sft.rss_mib([sys.executable, "-c", "raise SystemExit(3)"], env, cwd=tmp_path / "scratch")


@pytest.mark.slow
def test_packing_mode_trains_packed_and_padded_rows_and_prints_their_ratio(capsys, monkeypatch):
    calls = []
    real_round = sft._sail_rl_round

    def recording_round(*args, **kwargs):
        calls.append((kwargs["packing"], kwargs["frozen_vision"]))
        return real_round(*args, **kwargs)

    monkeypatch.setattr(sft, "_sail_rl_round", recording_round)
    parser = argparse.ArgumentParser()
    sft.add_arguments(parser)
    args = parser.parse_args(["--packing", "--samples", "16", "--batch", "4", "--steps", "1", "--warmup", "1", "--rounds", "1"])
    assert sft.run(args) == 0
    assert calls == [(True, False), (False, False)]  # both sides, the vision tower trained
    out = capsys.readouterr().out
    ratio = float(out.split("ratio packed / padded: ")[1].split()[0])
    assert ratio > 0 and "tiny model with images" in out
