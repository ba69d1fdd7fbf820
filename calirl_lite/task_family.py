"""A task family and the scripted people who play it: what every family of the kit shares.

* :class:`Task` — a family's interface: hidden goals, what its users say, how an assistant's turn is read, how a
  dialogue is scored. The toy world's families are in :mod:`calirl_lite.toy_tasks`, the English world's in
  :mod:`calirl_lite.english_tasks`; :mod:`calirl_lite.tasks` finds any of them by name.
* **Users** are scripted stochastic programs following CollabLLM's user rules: minimal effort
  (vague first message), reveal a detail when asked, occasionally give a wrong value (and
  correct it when the answer comes out wrong), end with ``[[TERMINATE CHAT]]``. How much they
  reveal unprompted, how easily they accept a wrong answer, how much a rejection tells and how
  they take questions are :class:`UserPersona` knobs. The *real* users of both worlds are :data:`REAL_USER`: they
  answer questions patiently and seldom say what is wrong. :data:`SINGLE_ERRORS` moves one of their behaviours at a
  time (the mismatch lab's simulators).
* **Scripted assistants** of mixed quality (:class:`AssistantPersona`) write the toy corpus's
  assistant turns; they are not the policy, which is a language model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dialogue import TERMINATE, Dialogue, Message

ACCEPT = "great , thanks !"
REJECT = "no , that is not right ."
CONFUSED = "what do you mean ?"
NOT_SURE = "i am not sure ."
GIVE_UP = "never mind , bye ."


# ----------------------------------------------------------------------------- personas


@dataclass(frozen=True)
class UserPersona:
    """How a scripted user behaves. Every field is a probability unless said otherwise."""

    name: str
    """label written into Dialogue.user"""
    reveal_first: float
    """chance that each hidden detail is already in the first message"""
    p_answer_when_asked: float
    """chance of giving a detail when the assistant asks for it"""
    p_unprompted_reveal: float
    """chance, per turn, of volunteering one detail nobody asked for"""
    p_mistake: float
    """chance that a detail given is wrong (the user corrects it when the answer comes out wrong)"""
    p_accept_wrong: float
    """chance of accepting a wrong answer or an imperfect document and ending the chat"""
    patience: int = 99
    """wrong answers (or imperfect drafts) the user rejects before giving up and ending the chat"""
    p_point_out: float = 1.0
    """chance that rejecting an answer also says which detail is wrong (real users rarely do: a rejected draft then
    tells the assistant little, so it has to ask)"""
    corrections: int = 1
    """details a rejection that points out names at most: the real users name one; the corpus's users name every
    detail the answer got wrong"""
    p_quit_on_question: float = 0.0
    """chance that a question makes the user leave ("never mind , bye .") — the real users answer patiently; the
    corpus's forthcoming users would rather be shown an answer and correct it"""


REAL_USER = UserPersona("real", reveal_first=0.0, p_answer_when_asked=0.95, p_unprompted_reveal=0.05, p_mistake=0.05, p_accept_wrong=0.05,
                        patience=3, p_point_out=0.2)
"""The world's real users (and its oracle simulator): they withhold, answer questions, rarely accept a wrong answer,
seldom say what is wrong with one, and give up after the third wrong one — guessing does not pay with them."""

SINGLE_ERRORS: dict[str, tuple[str, dict[str, float]]] = {
    "over-forthcoming": ("reveals hidden details nobody asked for", {"p_unprompted_reveal": 1.0}),
    "sycophantic": ("accepts wrong answers and ends the dialogue satisfied", {"p_accept_wrong": 1.0}),
    "question-averse": ("leaves when asked a question", {"p_quit_on_question": 1.0}),
    "over-correcting": ("names every wrong detail of a rejected answer", {"p_point_out": 1.0, "corrections": 4}),
    "impatient": ("gives up at the first wrong answer", {"patience": 1}),
}
"""The mismatch lab's simulator errors: what each does, and the behaviour it moves (to its extreme at strength 1)."""


def single_error_persona(error: str, strength: float = 1.0, real: UserPersona = REAL_USER) -> UserPersona:
    """The real users with exactly one behaviour moved a fraction ``strength`` of the way to its extreme
    (:data:`SINGLE_ERRORS`); everything else stays the real users'. Whole-number behaviours (patience, corrections)
    are rounded. ``strength = 0`` is the real user."""
    if error not in SINGLE_ERRORS:
        raise ValueError(f"unknown simulator error {error!r}; known: {', '.join(SINGLE_ERRORS)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    moved = {}
    for field_name, extreme in SINGLE_ERRORS[error][1].items():
        value = (1 - strength) * getattr(real, field_name) + strength * extreme
        moved[field_name] = round(value) if isinstance(getattr(real, field_name), int) else value
    return dataclasses.replace(real, name=f"{error}-{strength:g}", **moved)


@dataclass(frozen=True)
class AssistantPersona:
    """A scripted assistant of the corpus."""

    name: str
    """label"""
    p_ask: float
    """chance of asking for a missing detail instead of answering with a guess"""
    p_error: float
    """chance of a wrong answer (arith) or a wrong slot in a draft (docedit) even when everything is known"""


@dataclass
class Intent:
    """What an assistant message does, as a scripted user reads it."""

    kind: str  # "ask", "answer" or "other"
    slots: tuple[str, ...] = ()
    value: Any = None


class Task:
    """A task family: hidden goals, what users say, how assistant turns are read, how dialogues are scored."""

    name: str = ""
    slots: tuple[str, ...] = ()
    metric: str = ""
    goal_fields: dict[str, type] = {}
    """the fields of a hidden goal that users and scores read, and their types (checked when goals are read)"""
    phrases: dict[str, tuple[str, ...]] = {"accept": (ACCEPT,), "reject": (REJECT,), "confused": (CONFUSED,), "not_sure": (NOT_SURE,),
                                           "give_up": (GIVE_UP,)}
    """what a scripted user says to accept, reject, ask what the assistant means, not know, or give up (one of them
    at random where there are several; the toy world has one of each)"""

    def say(self, kind: str, rng: np.random.Generator) -> str:
        options = self.phrases[kind]
        return options[0] if len(options) == 1 else options[int(rng.integers(len(options)))]  # one option: no draw

    def check_goal_values(self, goal: dict[str, Any]) -> None:
        """Beyond the fields' types: values the task's code relies on (a ``ValueError`` names the field)."""

    # -- goals
    def sample_goal(self, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def goal_text(self, goal: dict[str, Any]) -> str:
        """The hidden goal as the user simulator's prompt states it."""
        raise NotImplementedError

    # -- the user's side
    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        raise NotImplementedError

    def reveal(self, goal: dict[str, Any], slot: str, value: Any) -> str:
        raise NotImplementedError

    def wrong_value(self, goal: dict[str, Any], slot: str, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def parse_user(self, text: str) -> dict[str, Any]:
        """Details a user message states, slot → value (the last mention wins)."""
        raise NotImplementedError

    # -- the assistant's side
    def parse_assistant(self, text: str) -> Intent:
        raise NotImplementedError

    def ask(self, slot: str, goal_public: dict[str, Any]) -> str:
        raise NotImplementedError

    def answer(self, known: dict[str, Any], rng: np.random.Generator, p_error: float) -> str:
        raise NotImplementedError

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        raise NotImplementedError

    def wrong_slots(self, goal: dict[str, Any], intent: Intent) -> list[str]:
        """Slots the user can point at when rejecting an answer (docedit: wrong slots in the draft)."""
        return []

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        raise NotImplementedError


# ----------------------------------------------------------------------------- scripted people


@dataclass
class ScriptedUser:
    """A scripted user with a hidden goal; ``reply`` reads the assistant's turn and answers it."""

    task: Task
    goal: dict[str, Any]
    persona: UserPersona
    rng: np.random.Generator
    told: dict[str, Any] = field(default_factory=dict)  # slot → value the user has given (maybe wrong)
    rejected: int = 0  # wrong answers rejected so far

    def _give(self, slot: str) -> str:
        value = self.goal[slot]
        if slot not in self.told and self.rng.random() < self.persona.p_mistake:
            value = self.task.wrong_value(self.goal, slot, self.rng)
        self.told[slot] = value
        return self.task.reveal(self.goal, slot, value)

    def first_message(self) -> str:
        for slot in self.task.slots:
            if self.rng.random() < self.persona.reveal_first:
                self._give(slot)
        return self.task.first_message(self.goal, self.told)

    def _say(self, kind: str) -> str:
        return self.task.say(kind, self.rng)

    def reply(self, assistant_text: str) -> str:
        intent = self.task.parse_assistant(assistant_text)
        parts: list[str] = []
        asked: tuple[str, ...] = ()
        if intent.kind == "answer":
            if self.task.answer_is_right(self.goal, intent) or self.rng.random() < self.persona.p_accept_wrong:
                return f"{self._say('accept')} {TERMINATE}"
            parts.append(self._say("reject"))
            self.rejected += 1
            if self.rejected >= self.persona.patience:
                return f"{parts[0]} {self._say('give_up')} {TERMINATE}"
            wrong = [s for s in self.task.slots if s in self.told and self.told[s] != self.goal[s]]
            if self.rng.random() < self.persona.p_point_out:
                pointed = [s for s in self.task.wrong_slots(self.goal, intent) if s not in wrong]
                wrong += sorted(pointed, key=lambda s: s in self.told)  # what the assistant could not know first
            for slot in wrong[: max(1, self.persona.corrections)]:  # the user's own mistake first, then what the answer got wrong
                self.told[slot] = self.goal[slot]
                parts.append(self.task.reveal(self.goal, slot, self.goal[slot]))
        elif intent.kind == "ask":
            if self.persona.p_quit_on_question and self.rng.random() < self.persona.p_quit_on_question:
                return f"{self._say('give_up')} {TERMINATE}"
            asked = intent.slots
            for slot in asked:
                parts.append(self._give(slot) if self.rng.random() < self.persona.p_answer_when_asked else self._say("not_sure"))
        else:
            parts.append(self._say("confused"))
        missing = [s for s in self.task.slots if s not in self.told and s not in asked]
        if missing and self.rng.random() < self.persona.p_unprompted_reveal:
            parts.append(self._give(missing[0]))
        return " ".join(parts)


@dataclass
class ScriptedAssistant:
    """A corpus assistant: asks for what it does not know (with probability p_ask) or answers."""

    task: Task
    persona: AssistantPersona
    rng: np.random.Generator

    def reply(self, messages: list[Message]) -> str:
        known = dict(self.task.public_info(messages[0].text))
        for m in messages:
            if m.role == "user":
                known.update(self.task.parse_user(m.text))
        asked_before = {s for m in messages if m.role == "assistant" for s in self.task.parse_assistant(m.text).slots}
        missing = [s for s in self.task.slots if s not in known and s not in asked_before]
        if missing and self.rng.random() < self.persona.p_ask:
            return self.task.ask(missing[0], known)
        return self.task.answer(known, self.rng, self.persona.p_error)
