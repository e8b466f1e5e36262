"""SAIL-VL in the standard VLM layout is taken by transformers, PEFT and TRL as any VLM is."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sail_rl  # noqa: F401  (registers the Auto classes)
from sail_rl.model import SailVLForConditionalGeneration, SailVLModel
from sail_rl.model.builder import load_model, load_processor


def _batch(processor, color=(200, 30, 30)):
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}])
    batch = processor([text + "red<|im_end|>"], images=[[Image.new("RGB", (128, 64), color)]])
    return batch


def test_auto_model_from_saved_config_builds_the_base_model(tiny, tmp_path):
    """What vLLM's Transformers backend does: AutoModel.from_config on the saved config."""
    import transformers
    from transformers import AutoConfig, AutoModel

    model, processor = tiny
    model.config.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config.vision_config).__name__ == "Aimv2VisionConfig"  # survives save/load through AutoConfig
    base = AutoModel.from_config(config)
    assert type(base) is SailVLModel
    assert type(base.vision_tower).__name__ == "Aimv2VisionModel" and type(base.language_model).__name__ == "Qwen3Model"
    assert transformers.SailVLForConditionalGeneration is SailVLForConditionalGeneration  # vLLM looks it up by name
    base.load_state_dict({k[len("model."):]: v for k, v in model.state_dict().items() if k.startswith("model.")})
    batch = _batch(processor)
    with torch.no_grad():
        hidden = base(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"]).last_hidden_state
        logits = model(**batch).logits
    torch.testing.assert_close(model.lm_head(hidden), logits)


@pytest.mark.slow  # ~25 s on 2 shared cores (5 training steps); tests/rollouts/test_weight_sync.py merges LoRA in the fast set
def test_peft_lora_with_standard_names_trains_and_merges(tiny_dir):
    from peft import LoraConfig, get_peft_model

    model = load_model(tiny_dir)
    processor_batch = _batch(load_processor(tiny_dir))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    adapted = [n for n, m in peft_model.named_modules() if n.endswith(("q_proj", "v_proj")) and hasattr(m, "lora_A")]
    assert any(".language_model.layers." in n for n in adapted)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    assert trainable and all(p.numel() < 10_000 for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    labels = processor_batch["input_ids"].masked_fill(processor_batch["attention_mask"] == 0, -100)
    losses = []
    for _ in range(5):
        loss = peft_model(**processor_batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    with torch.no_grad():
        adapter_logits = peft_model(**processor_batch).logits
        merged = peft_model.merge_and_unload()
        assert type(merged) is SailVLForConditionalGeneration
        assert not any("lora_" in n for n, _ in merged.named_parameters())
        torch.testing.assert_close(merged(**processor_batch).logits, adapter_logits, atol=1e-5, rtol=1e-5)


@pytest.mark.slow  # generation + a GRPO update: 11 s on an idle 2-core machine, 39 s on a loaded one
def test_trl_grpo_trainer_steps_on_image_prompts(tiny_dir, tmp_path):
    """TRL's GRPOTrainer, VLM path (processor as processing_class, images in the prompts): one step
    generates, scores and changes the weights."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, processor = load_model(tiny_dir), load_processor(tiny_dir)
    colours = [(220, 20, 20), (20, 20, 220), (20, 200, 20), (240, 240, 240)]
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}]
    # one wide image (2 tiles + thumbnail): TRL must keep each image's tiles together
    data = Dataset.from_list([{"prompt": prompt, "image": Image.new("RGB", (128 if i == 0 else 64, 64), c)} for i, c in enumerate(colours)])

    def reward_length(completions, **kwargs):
        return [float(len(c[0]["content"])) for c in completions]

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=6,
                      max_steps=1, learning_rate=1e-2, report_to="none", use_cpu=True, bf16=False,
                      gradient_checkpointing=False, logging_steps=1, save_strategy="no", seed=0)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_length, args=args, train_dataset=data, processing_class=processor)
    before = {k: v.clone() for k, v in model.named_parameters()}
    trainer.train()
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert any(k.startswith("model.language_model.") for k in changed)
    assert any(k.startswith("model.multi_modal_projector.") for k in changed)  # the image path carried gradients,
    assert any(k.startswith("model.vision_tower.") for k in changed)  # down to the vision tower
    assert trainer.state.global_step == 1
