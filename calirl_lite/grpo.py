"""GRPO in one screen: the reference loss the kit teaches with (TRL's ``GRPOTrainer`` does the training).

For each prompt, G completions are sampled and scored. GRPO needs no value network: the
*advantage* of a completion is its reward standardised within its group,

    A_i = (r_i − mean(r_group)) / (std(r_group) + 1e-4).

The policy is pushed up on completions that beat their siblings and down on the others, with
PPO's clipped importance ratio ρ_t = π_θ(y_t | …) / π_old(y_t | …) keeping each update small:

    loss_t = −min(ρ_t · A, clip(ρ_t, 1 − ε_low, 1 + ε_high) · A)

and the loss is the mean of ``loss_t`` over the completion tokens the policy wrote (the mask:
in a multi-turn rollout the user's tokens carry a 0 and so no gradient). This is TRL's
``loss_type="bnpo"`` (a masked token mean over the batch); a test checks that the two agree.
"""

from __future__ import annotations

from typing import Any


def group_advantages(rewards: Any, group_size: int) -> Any:
    """Rewards of consecutive groups of ``group_size`` completions, standardised within each group."""
    import torch

    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size} (group_size must be ≥ 2)")
    groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)  # unbiased, as TRL
    return ((groups - mean) / (std + 1e-4)).view(-1)


def grpo_loss(logps: Any, old_logps: Any, advantages: Any, mask: Any, eps_low: float = 0.2, eps_high: float = 0.2) -> Any:
    """The clipped GRPO objective as a loss: masked mean over all policy tokens of the batch.

    ``logps``, ``old_logps`` and ``mask`` have shape (batch, completion length); ``advantages`` (batch,).
    """
    ratio = (logps - old_logps).exp()
    adv = advantages.unsqueeze(1)
    per_token = -(ratio * adv).minimum(ratio.clamp(1 - eps_low, 1 + eps_high) * adv)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def completion_logps(model: Any, prompt_ids: Any, prompt_mask: Any, completion_ids: Any, completion_mask: Any) -> Any:
    """log π(completion token | everything before it), shape (batch, completion length)."""
    import torch

    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask, completion_mask], dim=1)
    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, prompt_ids.shape[1] - 1 : -1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
