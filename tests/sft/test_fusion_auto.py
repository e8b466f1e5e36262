"""Thinking-fusion SFT with `mode: auto`: the auto prompt (the model decides), the think or the
direct target as each record's should_think label says, refused without labels."""

from __future__ import annotations

import json

import pytest

from sail_rl.data.prompts import INSTRUCTIONS
from sail_rl.errors import DataError
from sail_rl.sft.examples import SourceData


def test_auto_sources_ask_the_model_to_decide_and_answer_as_labelled(synth_dir):
    source = SourceData(str(synth_dir / "data.jsonl"), "auto")
    examples = [source[i] for i in range(len(source))]
    labels = [json.loads(line)["should_think"] for line in (synth_dir / "data.jsonl").read_text().splitlines()]
    assert set(labels) == {True, False}  # the synth families label multi-step questions think
    for example, label in zip(examples, labels):
        prompt = example.messages[0]["content"][-1]["text"]
        assert prompt.endswith(INSTRUCTIONS["auto"])
        target = example.messages[-1]["content"]
        assert target.startswith("<think>") == label and example.mode == ("think" if label else "direct")


def test_auto_needs_a_label_on_every_record(synth_dir, tmp_path):
    lines = (synth_dir / "data.jsonl").read_text().splitlines()
    unlabelled = [json.loads(line) for line in lines[:3]]
    unlabelled[1]["should_think"] = None
    for rec in unlabelled:
        rec["image"] = str(synth_dir / rec["image"])
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in unlabelled))
    with pytest.raises(DataError, match=r"data.jsonl:2: mode auto needs should_think .*label-think"):
        SourceData(str(path), "auto")
    SourceData(str(path), "direct")  # other modes do not need it


def test_an_auto_sft_run_trains(make_recipe):
    from sail_rl.config import from_dict
    from sail_rl.sft.config import SFTRecipe
    from sail_rl.sft.trainer import SFTTrainer

    recipe = make_recipe()
    spec = {"model": {"path": recipe.model.path},
            "data": {"sources": [{"path": recipe.data.sources[0].path, "mode": "auto", "ratio": 1.0}]},
            "train": {"output_dir": recipe.train.output_dir, "per_device_train_batch_size": 4, "max_steps": 2,
                      "learning_rate": 3e-3, "warmup_steps": 0, "logging_steps": 1, "max_length": 512}}
    trainer = SFTTrainer(from_dict(SFTRecipe, spec), log=lambda _msg: None)
    losses = [trainer.train_step()["loss"] for _ in range(2)]
    assert all(loss > 0 for loss in losses)
