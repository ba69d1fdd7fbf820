"""Behaviour statistics of users, read off dialogues, and their distance to the real users'.

The same reader serves every kind of user (scripted, LM, endpoint), since it only looks at the
text: which hidden details a user message states (``Task.parse_user``) and what the assistant
turn before it asked for or answered (``Task.parse_assistant``).

* ``unprompted_reveal_rate`` — of the hidden details a user gave before any answer pointed at
  them, the share given without being asked for (the first message counts as unasked;
  corrections of a wrong answer or draft are not counted);
* ``accept_wrong_rate`` — of the wrong answers / imperfect drafts, the share the user accepted
  by ending the chat;
* ``point_out_rate`` — of the wrong answers / drafts the user rejected, the share whose rejection
  names a detail (a correction);
* ``quit_on_question_rate`` — of the questions, the share the user answered by leaving
  (``never mind , bye .``);
* ``mean_user_words`` — words per user message;
* ``termination_rate`` — share of dialogues the user ended with ``[[TERMINATE CHAT]]``;
* ``mean_messages`` — messages per dialogue (when the chat ended).

:func:`behaviour_tv` gives, per statistic, the total-variation distance between two groups of
dialogues: |p − q| for the rates (Bernoulli distributions) and the TV of the empirical
distributions for user-message length and dialogue length.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from .dialogue import TERMINATE, Dialogue
from .io import atomic_write_json, json_safe
from .rollout import mean_scores
from .tasks import get_task
from .users import says

RATE_STATS = ("unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate", "termination_rate")
PER_TURN_STATS = ("unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate")
"""The rates of one user turn's behaviour: the gap-versus-drop study's per-turn gap ε is the mean of their TVs."""


def _events(dialogues: Sequence[Dialogue]) -> dict[str, list]:
    ev: dict[str, list] = {"unprompted": [], "accept_wrong": [], "point_out": [], "quit": [], "user_words": [], "terminated": [], "messages": []}
    for d in dialogues:
        task = get_task(d.task)
        given: set[str] = set()
        for k, m in enumerate(d.messages):
            if m.role != "user":
                continue
            ev["user_words"].append(len(m.text.split()))
            prev = task.parse_assistant(d.messages[k - 1].text) if k > 0 else None
            for slot in task.parse_user(m.text):
                if slot not in given:
                    given.add(slot)
                    if prev is None or prev.kind != "answer":  # after an answer it is a correction, not a volunteered detail
                        ev["unprompted"].append(prev is None or slot not in prev.slots)
            if prev is not None and prev.kind == "answer" and not task.answer_is_right(d.goal, prev):
                accepted = TERMINATE in m.text and not says(task, "reject", m.text)
                ev["accept_wrong"].append(accepted)
                if says(task, "reject", m.text) and not says(task, "give_up", m.text):
                    ev["point_out"].append(bool(task.parse_user(m.text)))
            if prev is not None and prev.kind == "ask":
                ev["quit"].append(says(task, "give_up", m.text) and TERMINATE in m.text)
        ev["terminated"].append(d.terminated)
        ev["messages"].append(len(d.messages))
    return ev


def _mean(x: list) -> float:
    return float(np.mean(x)) if x else float("nan")


def behaviour_stats(dialogues: Sequence[Dialogue]) -> dict[str, float]:
    """The behaviour statistics of the users in ``dialogues`` (NaN where nothing was observed)."""
    ev = _events(dialogues)
    return {
        "unprompted_reveal_rate": _mean(ev["unprompted"]),
        "accept_wrong_rate": _mean(ev["accept_wrong"]),
        "point_out_rate": _mean(ev["point_out"]),
        "quit_on_question_rate": _mean(ev["quit"]),
        "mean_user_words": _mean(ev["user_words"]),
        "termination_rate": _mean(ev["terminated"]),
        "mean_messages": _mean(ev["messages"]),
    }


def _tv_counts(a: list, b: list) -> float:
    if not a or not b:
        return float("nan")
    ca, cb = Counter(a), Counter(b)
    return 0.5 * sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in set(ca) | set(cb))


def behaviour_tv(dialogues: Sequence[Dialogue], reference: Sequence[Dialogue]) -> dict[str, float]:
    """Per-statistic total-variation distance of ``dialogues``' users from ``reference``'s (e.g. the real users)."""
    a, b = _events(dialogues), _events(reference)
    return {
        "unprompted_reveal_rate": abs(_mean(a["unprompted"]) - _mean(b["unprompted"])),
        "accept_wrong_rate": abs(_mean(a["accept_wrong"]) - _mean(b["accept_wrong"])),
        "point_out_rate": abs(_mean(a["point_out"]) - _mean(b["point_out"])),
        "quit_on_question_rate": abs(_mean(a["quit"]) - _mean(b["quit"])),
        "user_words": _tv_counts(a["user_words"], b["user_words"]),
        "termination_rate": abs(_mean(a["terminated"]) - _mean(b["terminated"])),
        "messages": _tv_counts(a["messages"], b["messages"]),
    }


def users_report(dialogues: dict[str, dict[str, list[Dialogue]]], reference: str = "real") -> dict[str, Any]:
    """Per task: each user's behaviour statistics, TV to the ``reference`` user, and the policy's mean scores."""

    report: dict[str, Any] = {}
    for task, by_user in dialogues.items():
        if reference not in by_user:
            raise ValueError(f"no dialogues with the reference user {reference!r} for {task}")
        report[task] = {
            name: {"stats": behaviour_stats(ds), "tv_to_" + reference: behaviour_tv(ds, by_user[reference]), "scores": mean_scores(ds), "n": len(ds)}
            for name, ds in by_user.items()
        }
    return report


def format_report(report: dict[str, Any], reference: str = "real") -> str:
    """The report as text: one block per task, one line per user."""
    lines = []
    for task, by_user in report.items():
        lines.append(f"{task}")
        for name, r in by_user.items():
            s, tv, sc = r["stats"], r["tv_to_" + reference], r["scores"]
            metric = "accuracy" if "accuracy" in sc else "bleu"
            lines.append(
                f"  {name:>11}: unprompted reveal {s['unprompted_reveal_rate']:.2f}  accept wrong {s['accept_wrong_rate']:.2f}  "
                f"points out {s['point_out_rate']:.2f}  quits on a question {s['quit_on_question_rate']:.2f}  "
                f"words/turn {s['mean_user_words']:.1f}  terminates {s['termination_rate']:.2f}  | policy {metric} {sc[metric]:.3f}"
            )
            if name != reference:
                lines.append("  " + " " * 13 + "TV to " + reference + ": " + "  ".join(f"{k} {v:.2f}" for k, v in tv.items()))
    return "\n".join(lines)


def save_report(report: dict[str, Any], path: Any) -> None:
    """Write a users report as JSON (atomically; NaN becomes null)."""

    atomic_write_json(path, json_safe(report))


# ----------------------------------------------------------------------------- turn by turn

POLICY_ACTS = ("ask", "answer", "other")
"""What an assistant turn does, as the task reads it (an answer is a draft in docedit-chat)."""
USER_ACTS = ("gives details", "accepts", "rejects", "leaves", "other")
"""What a user's reply does (in this order of precedence)."""


def user_act(task: Any, text: str) -> str:
    """One of :data:`USER_ACTS` for a user message."""
    if says(task, "give_up", text) and TERMINATE in text:
        return "leaves"
    if says(task, "reject", text):
        return "rejects"
    if TERMINATE in text:
        return "accepts"
    return "gives details" if task.parse_user(text) else "other"


def turn_profile(dialogues: Sequence[Dialogue], max_turns: int = 7) -> dict[str, Any]:
    """How dialogues drift turn by turn. For each assistant turn k = 0, 1, … of the dialogues still going there:
    the share whose context (the user's messages so far) already states each hidden detail, the policy's action mix
    at that turn, and the mix of the user's replies to it. Every dialogue must be of one task."""
    tasks = {d.task for d in dialogues}
    if len(tasks) != 1:
        raise ValueError(f"a turn profile is of one task's dialogues, got {sorted(tasks) or 'none'}")
    task = get_task(tasks.pop())
    turns = []
    for k in range(max_turns):
        knows: Counter = Counter()
        policy: Counter = Counter()
        user: Counter = Counter()
        alive = 0
        for d in dialogues:
            assistant = [i for i, m in enumerate(d.messages) if m.role == "assistant"]
            if k >= len(assistant):
                continue
            at = assistant[k]
            alive += 1
            known = {s for m in d.messages[:at] if m.role == "user" for s in task.parse_user(m.text)}
            knows.update(known & set(task.slots))
            policy[task.parse_assistant(d.messages[at].text).kind] += 1
            if at + 1 < len(d.messages):
                user[user_act(task, d.messages[at + 1].text)] += 1
        share = (lambda c, keys, n: {key: c[key] / n if n else float("nan") for key in keys})  # noqa: E731
        turns.append({"alive": alive / len(dialogues), "knows": share(knows, task.slots, alive), "policy": share(policy, POLICY_ACTS, alive),
                      "user": share(user, USER_ACTS, sum(user.values()))})
    return {"task": task.name, "slots": list(task.slots), "turns": turns}
