"""Scoring a policy: whole dialogues with a user on held-out goals, and the mean of each score.

:func:`evaluate_policy` is the one evaluation loop of the kit — the before/after rewards of
``calirl train``, the reward against each training simulator and against the real users in
notebook 04, and the table of notebook 05 all come from it. With the same seed, policy, user and
goals it gives the same dialogues and scores on CPU.
"""

from __future__ import annotations

from typing import Any, Sequence

from .dialogue import Dialogue
from .rollout import Policy, mean_scores, rollout
from .users import User

EVAL_BATCH = 64
"""dialogues run together per evaluation batch (keeps memory flat)"""


def evaluate_policy(policy: Policy, user: User, task: str, goals: Sequence[dict[str, Any]], max_messages: int, seed: int,
                    progress: bool = False) -> tuple[dict[str, float], list[Dialogue]]:
    """(mean scores, dialogues) of ``policy`` with ``user`` on ``goals``; scores are the task metric,
    ``assistant_tokens`` and ``turns`` (see :func:`calirl_lite.rollout.rollout`)."""
    from tqdm.auto import tqdm

    if not goals:
        raise ValueError("no goals to evaluate on")
    was_training = getattr(policy.model, "training", False)
    policy.model.eval()
    dialogues: list[Dialogue] = []
    starts = range(0, len(goals), EVAL_BATCH)
    for start in tqdm(starts, desc=f"eval {policy.name} with {user.name}", unit="batch", disable=not progress):
        part = goals[start : start + EVAL_BATCH]
        ids = [f"{task}-eval-{seed}-{start + i}" for i in range(len(part))]
        dialogues += rollout(policy, user, task, part, max_messages, seed=seed + start, task_ids=ids).dialogues
    if was_training:
        policy.model.train()
    return mean_scores(dialogues), dialogues
