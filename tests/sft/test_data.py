"""Mixtures (exact per-epoch ratios, deterministic by seed and epoch) and the SFT data sources."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sail_rl.errors import DataError
from sail_rl.sft.examples import SourceData, cot_sft_records, default_epoch_size, epoch_plan, mixture_counts, write_jsonl


@pytest.mark.parametrize("ratios,total", [([0.9, 0.1], 1000), ([0.9, 0.1], 37), ([1, 2, 3], 100), ([0.5, 0.5], 7)])
def test_mixture_counts_honour_ratios_up_to_rounding(ratios, total):
    counts = mixture_counts(ratios, total)
    assert sum(counts) == total
    for r, c in zip(ratios, counts):
        assert abs(c - r / sum(ratios) * total) < 1


def test_epoch_plan_is_exact_deterministic_and_reshuffled_per_epoch():
    sizes, ratios = [300, 50], [0.9, 0.1]
    plan0 = epoch_plan(sizes, ratios, epoch=0, seed=3, samples_per_epoch=200)
    assert Counter(s for s, _ in plan0) == {0: 180, 1: 20}
    assert plan0 == epoch_plan(sizes, ratios, epoch=0, seed=3, samples_per_epoch=200)
    plan1 = epoch_plan(sizes, ratios, epoch=1, seed=3, samples_per_epoch=200)
    assert plan1 != plan0 and Counter(s for s, _ in plan1) == {0: 180, 1: 20}
    assert len(set(plan0)) == 200  # no repeats while a source has enough samples
    assert epoch_plan(sizes, ratios, 0, seed=4, samples_per_epoch=200) != plan0


def test_small_source_cycles_and_default_epoch_uses_each_sample_once():
    plan = epoch_plan([3], [1.0], epoch=0, seed=0, samples_per_epoch=7)
    assert sorted(Counter(i for _, i in plan).values()) == [2, 2, 3]
    assert default_epoch_size([100, 40], [0.5, 0.5]) == 80


def test_source_builds_prompt_and_target_per_mode(synth_dir):
    think = SourceData(str(synth_dir / "data.jsonl"), "think")[0]
    direct = SourceData(str(synth_dir / "data.jsonl"), "direct")[0]
    assert think.messages[-1]["content"].startswith("<think>") and "\\boxed{" in think.messages[-1]["content"]
    assert direct.messages[-1]["content"].startswith("\\boxed{")
    assert "<think>" in think.messages[0]["content"][-1]["text"]  # the data package's think instruction
    assert len(think.images) == 1 and think.images[0].size == (64, 64)


def test_missing_file_is_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        SourceData(str(tmp_path / "nope.jsonl"), "think")


def test_rejection_sampled_cot_records_train_as_think_source(synth_dir, tmp_path):
    from sail_rl.data.mathvista import load_samples

    samples = load_samples(synth_dir / "data.jsonl")[:2]
    response = "<think>\nI count them.\n</think>\n\\boxed{" + samples[0].answer + "}"
    out = tmp_path / "cot.jsonl"
    write_jsonl(cot_sft_records([(samples[0], response), (samples[0], response + " "), (samples[1], response)], out.parent), out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pid"] for r in records] == [f"{samples[0].pid}-cot0", f"{samples[0].pid}-cot1", samples[1].pid]
    source = SourceData(str(out), "think")
    assert len(source) == 3 and source[0].messages[-1]["content"] == response
    with pytest.raises(DataError, match="not <think>"):
        cot_sft_records([(samples[0], "\\boxed{1}")])


def test_conversation_jsonl_source(tmp_path):
    line = {"id": "c1", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\\boxed{1}"}]}
    path = tmp_path / "conv.jsonl"
    path.write_text(json.dumps(line) + "\n")
    example = SourceData(str(path), "direct")[0]
    assert example.uid == "c1" and example.mode == "direct" and example.images == []


def test_workers_build_the_same_micro_batches_in_the_same_order(make_recipe):
    import torch

    from sail_rl.sft.trainer import SFTTrainer

    def batches(workers):
        trainer = SFTTrainer(make_recipe(f"w{workers}", dataloader_num_workers=workers), log=lambda _m: None)
        out = [trainer.next_micro_batch() for _ in range(14)]  # 12 micro-batches an epoch: crosses into epoch 1
        return out, (trainer.epoch, trainer.position)

    (in_process, pos0), (workers, pos2) = batches(0), batches(2)
    assert pos0 == pos2 == (1, 8)
    for a, b in zip(in_process, workers):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_jsonl_records_are_read_back_by_offset(tmp_path):
    from sail_rl.sft.records import RecordFile

    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n{"a": "\u00e9\u2028"}\n{"a": 3\n', encoding="utf-8")
    records = RecordFile(path)
    assert len(records) == 3 and records.read(1) == {"a": "\u00e9\u2028"} and records.where(1).endswith("r.jsonl:3")
    with pytest.raises(DataError, match=r"r.jsonl:4: invalid JSON"):
        records.read(2)
    assert not hasattr(records, "_records")  # jsonl holds offsets, not records


def test_a_bad_record_is_found_at_open_not_mid_training(synth_dir, tmp_path):
    lines = (synth_dir / "data.jsonl").read_text().splitlines()
    bad = json.loads(lines[5])
    del bad["answer"]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines[:5] + [json.dumps(bad)] + lines[6:]) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:6 .*missing required field 'answer'"):
        SourceData(str(path), "direct", image_root=str(synth_dir))
