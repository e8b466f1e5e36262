"""Every `sail-rl` command in the README's code blocks runs, in order, on fresh tiny artefacts.

The commands are taken from README.md as written; the test only appends arguments that make
each one small (fewer steps, samples and tokens: argparse and recipe overrides take the last
value), so a command that fails here fails for a reader too. `make demo` and `make test` are
the demo and this suite themselves and are not rerun.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# command prefix -> arguments appended to make it quick on 2 CPU cores
SHRINK = {
    "init-model": [],
    "data synth": ["--n", "48", "--split-eval", "8"],
    "sft": ["train.max_steps=2", "train.save_steps=0", "format_eval.samples_per_mode=2", "format_eval.max_new_tokens=8"],
    "run": ["run.total_steps=1", "run.prompts_per_step=2", "rollout.rollouts_per_prompt=2", "trainer.mini_batch_size=4",
            "trainer.micro_batch_size=4", "run.eval_max_samples=2", "run.eval_samples_per_prompt=0",
            "run.progress_bar=false", "rollout.max_response_tokens=16"],
    "eval": ["eval.max_samples=4", "eval.max_response_tokens=16"],
    "report": [],
    "bench rollout": ["--prompts", "2", "--n", "2", "--max-tokens", "8", "--repeats", "1"],
    "bench step": ["--prompts", "2", "--n", "2", "--max-tokens", "8", "--steps", "1", "--warmup", "1"],
    "bench update": ["--prompts", "2", "--n", "2", "--max-tokens", "8", "--mini-batch", "4", "--micro-batch", "4",
                     "--repeats", "1"],
    "bench sft": ["--samples", "16", "--batch", "4", "--steps", "1", "--warmup", "1", "--rounds", "1"],
}
NOT_RERUN = ("make demo", "make test")


def readme_commands(text: str) -> list[str]:
    """The command lines of the README's bash code blocks, comments stripped.

    >>> readme_commands("x\\n```bash\\nsail-rl report runs/a   # curves\\n\\nmake test\\n```\\n")
    ['sail-rl report runs/a', 'make test']
    """
    lines = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _shrink(argv: list[str]) -> list[str]:
    key = " ".join(argv[:2]) if " ".join(argv[:2]) in SHRINK else argv[0]
    return SHRINK.get(key, [])


def test_every_readme_command_is_known():
    commands = readme_commands((REPO / "README.md").read_text())
    assert any(c.startswith("sail-rl eval") for c in commands)
    for line in commands:
        assert line.startswith("sail-rl ") or line.startswith(NOT_RERUN), f"README command the test cannot run: {line}"


def _provide_inputs(argv: list[str], cwd: Path, tiny_dir: Path) -> None:
    """What a command reads that no earlier README command makes: the released checkpoint that
    `convert-checkpoint` converts is built in the released layout, at tiny size, where the README points."""
    if argv[0] == "convert-checkpoint" and not (cwd / argv[1]).exists():
        from transformers import AutoTokenizer

        from tests.model.test_convert import make_release

        make_release(cwd / argv[1], AutoTokenizer.from_pretrained(tiny_dir), select_layer=-1)


@pytest.mark.slow
def test_readme_commands_run_on_the_tiny_preset(tmp_path, tiny_dir):
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    for line in readme_commands((REPO / "README.md").read_text()):
        if line.startswith(NOT_RERUN):
            continue
        argv = shlex.split(line)[1:]
        _provide_inputs(argv, tmp_path, tiny_dir)
        done = subprocess.run([sys.executable, "-m", "sail_rl.cli", *argv, *_shrink(argv)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"README command `{line}` failed:\n{done.stderr[-3000:]}"
    assert (tmp_path / "runs" / "tiny-sft" / "config.json").is_file()
