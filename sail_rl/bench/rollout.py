"""`sail-rl bench rollout`: tokens/s through sail-rl's rollout path vs raw `vllm.LLM.generate`.

The sail-rl path is RolloutManager -> Ray actor -> VLLMEngine (chat template, guards, banned
tokens, log-probs); the raw path is a plain `vllm.LLM` on the same text model and prompt ids.
Both are warmed up first; rounds alternate so machine noise hits both alike.
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
    from rollouts.engine import IN_PROCESS_ENV

    os.environ.update(IN_PROCESS_ENV)
    import ray

    from rollouts.engine import prepare_prompts
    from rollouts.ray_workers import RolloutManager
    from rollouts.types import GenerationRequest, RolloutConfig, SamplingConfig
    from sail_rl.model.builder import load_processor

    cfg = RolloutConfig(engine="vllm", num_workers=1, max_model_len=args.max_model_len,
                        max_prompt_tokens=args.max_model_len - args.max_tokens, kv_cache_gib=args.kv_cache_gib,
                        return_logprobs=not args.no_logprobs)
    sampling = SamplingConfig(rollouts_per_prompt=args.n, temperature=args.temperature, max_response_tokens=args.max_tokens, seed=0)
    requests = [GenerationRequest([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], [], f"p{i}") for i in range(args.prompts)]
    prompt_ids = [p.prompt_token_ids for p in prepare_prompts(load_processor(args.model), requests, cfg)[0]]

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        manager = RolloutManager(cfg, args.model)
        raw_llm = _raw_engine(args, cfg)
        prompts = [{"prompt_token_ids": ids} for ids in prompt_ids]
        paths = {
            "sail-rl rollout (Ray actor + vLLM engine)": lambda: sum(r.num_response_tokens for r in manager.generate(requests, sampling)),
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
    print(f"workload: {args.prompts} prompts x {args.n} samples x {args.max_tokens} tokens, median of {args.repeats} rounds")
    for name, tps in median.items():
        print(f"{name:<42} {tps:10,.0f} tokens/s")
    print(f"ratio sail-rl / raw vLLM: {ours_tps / raw_tps:.2f}  (engine log-probs {'off' if args.no_logprobs else 'on'})")
    print(f"ratio sail-rl / raw vLLM with logprobs=0 (same work): {ours_tps / raw_lp_tps:.2f}")
    return 0


def _raw_engine(args: argparse.Namespace, cfg):
    """A plain `vllm.LLM` on the same text model, same memory and length settings."""
    import atexit
    import shutil
    import tempfile

    from vllm import LLM

    from sail_rl.model.builder import load_model, load_processor

    text_dir = tempfile.mkdtemp(prefix="sail-rl-bench-raw-")
    atexit.register(shutil.rmtree, text_dir, True)
    load_model(args.model, dtype=cfg.dtype).save_text_model(text_dir, load_processor(args.model).tokenizer)
    import torch

    memory = (dict(gpu_memory_utilization=cfg.gpu_memory_utilization) if torch.cuda.is_available()
              else dict(kv_cache_memory_bytes=int(cfg.kv_cache_gib * (1 << 30))))
    llm = LLM(model=text_dir, dtype=cfg.dtype, seed=0, max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager, **memory)
    return llm


def _raw_tokens(llm, prompts: list[dict], args: argparse.Namespace, logprobs: int | None) -> int:
    from vllm import SamplingParams

    params = SamplingParams(n=args.n, temperature=args.temperature, max_tokens=args.max_tokens, seed=0, logprobs=logprobs)
    return sum(len(c.token_ids) for o in llm.generate(prompts, params, use_tqdm=False) for c in o.outputs)
