"""Notebook 04: GRPO's group-relative advantage, and the masked loss that gives the user's tokens no gradient."""

import statistics


def group_advantages(rewards, group_size):
    """Each reward standardised within its group of group_size consecutive completions (unbiased std, + 1e-4)."""
    out = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start:start + group_size]
        mean, std = statistics.mean(group), statistics.stdev(group)
        out += [(r - mean) / (std + 1e-4) for r in group]
    return out


def masked_loss(per_token_loss, env_mask):
    """The mean of the per-token loss over the policy's own tokens of the whole batch (the user's tokens have mask 0)."""
    total = sum(loss * m for row, mask in zip(per_token_loss, env_mask) for loss, m in zip(row, mask))
    return total / sum(m for mask in env_mask for m in mask)
