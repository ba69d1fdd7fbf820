"""The batched rollout engine: many dialogues advance together, one batch per turn.

Per turn, the policy writes a turn for every live dialogue in one batched ``generate`` call (the kit's own
:class:`~calirl_lite.decode.TokenStream`, or TRL's colocated vLLM engine where the policy has one);
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
import torch

from .chat import next_segment_ids, prompt_ids, turn_end_id
from .decode import TokenStream
from .dialogue import TERMINATE, Dialogue, Message
from .profiles import Models
from .prompts import assistant_messages
from .quiet import no_bars
from .task_family import Task
from .tasks import get_task
from .users import User, verdict
from .vllm_turns import VllmStream


@dataclass
class Policy:
    """A causal LM writing the assistant's turns."""

    model: Any
    tokenizer: Any
    name: str = "base"
    temperature: float = 1.0
    max_new_tokens: int = 40
    engine: Any = None
    """TRL's colocated vLLM engine holding this policy's weights (:func:`calirl_lite.vllm_turns.colocated_engine`):
    where set, its turns are sampled by it; None: by the kit's own engine"""


def base_policy(models: Models, max_new_tokens: int | None = None) -> Policy:
    """The profile's base policy (its policy model, prompted as the assistant), with the profile's sampling settings."""
    model, tok = models.policy()
    return Policy(model, tok, "base", models.profile.policy_temperature, max_new_tokens or models.profile.max_new_tokens)


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

    end_id: int = 0
    """the turn-end token id of the policy's tokenizer"""

    def add(self, i: int, ids: list[int], logprobs: list[float], mask: list[int]) -> None:
        """Append tokens to dialogue ``i``'s completion, with their log-probs and env_mask."""
        self.completion_ids[i] += ids
        self.logprobs[i] += logprobs
        self.env_mask[i] += mask

    def as_trl(self) -> dict[str, Any]:
        """The dict a TRL ``rollout_func`` returns (extra keys reach the reward functions).

        A dialogue that the user ended before the policy wrote anything (a first message with
        ``[[TERMINATE CHAT]]``) gets a single turn-end token with mask 0: TRL needs a non-empty
        completion, and there is nothing to learn from it.
        """
        empty = [not ids for ids in self.completion_ids]
        return {
            "prompt_ids": self.prompt_ids,
            "completion_ids": [[self.end_id] if e else ids for e, ids in zip(empty, self.completion_ids)],
            "logprobs": [[0.0] if e else lp for e, lp in zip(empty, self.logprobs)],
            "env_mask": [[0] if e else m for e, m in zip(empty, self.env_mask)],
            "dialogues": self.dialogues,
        }


def rollout(policy: Policy, user: User, task: Task, goals: Sequence[dict[str, Any]], max_messages: int = 14,
            seed: int = 0, task_ids: Sequence[str] | None = None, contexts: Sequence[Sequence[Message]] | None = None,
            learn_turns: int | None = None) -> RolloutBatch:
    """Run one dialogue per goal, all in lock step. Same seed and inputs → same dialogues on CPU.

    ``contexts`` (one per goal) start each dialogue from a logged history instead of the user's
    first message — each must start and end with a user message; the user is told what was said
    (:meth:`~calirl_lite.users.User.resume`). ``learn_turns`` keeps ``env_mask`` at 1 only on the
    policy's first ``learn_turns`` turns: Static Context RL trains the one turn written at the logged
    context, and the later turns only complete the dialogue for its reward (CollabLLM's forward sampling).
    """
    if max_messages < 2:
        raise ValueError(f"max_messages must be ≥ 2, got {max_messages}")
    if learn_turns is not None and learn_turns < 1:
        raise ValueError(f"learn_turns must be ≥ 1 or None, got {learn_turns}")
    start = time.perf_counter()
    torch.manual_seed(seed)
    user_tokens_before = user.generated_tokens
    states, dialogues = _open(policy, user, task, goals, max_messages, seed, task_ids, contexts)
    tok = policy.tokenizer
    batch = RolloutBatch(dialogues, [prompt_ids(tok, assistant_messages(d.messages)) for d in dialogues], [[] for _ in dialogues],
                         [[] for _ in dialogues], [[] for _ in dialogues], end_id=turn_end_id(tok))  # the completions fill in below
    turns_written, tokens_written = [0] * len(dialogues), [0] * len(dialogues)  # tokens_written: the policy's own (not a forced end)
    for d in dialogues:
        d.terminated = TERMINATE in d.messages[-1].text  # the user ended the chat in its first message or the context
    live = [i for i, d in enumerate(dialogues) if not d.terminated]
    stream = policy_stream(policy, [batch.prompt_ids[i] for i in live]) if live else None
    while live:
        for i, g in zip(live, stream.sample(policy.max_new_tokens, policy.temperature)):  # type: ignore[union-attr]
            learn = int(learn_turns is None or turns_written[i] < learn_turns)
            turns_written[i] += 1
            tokens_written[i] += len(g.ids) - int(g.forced_end)
            batch.add(i, g.ids, g.logprobs, [learn] * (len(g.ids) - 1) + [0 if g.forced_end else learn])
            dialogues[i].messages.append(Message("assistant", g.text))
        answering = [i for i in live if len(dialogues[i].messages) < max_messages]
        still, segments = _user_turns(user, states, batch, answering, tok, max_messages) if answering else ([], [])
        if answering:
            rows = {i: r for r, i in enumerate(live)}
            stream.keep([rows[i] for i in still])  # type: ignore[union-attr]
            if still:
                stream.extend(segments)  # type: ignore[union-attr]
        live = still
    batch.generated_tokens = sum(tokens_written) + user.generated_tokens - user_tokens_before
    batch.seconds = time.perf_counter() - start  # generation only; scoring below is the reward's work
    for d, n in zip(dialogues, tokens_written):
        d.scores = {**task.score(d), "assistant_tokens": float(n), "turns": float(len(d.messages)), "verdict": verdict(task, d)}
    return batch


def policy_stream(policy: Policy, prompts: list[list[int]]) -> TokenStream | VllmStream:
    """Where the policy's turns are sampled: TRL's colocated vLLM engine where the policy has one, else the kit's own."""
    if policy.engine is not None:
        return VllmStream(policy.engine, policy.tokenizer, prompts)
    return TokenStream(policy.model, policy.tokenizer, prompts)


def _open(policy: Policy, user: User, task: Task, goals: Sequence[dict[str, Any]], max_messages: int, seed: int,
          task_ids: Sequence[str] | None, contexts: Sequence[Sequence[Message]] | None) -> tuple[list[Any], list[Dialogue]]:
    """The user's state and the opened Dialogue of every goal: the user's first message, or the logged context."""
    if contexts is not None and len(contexts) != len(goals):
        raise ValueError(f"{len(contexts)} contexts for {len(goals)} goals")
    rngs = [np.random.default_rng([seed, i]) for i in range(len(goals))]
    states = [user.open(task, g, r) for g, r in zip(goals, rngs)]
    ids = list(task_ids) if task_ids is not None else [f"{task.name}-{i}" for i in range(len(goals))]
    if contexts is None:
        histories = [[Message("user", t)] for t in user.first_messages(states)]
    else:
        histories = [[Message(m.role, m.text) for m in c] for c in contexts]
        for n, h in enumerate(histories):
            if not h or len(h) % 2 == 0 or any(m.role != ("user", "assistant")[k % 2] for k, m in enumerate(h)):
                raise ValueError(f"context {n} must alternate user/assistant messages, starting and ending with the user")
            if len(h) >= max_messages:
                raise ValueError(f"context {n} has {len(h)} messages, the budget is {max_messages}: no turn is left to write")
        for s, h in zip(states, histories):
            user.resume(s, h)
    return states, [Dialogue(task.name, tid, dict(g), h, user=user.name, policy=policy.name) for tid, g, h in zip(ids, goals, histories)]


def _user_turns(user: User, states: list[Any], batch: RolloutBatch, answering: list[int], tok: Any,
                max_messages: int) -> tuple[list[int], list[list[int]]]:
    """The user's reply in every dialogue of ``answering``; returns the dialogues that go on and, for each, the token
    segment the policy reads next (the reply and the opening of its own turn), which is recorded with mask 0."""
    dialogues = batch.dialogues
    texts = user.replies([states[i] for i in answering], [dialogues[i].messages for i in answering])
    still, segments = [], []
    for i, text in zip(answering, texts):
        d = dialogues[i]
        d.messages.append(Message("user", text))
        if TERMINATE in text:
            d.terminated = True
        elif len(d.messages) < max_messages:
            seg = next_segment_ids(tok, assistant_messages(d.messages[:-1]), {"role": "user", "content": text}, "assistant")
            batch.add(i, seg, [0.0] * len(seg), [0] * len(seg))
            still.append(i)
            segments.append(seg)
    return still, segments


def rollout_one_at_a_time(policy: Policy, user: User, task: Task, goals: Sequence[dict[str, Any]], max_messages: int = 14, seed: int = 0) -> RolloutBatch:
    """The naive loop: the same engine, one dialogue at a time (for the benchmark)."""
    start = time.perf_counter()
    parts = [rollout(policy, user, task, [g], max_messages, seed=seed + i) for i, g in enumerate(goals)]
    out = RolloutBatch([d for p in parts for d in p.dialogues], end_id=turn_end_id(policy.tokenizer))
    for p in parts:
        out.prompt_ids += p.prompt_ids
        out.completion_ids += p.completion_ids
        out.logprobs += p.logprobs
        out.env_mask += p.env_mask
        out.generated_tokens += p.generated_tokens
    out.seconds = time.perf_counter() - start
    return out


def rollout_in_batches(policy: Policy, user: User, task: Task, goals: Sequence[dict[str, Any]], max_messages: int, seed: int, batch_size: int,
                       label: str, desc: str, progress: bool = True, unit: str = "batch") -> list[Dialogue]:
    """Dialogues on ``goals``, ``batch_size`` at a time (a profile's ``eval_batch``: batches keep memory flat); the
    batch starting at goal ``start`` uses seed ``seed + start``, and dialogue ``i`` is named ``<task>-<label>-<seed>-<i>``."""
    from tqdm.auto import tqdm

    dialogues: list[Dialogue] = []
    for start in tqdm(range(0, len(goals), batch_size), desc=desc, unit=unit, disable=not progress or no_bars()):
        part = goals[start : start + batch_size]
        ids = [f"{task.name}-{label}-{seed}-{start + i}" for i in range(len(part))]
        dialogues += rollout(policy, user, task, part, max_messages, seed=seed + start, task_ids=ids).dialogues
    return dialogues


def mean_scores(dialogues: Sequence[Dialogue]) -> dict[str, float]:
    """Mean of each score over dialogues."""
    keys = sorted({k for d in dialogues for k in d.scores})
    return {k: float(np.mean([d.scores[k] for d in dialogues if k in d.scores])) for k in keys}


def compare_users(policy: Policy, users: dict[str, User], goals_by_task: dict[str, Sequence[dict[str, Any]]],
                  max_messages: int = 14, seed: int = 0) -> dict[str, dict[str, list[Dialogue]]]:
    """The same policy and the same goals with each user: {task name: {user name: dialogues}}."""
    from tqdm.auto import tqdm

    out: dict[str, dict[str, list[Dialogue]]] = {}
    jobs = [(t, u) for t in goals_by_task for u in users]
    for task, name in tqdm(jobs, desc="rollouts", unit="batch", disable=no_bars()):
        out.setdefault(task, {})[name] = rollout(policy, users[name], get_task(task), goals_by_task[task], max_messages, seed=seed).dialogues
    return out
