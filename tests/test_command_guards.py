"""Every command refuses, in one line with exit code 2 and before spending anything, what would lose
work or give a wrong result: init-model, convert-checkpoint, data, eval, report, run --resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sail_rl.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from sail_rl.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("guard_synth")
    generate_dataset(out, n=6, seed=0, eval_n=2, families=["shape_colour"])
    return out


def _trained_run(root: Path) -> Path:
    run = root / "sft-run"
    run.mkdir()
    for name, text in {"model.safetensors": "trained", "config.json": "{}", "log.jsonl": "{}\n"}.items():
        (run / name).write_text(text)
    return run


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line
    return err[0]


# ---------------------------------------------------------------- init-model, convert


def test_init_model_onto_a_trained_run_is_refused_and_overwrite_replaces_it_whole(tmp_path, capsys):
    run = _trained_run(tmp_path)
    assert main(["init-model", "--preset", "tiny", "--out", str(run)]) == 2
    assert "--overwrite" in _error(capsys) and (run / "model.safetensors").read_text() == "trained"
    assert main(["init-model", "--preset", "tiny", "--out", str(run), "--overwrite"]) == 0
    assert not (run / "log.jsonl").exists()  # no SFT file left beside the random model
    assert (run / "model.safetensors").stat().st_mode & 0o044 == 0o044  # readable by the group and others


def test_convert_into_itself_or_from_no_checkpoint_is_refused(tmp_path, capsys):
    run = _trained_run(tmp_path)
    assert main(["convert-checkpoint", str(run), str(run)]) == 2
    assert "own input" in _error(capsys) and (run / "model.safetensors").read_text() == "trained"
    assert main(["convert-checkpoint", str(tmp_path / "nothing"), str(tmp_path / "out")]) == 2
    assert "no checkpoint folder" in _error(capsys)
    (tmp_path / "other").mkdir()
    trained = _trained_run(tmp_path / "other")
    assert main(["convert-checkpoint", str(run), str(trained)]) == 2
    assert "already holds" in _error(capsys) and (trained / "model.safetensors").read_text() == "trained"


# ---------------------------------------------------------------- data


def test_synth_refuses_an_absurd_size_before_writing(tmp_path, capsys):
    out = tmp_path / "big"
    assert main(["data", "synth", "--out", str(out), "--n", "10", "--split-eval", "10000000"]) == 2
    assert "over the 5.00 GiB limit" in _error(capsys) and not out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["data", "synth", "--out", str(out), "--n", "0"])
    assert exc.value.code == 2


def test_synth_into_another_data_set_is_refused_and_overwrite_leaves_no_stale_file(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["data", "synth", "--out", str(out), "--n", "4", "--split-eval", "2"]) == 0
    assert main(["data", "synth", "--out", str(out), "--n", "4", "--split-eval", "2"]) == 0  # the same job again
    assert main(["data", "synth", "--out", str(out), "--n", "5"]) == 2
    assert "--overwrite" in _error(capsys) and (out / "eval.jsonl").is_file()
    assert main(["data", "synth", "--out", str(out), "--n", "5", "--overwrite"]) == 0
    assert not (out / "eval.jsonl").exists() and len((out / "data.jsonl").read_text().splitlines()) == 5


def _results(path: Path, pids: list[str]) -> Path:
    path.write_text("".join(json.dumps({"pid": p, "correct": True, "response": "x"}) + "\n" for p in pids))
    return path


def test_filter_never_overwrites_its_input_or_an_existing_file(synth, tmp_path, capsys):
    data = synth / "data.jsonl"
    before = data.read_text()
    results = _results(tmp_path / "r.jsonl", ["train-000000"])
    assert main(["data", "filter", "--data", str(data), "--results", str(results), "--out", str(data)]) == 2
    assert "own input" in _error(capsys) and data.read_text() == before
    out = tmp_path / "kept.jsonl"
    out.write_text("mine\n")
    assert main(["data", "filter", "--data", str(data), "--results", str(results), "--out", str(out)]) == 2
    assert "--overwrite" in _error(capsys) and out.read_text() == "mine\n"
    assert main(["data", "filter", "--data", str(data), "--results", str(results), "--out", str(out), "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == 5  # the always-solved one dropped


@pytest.mark.parametrize("action", ["filter", "rejection-sample"])
def test_results_of_another_data_set_are_an_error(synth, tmp_path, capsys, action):
    results = _results(tmp_path / "r.jsonl", ["other-1", "other-2"])
    out = tmp_path / "o.jsonl"
    assert main(["data", action, "--data", str(synth / "data.jsonl"), "--results", str(results), "--out", str(out)]) == 2
    assert "matches a sample" in _error(capsys) and not out.exists()


def test_rejection_sample_zero_per_sample_is_refused_at_parse_time(synth, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["data", "rejection-sample", "--data", str(synth / "data.jsonl"), "--results", "r", "--out", "o",
              "--max-per-sample", "0"])
    assert exc.value.code == 2


# ---------------------------------------------------------------- eval


def _responses(path: Path, synth: Path, per_pid: int = 1) -> Path:
    pids = [json.loads(line)["pid"] for line in (synth / "eval.jsonl").read_text().splitlines()]
    path.write_text("".join(json.dumps({"pid": p, "response": "\\boxed{red}"}) + "\n" for p in pids for _ in range(per_pid)))
    return path


def test_eval_into_another_evaluation_is_refused_and_rerun_replaces_its_own(synth, tmp_path, capsys):
    responses = _responses(tmp_path / "resp.jsonl", synth)
    base = ["eval", f"eval.data_files=[{synth / 'eval.jsonl'}]", "eval.plot=false", "--responses", str(responses),
            "--output-dir", str(tmp_path / "ev")]
    assert main(base) == 0 and main(base) == 0
    assert (tmp_path / "ev" / "metrics.json").stat().st_mode & 0o044 == 0o044
    assert not list((tmp_path / "ev").glob(".report.tmp*"))
    assert main(base + ["eval.max_samples=1"]) == 2
    assert "another job" in _error(capsys)
    assert main(base + ["eval.max_samples=1", "--overwrite"]) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["num_samples"] == 1


@pytest.mark.parametrize("override, message", [
    ("eval.max_samples=-1", "eval.max_samples must be >= 1"),
    ("eval.max_samples=0", "eval.max_samples must be >= 1"),
    ("eval.k_samples=4", "holds at most 1 response"),
])
def test_eval_settings_that_would_score_silently_wrong_are_refused(synth, tmp_path, capsys, override, message):
    responses = _responses(tmp_path / "resp.jsonl", synth)
    args = ["eval", f"eval.data_files=[{synth / 'eval.jsonl'}]", "eval.temperature=1.0", override,
            "--responses", str(responses), "--output-dir", str(tmp_path / "ev")]
    assert main(args) == 2
    assert message in _error(capsys) and not (tmp_path / "ev" / "metrics.json").exists()


def test_eval_checks_the_model_before_starting_an_engine(synth, tiny_dir, tmp_path, capsys):
    data = f"eval.data_files=[{synth / 'eval.jsonl'}]"
    assert main(["eval", f"eval.model_path={tmp_path / 'typo'}", data, "--output-dir", str(tmp_path / "a")]) == 2
    assert "has no model (no config.json)" in _error(capsys)
    assert main(["eval", f"eval.model_path={tiny_dir}", data, "--output-dir", str(tmp_path / "b")]) == 2
    assert "exceeds the model's 2048 positions" in _error(capsys) and not (tmp_path / "b").exists()


# ---------------------------------------------------------------- report


@pytest.mark.parametrize("content, message", [
    (None, "no metrics.jsonl"),
    ("", "is empty"),
    ('{"step": 1, "reward/mean": 0.5}\nnot json\n{"step": 3}\n', "metrics.jsonl:2 is not a JSON record"),
])
def test_report_bad_metrics_are_one_line(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "metrics.jsonl").write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    assert message in _error(capsys) and not (tmp_path / "curves.png").exists()


def test_report_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in _error(capsys)


# ---------------------------------------------------------------- run --resume


def test_rl_resume_with_a_changed_recipe_is_refused_before_ray(synth, tiny_dir, tmp_path, capsys):
    from sail_rl.config import load_recipe, to_dict
    from sail_rl.rl.config import RunRecipe
    from sail_rl.rundir import claim_output_dir, unlock_dir

    run_dir = tmp_path / "rl"
    args = [f"model.path={tiny_dir}", f"run.output_dir={run_dir}", f"data.train_files=[{synth / 'data.jsonl'}]",
            f"data.eval_files=[{synth / 'eval.jsonl'}]"]
    recipe = load_recipe(RunRecipe, REPO / "recipes/mathvista_grpo.yaml", args)
    claim_output_dir(run_dir, "run", to_dict(recipe), flag="run.output_dir")  # as a first run records it
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')
    unlock_dir(run_dir)
    assert main(["run", "recipes/mathvista_grpo.yaml", *args, "--resume", "trainer.learning_rate=1e-3"]) == 2
    assert "trainer.learning_rate" in _error(capsys)
    assert main(["run", "recipes/mathvista_grpo.yaml", *args]) == 2
    assert "--resume to continue it, --overwrite" in _error(capsys)


def test_a_config_without_weights_is_one_line_before_any_engine(synth, tiny_dir, tmp_path, capsys):
    import shutil

    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(tiny_dir / "config.json", half / "config.json")
    assert main(["eval", f"eval.model_path={half}", f"eval.data_files=[{synth / 'eval.jsonl'}]", "eval.max_model_len=2048",
                 "--output-dir", str(tmp_path / "ev")]) == 2
    assert "no weights" in _error(capsys)
    assert main(["bench", "rollout", "--model", str(half)]) == 2
    assert "no weights" in _error(capsys)


@pytest.mark.parametrize("argv", [["bench", "rollout", "--model", "m", "--n", "0"],
                                  ["bench", "rollout", "--model", "m", "--temperature", "nan"],
                                  ["data", "filter", "--data", "d", "--out", "o", "--k", "-1"]])
def test_numeric_options_are_range_checked_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "must be in" in capsys.readouterr().err
