"""Token entropy of the policy, computed from logits."""

from __future__ import annotations

import torch


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last axis: [batch, seq, vocab] -> [batch, seq].

    H = logsumexp(z) - sum_v softmax(z)_v * z_v, which stays finite for large logits
    (no log of a softmax that underflowed to 0). Logits of -inf (a masked vocabulary) count
    as probability 0 instead of giving 0 * inf = nan.

    >>> entropy_from_logits(torch.zeros(1, 1, 4))  # uniform over 4: log 4
    tensor([[1.3863]])
    >>> entropy_from_logits(torch.tensor([[[1000.0, 0.0, -float("inf")]]]))
    tensor([[0.]])
    """
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    weighted = torch.where(probs > 0, probs * logits, torch.zeros_like(logits))
    return torch.logsumexp(logits, dim=-1) - weighted.sum(-1)
