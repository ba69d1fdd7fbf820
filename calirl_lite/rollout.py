"""The batched rollout engine: many dialogues advance together, one batch per turn.

Per turn, the policy writes a turn for every live dialogue in one batched ``generate`` call;
then the user answers all of them in one batch; dialogues that ended (the user wrote
``[[TERMINATE CHAT]]``, or the message budget is spent — CollabLLM counts messages) drop out.

Besides the Dialogues, the engine returns per dialogue what TRL's ``GRPOTrainer`` takes from a
``rollout_func``: ``prompt_ids`` (system prompt and the first user message), ``completion_ids``
(everything after: policy turns and the user turns between them), ``logprobs`` and
``env_mask`` — 1 on tokens the policy sampled, 0 on the user's (and on any end token the
engine had to add), so the user's tokens carry no gradient.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .chat import TokenStream, next_segment_ids, prompt_ids
from .dialogue import TERMINATE, Dialogue, Message
from .tasks import Task, get_task
from .users import User
from .world import assistant_messages


@dataclass
class Policy:
    """A causal LM writing the assistant's turns."""

    model: Any
    tokenizer: Any
    name: str = "base"
    temperature: float = 1.0
    max_new_tokens: int = 40


def base_policy(profile: str, max_new_tokens: int | None = None) -> Policy:
    """The profile's base policy (its policy model, prompted as the assistant), with the profile's sampling settings."""
    from .profiles import get_profile, load_model

    prof = get_profile(profile)
    model, tok = load_model(prof.policy_model)
    return Policy(model, tok, "base", prof.policy_temperature, max_new_tokens or prof.max_new_tokens)


@dataclass
class RolloutBatch:
    """Dialogues plus, per dialogue, the token-level record GRPO trains on."""

    dialogues: list[Dialogue]
    prompt_ids: list[list[int]] = field(default_factory=list)
    completion_ids: list[list[int]] = field(default_factory=list)
    logprobs: list[list[float]] = field(default_factory=list)
    env_mask: list[list[int]] = field(default_factory=list)
    generated_tokens: int = 0
    """tokens sampled by any model in this rollout (policy and model-played users)"""
    seconds: float = 0.0
    """wall time of the generation (scoring excluded)"""

    def as_trl(self) -> dict[str, Any]:
        """The dict a TRL ``rollout_func`` returns (extra keys reach the reward functions)."""
        return {
            "prompt_ids": self.prompt_ids, "completion_ids": self.completion_ids, "logprobs": self.logprobs,
            "env_mask": self.env_mask, "dialogues": self.dialogues,
        }


def rollout(policy: Policy, user: User, task: Task | str, goals: Sequence[dict[str, Any]], max_messages: int = 14,
            seed: int = 0, task_ids: Sequence[str] | None = None) -> RolloutBatch:
    """Run one dialogue per goal, all in lock step. Same seed and inputs → same dialogues on CPU."""
    import torch

    task = get_task(task) if isinstance(task, str) else task
    if max_messages < 2:
        raise ValueError(f"max_messages must be ≥ 2, got {max_messages}")
    start = time.perf_counter()
    torch.manual_seed(seed)
    user_tokens_before = user.generated_tokens
    rngs = [np.random.default_rng([seed, i]) for i in range(len(goals))]
    states = [user.open(task, g, r) for g, r in zip(goals, rngs)]
    ids = list(task_ids) if task_ids is not None else [f"{task.name}-{i}" for i in range(len(goals))]
    firsts = user.first_messages(states)
    dialogues = [Dialogue(task.name, tid, dict(g), [Message("user", t)], user=user.name, policy=policy.name) for tid, g, t in zip(ids, goals, firsts)]
    batch = RolloutBatch(dialogues)
    tok = policy.tokenizer
    batch.prompt_ids = [prompt_ids(tok, assistant_messages(d.messages)) for d in dialogues]
    batch.completion_ids = [[] for _ in dialogues]
    batch.logprobs = [[] for _ in dialogues]
    batch.env_mask = [[] for _ in dialogues]
    generated = 0
    live = [i for i, d in enumerate(dialogues) if TERMINATE not in d.messages[0].text]
    for i in set(range(len(dialogues))) - set(live):
        dialogues[i].terminated = True
    stream = TokenStream(policy.model, tok, [batch.prompt_ids[i] for i in live]) if live else None
    while live:
        outs = stream.sample(policy.max_new_tokens, policy.temperature)  # type: ignore[union-attr]
        for i, g in zip(live, outs):
            batch.completion_ids[i] += g.ids
            batch.logprobs[i] += g.logprobs
            batch.env_mask[i] += [1] * (len(g.ids) - 1) + [0 if g.forced_end else 1]
            dialogues[i].messages.append(Message("assistant", g.text))
            generated += len(g.ids) - int(g.forced_end)
        live_before_user = live
        live = [i for i in live if len(dialogues[i].messages) < max_messages]
        if live:
            texts = user.replies([states[i] for i in live], [dialogues[i].messages for i in live])
            still, segments = [], []
            for i, text in zip(live, texts):
                d = dialogues[i]
                d.messages.append(Message("user", text))
                if TERMINATE in text:
                    d.terminated = True
                elif len(d.messages) < max_messages:
                    seg = next_segment_ids(tok, assistant_messages(d.messages[:-1]), {"role": "user", "content": text}, "assistant")
                    batch.completion_ids[i] += seg
                    batch.logprobs[i] += [0.0] * len(seg)
                    batch.env_mask[i] += [0] * len(seg)
                    still.append(i)
                    segments.append(seg)
            rows = {i: r for r, i in enumerate(live_before_user)}
            stream.keep([rows[i] for i in still])  # type: ignore[union-attr]
            if still:
                stream.extend(segments)  # type: ignore[union-attr]
            live = still
    batch.generated_tokens = generated + user.generated_tokens - user_tokens_before
    batch.seconds = time.perf_counter() - start  # generation only; scoring below is the reward's work
    for d, mask in zip(dialogues, batch.env_mask):
        d.scores = {**task.score(d), "assistant_tokens": float(sum(mask)), "turns": float(len(d.messages))}
    return batch


def rollout_one_at_a_time(policy: Policy, user: User, task: Task | str, goals: Sequence[dict[str, Any]], max_messages: int = 14, seed: int = 0) -> RolloutBatch:
    """The naive loop: the same engine, one dialogue at a time (for the benchmark)."""
    start = time.perf_counter()
    parts = [rollout(policy, user, task, [g], max_messages, seed=seed + i) for i, g in enumerate(goals)]
    out = RolloutBatch([d for p in parts for d in p.dialogues])
    for p in parts:
        out.prompt_ids += p.prompt_ids
        out.completion_ids += p.completion_ids
        out.logprobs += p.logprobs
        out.env_mask += p.env_mask
        out.generated_tokens += p.generated_tokens
    out.seconds = time.perf_counter() - start
    return out


def mean_scores(dialogues: Sequence[Dialogue]) -> dict[str, float]:
    """Mean of each score over dialogues."""
    keys = sorted({k for d in dialogues for k in d.scores})
    return {k: float(np.mean([d.scores[k] for d in dialogues if k in d.scores])) for k in keys}


def compare_users(policy: Policy, users: dict[str, User], goals_by_task: dict[str, Sequence[dict[str, Any]]],
                  max_messages: int = 14, seed: int = 0) -> dict[str, dict[str, list[Dialogue]]]:
    """The same policy and the same goals with each user: {task: {user name: dialogues}}."""
    from tqdm.auto import tqdm

    out: dict[str, dict[str, list[Dialogue]]] = {}
    jobs = [(t, u) for t in goals_by_task for u in users]
    for task, name in tqdm(jobs, desc="rollouts", unit="batch"):
        out.setdefault(task, {})[name] = rollout(policy, users[name], task, goals_by_task[task], max_messages, seed=seed).dialogues
    return out
