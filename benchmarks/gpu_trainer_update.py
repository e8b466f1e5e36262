"""GPU check: tokens/s of PolicyTrainer.update on the `2b` preset vs a bare transformers step.

Both on the same GPU, in the same run: a Qwen3-1.7B-shaped SAIL-VL (random init, bf16,
sdpa, gradient checkpointing, fused AdamW), 8 sequences x 2048 tokens, text only.
  bare:    model(input_ids, labels) -> loss.backward() -> optimizer.step()
  sail-rl: PolicyTrainer.update (PPO-clip, token-mean, one mini-batch of 8, micro-batch 8)
Prints both, their ratio, and peak memory. DESIGN.md's reference: ~24,800 tokens/s (H200).

    python benchmarks/gpu_trainer_update.py [--steps 5] [--seq 2048] [--batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def build_checkpoint(out_dir: str) -> None:
    from sail_rl.model.builder import token_ids
    from sail_rl.model.image_processing import SailVLImageProcessor
    from sail_rl.model.modeling import SailVLForConditionalGeneration
    from sail_rl.model.presets import QWEN_VOCAB, build_config
    from sail_rl.model.processing import SailVLProcessor
    from sail_rl.model.tokenizer import train_tokenizer

    tokenizer = train_tokenizer()  # stands in for Qwen's (not reachable here); ids only matter for images
    config = build_config("2b", vocab_size=QWEN_VOCAB, token_ids=token_ids(tokenizer))
    with torch.device("cuda"):
        model = SailVLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(out_dir)
    SailVLProcessor(SailVLImageProcessor(image_size=448), tokenizer, tokens_per_tile=256).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del model
    torch.cuda.empty_cache()


def cuda_time(fn) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_bare(model_dir: str, batch: int, seq: int, steps: int) -> tuple[float, float]:
    from sail_rl.model.builder import load_model

    model = load_model(model_dir, dtype="bfloat16").cuda().train()
    model.gradient_checkpointing_enable()
    model.model.vision_tower.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6, fused=True)
    ids = torch.randint(0, 150000, (batch, seq), device="cuda")

    def step():
        out = model(input_ids=ids, labels=ids, use_cache=False)  # text only: the vision tower does not run
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    times = [cuda_time(step) for _ in range(steps + 2)][2:]
    peak = torch.cuda.max_memory_allocated() / 2**30

    torch.cuda.empty_cache()
    return batch * seq / statistics.median(times), peak


def bench_sail_rl(model_dir: str, batch: int, seq: int, steps: int) -> tuple[float, float, float]:
    from sail_rl.algorithms import AlgorithmConfig, compute_advantages
    from sail_rl.trainer.batch import collate
    from sail_rl.trainer.config import TrainerConfig
    from sail_rl.trainer.worker import PolicyTrainer

    cfg = TrainerConfig(learning_rate=1e-6, mini_batch_size=batch, micro_batch_size=batch, gradient_checkpointing=True,
                        freeze_vision=True)
    algo = AlgorithmConfig()
    trainer = PolicyTrainer(model_dir, cfg, algo, dtype="bfloat16")
    prompt = seq // 2
    samples = [dict(prompt_ids=torch.randint(0, 150000, (prompt,)).tolist(), response_ids=torch.randint(0, 150000, (seq - prompt,)).tolist(),
                    response_logprobs=[-1.0] * (seq - prompt), pixel_values=None, group_id=i // 4, reward=float(i % 2)) for i in range(batch)]
    data = collate(samples, 0, 448)
    logprob_s = cuda_time(lambda: trainer.compute_log_probs(data))
    data.advantages, data.returns = compute_advantages(algo, data.rewards, data.group_ids, data.response_mask)
    torch.cuda.reset_peak_memory_stats()
    times = [cuda_time(lambda: trainer.update(data)) for _ in range(steps + 2)][2:]
    peak = torch.cuda.max_memory_allocated() / 2**30
    return batch * seq / statistics.median(times), peak, batch * seq / logprob_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        build_checkpoint(tmp)
        bare, bare_peak = bench_bare(tmp, args.batch, args.seq, args.steps)
        print(f"bare transformers step : {bare:9.0f} tokens/s  peak {bare_peak:5.1f} GiB", flush=True)
        ours, ours_peak, lp = bench_sail_rl(tmp, args.batch, args.seq, args.steps)
        print(f"sail-rl trainer update : {ours:9.0f} tokens/s  peak {ours_peak:5.1f} GiB")
        print(f"sail-rl old log-probs  : {lp:9.0f} tokens/s (forward only, incl. first-call overhead)")
        print(f"ratio sail-rl / bare   : {ours / bare:.2f}  (DESIGN.md reference for bare: ~24,800 tokens/s on H200)")


if __name__ == "__main__":
    main()
