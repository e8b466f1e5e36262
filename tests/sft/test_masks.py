"""Exact loss masks: which token positions the SFT loss sees, for direct, CoT and multi-turn samples."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from sail_rl.errors import DataError
from sail_rl.model.processing import render_chat
from sail_rl.sft.examples import SFTExample
from sail_rl.sft.masks import IGNORE_INDEX, SFTCollator, tokenize_example


@pytest.fixture(scope="module")
def processor(tiny):
    return tiny[1]


def _supervised(feature) -> list[int]:
    return [i for i, label in enumerate(feature["labels"]) if label != IGNORE_INDEX]


def _image_example(answer: str, mode: str, size=(64, 64)) -> SFTExample:
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many squares?"}]},
        {"role": "assistant", "content": answer},
    ]
    return SFTExample(uid="x", messages=messages, images=[Image.new("RGB", size, (200, 30, 30))], mode=mode)


def _prompt_len(processor, example) -> int:
    """Tokens of the generation prompt, as inference builds it (processor + render_chat)."""
    batch = processor([render_chat(example.messages[:-1])], images=[example.images], padding=False)
    return batch["input_ids"].shape[1]


def test_direct_sample_supervises_answer_and_im_end_only(processor):
    example = _image_example("\\boxed{4}", "direct")
    feature = tokenize_example(example, processor)
    start = _prompt_len(processor, example)
    # \ boxed { 4 } <|im_end|>: 6 tokens right after the prompt; the trailing "\n" is not trained
    assert _supervised(feature) == list(range(start, start + 6))
    assert len(feature["input_ids"]) == start + 7
    sup = [feature["input_ids"][i] for i in _supervised(feature)]
    assert processor.tokenizer.decode(sup, skip_special_tokens=False) == "\\boxed{4}<|im_end|>"
    # the prompt (image slot included) is the exact inference prompt
    prompt = processor([render_chat(example.messages[:-1])], images=[example.images], padding=False)["input_ids"][0]
    assert feature["input_ids"][:start] == prompt.tolist()
    assert feature["input_ids"].count(processor.image_token_id) == 16  # one 64 px tile x 16 tokens


def test_cot_sample_supervises_thought_and_answer(processor):
    example = _image_example("<think>\nOne, two.\n</think>\n\\boxed{2}", "think", size=(128, 64))  # 2 tiles + thumbnail
    feature = tokenize_example(example, processor)
    start = _prompt_len(processor, example)
    end = len(feature["input_ids"]) - 1  # the final "\n" after <|im_end|>
    assert _supervised(feature) == list(range(start, end))
    sup = [feature["input_ids"][i] for i in _supervised(feature)]
    assert processor.tokenizer.decode(sup, skip_special_tokens=False) == "<think>\nOne, two.\n</think>\n\\boxed{2}<|im_end|>"
    assert feature["num_tiles"] == [3] and feature["pixel_values"].shape[0] == 3
    assert all(feature["labels"][i] == IGNORE_INDEX for i, t in enumerate(feature["input_ids"]) if t == processor.image_token_id)


def test_direct_mode_does_not_train_an_empty_think_block(processor):
    example = SFTExample("q", [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\n\n</think>\n\n\\boxed{4}"}], [], "direct")
    feature = tokenize_example(example, processor)
    sup = [feature["input_ids"][i] for i in _supervised(feature)]
    assert processor.tokenizer.decode(sup, skip_special_tokens=False) == "\\boxed{4}<|im_end|>"


MULTI_TURN = [
    {"role": "user", "content": "1+1?"},
    {"role": "assistant", "content": "<think>one plus one</think>\n\\boxed{2}"},
    {"role": "user", "content": "Times 3?"},
    {"role": "assistant", "content": "\\boxed{6}"},
]


def test_multi_turn_all_assistant_turns_exact_positions(processor):
    feature = tokenize_example(SFTExample("m", MULTI_TURN, [], "think"), processor)
    # <|im_start|> user \n 1 + 1 ? <|im_end|> \n <|im_start|> assistant \n = positions 0..11
    assert _supervised(feature) == list(range(12, 24)) + list(range(37, 43))
    decoded = processor.tokenizer.decode([feature["input_ids"][i] for i in range(12, 24)], skip_special_tokens=False)
    assert decoded == "<think>one plus one</think>\n\\boxed{2}<|im_end|>"
    assert processor.tokenizer.decode(feature["input_ids"][37:43], skip_special_tokens=False) == "\\boxed{6}<|im_end|>"
    assert processor.tokenizer.decode(feature["input_ids"], skip_special_tokens=False) == render_chat(MULTI_TURN, add_generation_prompt=False)


def test_multi_turn_last_only_and_direct_mode(processor):
    last = tokenize_example(SFTExample("m", MULTI_TURN, [], "think"), processor, assistant_turns="last")
    assert _supervised(last) == list(range(37, 43))
    direct = tokenize_example(SFTExample("m", MULTI_TURN, [], "direct"), processor)
    assert _supervised(direct) == list(range(18, 24)) + list(range(37, 43))  # turn 1's think block not trained


def test_completion_only_loss_false_trains_everything_but_images(processor):
    feature = tokenize_example(_image_example("\\boxed{4}", "direct"), processor, completion_only_loss=False)
    ids = feature["input_ids"]
    assert _supervised(feature) == [i for i, t in enumerate(ids) if t != processor.image_token_id]


def test_too_long_sample_is_a_data_error(processor):
    with pytest.raises(DataError, match="train.max_length=20"):
        tokenize_example(_image_example("\\boxed{4}", "direct"), processor, max_length=20)


def test_collator_pads_right_and_keeps_tiles(processor):
    a = tokenize_example(_image_example("\\boxed{4}", "direct"), processor)
    b = tokenize_example(_image_example("<think>\nx\n</think>\n\\boxed{2}", "think", size=(128, 64)), processor)
    batch = SFTCollator(processor.tokenizer.pad_token_id)([a, b])
    assert batch["input_ids"].shape == batch["labels"].shape == (2, len(b["input_ids"]))
    assert batch["attention_mask"][0].sum() == len(a["input_ids"])
    assert (batch["labels"][0, len(a["input_ids"]):] == IGNORE_INDEX).all()
    assert batch["image_tiles_per_sample"].tolist() == [1, 3] and batch["pixel_values"].shape[0] == 4
    assert torch.equal(batch["labels"][1], torch.tensor(b["labels"]))
