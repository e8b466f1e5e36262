"""The SAIL-VL model: shapes, gradients, save/load, Auto classes, the token-count guard."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sail_rl  # noqa: F401  (registers Auto classes)
from sail_rl.errors import ImageTokenMismatchError
from sail_rl.model import SailVLForConditionalGeneration, pixel_shuffle
from sail_rl.model.builder import load_model, load_processor
from sail_rl.model.presets import build_config


def _image(w=64, h=64, color=(255, 0, 0)):
    return Image.new("RGB", (w, h), color)


def _msgs(n_images: int, text: str = "How many circles?"):
    return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}]


def _batch(processor, convs, images, **kw):
    texts = [processor.apply_chat_template(c, thinking=True) + "<think>count</think> \\boxed{3}<|im_end|>" for c in convs]
    batch = processor(texts, images=images, **kw)
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
    assert _grad_norm(model.language_model) > 0
    if case == "text_only":
        assert _grad_norm(model.vision_model) == 0
    else:
        assert _grad_norm(model.projector) > 0
        assert _grad_norm(model.vision_model) > 0
        assert model.vision_model.embeddings.patch_embed.weight.grad.abs().sum() > 0


def test_image_features_are_placed_and_change_logits(tiny):
    model, processor = tiny
    batch_red = _batch(processor, [_msgs(1)], [[_image(color=(255, 0, 0))]])
    batch_blue = _batch(processor, [_msgs(1)], [[_image(color=(0, 0, 255))]])
    with torch.no_grad():
        red = model(**batch_red).logits
        blue = model(**batch_blue).logits
    assert torch.equal(batch_red["input_ids"], batch_blue["input_ids"])
    assert (red[0, -1] - blue[0, -1]).abs().max() > 1e-4


def test_select_layer_matches_full_aimv2_tower(tiny):
    from transformers import Aimv2VisionModel

    model, _ = tiny
    full = Aimv2VisionModel(model.config.vision_config).eval()
    missing, _ = full.load_state_dict(model.vision_model.state_dict(), strict=False)
    assert all(".layers." in k and int(k.split(".layers.")[1].split(".")[0]) >= model.config.vision_layers_used for k in missing)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = full(pixels, output_hidden_states=True).hidden_states[model.config.select_layer]
        hidden = model.vision_model.embeddings(pixels)
        for layer in model.vision_model.encoder.layers:
            hidden = layer(hidden, None)
    torch.testing.assert_close(hidden, reference)


def test_pixel_shuffle_groups_2x2_blocks():
    x = torch.arange(1 * 4 * 4 * 1, dtype=torch.float).reshape(1, 4, 4, 1)
    y = pixel_shuffle(x, 0.5)
    assert y.shape == (1, 2, 2, 4)
    # top-left output token holds the 2x2 top-left block of patches
    assert sorted(y[0, 0, 0].tolist()) == [0.0, 1.0, 4.0, 5.0]


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
    batch.pop("num_tiles")
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
    ids = torch.tensor([[1, 5, 9, 200]])
    with torch.no_grad():
        torch.testing.assert_close(text(ids).logits, model.language_model(ids).logits)


@pytest.mark.parametrize("name,billions", [("2b", 2.6), ("8b", 8.8), ("30b-a3b", 31.1)])
def test_real_presets_parameter_counts(name, billions):
    with torch.device("meta"):
        model = SailVLForConditionalGeneration(build_config(name))
    count = sum(p.numel() for p in model.parameters()) / 1e9
    assert abs(count - billions) / billions < 0.05, f"{name}: {count:.2f}B"
    assert model.config.image_tokens_per_tile == 256


def test_processor_expands_image_slots(tiny):
    _, processor = tiny
    text = processor.apply_chat_template(_msgs(2))
    batch = processor([text], images=[[_image(), _image(128, 64)]])
    ids = batch["input_ids"][0].tolist()
    tok = processor.tokenizer
    assert ids.count(tok.convert_tokens_to_ids("<img>")) == 2
    assert batch["num_tiles"] == [1, 3]
    assert ids.count(tok.convert_tokens_to_ids("<IMG_CONTEXT>")) == (1 + 3) * 16
    with pytest.raises(ValueError, match="2 <image> placeholders but 1 images"):
        processor([text], images=[[_image()]])
