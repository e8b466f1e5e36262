"""GPU check (one GPU, < 8 min): the training core's speed on the `2b` preset, as JSON.

Everything under the precision policy sail-rl trains with (fp32 weights and AdamW state,
forwards/backwards under bf16 autocast, fused AdamW; see sail_rl/trainer/precision.py), on
a Qwen3-1.7B-shaped SAIL-VL (random init), sdpa, gradient checkpointing, in one run:

  bare       a plain transformers step of the LLM: model(input_ids, labels) -> backward -> step
  update     PolicyTrainer.update (PPO-clip, token-mean, one mini-batch of --batch x --seq, text only)
  sft        SFTTrainer.train_step on synthetic image samples (`sail-rl data synth`), --sft-batch a step

Prints one JSON object: tokens/s, MFU (model FLOPs: 6 x LLM parameters without the input
embedding, per token, against --peak-tflops) and peak memory for each, and update / bare.
The last H200 figure of a bare bf16-weight step (8 x 2048): 24.8k tokens/s, ~29% MFU.

    sail-rl bench gpu [--steps 5] [--seq 2048] [--batch 8] [--peak-tflops 989]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sail_rl.errors import SailRLError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=5, help="measured steps per path (after 2 warm-up steps)")
    parser.add_argument("--seq", type=int, default=2048, help="tokens per sequence (bare and update)")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step (bare and update)")
    parser.add_argument("--sft-batch", type=int, default=32, help="synthetic image samples per SFT step")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak (H100/H200 SXM: 989)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["bare", "update", "sft"], help="paths not to run")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GPU check: 2b preset tokens/s, MFU and peak memory as JSON")
    add_arguments(parser)
    return parser.parse_args(argv)


def flops_per_token(model) -> float:
    """6 x the LLM's matmul parameters: the decoder layers and the LM head (the input embedding is a
    lookup, no matmul; with tied embeddings the head is that same tensor and counts once, as the head)."""
    llm = model.model.language_model
    embed = llm.get_input_embeddings().weight.numel()
    return 6.0 * (sum(p.numel() for p in llm.parameters()) - embed + model.lm_head.weight.numel())


def build_checkpoint(out_dir: str) -> float:
    """A random `2b` SAIL-VL in out_dir; returns its model FLOPs per token."""
    from sail_rl.model.builder import token_ids
    from sail_rl.model.image_processing import SailVLImageProcessor
    from sail_rl.model.modeling import SailVLForConditionalGeneration
    from sail_rl.model.presets import QWEN_VOCAB, build_config
    from sail_rl.model.processing import SailVLProcessor
    from sail_rl.model.tokenizer import train_tokenizer

    tokenizer = train_tokenizer()  # stands in for Qwen's; ids only matter for the image tokens
    config = build_config("2b", vocab_size=QWEN_VOCAB, token_ids=token_ids(tokenizer))
    with torch.device("cuda"):
        model = SailVLForConditionalGeneration(config)
    flops = flops_per_token(model)
    model.save_pretrained(out_dir)
    SailVLProcessor(SailVLImageProcessor(image_size=448), tokenizer, tokens_per_tile=256).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del model
    torch.cuda.empty_cache()
    return flops


def timed(fn, steps: int) -> tuple[float, float]:
    """(median seconds, peak GiB) of fn() over `steps` runs after 2 warm-ups."""
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), torch.cuda.max_memory_allocated() / 2**30


def bench_bare(model_dir: str, args) -> tuple[float, float]:
    from sail_rl.model.builder import load_model
    from sail_rl.trainer.precision import autocast

    model = load_model(model_dir, dtype="float32").cuda().train()
    model.gradient_checkpointing_enable()
    model.model.vision_tower.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6, fused=True)
    ids = torch.randint(0, 150000, (args.batch, args.seq), device="cuda")

    def step():
        with autocast("cuda", torch.bfloat16):
            out = model(input_ids=ids, labels=ids, use_cache=False)  # text only: the vision tower does not run
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds, peak = timed(step, args.steps)
    return args.batch * args.seq / seconds, peak  # the model and optimizer go with this frame


def bench_update(model_dir: str, args) -> tuple[float, float]:
    from sail_rl.algorithms import AlgorithmConfig, compute_advantages
    from sail_rl.trainer.batch import collate
    from sail_rl.trainer.config import TrainerConfig
    from sail_rl.trainer.policy_trainer import PolicyTrainer

    cfg = TrainerConfig(learning_rate=1e-6, mini_batch_size=args.batch, micro_batch_size=args.batch,
                        gradient_checkpointing=True, freeze_vision=True)
    algo = AlgorithmConfig()
    trainer = PolicyTrainer(model_dir, cfg, algo, dtype="bfloat16")
    prompt = args.seq // 2
    samples = [dict(prompt_ids=torch.randint(0, 150000, (prompt,)).tolist(),
                    response_ids=torch.randint(0, 150000, (args.seq - prompt,)).tolist(),
                    response_logprobs=[-1.0] * (args.seq - prompt), pixel_values=None, group_id=i // 4, reward=float(i % 2))
               for i in range(args.batch)]
    data = collate(samples, 0, 448)
    data.advantages, data.returns = compute_advantages(algo, data.rewards, data.group_ids, data.response_mask)
    seconds, peak = timed(lambda: trainer.update(data), args.steps)  # on-policy: no separate old log-prob pass
    return args.batch * args.seq / seconds, peak


def bench_sft(model_dir: str, work: Path, args) -> tuple[float, float]:
    from sail_rl.config import from_dict
    from sail_rl.data.synth import generate_dataset
    from sail_rl.sft.config import SFTRecipe
    from sail_rl.sft.trainer import SFTTrainer

    generate_dataset(work / "data", n=args.sft_batch * (args.steps + 2), seed=0)
    recipe = from_dict(SFTRecipe, {
        "model": {"path": model_dir, "dtype": "bfloat16", "gradient_checkpointing": True},
        "data": {"sources": [{"path": str(work / "data" / "data.jsonl"), "mode": "think"}]},
        "train": {"output_dir": str(work / "sft"), "per_device_train_batch_size": args.sft_batch, "max_steps": args.steps + 2,
                  "learning_rate": 1e-6, "lr_scheduler_type": "constant", "warmup_steps": 0, "max_length": 4096},
    })
    trainer = SFTTrainer(recipe, log=lambda _msg: None)
    tokens: list[int] = []
    seconds, peak = timed(lambda: tokens.append(trainer.train_step()["num_tokens"]), args.steps)
    return statistics.median(tokens[2:]) / seconds, peak


def run(args: argparse.Namespace) -> int:
    measure(args)
    return 0


def measure(args: argparse.Namespace) -> dict:
    if not torch.cuda.is_available():
        raise SailRLError("sail-rl bench gpu needs a CUDA GPU (torch.cuda.is_available() is False)")
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "precision": "fp32 weights + AdamW state, bf16 autocast", "batch_x_seq": [args.batch, args.seq]}
    with tempfile.TemporaryDirectory() as tmp:
        flops = build_checkpoint(tmp)
        paths = {"bare": lambda: bench_bare(tmp, args), "update": lambda: bench_update(tmp, args),
                 "sft": lambda: bench_sft(tmp, Path(tmp), args)}
        for name, run in paths.items():
            if name in args.skip:
                continue
            tokens_per_s, peak = run()
            gc.collect()
            torch.cuda.empty_cache()  # the path's model and optimizer are gone: the next starts from empty memory
            report[name] = {"tokens_per_s": round(tokens_per_s), "peak_gib": round(peak, 1),
                            "mfu": round(tokens_per_s * flops / (args.peak_tflops * 1e12), 4)}
            print(json.dumps({name: report[name]}), flush=True)  # progress, in case the run is cut short
    if "bare" in report and "update" in report:
        report["update_over_bare"] = round(report["update"]["tokens_per_s"] / report["bare"]["tokens_per_s"], 3)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    measure(parse_args())
