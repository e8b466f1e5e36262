"""Weight sync pieces: buckets, lazy streaming, LoRA merging, routing to vision vs text."""

from __future__ import annotations

import copy

import torch

from rollouts.weight_sync import iter_buckets, layer_of, load_into_module, named_weights, route_weights, stream_tensors
from sail_rl.model.lora import merged_lora_weights


def _layer_items(layers: int = 3):
    for i in range(layers):
        for name in ("q_proj", "k_proj", "v_proj"):
            yield f"model.layers.{i}.self_attn.{name}.weight", torch.zeros(64)  # 256 bytes each
    yield "model.norm.weight", torch.zeros(16)


def test_buckets_are_bounded_and_never_split_a_layer():
    buckets = list(iter_buckets(_layer_items(), bucket_bytes=1000, group_of=layer_of))
    assert [len(b) for b in buckets] == [3, 3, 4]  # 3 x 256 bytes per layer; the norm joins the last
    assert all(len({layer_of(n) for n, _ in b if "layers" in n}) == 1 for b in buckets)
    assert sum(t.numel() * 4 for b in buckets for _, t in b) == 9 * 256 + 64
    singles = list(iter_buckets(_layer_items(1), bucket_bytes=100))  # each tensor alone exceeds the bucket
    assert [len(b) for b in singles] == [1, 1, 1, 1]


def test_stream_tensors_materialises_one_bucket_at_a_time():
    pulled = []

    def source():
        for name, t in _layer_items():
            pulled.append(name)
            yield name, t

    stream = stream_tensors(source(), bucket_bytes=600, dtype=torch.float16)
    name, tensor = next(stream)
    assert tensor.dtype == torch.float16 and name.endswith("q_proj.weight")
    assert len(pulled) <= 3  # 2 tensors in the bucket + the one that closed it
    assert len(list(stream)) == 9


def test_route_weights_splits_vision_and_text(tiny):
    model, _ = tiny
    vision_copy = copy.deepcopy(model)
    with torch.no_grad():
        for p in vision_copy.parameters():
            p.zero_()
    text = dict(route_weights(named_weights(model.state_dict()), vision_copy))
    assert "model.layers.0.self_attn.q_proj.weight" in text and "lm_head.weight" in text
    assert all(n.startswith("model.layers.") or n in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight") for n in text)
    torch.testing.assert_close(text["model.layers.0.self_attn.q_proj.weight"], model.model.language_model.layers[0].self_attn.q_proj.weight)
    projector = model.model.multi_modal_projector
    assert torch.equal(vision_copy.model.multi_modal_projector.linear_1.weight, projector.linear_1.weight)
    assert torch.equal(vision_copy.get_input_embeddings().weight, model.get_input_embeddings().weight)


def test_lora_merged_on_the_fly_equals_merge_and_unload(tiny):
    from peft import LoraConfig, get_peft_model

    model, _ = tiny
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    merged = dict(merged_lora_weights(peft_model))
    reference = copy.deepcopy(peft_model).merge_and_unload().state_dict()
    assert merged.keys() == reference.keys() == model.state_dict().keys()
    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(merged[name], model.state_dict()[name])
    assert all(torch.allclose(merged[k], reference[k], atol=1e-6) for k in reference)
    target = copy.deepcopy(model)
    assert load_into_module(target, named_weights(peft_model), bucket_bytes=1 << 20) == len(dict(target.named_parameters()))
    assert torch.allclose(target.state_dict()[name], reference[name], atol=1e-6)
