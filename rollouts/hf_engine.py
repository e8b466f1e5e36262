"""Rollouts with transformers `generate`: for machines without vLLM, and the reference in tests.

Same interface and the same log-prob definition as the vLLM engine: the log-prob of each
sampled token under the processed distribution (placeholder tokens suppressed, temperature,
top-k/top-p), from `output_scores`, which transformers returns after all processors.
"""

from __future__ import annotations


import torch

from rollouts.engine import banned_token_ids, check_model_dir, prepare_prompts, register_engine
from rollouts.types import GenerationRequest, Rollout, RolloutConfig, SamplingConfig
from rollouts.weight_sync import load_into_module, named_weights


@register_engine("hf")
class HFEngine:
    def __init__(self, cfg: RolloutConfig, model_dir: str):
        from sail_rl.model.builder import load_model, load_processor

        check_model_dir(model_dir)
        self.cfg = cfg
        self.model = load_model(model_dir, dtype=cfg.dtype).eval()
        self.processor = load_processor(model_dir)
        self.tokenizer = self.processor.tokenizer
        self.banned = banned_token_ids(self.tokenizer)
        self.eos_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.pad_id = self.tokenizer.pad_token_id
        self.asleep = False
        self.generate_calls = 0

    def generate_iter(self, requests: list[GenerationRequest], sampling: SamplingConfig):
        """One chunk: transformers' generate finishes the batch together."""
        yield self.generate(requests, sampling)

    @torch.no_grad()
    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> list[Rollout]:
        prepared, _ = prepare_prompts(self.processor, requests, self.cfg)
        if not prepared:
            return []
        # Repeat the prompts rather than num_return_sequences: greedy search refuses the latter, and
        # generate's expansion repeats each row of pixel_values [tiles, ...], which splits an image's tiles.
        rows = [p for p in prepared for _ in range(sampling.n)]
        width = max(len(p.prompt_token_ids) for p in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(rows):  # left padding: generation continues from the last column
            ids[i, width - len(p.prompt_token_ids):] = torch.tensor(p.prompt_token_ids)
            mask[i, width - len(p.prompt_token_ids):] = 1
        pixels = [p.pixel_values for p in rows if p.pixel_values is not None]
        if sampling.seed is not None:  # differs per call: RL steps must not reuse random numbers
            torch.manual_seed(sampling.seed + 1_000_003 * self.generate_calls)
        self.generate_calls += 1
        out = self.model.generate(
            input_ids=ids, attention_mask=mask, pixel_values=torch.cat(pixels) if pixels else None,
            image_tiles_per_sample=torch.tensor([p.num_image_tiles for p in rows]),
            **self._generate_kwargs(sampling),
        )
        return self._to_rollouts(prepared, out, sampling)

    def _generate_kwargs(self, sampling: SamplingConfig) -> dict:
        greedy = sampling.temperature == 0
        kwargs = dict(
            do_sample=not greedy, max_new_tokens=sampling.max_response_tokens,
            eos_token_id=self.eos_id, pad_token_id=self.pad_id, suppress_tokens=self.banned or None,
            output_scores=True, return_dict_in_generate=True,
        )
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=max(sampling.top_k, 0))
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        return kwargs

    def _to_rollouts(self, prepared, out, sampling: SamplingConfig) -> list[Rollout]:
        sequences = out.sequences  # [prompts * n, prompt + new tokens]: the new ones are the last `steps`
        steps = len(out.scores)
        sequences = sequences[:, -steps:] if steps else sequences[:, :0]
        logprobs = torch.stack(
            [torch.log_softmax(s.float(), -1).gather(-1, sequences[:, t, None]).squeeze(-1) for t, s in enumerate(out.scores)], 1
        ) if steps else torch.zeros(sequences.shape[0], 0)
        rollouts = []
        for row in range(sequences.shape[0]):
            p = prepared[row // sampling.n]
            tokens, reason = self._cut(sequences[row].tolist(), sampling)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            for stop in sampling.stop:  # vLLM leaves the stop string out of the text
                if stop in text:
                    text = text[: text.index(stop)]
            rollouts.append(Rollout(
                request_id=p.request.request_id, sample_index=row % sampling.n,
                prompt_token_ids=p.prompt_token_ids, response_token_ids=tokens,
                response_logprobs=logprobs[row, : len(tokens)].tolist(), text=text, finish_reason=reason,
                num_image_tiles=p.num_image_tiles, pixel_values=p.pixel_values, metadata=dict(p.request.metadata),
            ))
        return rollouts

    def _cut(self, tokens: list[int], sampling: SamplingConfig) -> tuple[list[int], str]:
        """Tokens up to and including eos, finish reason. Rows that stopped early are padded."""
        if self.eos_id in tokens:
            return tokens[: tokens.index(self.eos_id) + 1], "stop"
        end = len(tokens)
        while end and tokens[end - 1] == self.pad_id:
            end -= 1
        if end < sampling.max_response_tokens and (sampling.stop or end < len(tokens)):
            return tokens[:end], "stop"
        return tokens[:end], "length"

    def update_weights(self, weights) -> None:
        load_into_module(self.model, named_weights(weights), self.cfg.weight_sync_bucket_mb << 20)

    def sleep(self) -> None:
        self.asleep = True

    def wake(self, tags: tuple[str, ...] | None = None) -> None:
        self.asleep = False

    def close(self) -> None:
        self.model = None


__all__ = ["HFEngine"]
