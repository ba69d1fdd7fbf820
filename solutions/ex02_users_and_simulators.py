"""Notebook 02: the per-turn gap between two users, and a behaviour statistic read off dialogues."""

import math

from calirl_lite.dialogue import TERMINATE
from calirl_lite.tasks import get_task

PER_TURN = ("unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate")


def per_turn_gap(sim_rates, real_rates):
    """ε: the mean |sim − real| over the four per-turn behaviours; a behaviour never met (NaN) counts as 0."""
    gaps = [abs(sim_rates[k] - real_rates[k]) for k in PER_TURN]
    return sum(0.0 if math.isnan(g) else g for g in gaps) / len(gaps)


def accept_wrong_rate(dialogues):
    """Of the user messages that answer a wrong answer or draft, the share that end the chat without a rejection."""
    accepted, seen = 0, 0
    for d in dialogues:
        task = get_task(d.task)
        for k, m in enumerate(d.messages):
            if m.role != "user" or k == 0:
                continue
            intent = task.parse_assistant(d.messages[k - 1].text)
            if intent.kind == "answer" and not task.answer_is_right(d.goal, intent):
                seen += 1
                accepted += TERMINATE in m.text and not any(p in m.text for p in task.phrases["reject"])
    return accepted / seen if seen else float("nan")
