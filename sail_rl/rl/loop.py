"""The RL loop, written against four handles so it runs the same with or without Ray.

    trainer:  compute_log_probs(batch) / update(batch) / save_state(dir) / load_state(dir) / save_pretrained(dir)
    rollout:  generate_iter(requests, sampling) -> chunks of [Rollout] / generate / sleep() / wake(tags)
    scorer:   submit([RewardInput]) -> future of rewards.ScoreResult
    weight_transfer: push() -> the trainer's weights into the rollout engines
                     (sail_rl/rl/weight_transfer.py; default: rollout.update_weights(trainer.weights_for_sync()))

The Protocols are in sail_rl/rl/handles.py.

One step: draw prompts -> n rollouts each -> rewards -> (dynamic sampling: drop groups
whose rewards are all equal, draw more prompts, up to a cap) -> old log-probs -> advantages
-> PPO update -> weight sync -> (eval, checkpoint). With `rollout.enable_sleep_mode` the
rollouts sleep from the end of generation to the weight sync, then wake weights first, take
the new weights, and wake their KV cache last. `sail_rl/rl/ray_layer.py` builds the
handles as Ray actors; `local_components` builds them in this process.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewards import RewardInput, ScoreResult, reward_metrics
from rollouts.types import GenerationRequest, SamplingConfig
from sail_rl.algorithms import compute_advantages, compute_token_rewards
from sail_rl.data.mathvista import MathVistaSample
from sail_rl.data.prompts import build_prompt, prompt_modes
from sail_rl.rl.config import RunRecipe
from sail_rl.rl.handles import RolloutHandle, Scorer, Trainer, WeightTransfer
from sail_rl.rl.metrics import MetricsLogger, group_rollout_metrics, held_out_metrics
from sail_rl.rl.sampler import PromptSampler
from sail_rl.trainer.batch import TrainBatch, collate
from sail_rl.trainer.checkpoint import SHARDS_DIR, latest_checkpoint, load_checkpoint, save_checkpoint
from sail_rl.trainer.policy_trainer import on_policy_update


@dataclass
class Group:
    """The rollouts of one prompt and their scores."""

    index: int  # dataset index of the prompt
    sample: MathVistaSample
    rollouts: list
    score: ScoreResult

    @property
    def rewards(self) -> list[float]:
        return self.score.totals

    @property
    def informative(self) -> bool:
        return max(self.rewards) - min(self.rewards) > 1e-6


@dataclass
class Collected:
    """A step's groups to train on, the rollout and reward metrics, and every dataset index drawn."""

    groups: list[Group]
    metrics: dict[str, float]
    drawn: list[int]


@dataclass
class StepResult:
    metrics: dict[str, float]
    drawn: list[int]  # dataset indices drawn this step (logged, so a resumed run can be checked)


@contextmanager
def timed(metrics: dict[str, float], key: str):
    """Add the seconds the block takes to metrics[key] (a phase may run several times a step)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(metrics, key, time.perf_counter() - start)


def add(metrics: dict[str, float], key: str, value: float) -> None:
    metrics[key] = metrics.get(key, 0.0) + float(value)


class RLLoop:
    def __init__(self, recipe: RunRecipe, train: list[MathVistaSample], held_out: list[MathVistaSample],
                 trainer: Trainer, rollout: RolloutHandle, scorer: Scorer, pad_token_id: int, image_size: int,
                 weight_transfer: WeightTransfer | None = None):
        from sail_rl.rl.weight_transfer import DirectTransfer

        self.recipe, self.train, self.held_out = recipe, train, held_out
        self.trainer, self.rollout, self.scorer = trainer, rollout, scorer
        self.weight_transfer = weight_transfer or DirectTransfer(trainer, rollout)
        self.pad_token_id, self.image_size = pad_token_id, image_size
        self.run_dir = Path(recipe.run.output_dir)
        self.sampler = PromptSampler(len(train), seed=recipe.run.seed, shuffle=recipe.data.shuffle)
        self.sampling = recipe.rollout.sampling()
        # each prompt's mode (think / direct), fixed for the run: the thinking-fusion mix with data.prompt_mode mixed
        self.train_modes = prompt_modes(recipe.data, len(train), f"{recipe.run.seed}:train")
        self.held_out_modes = prompt_modes(recipe.data, len(held_out), f"{recipe.run.seed}:eval")
        self.step = 0
        self._draws = 0  # generation rounds so far: request ids never repeat within a run
        self.logger: MetricsLogger | None = None

    # ------------------------------------------------------------------ requests and rewards

    def _requests(self, indices: list[int], samples: list[MathVistaSample], tag: str,
                  modes: list[str] | None = None) -> list[GenerationRequest]:
        """One request per drawn prompt, in its mode (`modes[index]`, default the training prompts'
        modes). Ids name the position in the draw, not the dataset index: a draw that crosses an
        epoch boundary can hold an index twice."""
        modes = self.train_modes if modes is None else modes
        out = []
        for pos, (index, sample) in enumerate(zip(indices, samples)):
            messages, images = build_prompt(sample, modes[index])  # the loader rewrote multiple choice
            out.append(GenerationRequest(messages=messages, images=images, request_id=f"{tag}-{pos}",
                                         metadata={"index": index, "prompt_mode": modes[index]}))
        return out

    def _reward_inputs(self, sample: MathVistaSample, request: GenerationRequest, rollouts) -> list[RewardInput]:
        """One RewardInput per rollout; `extra` carries the dataset's columns by name (metadata flattened)."""
        extra = {**sample.metadata, "pid": sample.pid, "question": sample.question, "answer": sample.answer,
                 "question_type": sample.question_type, "unit": sample.unit, "query": sample.query,
                 "should_think": sample.should_think, "prompt_mode": request.metadata["prompt_mode"]}
        return [
            RewardInput(
                prompt=request.messages[-1]["content"][-1]["text"], response=r.text, ground_truth=sample.answer,
                answer_type=sample.answer_type, choices=sample.choices, precision=sample.precision,
                images=request.images, prompt_messages=request.messages, response_ids=list(r.response_token_ids),
                extra={**extra, "response_tokens": r.num_response_tokens, "finish_reason": r.finish_reason},
            )
            for r in rollouts
        ]

    def _generate_groups(self, n_prompts: int, metrics: dict[str, float]) -> list[Group]:
        """Draw `n_prompts` prompts, roll them out and score them (scoring overlaps generation);
        adds this round's times and counts to `metrics`."""
        indices = self.sampler.next(n_prompts)
        samples = [self.train[i] for i in indices]
        self._draws += 1
        requests = self._requests(indices, samples, f"s{self.step}-d{self._draws}")
        by_id = {r.request_id: (pos, r, i, smp) for pos, (r, i, smp) in enumerate(zip(requests, indices, samples))}
        pending, tokens = [], 0
        with timed(metrics, "time/generate_s"):
            # finished chunks are scored while the rest generate
            for chunk in self.rollout.generate_iter(requests, self.sampling):
                tokens += sum(r.num_response_tokens for r in chunk)
                by_request: dict[str, list] = {}
                for r in chunk:
                    by_request.setdefault(r.request_id, []).append(r)
                for request_id, group in by_request.items():
                    pos, request, index, sample = by_id[request_id]
                    pending.append((pos, index, sample, group, self.scorer.submit(self._reward_inputs(sample, request, group))))
        with timed(metrics, "time/reward_s"):
            pending.sort(key=lambda p: p[0])  # request order, whatever order the chunks finished in
            groups = [Group(index, sample, group, future.result()) for _, index, sample, group, future in pending]
        add(metrics, "rollout/prompts_drawn", len(indices))
        add(metrics, "rollout/skipped_prompts", len(requests) - len(groups))  # over rollout.max_prompt_tokens
        add(metrics, "rollout/response_tokens", tokens)
        return groups

    def collect(self) -> Collected:
        """A step's groups: with dynamic sampling, only informative ones, refilled up to a cap."""
        cfg = self.recipe.run
        kept: list[Group] = []
        seen: list[Group] = []
        metrics: dict[str, float] = {}
        rounds = 0
        while len(kept) < cfg.prompts_per_step and rounds <= (cfg.max_refill_rounds if cfg.dynamic_sampling else 0):
            groups = self._generate_groups(cfg.prompts_per_step - len(kept) if rounds else cfg.prompts_per_step, metrics)
            seen.extend(groups)
            kept.extend(g for g in groups if g.informative or not cfg.dynamic_sampling)
            rounds += 1
        metrics["perf/rollout_tokens_per_s"] = metrics.pop("rollout/response_tokens") / max(metrics["time/generate_s"], 1e-9)
        metrics["rollout/generation_rounds"] = float(rounds)
        metrics["rollout/kept_groups"] = float(min(len(kept), cfg.prompts_per_step))
        metrics.update(reward_metrics([g.score for g in seen]))  # once, over every group scored this step
        metrics.update(group_rollout_metrics(seen))
        return Collected(kept[: cfg.prompts_per_step], metrics, [g.index for g in seen])

    # ------------------------------------------------------------------ one update

    def to_batch(self, groups: list[Group]) -> TrainBatch:
        samples = []
        for gid, group in enumerate(groups):
            for rollout, reward in zip(group.rollouts, group.rewards):
                samples.append(dict(
                    prompt_ids=rollout.prompt_token_ids, response_ids=rollout.response_token_ids,
                    response_logprobs=rollout.response_logprobs, pixel_values=rollout.pixel_values,
                    group_id=gid, reward=reward,
                ))
        return collate(samples, self.pad_token_id, self.image_size)

    def train_step(self) -> StepResult:
        """collect -> (sleep) -> old log-probs -> advantages -> update -> weight sync; each phase timed."""
        start = time.perf_counter()
        collected = self.collect()
        groups, metrics = collected.groups, collected.metrics
        if not groups:
            metrics["actor/skipped_no_signal"] = 1.0
            return StepResult(metrics, collected.drawn)
        if self.recipe.rollout.enable_sleep_mode:
            self.rollout.sleep()  # free the rollouts' memory for the update
        batch = self.to_batch(groups)
        with timed(metrics, "time/log_probs_s"):
            on_policy = on_policy_update(self.recipe.trainer, self.recipe.algorithm, len(batch))
            self.trainer.compute_log_probs(batch, old=not on_policy)
        with timed(metrics, "time/advantages_s"):
            algo = self.recipe.algorithm
            token_rewards, kl_metrics = compute_token_rewards(
                algo, batch.rewards, batch.response_mask, log_probs=batch.old_log_probs, ref_log_probs=batch.ref_log_probs
            )
            batch.advantages, batch.returns = compute_advantages(
                algo, batch.rewards, batch.group_ids, batch.response_mask, values=batch.old_values,
                token_level_rewards=token_rewards,
            )
        metrics.update(kl_metrics)
        metrics.update(self.trainer.update(batch))  # reports its own time/update_s
        metrics["time/weight_sync_s"] = self.sync_weights()
        lengths = batch.response_mask.sum(dim=1)
        metrics["response/length_mean"] = float(lengths.mean())
        metrics["response/clip_ratio"] = float(sum(r.finish_reason == "length" for g in groups for r in g.rollouts) / len(lengths))
        metrics["time/step_s"] = time.perf_counter() - start
        metrics["perf/train_tokens_per_s"] = float(batch.attention_mask.sum()) / max(metrics.get("time/update_s", 1e-9), 1e-9)
        return StepResult(metrics, collected.drawn)

    # ------------------------------------------------------------------ eval, checkpoints, run

    def evaluate(self) -> dict[str, float]:
        """Held-out accuracy, greedy (`eval/accuracy`) and at the rollout temperature
        (`eval/accuracy_sampled`: mean over run.eval_samples_per_prompt samples, i.e. mean@k)."""
        if not self.held_out:
            return {}
        start = time.perf_counter()
        out = {}
        greedy = SamplingConfig(rollouts_per_prompt=1, temperature=0.0, max_response_tokens=self.sampling.max_response_tokens)
        out.update(held_out_metrics(self._held_out_responses(greedy), self.held_out, self.held_out_modes,
                                    ("accuracy", "think_rate", "think_well_formed_rate", "mean_response_chars")))
        k = self.recipe.run.eval_samples_per_prompt
        if k:
            sampled = SamplingConfig(rollouts_per_prompt=k, temperature=self.sampling.temperature, top_p=self.sampling.top_p,
                                     max_response_tokens=self.sampling.max_response_tokens)
            scored = held_out_metrics(self._held_out_responses(sampled), self.held_out, self.held_out_modes, ("accuracy",))
            out.update({key.replace("accuracy", "accuracy_sampled"): v for key, v in scored.items()})
        out["time/eval_s"] = time.perf_counter() - start
        return out

    def _held_out_responses(self, sampling: SamplingConfig) -> dict[str, list[dict]]:
        """{pid: [{"response", "response_tokens"}]} for the held-out prompts, each in its mode."""
        samples = self.held_out
        requests = self._requests(list(range(len(samples))), samples, "eval", self.held_out_modes)
        by_id: dict[str, list] = {}
        for r in self.rollout.generate(requests, sampling):
            by_id.setdefault(r.request_id, []).append(r)
        return {
            s.pid: [{"response": r.text, "response_tokens": r.num_response_tokens} for r in by_id[q.request_id]]
            for s, q in zip(samples, requests) if by_id.get(q.request_id)
        }

    def save(self) -> Path:
        state = {"sampler": self.sampler.state_dict(), "recipe_output_dir": str(self.run_dir)}
        from sail_rl.rundir import make_readable

        final = self.step == self.recipe.run.total_steps  # the HF export: at the end of the run only
        path = save_checkpoint(
            self.run_dir, self.step, {}, state, save_shards=self.trainer.save_state,
            save_model=self.trainer.save_pretrained if final else None, keep_last=self.recipe.run.keep_last_checkpoints,
        )
        make_readable(path)  # safetensors writes 0600; a checkpoint is for the team to read
        return path

    def resume(self) -> bool:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return False
        _, state = load_checkpoint(path)
        self.trainer.load_state(str(path / SHARDS_DIR))
        self.sampler.load_state_dict(state["sampler"])
        self.step = state["step"]
        self.sync_weights()
        return True

    def sync_weights(self) -> float:
        """Push the trainer's weights into the rollouts; seconds taken. A sleeping rollout wakes
        its weights first and its KV cache after the sync (OpenRLHF, verl)."""
        start = time.perf_counter()
        sleep_mode = self.recipe.rollout.enable_sleep_mode
        if sleep_mode:
            self.rollout.wake(("weights",))
        self.weight_transfer.push()
        if sleep_mode:
            self.rollout.wake(("kv_cache",))
        return time.perf_counter() - start

    def run(self, resume: bool = False) -> dict[str, Any]:
        cfg = self.recipe.run
        resumed = self.resume() if resume else False
        self.logger = MetricsLogger(self.run_dir, cfg.loggers, truncate_after_step=self.step if resumed else 0,
                                    wandb_project=cfg.wandb_project, total_steps=cfg.total_steps,
                                    progress_bar=cfg.progress_bar, initial_step=self.step)
        summary: dict[str, Any] = {"resumed_from_step": self.step if resumed else None}
        if cfg.eval_before_training and not resumed:
            before = self.evaluate()
            summary["eval_before"] = before
            self.logger.log(0, before)
        while self.step < cfg.total_steps:
            result = self.train_step()
            self.step += 1
            metrics, drawn = result.metrics, result.drawn
            if cfg.eval_every_steps and self.step % cfg.eval_every_steps == 0 and self.step < cfg.total_steps:
                metrics.update(self.evaluate())
            self.logger.log(self.step, metrics, prompts=drawn)
            if cfg.save_every_steps and self.step % cfg.save_every_steps == 0 or self.step == cfg.total_steps:
                self.save()
        after = self.evaluate()
        self.logger.log(self.step, after)
        summary["eval_after"] = after
        summary["final_step"] = self.step
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        self.logger.close()
        return summary


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
