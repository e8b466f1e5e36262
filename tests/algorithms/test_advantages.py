"""Advantage estimators against hand-computed numbers."""

import math

import pytest
import torch

from sail_rl.algorithms import (
    dr_grpo_advantages,
    gae_advantages,
    grpo_advantages,
    masked_whiten,
    outcome_to_token_rewards,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
)

S = 1 / math.sqrt(2)  # 0.5 / unbiased std of {0, 1}


def close(actual, expected, atol=1e-4):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


def test_grpo_groups_noncontiguous_and_singletons():
    # groups: 5 -> {1, 1} (no spread), 2 -> {0, 1}, 9 -> a group of one
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5])
    group_ids = torch.tensor([5, 2, 5, 2, 9])
    mask = torch.ones(5, 1)
    adv, returns = grpo_advantages(rewards, group_ids, mask)
    close(adv.squeeze(-1), [0.0, -S, 0.0, S, 0.0])
    assert torch.equal(adv, returns)


def test_grpo_example_from_brief_and_padding():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]])
    adv, _ = grpo_advantages(rewards, torch.tensor([0, 0, 1, 1]), mask)
    close(adv, [[S, S, S], [-S, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_grpo_three_and_without_std():
    rewards = torch.tensor([0.0, 1.0, 2.0])  # mean 1, unbiased std 1
    adv, _ = grpo_advantages(rewards, torch.zeros(3, dtype=torch.long), torch.ones(3, 1))
    close(adv.squeeze(-1), [-1.0, 0.0, 1.0])
    adv, _ = grpo_advantages(rewards * 4, torch.zeros(3, dtype=torch.long), torch.ones(3, 1), norm_by_std=False)
    close(adv.squeeze(-1), [-4.0, 0.0, 4.0])


def test_dr_grpo_is_mean_centred_only():
    adv, _ = dr_grpo_advantages(torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1]), torch.ones(4, 2))
    close(adv, [[0.5, 0.5], [-0.5, -0.5], [0, 0], [0, 0]])


def test_rloo_group_of_three_leave_one_out():
    # group 0: {1, 0, 0.5}; group 1 is a single rollout -> 0
    rewards = torch.tensor([1.0, 0.0, 0.5, 7.0])
    adv, _ = rloo_advantages(rewards, torch.tensor([0, 0, 0, 1]), torch.ones(4, 1))
    # 1 - mean(0, .5) = .75;  0 - mean(1, .5) = -.75;  .5 - mean(1, 0) = 0
    close(adv.squeeze(-1), [0.75, -0.75, 0.0, 0.0])


def test_reinforce_pp_baseline_whitens_over_batch_tokens():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    mask = torch.tensor([[1, 1], [1, 0], [1, 0], [1, 0]])
    adv, _ = reinforce_pp_baseline_advantages(rewards, torch.tensor([0, 0, 1, 1]), mask)
    # token scores .5 .5 -.5 0 0: mean .1, unbiased var .7/4 = .175
    std = math.sqrt(0.175)
    close(adv, [[0.4 / std, 0.4 / std], [-0.6 / std, 0], [-0.1 / std, 0], [-0.1 / std, 0]])


def test_reinforce_pp_discounted_returns_then_whitened():
    token_rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv, returns = reinforce_pp_advantages(token_rewards, mask, gamma=0.5)
    close(returns, [[0.25, 0.5, 1.0], [1.0, 2.0, 0.0]])
    # valid returns .25 .5 1 1 2: mean .95, unbiased var 1.8 / 4 = .45
    std = math.sqrt(0.45)
    close(adv, [[-0.7 / std, -0.45 / std, 0.05 / std], [0.05 / std, 1.05 / std, 0.0]])


def test_gae_matches_hand_unrolled_recursion():
    gamma, lam = 0.9, 0.8
    token_rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])  # 9.0 sits on padding: ignored
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv, returns = gae_advantages(token_rewards, values, mask, gamma, lam, whiten=False)
    # row 0: d2 = 1 - .3 = .7; d1 = .9*.3 - .2 = .07; d0 = .9*.2 - .1 = .08
    a2 = 0.7
    a1 = 0.07 + gamma * lam * a2
    a0 = 0.08 + gamma * lam * a1
    # row 1 ends at t=1: d1 = 1 - .5 = .5; d0 = .9*.5 - .4 = .05
    b1 = 0.5
    b0 = 0.05 + gamma * lam * b1
    close(adv, [[a0, a1, a2], [b0, b1, 0.0]])
    close(returns, [[a0 + 0.1, a1 + 0.2, a2 + 0.3], [b0 + 0.4, b1 + 0.5, 0.0]])
    whitened, returns_w = gae_advantages(token_rewards, values, mask, gamma, lam, whiten=True)
    torch.testing.assert_close(whitened, masked_whiten(adv, mask))
    torch.testing.assert_close(returns_w, returns)


def test_gae_lambda_one_gamma_one_is_return_minus_value():
    token_rewards = outcome_to_token_rewards(torch.tensor([1.0]), torch.ones(1, 4))
    values = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    adv, returns = gae_advantages(token_rewards, values, torch.ones(1, 4), whiten=False)
    close(returns, [[1.0, 1.0, 1.0, 1.0]])
    close(adv, [[0.9, 0.8, 0.7, 0.6]])


def test_outcome_to_token_rewards_last_valid_token():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    close(outcome_to_token_rewards(torch.tensor([2.0, 3.0, 4.0]), mask), [[0, 2, 0], [0, 0, 3], [0, 0, 0]])


@pytest.mark.parametrize("fn", [grpo_advantages, dr_grpo_advantages, rloo_advantages, reinforce_pp_baseline_advantages])
def test_outcome_estimators_zero_on_padding(fn):
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    adv, _ = fn(torch.tensor([0.0, 1.0, 3.0]), torch.tensor([0, 0, 0]), mask)
    assert torch.all(adv[mask == 0] == 0)
    assert torch.all(adv[mask == 1] != 0)
