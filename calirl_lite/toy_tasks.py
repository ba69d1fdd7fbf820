"""The toy world's two task families, and the people of its pre-training corpus.

* **arith-chat** — the user has a hidden two-step word problem ("tom has 12 apples . then tom
  buys 5 apples ."); the first message may leave the numbers out; the assistant must ask for
  them and answer "the answer is N ."; scored by accuracy.
* **docedit-chat** — the user wants a short note with hidden slots (who, where, which day,
  formal or casual); the assistant asks or drafts ("here is the note : …"); the user corrects
  the draft; scored by BLEU (sacrebleu) of the final draft against the hidden target.

All text is lower-case words separated by single spaces, so any tokenizer round-trips it.

The synthetic pre-training corpus uses a different user mix than the real users (:data:`CORPUS_USERS`, weighed in
``WorldConfig``): users who volunteer details, name everything wrong in an answer, and — the forthcoming ones —
would rather leave than be asked. An LM that learned its users there is the *naive simulator*: against it,
answering first and being corrected pays; with the real users it does not. :func:`graded_persona` moves the real
users toward the forthcoming corpus user by a chosen fraction (the gap study's simulators).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .dialogue import Dialogue
from .task_family import ACCEPT, CONFUSED, GIVE_UP, NOT_SURE, REAL_USER, REJECT, AssistantPersona, Intent, Task, UserPersona

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


CORPUS_ASSISTANTS = {
    "careful": AssistantPersona("careful", p_ask=1.0, p_error=0.0),
    "sloppy": AssistantPersona("sloppy", p_ask=0.5, p_error=0.3),
    "hasty": AssistantPersona("hasty", p_ask=0.0, p_error=0.1),
}
"""Assistant personas of the pre-training corpus; ``WorldConfig.corpus_assistant_mix`` weighs them."""


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
        return cls.NOTES[v["tone"]].format(name=v["name"], place=v["place"], day=v["day"], at=at_place(v["place"]))

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


def at_place(place: str) -> str:
    """"at the park", "in Rome"."""
    return f"at {place}" if place.startswith("the ") else f"in {place}"


TASKS: dict[str, Task] = {t.name: t for t in (ArithChat(), DocEditChat())}
"""The toy world's task families."""


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
