"""Rewards for sail-rl: one grader, a reward contract and registry, a scorer and a pool.

    from rewards import RewardScorer, RewardSpec, RewardInput
    scorer = RewardScorer([RewardSpec(name="accuracy", weight=0.9), RewardSpec(name="format", weight=0.1)])
    result = scorer.score([RewardInput(prompt, response, ground_truth="42")])
"""

from rewards.answer_extraction import extract_answer
from rewards.contract import STYLES, RewardInput, register_reward
from rewards.grader import grade
from rewards.pool import ScoringPool
from rewards.registry import RewardsConfig, RewardSpec, get_reward
from rewards.scorer import RewardScorer, ScoreResult, reward_metrics

import rewards.builtin  # noqa: E402,F401,I001  (registers the built-in rewards)

__all__ = [
    "grade", "extract_answer", "RewardInput", "register_reward", "get_reward", "RewardSpec",
    "RewardsConfig", "RewardScorer", "ScoreResult", "ScoringPool", "reward_metrics", "STYLES",
]
