"""`sail-rl bench update`: trainer tokens/s of the ways to batch rows, against plain padding, in one run.

One RL step's trainer work (old log-probs + one GRPO update over mini- and micro-batches)
on a batch shaped like the demo's: image prompts, `prompts` x `n` rollouts whose response
lengths are spread over [8, max_tokens] as sampled rollouts are. Both trainers start from
the same weights; rounds alternate so machine noise hits all alike. Prints the median
tokens/s of each and its ratio to plain padding (rows in arrival order, padded per micro-batch):
    length-grouped   micro-batches of similar-length rows (trainer.group_by_length, the default)
    padding-free     every micro-batch packed into one sequence (trainer.padding_free)
    grouped+free     both (the default with flash-attention; on sdpa RL keeps grouped rows padded)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="SAIL-VL checkpoint (default: a fresh tiny model)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=8, help="rollouts per prompt")
    parser.add_argument("--max-tokens", type=int, default=96, help="longest response")
    parser.add_argument("--mini-batch", type=int, default=64)
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds per path (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")


def rollout_batch(model_dir: str, prompts: int, n: int, max_tokens: int, seed: int = 0):
    """A collated step of fake rollouts: one image per prompt, ragged responses of real token ids."""
    import torch
    from PIL import Image

    from sail_rl.model.builder import load_processor
    from sail_rl.trainer.batch import collate

    processor = load_processor(model_dir)
    generator = torch.Generator().manual_seed(seed)
    vocab = len(processor.tokenizer)
    samples = []
    for g in range(prompts):
        text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"What colour is shape {g}?"}]}])
        colour = tuple(int(c) for c in torch.randint(0, 255, (3,), generator=generator))
        enc = processor([text], images=[[Image.new("RGB", (448, 448), colour)]])
        for _ in range(n):
            length = int(torch.randint(8, max_tokens + 1, (1,), generator=generator))
            response = torch.randint(100, vocab - 100, (length,), generator=generator).tolist()
            samples.append(dict(prompt_ids=enc["input_ids"][0].tolist(), response_ids=response, response_logprobs=[-1.0] * length,
                                pixel_values=enc["pixel_values"], group_id=g, reward=float(torch.rand(1, generator=generator) > 0.5)))
    return collate(samples, processor.tokenizer.pad_token_id, processor.image_processor.image_size)


def run(args: argparse.Namespace) -> int:
    import torch

    from sail_rl.algorithms import AlgorithmConfig, compute_advantages
    from sail_rl.model.builder import init_model
    from sail_rl.trainer.config import TrainerConfig
    from sail_rl.trainer.policy_trainer import PolicyTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            model_dir = f"{tmp}/tiny"
            init_model("tiny", model_dir, seed=0)
        batch = rollout_batch(model_dir, args.prompts, args.n, args.max_tokens)
        algo = AlgorithmConfig()
        variants = {"padded": (False, False), "length-grouped": (True, False), "padding-free": (False, True),
                    "grouped+free": (True, True)}
        trainers = {
            name: PolicyTrainer(model_dir, TrainerConfig(learning_rate=1e-6, mini_batch_size=args.mini_batch, micro_batch_size=args.micro_batch,
                                                         group_by_length=grouped, padding_free=packed), algo)
            for name, (grouped, packed) in variants.items()
        }
        real_tokens = int(batch.attention_mask.sum())
        print(f"batch: {len(batch)} rollouts, {real_tokens} tokens ({batch.num_response_tokens} response), "
              f"padded width {batch.input_ids.shape[1]} ({batch.input_ids.numel()} slots)", flush=True)
        rates: dict[str, list[float]] = {name: [] for name in trainers}
        for round_ in range(args.repeats + 1):
            for name, trainer in trainers.items():
                step = batch.select(list(range(len(batch))))
                start = time.perf_counter()
                trainer.compute_log_probs(step)
                step.advantages, step.returns = compute_advantages(algo, step.rewards, step.group_ids, step.response_mask)
                trainer.update(step)
                seconds = time.perf_counter() - start
                if round_:  # round 0 warms up
                    rates[name].append(real_tokens / seconds)
                    print(f"  round {round_} {name:>14}: {seconds:.2f} s, {real_tokens / seconds:,.0f} tokens/s", flush=True)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, rate in medians.items():
        print(f"{name:>14}: {rate:,.0f} tokens/s (median of {args.repeats}), ratio to padded {rate / medians['padded']:.2f}")
    return 0
