"""The judge client against a real `vllm serve` of a tiny random Qwen3 (slow, CPU vLLM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rewards import RewardInput
from rewards.builtin import llm_verifier_reward
from rewards.judge import client_for

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] if message['content'] is string else message['content'][0]['text'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _build_tiny_qwen3(model_dir) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    words = ["answer", "question", "judge", "verdict", "yes", "no", "the", "is", "of", "model", "reasoning"]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) + f" {i}" for i in range(300)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    tokenizer.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token=None)
    fast.chat_template = CHATML
    fast.save_pretrained(model_dir)
    # head_dim 32, not hidden/heads = 16: vLLM's CPU attention has no kernel for head_dim 16.
    config = Qwen3Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=32, intermediate_size=128, vocab_size=len(fast), max_position_embeddings=512,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    Qwen3ForCausalLM(config).save_pretrained(model_dir)


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vllm serve exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2.0)
    raise AssertionError(f"vllm serve not healthy after {timeout_s} s")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_judge_against_vllm_serve_counts_unparseable_verdicts(tmp_path):
    pytest.importorskip("vllm")
    from rewards_judge_server import free_port  # noqa: PLC0415  (beside this file)

    model_dir = tmp_path / "tiny-qwen3"
    _build_tiny_qwen3(model_dir)
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    log = open(tmp_path / "vllm.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
         "--served-model-name", "tiny-judge", "--port", str(port), "--max-model-len", "512"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", proc, timeout_s=180)
        kwargs = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "tiny-judge", "max_tokens": 16,
                  "timeout_s": 60.0, "max_concurrency": 2, "max_response_chars": 200}
        batch = [RewardInput("What is 1+1?", "\\boxed{2}", "2"), RewardInput("What is 2+2?", "\\boxed{5}", "4")]
        scores = llm_verifier_reward(batch, **kwargs)
        client = client_for(kwargs, "llm_verifier")
        # Random weights say nothing parseable: each sample is a counted parse failure scoring 0.
        assert client.stats["requests"] == 2
        assert client.stats["parse_failures"] == 2
        assert scores == [{"score": 0.0, "parse_failed": 1.0}] * 2
    except BaseException:
        log.flush()
        print((tmp_path / "vllm.log").read_text()[-4000:])  # shown by pytest on failure
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
