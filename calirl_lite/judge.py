"""An LLM judge of interactivity (math answers are checked by :mod:`calirl_lite.mathcheck`).

* :class:`EndpointJudge` / :class:`LocalJudge` — CollabLLM-style *interactivity* (ITR): a judge model reads a
  whole dialogue and rates how well the assistant engaged the user (asked for what it needed, did not guess,
  kept it short) from 0 to 10; the kit reports it divided by 10. The judge is an OpenAI-compatible endpoint
  (a local vLLM or llama.cpp server, or a hosted one) or a local transformers model, at temperature 0 as in
  CollabLLM. The reply is *parsed* for a number — never evaluated as code.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from .dialogue import Dialogue
from .endpoints import chat_completion, require_http
from .profiles import load_model

JUDGE_PROMPT = (
    "You are judging a conversation between a user and an AI assistant. The user had a goal the assistant did not "
    "know at first. Rate the assistant's INTERACTIVITY from 0 to 10: did it ask for the information it needed instead "
    "of guessing, did it use what the user said, did it avoid needless turns? 10 = ideal, 0 = ignored the user.\n\n"
    "Conversation:\n{conversation}\n\nAnswer with one line: 'Score: N' (N from 0 to 10)."
)
"""The judge's instruction; ``{conversation}`` is filled with one ``role: text`` line per message."""

_MARKED = re.compile(r"score\s*(?:[:=]\s*)?([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)
_PLAIN = re.compile(r"\d+(?:\.\d+)?")


def parse_score(reply: str, where: str = "judge") -> float:
    """The 0–10 score in a judge's reply, as a fraction in [0, 1]; anything else is an error that quotes the reply.

    The rule: every ``Score: N`` in the reply must name the same N; without one, the reply must hold exactly one
    number. N is a plain decimal from 0 to 10 (``-5``, ``1e1`` or ``11`` are refused, not read as 5, 10 or 1).
    Both patterns match in time linear in the reply's length.
    """
    numbers = [m.group(1) for m in _MARKED.finditer(reply)] or _NUMBER.findall(reply)
    values = {float(n) for n in numbers if _PLAIN.fullmatch(n)}
    if numbers and len(values) == 1 and all(_PLAIN.fullmatch(n) for n in numbers) and (len(numbers) == 1 or _MARKED.search(reply)):
        (value,) = values
        if value <= 10.0:
            return value / 10.0
    raise ValueError(f"{where} gave no single score from 0 to 10 in its reply: {reply[:200]!r}")


def judge_messages(dialogue: Dialogue) -> list[dict[str, str]]:
    """The chat a judge sees: one user message with the instruction and the dialogue (no hidden goal)."""
    convo = "\n".join(f"{m.role}: {m.text}" for m in dialogue.messages)
    return [{"role": "user", "content": JUDGE_PROMPT.format(conversation=convo)}]


class EndpointJudge:
    """An OpenAI-compatible endpoint as the judge (``base_url`` such as ``http://127.0.0.1:8000/v1``)."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 60.0) -> None:
        require_http(base_url, "judge endpoint")
        self.base_url, self.model, self.api_key, self.timeout = base_url, model, api_key, timeout

    def score(self, dialogue: Dialogue) -> float:
        reply = chat_completion(self.base_url, self.model, judge_messages(dialogue), 0.0, 32, self.api_key, self.timeout)
        return parse_score(reply, f"judge endpoint {self.base_url}")


class LocalJudge:
    """A local transformers model as the judge (a folder or hub id; safetensors, no remote code), greedy."""

    def __init__(self, model: str, max_new_tokens: int = 16) -> None:
        self.name = model
        self.model, self.tokenizer = load_model(model)
        self.model.eval()
        self.max_new_tokens = max_new_tokens

    def score(self, dialogue: Dialogue) -> float:
        import torch

        ids = self.tokenizer.apply_chat_template(judge_messages(dialogue), add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
        reply = self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        return parse_score(reply, f"local judge {self.name}")


def make_judge(endpoint: str = "", model: str = "", local: str = "", api_key: str = "", timeout: float = 60.0) -> Any:
    """``EndpointJudge(endpoint, model)`` (``timeout``: its deadline per reply), ``LocalJudge(local)``, or None when
    neither is given."""
    if endpoint and local:
        raise ValueError("give the judge as an endpoint or as a local model, not both")
    if endpoint:
        if not model:
            raise ValueError("an endpoint judge needs the model name the endpoint serves (--judge-model)")
        return EndpointJudge(endpoint, model, api_key, timeout)
    return LocalJudge(local) if local else None


def interactivity(judge: Any, dialogues: Sequence[Dialogue]) -> float:
    """The judge's mean interactivity score over ``dialogues``, in [0, 1]."""
    if not dialogues:
        raise ValueError("no dialogues to judge")
    return sum(judge.score(d) for d in dialogues) / len(dialogues)
