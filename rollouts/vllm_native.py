"""Rollouts with the whole SAIL-VL inside vLLM (`rollout.engine: vllm-native`).

    prompt: ChatML text with `<image>` placeholders + multi_modal_data={"image": [PIL, ...]}
            -> vLLM: SailVLProcessor tiles and expands the slots, the vision tower, projector and
               Qwen3 run in the engine (vLLM's Transformers modeling backend, model_impl="transformers")

vLLM loads the SAIL-VL checkpoint itself: `transformers.SailVLForConditionalGeneration` is made
visible by importing `sail_rl.model` (here, and in vLLM's own processes through the
`vllm.general_plugins` entry point `sail_rl.model.vllm_plugin:register`). Against the "vllm" engine
(text model in vLLM, vision in torch beside it, `prompt_embeds`): the vision tower runs on the
engine's device, and image prompts go through vLLM's multimodal processor, encoder and prefix caches.

The processor still runs here too: it gives the trainer the same expanded prompt ids and the
pixel_values [tiles, 3, S, S] a Rollout carries, and each output's prompt ids are checked
against vLLM's. Weight sync sends every SAIL-VL tensor (vision included) under its checkpoint name
to `reload_weights`.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager

import torch

from rollouts.engine import banned_token_ids, check_model_dir, register_engine
from rollouts.types import RolloutConfig
from rollouts.vllm_engine import VLLMEngine, _on_gpu
from rollouts.weight_sync import named_weights, reload_vllm_weights
from sail_rl.errors import SailRLError

MAX_IMAGES_PER_PROMPT = 8  # vLLM reserves encoder memory for this many images a prompt


@register_engine("vllm-native")
class NativeVLLMEngine(VLLMEngine):
    """VLLMEngine's generation and Rollout outputs; the model, prompts and weight sync are native."""

    def __init__(self, cfg: RolloutConfig, model_dir: str):
        import sail_rl.model  # noqa: F401  (makes SailVLForConditionalGeneration resolvable by vLLM)
        from sail_rl.model.builder import load_processor

        check_model_dir(model_dir)  # rollout.weight_sync nccl is refused by RolloutConfig.validate
        if cfg.tensor_parallel_size == 1:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.cfg = cfg
        self.processor = load_processor(model_dir)
        self.tokenizer = self.processor.tokenizer
        self.banned = banned_token_ids(self.tokenizer)
        self.ban_bias = {i: -100.0 for i in self.banned}
        self.in_process = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0" and cfg.tensor_parallel_size == 1
        self.llm = self._start_llm(model_dir)
        self.asleep = False
        self.generate_calls = 0

    def _start_llm(self, model_dir: str):
        from vllm import LLM

        cfg = self.cfg
        kwargs = dict(
            model=model_dir, model_impl="transformers", dtype=cfg.dtype, seed=cfg.seed or 0,
            max_model_len=cfg.max_model_len, logprobs_mode="processed_logprobs", enforce_eager=cfg.enforce_eager,
            max_num_seqs=cfg.max_num_seqs, tensor_parallel_size=cfg.tensor_parallel_size,
            limit_mm_per_prompt={"image": MAX_IMAGES_PER_PROMPT},
        )
        if _on_gpu():
            kwargs.update(gpu_memory_utilization=cfg.gpu_memory_utilization, enable_sleep_mode=cfg.enable_sleep_mode)
        else:
            kwargs.update(kv_cache_memory_bytes=int(cfg.kv_cache_gib * (1 << 30)))
        if not (self.in_process and cfg.enforce_eager):
            return LLM(**kwargs)
        with _compile_decoration_undone(_text_model_class(model_dir)):
            return LLM(**kwargs)

    def build_prompts(self, prepared) -> list[dict]:
        """vLLM prompts: the rendered text; its images as multi_modal_data (vLLM tiles them)."""
        prompts = []
        for p in prepared:
            text = self.processor.apply_chat_template(p.request.messages, thinking=p.request.thinking)
            # a video goes as its frames, one-tile images under `Frame{i}:` lines: the same tokens
            # and pixels the trainer's processor makes of it
            text, images = self.processor.expand_videos(text, p.request.images)
            prompt = {"prompt": text}
            if images:
                if len(images) > MAX_IMAGES_PER_PROMPT:
                    raise SailRLError(
                        f"request {p.request.request_id}: {len(images)} images (video frames count one each), over the "
                        f"{MAX_IMAGES_PER_PROMPT} a prompt of rollout.engine 'vllm-native' may hold; sample fewer frames"
                    )
                prompt["multi_modal_data"] = {"image": images}
            prompts.append(prompt)
        return prompts

    @staticmethod
    def _rollouts(p, out):
        if list(out.prompt_token_ids) != p.prompt_token_ids:
            raise SailRLError(
                f"request {p.request.request_id}: vLLM expanded the prompt to {len(out.prompt_token_ids)} tokens, "
                f"the processor to {len(p.prompt_token_ids)}; the trainer would score other tokens than were sampled"
            )
        return VLLMEngine._rollouts(p, out)

    def update_weights(self, weights) -> None:
        """New weights (SAIL-VL state dict, (name, tensor) iterator, model or PEFT model), every tensor
        under its checkpoint name, streamed into the engine's model (vision tower included)."""
        reload_vllm_weights(
            self.llm, named_weights(weights), self.cfg.weight_sync_bucket_mb << 20, in_process=self.in_process,
            dtype=getattr(torch, self.cfg.dtype),
        )
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        self.llm.llm_engine.reset_encoder_cache()  # so were cached image features

    def close(self) -> None:
        llm, self.llm = self.llm, None
        del llm
        gc.collect()


def _text_model_class(model_dir: str) -> type:
    from transformers import AutoConfig, AutoModel

    text_config = AutoConfig.from_pretrained(model_dir).text_config
    return AutoModel._model_mapping[type(text_config)]


@contextmanager
def _compile_decoration_undone(cls: type):
    """vLLM's Transformers backend marks the text model's class (Qwen3Model) for torch.compile by
    rewriting the class itself; after that, building one outside a vLLM config fails ("Current
    vLLM config is not set"). In-process, that is the caller's process (a trainer or a test beside
    the engine), so the class is put back once the engine is built. Eager engines only: the
    engine's own instance then runs the plain forward, which is what it runs without compilation."""
    saved = {k: cls.__dict__[k] for k in ("__init__", "__call__", "save_aot_compiled_function") if k in cls.__dict__}
    bases, keys = cls.__bases__, set(cls.__dict__)
    try:
        yield
    finally:
        if cls.__bases__ != bases:
            cls.__bases__ = bases
        for key in set(cls.__dict__) - keys:
            delattr(cls, key)
        for key, value in saved.items():
            setattr(cls, key, value)


__all__ = ["NativeVLLMEngine", "MAX_IMAGES_PER_PROMPT"]
