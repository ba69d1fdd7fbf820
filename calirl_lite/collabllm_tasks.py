"""CollabLLM's two tasks as tasks of the kit: **collabllm-math** (MATH-Chat) and **collabllm-docedit** (MediumDocEdit-Chat).

In CollabLLM (Wu et al., 2025) a user LLM holds a complete request the assistant never sees — a hard MATH problem,
or "write an article of under 500 words about …" with the article — and asks for help with it vaguely, a little at
a time. The goals come from CollabLLM's own multi-turn datasets (one goal per conversation; where they are read,
:func:`calirl_lite.sources.collabllm_task_goals`): the hidden request (``problem``, the row's
``single_turn_prompt``), the reference (``reference``, its ``single_turn_completion``) and the conversation's id.

* The user is a language model prompted as CollabLLM prompts its user simulator (:func:`collabllm_user_prompt`;
  its reply is read by :func:`collabllm_user_reply`). These tasks have no scripted users: there is no slot a
  script could reveal, only a whole request to paraphrase.
* The chat ends when the user writes ``[[TERMINATE CHAT]]``. That is CollabLLM's termination signal
  (``COLLABLLM_TERMINATION_SIGNAL``, whose default it is) and the kit's (:data:`calirl_lite.dialogue.TERMINATE`):
  one token, which the prompt names and the rollout engine watches for.
* **collabllm-math** is scored by ``accuracy``: the assistant's last answer (:meth:`CollabLLMMath.final_answer`)
  compared with the reference's boxed answer by math-verify (:func:`calirl_lite.mathcheck.math_correct`).
  CollabLLM asks an LLM judge instead; math-verify needs none and gives the same verdict on a stated answer.
* **collabllm-docedit** is scored by ``bleu``: sacrebleu's sentence BLEU of the assistant's last draft
  (:meth:`CollabLLMDocEdit.draft`) against the reference article, on the 0–1 scale of the kit's other document
  tasks. CollabLLM has an LLM extract the final document from the whole chat; here the last draft is it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .dialogue import TERMINATE, Dialogue, Message
from .mathcheck import boxed_answer, math_correct
from .task_family import Intent, Task

_QUESTION = re.compile(r"\?(?=[\"'”’)\]*_]*(?:\s|$))")
"""a question mark that ends a sentence (not one inside a URL)"""


class CollabLLMTask(Task):
    """What CollabLLM's two tasks share: the goal's fields, the hidden request as the user's goal, no scripted users."""

    task_desc = ""
    """the task description CollabLLM's user simulator is given (its ``task_desc``)"""
    goal_fields = {"conv_id": str, "problem": str, "reference": str}

    def check_goal_values(self, goal: dict[str, Any]) -> None:
        for name in ("problem", "reference"):
            if not goal[name].strip():
                raise ValueError(f"goal field {name!r} is empty; a CollabLLM goal needs its hidden request and its reference")

    def goal_text(self, goal: dict[str, Any]) -> str:
        """The hidden request itself, as CollabLLM's user simulator reads it (the reference stays hidden from the user too)."""
        return goal["problem"]

    def first_message(self, goal: dict[str, Any], told: dict[str, Any]) -> str:
        raise NotImplementedError(f"{self.name} has no scripted users: a language model plays the user (collabllm_user_prompt)")

    def parse_user(self, text: str) -> dict[str, Any]:
        return {}

    def given(self, text: str) -> str | None:
        """What an assistant message gives as its result (a math answer, a document draft), or None."""
        raise NotImplementedError

    def parse_assistant(self, text: str) -> Intent:
        """*answer* where the message gives a result (:meth:`given`), else *ask* where a sentence ends in "?", else *other*."""
        result = self.given(text)
        if result is not None:
            return Intent("answer", value=result)
        return Intent("ask") if self.asks(text) else Intent("other")

    @staticmethod
    def asks(text: str) -> bool:
        """Whether an assistant message asks something: a sentence of it ends in a question mark."""
        return bool(_QUESTION.search(text))


class CollabLLMMath(CollabLLMTask):
    r"""CollabLLM's MATH-Chat: a hard MATH problem the user holds back; scored by the accuracy of the last answer.

    The goal's ``answer`` is the reference solution's last ``\boxed{}`` (a reference without one is taken whole as
    the answer: a short answer like ``5/6``). An assistant message *answers* when it boxes an answer or says it is
    giving one ("the answer is …", "therefore …", "thus …", "hence …") with a number or LaTeX after the saying;
    else it *asks* when a sentence ends in "?"; else it is *other* (working, chat).
    """

    name = "collabllm-math"
    metric = "accuracy"
    task_desc = "question answering"
    goal_fields = {**CollabLLMTask.goal_fields, "answer": str}

    _CUE = re.compile(r"\b(?:final\s+)?(?:answer|result|solution)\s*(?:is|:|=|would be|will be|should be)|\b(?:therefore|thus|hence)\b", re.IGNORECASE)
    _LATEX = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
    _NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
    _SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")

    def check_goal_values(self, goal: dict[str, Any]) -> None:
        super().check_goal_values(goal)
        if not goal["answer"].strip():
            raise ValueError("goal field 'answer' is empty; a math goal needs the answer to check")

    def final_answer(self, text: str) -> str | None:
        r"""The answer an assistant message gives, as math-verify reads it, or None when it gives none.

        The last ``\boxed{…}`` wins. Else, from the last saying that gives an answer back: the first LaTeX after
        it (``$…$``, ``\(…\)``, ``\[…\]``, also on the next line) or the first number in the rest of its sentence.
        """
        boxed = boxed_answer(text)
        if boxed is not None and boxed.strip():
            return f"${boxed}$"
        for cue in reversed(list(self._CUE.finditer(text))):
            tail = text[cue.end() :]
            end = self._SENTENCE_END.search(tail)
            stop = end.start() if end else len(tail)
            latex = self._LATEX.search(tail)
            if latex and (latex.start() < stop or not tail[: latex.start()].strip(" \t\n:")):
                return f"${next(g for g in latex.groups() if g is not None).strip()}$"
            number = self._NUMBER.search(tail[:stop])
            if number:
                return number.group().replace(",", "")
        return None

    def given(self, text: str) -> str | None:
        return self.final_answer(text)

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return intent.kind == "answer" and math_correct(str(intent.value), f"\\boxed{{{goal['answer']}}}")

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        """``accuracy``: 1.0 when the last answer the assistant gave is the reference's, else 0.0 (none given: 0.0)."""
        answers = [a for a in (self.parse_assistant(m.text) for m in dialogue.messages if m.role == "assistant") if a.kind == "answer"]
        return {"accuracy": float(bool(answers) and self.answer_is_right(dialogue.goal, answers[-1]))}


class CollabLLMDocEdit(CollabLLMTask):
    """CollabLLM's MediumDocEdit-Chat: a Medium article the user wants written; scored by BLEU of the last draft.

    An assistant message is a *draft* when, without a short lead-in ending in ":" ("Here is the article:") and a
    short closing question or offer ("Would you like any changes?"), it holds at least :attr:`DRAFT_MIN_WORDS`
    words and fewer than half of its lines are questions (a long list of questions is no draft). Else it *asks*
    when a sentence ends in "?"; else it is *other*. The final document is the last draft of the chat.
    """

    name = "collabllm-docedit"
    metric = "bleu"
    task_desc = "document editing"
    DRAFT_MIN_WORDS = 40
    """the fewest words a draft has (Medium articles run to hundreds; questions and chat are short)"""
    ACCEPTABLE_BLEU = 0.5
    """the BLEU at which a draft counts as right where a right/wrong reading is needed (a reply's context)"""
    _CLOSING = re.compile(r"^(?:let me know|feel free|i hope|hope this|if you|would you|do you|shall i|should i)\b", re.IGNORECASE)

    def draft(self, text: str) -> str | None:
        """The document an assistant message holds, without its lead-in and closing, or None when it holds none."""
        paragraphs = [p.strip() for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip() and p.strip("-*_ \t")]
        if len(paragraphs) > 1 and paragraphs[0].endswith(":") and len(paragraphs[0].split()) <= 25:
            paragraphs = paragraphs[1:]
        if len(paragraphs) > 1 and len(paragraphs[-1].split()) <= 40 and (self.asks(paragraphs[-1]) or self._CLOSING.match(paragraphs[-1])):
            paragraphs = paragraphs[:-1]
        doc = "\n\n".join(paragraphs)
        lines = [line for line in doc.splitlines() if line.strip()]
        if len(doc.split()) < self.DRAFT_MIN_WORDS or sum(self.asks(line) for line in lines) * 2 >= len(lines):
            return None
        return doc

    def given(self, text: str) -> str | None:
        return self.draft(text)

    @staticmethod
    def bleu(doc: str, reference: str) -> float:
        """sacrebleu's sentence BLEU of ``doc`` against ``reference``, on 0–1 (as :class:`calirl_lite.english_tasks.DocChat`)."""
        import sacrebleu

        return sacrebleu.sentence_bleu(doc, [reference]).score / 100.0

    def answer_is_right(self, goal: dict[str, Any], intent: Intent) -> bool:
        return intent.kind == "answer" and self.bleu(str(intent.value), goal["reference"]) >= self.ACCEPTABLE_BLEU

    def score(self, dialogue: Dialogue) -> dict[str, float]:
        """``bleu`` of the last draft against the reference (no draft: BLEU of the empty text, 0.0)."""
        drafts = [a.value for a in (self.parse_assistant(m.text) for m in dialogue.messages if m.role == "assistant") if a.kind == "answer"]
        return {"bleu": self.bleu(drafts[-1] if drafts else "", dialogue.goal["reference"])}


COLLABLLM_TASKS: dict[str, Task] = {t.name: t for t in (CollabLLMMath(), CollabLLMDocEdit())}
"""CollabLLM's two tasks, by name."""


# ----------------------------------------------------------------------------- CollabLLM's user simulator


def collabllm_user_prompt(task: Task, goal: dict[str, Any], history: list[Message]) -> str:
    """The whole prompt a user LLM gets to write the user's next message, in CollabLLM's user-simulator format.

    The structure is CollabLLM's ``USER_SIMULATOR_PROMPT`` (``collabllm/prompts/user_simulator.txt`` in
    github.com/Wuyxin/collabllm, sent as one user message): who the model plays; its three inputs — the task
    description, the complete hidden request (``single_turn_prompt``; here :meth:`Task.goal_text`) and the chat so
    far (``**User**: …`` lines) — each between start and end markers, the first two marked not visible to the AI;
    guidelines (stay in character, minimal effort, the user's knowledge, occasional mistakes, preferences, stay on
    the goal); a JSON answer with ``current_answer``, ``thought`` and ``response`` (:func:`collabllm_user_reply`
    reads it); and notes ending with the termination signal, :data:`~calirl_lite.dialogue.TERMINATE`. The
    wording is the kit's own.
    """
    chat = "\n".join(f"**{m.role.capitalize()}**: {m.text}" for m in history) or "(empty: the chat has not started)"
    return f"""You are playing a human USER who works with an AI assistant on a task. Write what a real user would write next.

## What you are given
- Task description: the kind of task you want done.
- Complete request or reference goal: what you actually want, in full. Use it to know what you need and what a good result is.
- Chat history: the conversation so far between you (the user) and the AI.

<|The Start of Task Description (Not visible to the AI)|>
{getattr(task, "task_desc", "") or task.name}
<|The End of Task Description|>

<|The Start of Complete Prompt or Reference Goal (Not visible to the AI)|>
{task.goal_text(goal)}
<|The End of Complete Prompt or Reference Goal|>

<|The Start of Chat History|>
{chat}
<|The End of Chat History|>

## Guidelines
- Stay in character: you are a person, not an AI, with one consistent personality.
- Make little effort: start short and vague, and give details only a few at a time, when the AI asks for them.
- Know what this user knows: a user new to the topic may not spot a mistake, and asks about what confuses them.
- Be human: now and then misspell a word, misremember a detail or ask something unclearly.
- Have preferences: mention one where it fits (short answers, a deadline, a style).
- Keep to the goal: no small talk; bring the chat back to what you want if it drifts.

## Answer format
Answer with one JSON object with three fields:
- "current_answer": in a sentence, the AI's solution so far.
- "thought": how you, the user, decide what to say: is the result satisfactory, what is still missing or unclear, did the AI ask you something?
- "response": your next message to the AI, as the user, and nothing after it.

## Notes
- Reply to the chat as it stands; if it is empty, open it with your first request.
- Do not paste the complete request: it is there for you to understand what you want.
- When your goal is met, or the AI cannot help any further, make your response exactly {TERMINATE}"""


def collabllm_user_reply(text: str) -> str:
    """The user's message in a reply to :func:`collabllm_user_prompt`: the ``response`` of its JSON object (in a code
    fence or not). A reply without one is taken whole, stripped — a model that ignored the format still spoke as
    the user. A response that holds ``[[TERMINATE CHAT]]`` ends the chat, as any user message that holds it does."""
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            answer = json.loads(text[start : end + 1])
        except (ValueError, RecursionError):  # not JSON, or nested past parsing
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("response"), str):
            return answer["response"].strip()
    field = re.search(r'"response"\s*:\s*("(?:[^"\\]|\\.)*")', text)  # JSON cut short or broken after the response
    if field:
        try:
            return str(json.loads(field.group(1))).strip()
        except (ValueError, RecursionError):
            pass
    return text.strip()
