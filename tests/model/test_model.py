"""The SAIL-VL model: shapes, gradients, save/load, Auto classes, the token-count guard."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sail_rl  # noqa: F401  (registers Auto classes)
from sail_rl.errors import ImageTokenMismatchError
from sail_rl.model import SailVLForConditionalGeneration
from sail_rl.model.builder import load_model, load_processor
from sail_rl.model.presets import build_config


def _image(w=64, h=64, color=(255, 0, 0)):
    return Image.new("RGB", (w, h), color)


def _msgs(n_images: int, text: str = "How many circles?"):
    return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}]


def _batch(processor, convs, images, **kw):
    texts = [processor.apply_chat_template(c, thinking=True) + "<think>count</think> \\boxed{3}<|im_end|>" for c in convs]
    batch = processor(texts, images=images, return_tile_counts=True, **kw)
    batch.pop("num_tiles")
    return batch


def _grad_norm(module):
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "case",
    ["text_only", "one_image", "multi_image", "multi_tile"],
)
def test_forward_backward_reaches_every_tower(tiny_dir, case):
    model, processor = load_model(tiny_dir), load_processor(tiny_dir)
    model.train()
    if case == "text_only":
        convs, images = [[{"role": "user", "content": "2+2?"}]] * 2, None
    elif case == "one_image":
        convs, images = [_msgs(1), _msgs(1)], [[_image()], [_image(color=(0, 0, 255))]]
    elif case == "multi_image":
        convs, images = [_msgs(2), _msgs(1)], [[_image(), _image(color=(0, 255, 0))], [_image()]]
    else:  # a wide image -> 2 tiles + thumbnail
        convs, images = [_msgs(1)], [[_image(128, 64)]]
    batch = _batch(processor, convs, images)
    if case == "multi_tile":
        assert batch["pixel_values"].shape[0] == 3  # 2x1 grid + thumbnail
    out = model(**batch, labels=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100))
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert _grad_norm(model.model.language_model) > 0
    tower = model.model.vision_tower
    if case == "text_only":
        assert _grad_norm(tower) == 0
    else:
        assert _grad_norm(model.model.multi_modal_projector) > 0
        assert tower.embeddings.patch_embed.weight.grad.abs().sum() > 0
        assert tower.rms_norm.weight.grad.abs().sum() > 0  # vision_feature_layer -1: the normed output feeds the projector


def test_image_features_are_placed_and_change_logits(tiny):
    model, processor = tiny
    batch_red = _batch(processor, [_msgs(1)], [[_image(color=(255, 0, 0))]])
    batch_blue = _batch(processor, [_msgs(1)], [[_image(color=(0, 0, 255))]])
    with torch.no_grad():
        red = model(**batch_red).logits
        blue = model(**batch_blue).logits
    assert torch.equal(batch_red["input_ids"], batch_blue["input_ids"])
    assert (red[0, -1] - blue[0, -1]).abs().max() > 1e-4


def test_image_features_are_the_normed_tower_output(tiny):
    """vision_feature_layer -1 (the release's select_layer -1): AIMv2's last_hidden_state, after its final
    norm, through pixel shuffle and the projector."""
    model, _ = tiny
    tower, projector = model.model.vision_tower, model.model.multi_modal_projector
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        last = tower(pixels).last_hidden_state  # [2, 64, 64]
        manual = tower.rms_norm(tower(pixels, output_hidden_states=True).hidden_states[-1])
        torch.testing.assert_close(last, manual)
        grid = last.reshape(2, 8, 8, 64)
        # 2x2 pixel shuffle: token (i, j) concatenates patches (row, col) (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1)
        shuffled = torch.cat([grid[:, 0::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 0::2], grid[:, 1::2, 1::2]], -1)
        expected = projector(shuffled.reshape(2, 16, 256))
        torch.testing.assert_close(model.get_image_features(pixels).pooler_output, expected)


def test_token_count_guard_names_sample_and_fix(tiny):
    model, processor = tiny
    batch = _batch(processor, [_msgs(1), _msgs(1)], [[_image()], [_image()]])
    ids = batch["input_ids"].clone()
    first_ctx = (ids[1] == model.config.image_token_id).nonzero()[0].item()
    ids[1, first_ctx] = processor.tokenizer.pad_token_id  # one image token lost, as truncation does
    with pytest.raises(ImageTokenMismatchError, match=r"sample 1: 15 <IMG_CONTEXT> tokens .*lower max_tiles or raise max_prompt_tokens"):
        model(input_ids=ids, pixel_values=batch["pixel_values"], image_tiles_per_sample=batch["image_tiles_per_sample"])
    with pytest.raises(ImageTokenMismatchError, match="image features"):
        model(input_ids=ids, pixel_values=batch["pixel_values"])


def test_truncated_prompt_trips_guard(tiny):
    model, processor = tiny
    text = processor.apply_chat_template(_msgs(1))
    batch = processor([text], images=[[_image(128, 128)]], truncation=True, max_length=30)
    with pytest.raises(ImageTokenMismatchError, match="sample 0"):
        model(**batch)


def test_moe_forward_returns_aux_loss(tiny_moe_dir):
    model, processor = load_model(tiny_moe_dir), load_processor(tiny_moe_dir)
    batch = _batch(processor, [_msgs(1)], [[_image()]])
    out = model(**batch, labels=batch["input_ids"], output_router_logits=True)
    assert out.aux_loss is not None and torch.isfinite(out.aux_loss) and out.aux_loss > 0
    assert out.loss > 0


def test_save_load_round_trip_is_exact(tiny, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again = AutoModelForImageTextToText.from_pretrained(tmp_path)
    proc2 = AutoProcessor.from_pretrained(tmp_path)
    assert type(again) is SailVLForConditionalGeneration
    assert type(proc2).__name__ == "SailVLProcessor" and proc2.tokens_per_tile == processor.tokens_per_tile
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_text_model_saves_alone_as_plain_qwen3(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    model, processor = tiny
    model.save_text_model(tmp_path, processor.tokenizer)
    text = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(text).__name__ == "Qwen3ForCausalLM"
    ids = processor.tokenizer("How many circles?", return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(text(ids).logits, model(input_ids=ids).logits)
    assert text.lm_head.weight.data_ptr() == text.model.embed_tokens.weight.data_ptr()  # tied, as the tiny preset


@pytest.mark.parametrize("name,billions", [("2b", 2.42), ("8b", 8.91), ("30b-a3b", 31.23)])
def test_real_presets_parameter_counts(name, billions):
    with torch.device("meta"):
        model = SailVLForConditionalGeneration(build_config(name))
    count = sum(p.numel() for p in model.parameters()) / 1e9
    assert abs(count - billions) < 0.01, f"{name}: {count:.2f}B"
    assert model.config.image_tokens_per_tile == 256


def test_processor_expands_image_slots(tiny):
    _, processor = tiny
    text = processor.apply_chat_template(_msgs(2))
    batch = processor([text], images=[[_image(), _image(128, 64)]], return_tile_counts=True)
    ids = batch["input_ids"][0].tolist()
    tok = processor.tokenizer
    assert ids.count(tok.convert_tokens_to_ids("<img>")) == 2
    assert batch["num_tiles"] == [1, 3]
    assert ids.count(tok.convert_tokens_to_ids("<IMG_CONTEXT>")) == (1 + 3) * 16
    with pytest.raises(ValueError, match="2 <image>/<video> placeholders but 1 images"):
        processor([text], images=[[_image()]])


def test_tokenizer_names_the_image_tokens(tiny):
    """InternVL's processors read the image tokens by name from the tokenizer."""
    model, processor = tiny
    tok = processor.tokenizer
    assert (tok.start_image_token, tok.context_image_token, tok.end_image_token) == ("<img>", "<IMG_CONTEXT>", "</img>")
    assert (tok.start_image_token_id, tok.context_image_token_id, tok.end_image_token_id) == (
        model.config.image_start_token_id, model.config.image_token_id, model.config.image_end_token_id)


def test_processor_counts_multimodal_tokens_as_it_expands(tiny):
    """`_get_num_multimodal_tokens` (InternVL's convention, what vLLM asks) agrees with the slots written."""
    _, processor = tiny
    sizes = [(64, 64), (64, 128), (300, 90)]  # (height, width)
    counts = processor._get_num_multimodal_tokens(image_sizes=sizes)
    batch = processor([processor.apply_chat_template(_msgs(3))], images=[[_image(w, h) for h, w in sizes]], return_tile_counts=True)
    assert counts.num_image_patches == batch["num_tiles"] == [1, 3, 4]
    ids = batch["input_ids"][0].tolist()
    tok = processor.tokenizer
    slot_ids = {tok.convert_tokens_to_ids(t) for t in ("<img>", "<IMG_CONTEXT>", "</img>")}
    assert sum(counts.num_image_tokens) == sum(i in slot_ids for i in ids) == 2 * 3 + 16 * 8
