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
* ``answer_when_asked_rate`` — of the questions about a detail, the share the user answered with that detail;
* ``reject_right_rate`` — of the right answers / drafts, the share the user rejected;
* ``misstated_value_rate`` — of the details users stated (each time they stated one), the share with a value that is not
  the hidden goal's;
* ``mean_user_words`` — words per user message;
* ``termination_rate`` — share of dialogues the user ended with ``[[TERMINATE CHAT]]``;
* ``mean_messages`` — messages per dialogue (when the chat ended).

:func:`behaviour_tv` gives, per statistic, the total-variation distance between two groups of
dialogues: |p − q| for the rates (Bernoulli distributions) and the TV of the empirical
distributions for user-message length and dialogue length.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Sequence

import numpy as np

from .dialogue import TERMINATE, Dialogue
from .io import atomic_write_json, json_safe
from .rollout import mean_scores
from .task_family import REAL_USER, UserPersona
from .tasks import get_task
from .users import PERSONA_NUMBERS, says

RATE_STATS = ("unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate", "answer_when_asked_rate", "reject_right_rate",
              "misstated_value_rate", "termination_rate")
PER_TURN_STATS = ("unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate")
"""Four rates of one user turn's behaviour, whose mean TV is the readable summary of a gap (:func:`proxy_gap`) kept
beside the exact per-turn gap of :mod:`calirl_lite.exact_gap`."""


def proxy_gap(sim: Sequence[Dialogue], real: Sequence[Dialogue]) -> float:
    """The four-rate summary of a gap: the mean TV of :data:`PER_TURN_STATS` between a simulator's dialogues and the
    real users' (a behaviour never met counts 0). Readable, but blind to most of what a reply can do — the exact
    per-turn gap is :func:`calirl_lite.exact_gap.exact_gap`."""
    tv = behaviour_tv(sim, real)
    return float(np.mean([np.nan_to_num(tv[k]) for k in PER_TURN_STATS]))


def _events(dialogues: Sequence[Dialogue]) -> dict[str, list]:
    ev: dict[str, list] = {"unprompted": [], "accept_wrong": [], "point_out": [], "quit": [], "answered": [], "reject_right": [], "misstated": [],
                           "user_words": [], "terminated": [], "messages": []}
    for d in dialogues:
        task = get_task(d.task)
        given: set[str] = set()
        for k, m in enumerate(d.messages):
            if m.role != "user":
                continue
            ev["user_words"].append(len(m.text.split()))
            prev = task.parse_assistant(d.messages[k - 1].text) if k > 0 else None
            said = task.parse_user(m.text)
            ev["misstated"] += [said[s] != d.goal.get(s) for s in said]
            for slot in said:
                if slot not in given:
                    given.add(slot)
                    if prev is None or prev.kind != "answer":  # after an answer it is a correction, not a volunteered detail
                        ev["unprompted"].append(prev is None or slot not in prev.slots)
            if prev is not None and prev.kind == "answer" and task.answer_is_right(d.goal, prev):
                ev["reject_right"].append(says(task, "reject", m.text))
            if prev is not None and prev.kind == "answer" and not task.answer_is_right(d.goal, prev):
                accepted = TERMINATE in m.text and not says(task, "reject", m.text)
                ev["accept_wrong"].append(accepted)
                if says(task, "reject", m.text) and not says(task, "give_up", m.text):
                    ev["point_out"].append(bool(task.parse_user(m.text)))
            if prev is not None and prev.kind == "ask":
                ev["quit"].append(says(task, "give_up", m.text) and TERMINATE in m.text)
                if prev.slots:
                    ev["answered"].append(bool(set(prev.slots) & set(said)))
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
        "answer_when_asked_rate": _mean(ev["answered"]),
        "reject_right_rate": _mean(ev["reject_right"]),
        "misstated_value_rate": _mean(ev["misstated"]),
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
        "answer_when_asked_rate": abs(_mean(a["answered"]) - _mean(b["answered"])),
        "reject_right_rate": abs(_mean(a["reject_right"]) - _mean(b["reject_right"])),
        "misstated_value_rate": abs(_mean(a["misstated"]) - _mean(b["misstated"])),
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
                f"points out {s['point_out_rate']:.2f}  quits on a question {s['quit_on_question_rate']:.2f}  answers when asked "
                f"{s['answer_when_asked_rate']:.2f}  rejects right {s['reject_right_rate']:.2f}  misstates {s['misstated_value_rate']:.2f}  "
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


# ----------------------------------------------------------------------------- a scripted user fitted to dialogues


def _persona_events(dialogues: Sequence[Dialogue]) -> dict[str, list]:
    ev: dict[str, list] = {"first": [], "given": [], "asked": [], "volunteer": [], "point_out": [], "gave_up_after": []}
    for d in dialogues:
        task, told, rejections = get_task(d.task), {}, 0
        for k, m in enumerate(d.messages):
            if m.role != "user":
                continue
            said = task.parse_user(m.text)
            prev = task.parse_assistant(d.messages[k - 1].text) if k > 0 else None
            after_answer = prev is not None and prev.kind == "answer"
            if prev is None:
                ev["first"] += [s in said for s in task.slots]
            if not after_answer:  # a correction states the goal's value; only a first statement can be a mistake
                ev["given"] += [said[s] == d.goal.get(s) for s in said if s not in told]
            if prev is not None and prev.kind == "ask":
                ev["asked"] += [s in said for s in prev.slots]
            if prev is not None and not after_answer and TERMINATE not in m.text:
                missing = [s for s in task.slots if s not in told and s not in prev.slots]
                if missing:
                    ev["volunteer"].append(any(s in said for s in missing))
            if after_answer and not task.answer_is_right(d.goal, prev) and says(task, "reject", m.text):
                rejections += 1
                if says(task, "give_up", m.text):
                    ev["gave_up_after"].append(rejections)
                elif all(told[s] == d.goal.get(s) for s in told):  # a user's own wrong value is corrected whatever p_point_out says
                    ev["point_out"].append(bool(said))
            told.update(said)
    return ev


def fit_persona(dialogues: Sequence[Dialogue], name: str = "fitted") -> UserPersona:
    """The scripted user whose behaviours match the users of ``dialogues`` one by one (each a share of the occasions
    for it, as :class:`~calirl_lite.task_family.ScriptedUser` draws it): details in the first message, details given
    when asked, volunteered on a turn that was no answer, first statements that are right, wrong answers accepted, a
    rejection that names a detail, leaving on a question, and the rejections before giving up (the median; the real
    users' where nobody gave up). What no persona can do — rejecting a right answer, text outside the task's phrases —
    it leaves out: training against the fitted user asks whether a simulator's *rates* are what its policy learns from.

    """
    ev, seen = _persona_events(dialogues), _events(dialogues)

    def share(values: list, default: float) -> float:
        return round(float(np.mean(values)), 3) if values else default

    real = REAL_USER
    return dataclasses.replace(
        real, name=name, reveal_first=share(ev["first"], real.reveal_first), p_answer_when_asked=share(ev["asked"], real.p_answer_when_asked),
        p_unprompted_reveal=share(ev["volunteer"], real.p_unprompted_reveal), p_mistake=round(1 - share(ev["given"], 1 - real.p_mistake), 3),
        p_accept_wrong=share(seen["accept_wrong"], real.p_accept_wrong), p_point_out=share(ev["point_out"], real.p_point_out),
        p_quit_on_question=share(seen["quit"], real.p_quit_on_question),
        patience=int(np.median(ev["gave_up_after"])) if ev["gave_up_after"] else real.patience)


def persona_spec(persona: UserPersona) -> str:
    """The spec of ``persona`` for ``--user`` (:func:`~calirl_lite.users.persona_from_spec`): every behaviour that
    differs from the real users', ``name=value``, comma-separated."""
    return ",".join(f"{f}={getattr(persona, f)}" for f in PERSONA_NUMBERS if getattr(persona, f) != getattr(REAL_USER, f))
