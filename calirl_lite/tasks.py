"""The task families and their scripted people: the toy world's two, and the English world's two.

* **arith-chat** — the user has a hidden two-step word problem ("tom has 12 apples . then tom
  buys 5 apples ."); the first message may leave the numbers out; the assistant must ask for
  them and answer "the answer is N ."; scored by accuracy.
* **docedit-chat** — the user wants a short note with hidden slots (who, where, which day,
  formal or casual); the assistant asks or drafts ("here is the note : …"); the user corrects
  the draft; scored by BLEU (sacrebleu) of the final draft against the hidden target.

All text is lower-case words separated by single spaces, so any tokenizer round-trips it.

The **English world** (:class:`MathChat`, :class:`DocChat`, for instruction-tuned models) has the same two
families in plain English — GSM-style word problems (math-chat) and an invitation note (doc-chat) — whose users
write with some variety and read an assistant's free text as a person would.

**Users** are scripted stochastic programs following CollabLLM's user rules: minimal effort
(vague first message), reveal a detail when asked, occasionally give a wrong value (and
correct it when the answer comes out wrong), end with ``[[TERMINATE CHAT]]``. How much they
reveal unprompted, how easily they accept a wrong answer, how much a rejection tells and how
they take questions are :class:`UserPersona` knobs. The *real* users of the world are
:data:`REAL_USER`: they answer questions patiently and seldom say what is wrong. The synthetic
pre-training corpus uses a different mix (:data:`CORPUS_USERS`, weighed in ``WorldConfig``):
users who volunteer details, name everything wrong in an answer, and — the forthcoming ones —
would rather leave than be asked. An LM that learned its users there is the *naive simulator*:
against it, answering first and being corrected pays; with the real users it does not.

**Scripted assistants** of mixed quality (:class:`AssistantPersona`) write the corpus's
assistant turns; they are not the policy, which is a language model.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dialogue import TERMINATE, Dialogue, Message
from .mathcheck import math_correct

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

CORPUS_USERS = {
    "forthcoming": UserPersona("forthcoming", reveal_first=0.3, p_answer_when_asked=0.5, p_unprompted_reveal=0.2, p_mistake=0.0, p_accept_wrong=0.1,
                               corrections=4, p_quit_on_question=0.9),
    "cooperative": UserPersona("cooperative", reveal_first=0.3, p_answer_when_asked=1.0, p_unprompted_reveal=0.2, p_mistake=0.02, p_accept_wrong=0.3,
                               corrections=4),
    "withholding": REAL_USER,
}
"""User personas of the pre-training corpus; ``WorldConfig.corpus_user_mix`` weighs them. The forthcoming users are
impatient with questions (``p_quit_on_question``) and both corpus personas name every wrong detail of an answer
(``corrections``), so against the LM that learned them answering first and being corrected pays — a lesson that fails
with the real users (CHANGELOG.md, "Format 5", says why the corpus is so)."""


def graded_persona(w: float, far: UserPersona = CORPUS_USERS["forthcoming"], near: UserPersona = REAL_USER) -> UserPersona:
    """A simulator of graded quality: its per-turn behaviour moved a fraction ``w`` of the way from the real
    users' (``w = 0``: the real users themselves) toward ``far``'s (``w = 1``: the forthcoming corpus user) —
    how often it volunteers details, answers questions, leaves at a question, errs, accepts wrong answers, says
    what is wrong and how much, and its patience. It opens a dialogue as the real users do (``reveal_first`` is
    theirs), so the two users differ in per-turn rates only, as in notebook 01's bound. The gap-versus-drop study scores one policy with these users
    and with the real ones."""
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"w must be in [0, 1], got {w}")
    mix = lambda a, b: (1 - w) * a + w * b  # noqa: E731
    fields = ("p_answer_when_asked", "p_unprompted_reveal", "p_mistake", "p_accept_wrong", "p_point_out", "p_quit_on_question")
    values = {f: mix(getattr(near, f), getattr(far, f)) for f in fields}
    return UserPersona(f"graded-{w:g}", reveal_first=near.reveal_first, patience=round(mix(near.patience, far.patience)),
                       corrections=round(mix(near.corrections, far.corrections)), **values)


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


CORPUS_ASSISTANTS = {
    "careful": AssistantPersona("careful", p_ask=1.0, p_error=0.0),
    "sloppy": AssistantPersona("sloppy", p_ask=0.5, p_error=0.3),
    "hasty": AssistantPersona("hasty", p_ask=0.0, p_error=0.1),
}
"""Assistant personas of the pre-training corpus; ``WorldConfig.corpus_assistant_mix`` weighs them."""


# ----------------------------------------------------------------------------- tasks


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


NAMES = ("tom", "anna", "sam", "lily", "ben", "mia", "max", "zoe", "leo", "ella", "jack", "ruby", "noah", "ivy", "omar", "nina")
ITEMS = ("apples", "books", "coins", "cards", "stamps", "pens", "cookies", "shells")
VERBS = (("buys", "bought", 1), ("finds", "found", 1), ("gives away", "given away", -1), ("loses", "lost", -1))


class ArithChat(Task):
    """A hidden two-step word problem with a numeric answer."""

    name = "arith-chat"
    slots = ("start", "change")
    metric = "accuracy"
    goal_fields = {"name": str, "item": str, "verb": int, "start": int, "change": int, "answer": int}
    START = (2, 7)
    """smallest and largest starting quantity (small enough for the tiny LM to learn every sum)"""
    CHANGE_MAX = 3
    """largest change; a loss never takes the quantity below 1"""

    def sample_goal(self, rng: np.random.Generator) -> dict[str, Any]:
        verb = int(rng.integers(len(VERBS)))
        start = int(rng.integers(self.START[0], self.START[1] + 1))
        change = int(rng.integers(1, self.CHANGE_MAX + 1 if VERBS[verb][2] > 0 else min(self.CHANGE_MAX + 1, start)))
        return {
            "name": str(rng.choice(NAMES)), "item": str(rng.choice(ITEMS)), "verb": verb,
            "start": start, "change": change, "answer": start + VERBS[verb][2] * change,
        }

    def check_goal_values(self, goal: dict[str, Any]) -> None:
        if not 0 <= goal["verb"] < len(VERBS):
            raise ValueError(f"goal field 'verb' must be 0 to {len(VERBS) - 1} (one of {[v[0] for v in VERBS]}), got {goal['verb']}")

    def problem(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        n, item, verb = goal["name"], goal["item"], VERBS[goal["verb"]][0]
        a, b = told.get("start", "some"), told.get("change", "some")
        return f"{n} has {a} {item} . then {n} {verb} {b} {item} . how many {item} does {n} have now ?"

    def goal_text(self, goal: dict[str, Any]) -> str:
        return f"problem : {self.problem(goal, goal)} answer : {goal['answer']}"
    # each detail is revealed in the words of the hidden problem, key first ("then tom buys 2 apples ."), so a
    # simulator LM copies the value after the words it has just written

    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        return self.problem(goal, told)

    def reveal(self, goal: dict[str, Any], slot: str, value: Any) -> str:
        n, item = goal["name"], goal["item"]
        if slot == "start":
            return f"at the start {n} has {value} {item} ."
        return f"then {n} {VERBS[goal['verb']][0]} {value} {item} ."

    def wrong_value(self, goal: dict[str, Any], slot: str, rng: np.random.Generator) -> Any:
        return max(1, goal[slot] + int(rng.choice([-2, -1, 1, 2])))

    _START = re.compile(r"\bhas (\d+) \w+|(\d+) \w+ at the start")
    _CHANGE = re.compile(r"\b(?:buys|finds|gives away|loses) (\d+)\b|(\d+) \w+ were (?:bought|found|given away|lost)")

    def parse_user(self, text: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for slot, pattern in (("start", self._START), ("change", self._CHANGE)):
            for m in pattern.finditer(text):
                found[slot] = int(m.group(1) or m.group(2))
        return found

    _ANSWER = re.compile(r"the answer is (-?\d+)")

    def parse_assistant(self, text: str) -> Intent:
        m = self._ANSWER.search(text)
        if m:
            return Intent("answer", value=int(m.group(1)))
        asked = tuple(s for s, key in (("start", "at the start"), ("change", " were ")) if key in text and "how many" in text)
        return Intent("ask", asked) if asked else Intent("other")

    def ask(self, slot: str, public: dict[str, Any]) -> str:
        item = public.get("item", "of them")
        if slot == "start":
            return f"how many {item} at the start ?"
        return f"how many {item} were {VERBS[public.get('verb', 0)][1]} ?"

    def public_info(self, first_message: str) -> dict[str, Any]:
        """What anyone can read off the problem statement: item and verb."""
        info: dict[str, Any] = {}
        for i, (verb, _, _) in enumerate(VERBS):
            if f" {verb} " in f" {first_message} ":
                info["verb"] = i
        m = re.search(r"how many (\w+) does", first_message)
        if m:
            info["item"] = m.group(1)
        return info

    def answer(self, known: dict[str, Any], rng: np.random.Generator, p_error: float) -> str:
        sign = VERBS[known.get("verb", 0)][2]
        start = known.get("start", int(rng.integers(self.START[0], self.START[1] + 1)))
        change = known.get("change", int(rng.integers(1, self.CHANGE_MAX + 1)))
        value = start + sign * change
        if rng.random() < p_error:
            value += int(rng.choice([-3, -2, -1, 1, 2, 3]))
        return f"the answer is {value} ."

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return intent.value == goal["answer"]

    def wrong_slots(self, goal: dict[str, Any], intent: Intent) -> list[str]:
        """A wrong answer does not show which number the assistant assumed: a user who points out states the numbers."""
        return list(self.slots)

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        answers = [self.parse_assistant(m.text) for m in dialogue.messages if m.role == "assistant"]
        answers = [a for a in answers if a.kind == "answer"]
        return {"accuracy": float(bool(answers) and answers[-1].value == dialogue.goal["answer"])}


PLACES = ("paris", "rome", "london", "berlin", "madrid", "oslo", "the park", "the cafe", "the library", "the office", "the beach", "the museum")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TONES = ("formal", "casual")


class DocEditChat(Task):
    """A hidden short note with four slots; BLEU of the final draft against it."""

    name = "docedit-chat"
    slots = ("name", "place", "day", "tone")
    metric = "bleu"
    goal_fields = {"name": str, "place": str, "day": str, "tone": str, "target": str}

    def sample_goal(self, rng: np.random.Generator) -> dict[str, Any]:
        goal = {slot: str(rng.choice(self.OPTIONS[slot])) for slot in self.slots}
        goal["target"] = self.document(goal)
        return goal

    NOTES = {"formal": "dear {name} , i would like to invite you to meet at {place} on {day} . kind regards .",
             "casual": "hi {name} , want to meet at {place} on {day} ? see you !"}
    """the note of each tone ({at} is "at the park" or "in rome")"""

    @classmethod
    def document(cls, v: dict[str, Any]) -> str:
        return cls.NOTES[v["tone"]].format(name=v["name"], place=v["place"], day=v["day"], at=_at(v["place"]))

    def goal_text(self, goal: dict[str, Any]) -> str:
        # the details in the very words the user reveals them with ("the day is monday ."), so a simulator LM copies
        # a value after its key
        details = " ".join(self.reveal(goal, s, goal[s]) for s in self.slots)
        return f"{details} document : {goal['target']}"

    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        parts = ["please write a short note for me ."] + [self.reveal(goal, s, told[s]) for s in self.slots if s in told]
        return " ".join(parts)

    def reveal(self, goal: dict[str, Any], slot: str, value: Any) -> str:
        return {"name": f"it is for {value} .", "place": f"we meet at {value} .", "day": f"the day is {value} .", "tone": f"make it {value} ."}[slot]

    OPTIONS = {"name": NAMES, "place": PLACES, "day": DAYS, "tone": TONES}

    def wrong_value(self, goal: dict[str, Any], slot: str, rng: np.random.Generator) -> Any:
        return str(rng.choice([o for o in self.OPTIONS[slot] if o != goal[slot]]))

    _USER = {
        "name": re.compile(r"it is for (\w+) \."),
        "place": re.compile(r"we meet at (the \w+|\w+) \."),
        "day": re.compile(r"the day is (\w+) \."),
        "tone": re.compile(r"make it (formal|casual) \."),
    }

    def parse_user(self, text: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for slot, pattern in self._USER.items():
            for m in pattern.finditer(text):
                found[slot] = m.group(1)
        return found

    _DRAFT = re.compile(r"here is the note : (.*)$")
    _DOC = re.compile(r"^(dear|hi) (\w+) , .*?meet at (the \w+|\w+) on (\w+)")
    _ASKS = (("name", "who is the note for"), ("place", "where do we meet"), ("day", "which day"), ("tone", "formal or casual"))

    def parse_draft(self, doc: str) -> dict[str, Any]:
        m = self._DOC.search(doc)
        if not m:
            return {}
        return {"tone": "formal" if m.group(1) == "dear" else "casual", "name": m.group(2), "place": m.group(3), "day": m.group(4)}

    def parse_assistant(self, text: str) -> Intent:
        m = self._DRAFT.search(text)
        if m:
            return Intent("answer", value=m.group(1).strip())
        asked = tuple(slot for slot, key in self._ASKS if key in text)
        return Intent("ask", asked) if asked else Intent("other")

    def ask(self, slot: str, public: dict[str, Any]) -> str:
        return {"name": "who is the note for ?", "place": "where do we meet ?", "day": "which day ?", "tone": "formal or casual ?"}[slot]

    def public_info(self, first_message: str) -> dict[str, Any]:
        return {}

    DRAFT_INTRO = "here is the note : "
    """how a corpus assistant introduces its draft"""

    def answer(self, known: dict[str, Any], rng: np.random.Generator, p_error: float) -> str:
        values = {s: known[s] if s in known else str(rng.choice(self.OPTIONS[s])) for s in self.slots}  # guess what is unknown
        if rng.random() < p_error:
            slot = str(rng.choice(self.slots))
            values[slot] = self.wrong_value(values, slot, rng)
        return f"{self.DRAFT_INTRO}{self.document(values)}"

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return intent.value == goal["target"]

    def wrong_slots(self, goal: dict[str, Any], intent: Intent) -> list[str]:
        drafted = self.parse_draft(intent.value)
        return [s for s in self.slots if drafted.get(s) != goal[s]]

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        import sacrebleu

        drafts = [self.parse_assistant(m.text) for m in dialogue.messages if m.role == "assistant"]
        drafts = [d.value for d in drafts if d.kind == "answer"]
        final = drafts[-1] if drafts else ""
        return {"bleu": sacrebleu.sentence_bleu(final, [dialogue.goal["target"]]).score / 100.0}


class ChitChat(Task):
    """Open-domain human conversation (chitchat-dataset): no hidden answer, only a topic; for calibrating toward human turns."""

    name = "chitchat"
    metric = ""

    def goal_text(self, goal: dict[str, Any]) -> str:
        return f"chat casually with a stranger; your opening topic: {goal.get('topic', 'anything')}"

    def parse_user(self, text: str) -> dict[str, Any]:
        return {}

    def parse_assistant(self, text: str) -> Intent:
        return Intent("other")

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return False

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        return {}


class MathChat(Task):
    r"""The English world's math task: a GSM-style word problem whose quantities the user gives only when asked.

    A goal is a problem of reasoning-gym's ``gsm_symbolic`` set cut in two: ``question`` (the sentence that asks)
    and ``facts`` (the sentences that hold the quantities), with the numeric ``answer``. The user's first message
    asks the question and leaves the facts out, as CollabLLM's math users do; asked for them — in any words — the
    user gives the facts. An assistant's turn is read as a person would read it: an *answer* where it says so
    ("the answer is …", "so … in total", ``\boxed{}``, an equation's result) or, lacking a question, states a
    number; a *question* where a sentence ends in "?" or asks outright ("please tell me …", "could you share …"),
    in any case. Answers are compared with math-verify (:func:`calirl_lite.mathcheck.math_correct`: ``3/4`` is
    ``0.75``). Scored by the accuracy of the last answer. The user writes plain English with some variety (an opener
    and a way of giving the facts picked per problem, phrases per reply).
    """

    name = "math-chat"
    slots = ("facts",)
    metric = "accuracy"
    goal_fields = {"question": str, "facts": str, "answer": str}
    phrases = {
        "accept": ("Great, thanks!", "That's it, thank you!", "Perfect, that matches what I expected. Thanks!", "Yes, that's right. Thanks a lot."),
        "reject": ("Hmm, that's not right.", "No, I don't think that's correct.", "That doesn't look right to me."),
        "confused": ("Sorry, what do you mean?", "I'm not sure I follow.", "Can you help me get the answer?"),
        "not_sure": ("I'm not sure, sorry.", "I don't remember that part."),
        "give_up": ("Never mind, bye.", "Forget it, thanks anyway."),
    }
    OPENERS = ("{q}", "Hi! Can you help me with this? {q}", "I have a math question. {q}", "{q} I'm a bit stuck.")
    GIVING = ("Sure! {f}", "Oh, right. {f}", "Here's what I know: {f}", "{f}")

    @staticmethod
    def from_problem(text: str, answer: Any) -> dict[str, Any] | None:
        """The goal of one word problem, or None where no sentence but the question holds a number."""
        text = re.sub(r"\s*Give the result as your final answer\..*$", "", text.strip(), flags=re.S)
        sentences = [x for x in re.split(r"(?<=[.?!])\s+", text) if x]
        asking = [i for i, x in enumerate(sentences) if x.endswith("?")]
        k = asking[-1] if asking else len(sentences) - 1
        facts = " ".join(sentences[:k] + sentences[k + 1 :])
        return {"question": sentences[k], "facts": facts, "answer": str(answer)} if re.search(r"\d", facts) else None

    @staticmethod
    def _pick(options: tuple[str, ...], key: str) -> str:
        return options[zlib.crc32(key.encode()) % len(options)]  # the same for a problem every time, varied across problems

    def goal_text(self, goal: dict[str, Any]) -> str:
        return f"you want the answer to this problem: {goal['facts']} {goal['question']} (the right answer is {goal['answer']})"

    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        if "facts" in told:
            return f"{told['facts']} {goal['question']}"
        return self._pick(self.OPENERS, goal["question"]).format(q=goal["question"])

    def reveal(self, goal: dict[str, Any], slot: str, value: Any) -> str:
        return self._pick(self.GIVING, goal["facts"]).format(f=value)

    def wrong_value(self, goal: dict[str, Any], slot: str, rng: np.random.Generator) -> Any:
        numbers = list(re.finditer(r"\d+", goal["facts"]))
        m = numbers[int(rng.integers(len(numbers)))]
        wrong = max(1, int(m.group()) + int(rng.choice([-2, -1, 1, 2])))
        return goal["facts"][: m.start()] + str(wrong) + goal["facts"][m.end() :]

    def parse_user(self, text: str) -> dict[str, Any]:
        return {"facts": text} if re.search(r"\d", text) else {}

    _CUE = re.compile(r"\\boxed\s*\{|\b(?:final\s+)?answer\s*(?:is|:|=|would be|will be|should be)|\bthe result is\b|\bin total\b|"
                      r"\btotal (?:is|of)\b|\btherefore\b|\bthus\b|=\s*\$?-?\d[\d,.]*(?![\d,.]*[^\W\d_])", re.IGNORECASE)
    _REQUEST = re.compile(r"\b(?:(?:could|can|would) you (?:please )?|please )(?:tell|give|share|provide|clarify|specify|confirm)\b|"
                          r"\bi need to know\b|\blet me know (?:the|how|what|which|when|where|who)\b", re.IGNORECASE)
    _NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
    _LIST_MARK = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+")
    _SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+[\"'”’)\]*_]*(?=\s|$)|\n|$)")  # a sentence may end inside quotes or brackets

    def parse_assistant(self, text: str) -> Intent:
        body = self._LIST_MARK.sub("", text)  # "1." of a numbered list is no quantity
        sentences = [x.strip() for x in self._SENTENCE.findall(body) if x.strip()]
        cued = [x[cue.start() :] for x in sentences if (cue := self._CUE.search(x)) and self._NUMBER.search(x, cue.start())]
        if cued:  # the last sentence that says it answers: the number after the saying (or what is boxed)
            said = cued[-1]
            return Intent("answer", value=said if said.startswith("\\boxed") else self._NUMBER.search(said).group())
        if any(x.rstrip(" *_)\"'").endswith("?") for x in sentences) or self._REQUEST.search(body):
            return Intent("ask", self.slots)
        ended = [x.rstrip("\"'”’)]*_").endswith((".", "!")) for x in sentences]  # a full stop, maybe inside quotes or brackets
        stated = [x for x, end in zip(sentences, ended) if end and self._NUMBER.search(x)]
        if stated and ended[-1]:  # finished text that states a number: its last one is the answer
            return Intent("answer", value=self._NUMBER.findall(stated[-1])[-1])
        return Intent("other")  # working cut short, chat, or nothing a person would take as an answer or a question

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return math_correct(str(intent.value).replace(",", ""), goal["answer"])

    def wrong_slots(self, goal: dict[str, Any], intent: Intent) -> list[str]:
        return list(self.slots)

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        answers = [a for a in (self.parse_assistant(m.text) for m in dialogue.messages if m.role == "assistant") if a.kind == "answer"]
        return {"accuracy": float(bool(answers) and self.answer_is_right(dialogue.goal, answers[-1]))}


def _at(place: str) -> str:
    """"at the park", "in Rome"."""
    return f"at {place}" if place.startswith("the ") else f"in {place}"


def _any_of(options: tuple[str, ...]) -> re.Pattern:
    """A pattern matching any of ``options`` as whole words, in any case."""
    return re.compile(r"\b(" + "|".join(re.escape(o) for o in options) + r")\b", re.IGNORECASE)


class DocChat(DocEditChat):
    """The English world's document task: a short invitation note whose details the user gives only when asked.

    A goal is who the note is for, where and on which day to meet, and a formal or casual tone, with the note the
    user has in mind (``target``: "Dear Anna, …" or "Hi Anna! …"). The user's first message asks for a note and
    leaves the details out; asked — in any words — the user gives what was asked about (who, where, when, the tone;
    all of them for a question about the note in general). An assistant's turn is read as a person would read it:
    a *draft* where a note starts — a salutation alone on its line ("Dear Anna,", "Hi!", "Max,", "[Name],") with
    a few words after it, or a greeting starting a line that goes on to name a place, a day or a ``[placeholder]``;
    else a *question* where a question or a request is about the note (who, where, when, the tone, or the note, its
    details, what to write …) — a question about something else is neither. A draft is right when its details are
    the goal's: the name, the place and the day appear in it (any case) and the tone is formal exactly when it opens
    with "Dear". Scored by BLEU of the last draft against the target (the toy
    world's metric), with the share of the four details right beside it.
    """

    name = "doc-chat"
    metric = "bleu"
    OPTIONS = {"name": tuple(n.capitalize() for n in NAMES), "place": tuple(p if p.startswith("the ") else p.capitalize() for p in PLACES),
               "day": tuple(d.capitalize() for d in DAYS), "tone": TONES}
    phrases = {
        "accept": ("Perfect, thanks!", "That's exactly what I wanted. Thank you!", "Looks good, thanks a lot."),
        "reject": ("That's not quite right.", "Hmm, some details are wrong.", "No, that's not what I asked for."),
        "confused": ("Sorry, what do you mean?", "I just need a short note.", "Can you write the note for me?"),
        "not_sure": MathChat.phrases["not_sure"],
        "give_up": MathChat.phrases["give_up"],
    }
    OPENERS = ("Can you write a short note for me?", "Hi, I need a quick note inviting someone to meet up.",
               "Could you help me write an invitation note?", "Please write a short note for me.")
    REVEALS = {"name": ("It's for {v}.", "The note is for {v}.", "Please address it to {v}."),
               "place": ("We're meeting {at}.", "The place is {v}.", "Let's meet {at}."),
               "day": ("It's on {v}.", "The day is {v}.", "We meet on {v}."),
               "tone": ("Make it {v}, please.", "Keep the tone {v}.", "A {v} tone, please.")}
    DRAFT_INTRO = "Here is the note:\n\n"

    NOTES = {"formal": "Dear {name},\n\nI would like to invite you to meet {at} on {day}.\n\nKind regards",
             "casual": "Hi {name}!\n\nWant to meet {at} on {day}? See you there!"}

    def goal_text(self, goal: dict[str, Any]) -> str:
        return (f"you want a short note inviting {goal['name']} to meet {_at(goal['place'])} on {goal['day']}, in a {goal['tone']} tone. "
                f"The note you have in mind:\n{goal['target']}\n")

    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        opener = MathChat._pick(self.OPENERS, goal["target"])
        return " ".join([opener] + [self.reveal(goal, s, told[s]) for s in self.slots if s in told])

    def reveal(self, goal: dict[str, Any], slot: str, value: Any) -> str:
        return MathChat._pick(self.REVEALS[slot], goal["target"] + slot).format(v=value, at=_at(str(value)))

    _FOUND = {slot: _any_of(options) for slot, options in OPTIONS.items()}
    _GREETING = re.compile(r"(?im)^[\s>*_\"']*(dear|hi|hello|hey)\b")
    _SALUTATION = re.compile(r"(?m)^[ \t>*_\"']*(?:(?i:(dear|hi|hello|hey))\b[^\n,!?.]{0,30}[,!]?|(?!(?i:best|regards|cheers|thanks|sincerely|yours|love|warmly)\b)"
                             r"[A-Z][a-z]+,|\[[^\]\n]{1,30}\],)[*_\"']*[ \t]*$")
    """a line that is only a salutation: "Dear Anna,", "Hi there!", "Max,", "[Name]," (not a sign-off)"""
    _NOT_NAMES = {o.lower() for o in OPTIONS["place"] + OPTIONS["day"]}
    _PLACEHOLDER = re.compile(r"\[[^\]\n]{1,30}\]")
    _TASK_WORDS = re.compile(r"\b(note|details?|information|info|more|help|assist|write|say|include|need|want|like|prefer)\b", re.IGNORECASE)
    _ABOUT = {"name": re.compile(r"\b(who|whom|recipient|name|address)", re.IGNORECASE),
              "place": re.compile(r"\b(where|place|location|venue)\b", re.IGNORECASE),
              "day": re.compile(r"\b(when|day|date|time)\b", re.IGNORECASE),
              "tone": re.compile(r"\b(tone|formal|casual|informal|style)\b", re.IGNORECASE)}

    def _values(self, text: str) -> dict[str, Any]:
        """Each slot's value as the text names it last (the options' own spelling)."""
        found: dict[str, Any] = {}
        for slot, pattern in self._FOUND.items():
            for m in pattern.finditer(text):
                found[slot] = next(o for o in self.OPTIONS[slot] if o.lower() == m.group(1).lower())
        return found

    def parse_user(self, text: str) -> dict[str, Any]:
        return self._values(text)

    def _note(self, text: str) -> str | None:
        """The note in ``text``, from its salutation on: a salutation alone on its line with at least five words
        after it, or a greeting that starts a line and goes on to name a place, a day or a ``[placeholder]``."""
        for line in self._SALUTATION.finditer(text):
            word = line.group().strip(" \t>*_\"',").lower()
            if word not in self._NOT_NAMES and len(text[line.end() :].split()) >= 5:  # "Paris," on its own opens no note
                return text[line.start() :].strip(" \n*_\"'>")
        greeting = self._GREETING.search(text)
        if greeting:
            note = text[greeting.start() :].strip(" \n*_\"'>")
            if self._PLACEHOLDER.search(note) or any(self._FOUND[s].search(note) for s in ("place", "day")):
                return note
        return None

    def parse_draft(self, doc: str) -> dict[str, Any]:
        first_line, _, rest = doc.partition("\n")
        found = {s: v for s, v in self._values(rest).items() if s in ("place", "day")}
        name = self._FOUND["name"].search(first_line) or self._FOUND["name"].search(rest)
        if name:
            found["name"] = self._values(name.group(1))["name"]
        found["tone"] = "formal" if re.match(r"[\s>*_\"']*dear\b", doc, re.IGNORECASE) else "casual"
        return found

    def parse_assistant(self, text: str) -> Intent:
        note = self._note(text)
        if note is not None:
            return Intent("answer", value=note)
        sentences = [x.strip() for x in MathChat._SENTENCE.findall(text) if x.strip()]
        questions = " ".join(x for x in sentences if x.rstrip(" *_)\"'").endswith("?"))
        request = MathChat._REQUEST.search(text)
        about = questions or (text if request else "")
        asked = tuple(s for s in self.slots if self._ABOUT[s].search(about))
        if asked or request or self._TASK_WORDS.search(questions):  # a question about the note (nothing in particular: all of it)
            return Intent("ask", asked or self.slots)
        return Intent("other")  # rambling, chat, or a question about something else

    def ask(self, slot: str, public: dict[str, Any]) -> str:
        return {"name": "Who is the note for?", "place": "Where will you meet?", "day": "Which day?", "tone": "Should it be formal or casual?"}[slot]

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return not self.wrong_slots(goal, intent)

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        import sacrebleu

        drafts = [a.value for a in (self.parse_assistant(m.text) for m in dialogue.messages if m.role == "assistant") if a.kind == "answer"]
        final = drafts[-1] if drafts else ""
        right = self.parse_draft(final) if final else {}
        return {"bleu": sacrebleu.sentence_bleu(final, [dialogue.goal["target"]]).score / 100.0,
                "details": sum(right.get(s) == dialogue.goal[s] for s in self.slots) / len(self.slots)}


TASKS: dict[str, Task] = {t.name: t for t in (ArithChat(), DocEditChat())}
"""The toy world's task families."""

OTHER_TASKS: dict[str, Task] = {"chitchat": ChitChat(), "math-chat": MathChat(), "doc-chat": DocChat()}
"""Tasks outside the toy world: real human chat, and the English world's task families (for instruction-tuned models)."""


def scored_tasks() -> list[str]:
    """The tasks with a score (and goals): those that can be trained on and evaluated."""
    return [name for name, task in {**TASKS, **OTHER_TASKS}.items() if task.metric]


def get_task(name: str) -> Task:
    """The task called ``name``; a clear error lists the known ones."""
    task = TASKS.get(name) or OTHER_TASKS.get(name)
    if task is None:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join([*TASKS, *OTHER_TASKS])}")
    return task


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


def vocabulary() -> tuple[str, ...]:
    """Every word the scripted users and assistants can write (the toy tokenizer must know them all)."""
    words = set(f"{ACCEPT} {REJECT} {CONFUSED} {NOT_SURE} {GIVE_UP}".split())
    for group in (NAMES, ITEMS, PLACES, DAYS, TONES):
        for phrase in group:
            words.update(phrase.split())
    for verb, participle, _ in VERBS:
        words.update(f"{verb} {participle}".split())
    rng = np.random.default_rng(0)
    for task in TASKS.values():
        goal = task.sample_goal(rng)
        words.update(task.goal_text(goal).split())
        words.update(task.first_message(goal, goal).split())
        for slot in task.slots:
            words.update(task.ask(slot, goal).split())
            words.update(task.reveal(goal, slot, goal[slot]).split())
    words.update(DocEditChat.document({"name": "x", "place": "x", "day": "x", "tone": "formal"}).split())
    words.update(DocEditChat.document({"name": "x", "place": "x", "day": "x", "tone": "casual"}).split())
    words.update("the answer is here note : how many".split())
    words.update(str(i) for i in range(-30, 100))
    return tuple(sorted(words))
