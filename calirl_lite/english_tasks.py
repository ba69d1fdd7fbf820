"""The English world's task families, for instruction-tuned models, and real human chat.

**math-chat** (GSM-style word problems) and **doc-chat** (an invitation note) are the toy world's two families in
plain English: the users write with some variety and read an assistant's free text as a person would.
**chitchat** is open-domain human conversation (the chitchat-dataset), for calibrating toward real human turns.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from .dialogue import Dialogue
from .mathcheck import math_correct
from .task_family import Intent, Task
from .toy_tasks import DAYS, NAMES, PLACES, TONES, DocEditChat, at_place


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
        return (f"you want a short note inviting {goal['name']} to meet {at_place(goal['place'])} on {goal['day']}, in a {goal['tone']} tone. "
                f"The note you have in mind:\n{goal['target']}\n")

    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        opener = MathChat._pick(self.OPENERS, goal["target"])
        return " ".join([opener] + [self.reveal(goal, s, told[s]) for s in self.slots if s in told])

    def reveal(self, goal: dict[str, Any], slot: str, value: Any) -> str:
        return MathChat._pick(self.REVEALS[slot], goal["target"] + slot).format(v=value, at=at_place(str(value)))

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


ENGLISH_TASKS: dict[str, Task] = {"chitchat": ChitChat(), "math-chat": MathChat(), "doc-chat": DocChat()}
"""Tasks outside the toy world: real human chat, and the English world's task families (for instruction-tuned models)."""
