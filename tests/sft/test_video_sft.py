"""SFT on clips and multi-image records: the frames reach the vision tower and the loss falls."""

from __future__ import annotations

import json

import torch

from sail_rl.config import from_dict
from sail_rl.data.synth import generate_dataset
from sail_rl.sft.config import SFTRecipe
from sail_rl.sft.trainer import SFTTrainer


def test_sft_trains_on_videos_and_several_images(tiny_dir, tmp_path):
    data = tmp_path / "clips"
    generate_dataset(data, n=8, families=["dot_direction", "flash_count"])
    records = [json.loads(line) for line in (data / "data.jsonl").read_text().splitlines()]
    # two records that show the first clip's first two frames as separate images
    from sail_rl.data.mathvista import load_samples

    frames = load_samples(data / "data.jsonl")[0].visuals()[0].frames
    for i in range(2):
        frames[i].save(data / f"frame{i}.png")
    multi = [{**{k: v for k, v in records[0].items() if k not in ("video", "num_frames")}, "pid": f"multi{j}",
              "images": ["frame0.png", "frame1.png"]} for j in range(2)]
    (data / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + multi))
    recipe = from_dict(SFTRecipe, {
        "model": {"path": str(tiny_dir)},
        "data": {"sources": [{"path": str(data / "data.jsonl"), "mode": "think", "ratio": 1.0}]},
        "train": {"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 10, "max_steps": 4, "learning_rate": 3e-3,
                  "lr_scheduler_type": "constant", "warmup_steps": 0, "logging_steps": 1, "max_length": 512},
    })
    trainer = SFTTrainer(recipe, log=lambda _msg: None)
    tower = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "vision_tower" in n}
    fixed = trainer.next_micro_batch()
    trainer.next_micro_batch = lambda: fixed
    losses = [trainer.train_step()["loss"] for _ in range(4)]
    assert losses[-1] < losses[0], losses
    moved = [n for n, p in trainer.model.named_parameters() if n in tower and not torch.equal(p, tower[n])]
    assert moved, "no vision-tower weight changed: the frames did not reach the model"
