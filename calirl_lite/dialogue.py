"""Dialogues: the one currency between stages.

A :class:`Dialogue` holds a task id, the hidden goal (only the user sees it), the messages
(role ``user`` or ``assistant``, text), who played the user and the assistant, whether the
user ended the chat, and the scores. Traces, SFT sets, static contexts and evaluation
outputs are all Dialogues, stored as JSON Lines and convertible to and from a
``datasets.Dataset``. Writes are atomic; a reader names the file and line of a bad row.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .io import InputError, atomic_write, read_json_lines

TERMINATE = "[[TERMINATE CHAT]]"
"""What a user writes to end the chat (CollabLLM's convention)."""

ROLES = ("user", "assistant")

_FIELD_TYPES = (("task", (str,), "a string"), ("task_id", (str, int), "a string or an integer"), ("goal", (dict,), "an object"),
                ("messages", (list,), "a list"), ("user", (str,), "a string"), ("policy", (str,), "a string"),
                ("terminated", (bool,), "true or false"), ("scores", (dict,), "an object"))
"""Each field of a Dialogue's JSON form, the JSON types it may have, and how an error names them."""


@dataclass
class Message:
    role: str
    """``user`` or ``assistant``"""
    text: str
    """what was said"""

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "text": self.text}


@dataclass
class Dialogue:
    task: str
    """task family, e.g. ``arith-chat`` or ``docedit-chat``"""
    task_id: str
    """id of the task instance (unique within its split)"""
    goal: dict[str, Any]
    """the hidden goal: what the user wants; the assistant never sees it"""
    messages: list[Message] = field(default_factory=list)
    """the conversation, starting with the user"""
    user: str = ""
    """who played the user (e.g. ``real``, ``naive``, ``calibrated``)"""
    policy: str = ""
    """who played the assistant"""
    terminated: bool = False
    """True when the user ended the chat with [[TERMINATE CHAT]]; False when the budget ran out"""
    scores: dict[str, float] = field(default_factory=dict)
    """outcome: ``accuracy`` or ``bleu``, ``assistant_tokens``, ``turns`` …"""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["messages"] = [m.to_dict() for m in self.messages]
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> "Dialogue":
        """Build from a dict, with an error that says ``where`` and which field is wrong (and how).

        Only the form is checked here; what a dialogue must hold to be trained or scored on (a goal its task can
        read, turns in order, sizes) is :func:`calirl_lite.inputs.check_dialogue`'s.
        """
        prefix = f"{where}: " if where else ""
        if not isinstance(d, dict):
            raise ValueError(f"{prefix}a dialogue must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{prefix}unknown field(s) {sorted(unknown)[:10]}")
        for name in ("task", "task_id", "goal", "messages"):
            if name not in d:
                raise ValueError(f"{prefix}missing field {name!r}")
        for name, kinds, what in _FIELD_TYPES:
            if name in d and (not isinstance(d[name], kinds) or (isinstance(d[name], bool) and bool not in kinds)):
                raise ValueError(f"{prefix}field {name!r} must be {what}, got {type(d[name]).__name__}")
        if not d["goal"]:
            raise ValueError(f"{prefix}field 'goal' must be a non-empty object (the hidden goal)")
        messages = []
        for i, m in enumerate(d["messages"]):
            if not isinstance(m, dict) or set(m) != {"role", "text"} or m["role"] not in ROLES or not isinstance(m["text"], str):
                raise ValueError(f"{prefix}messages[{i}] must be {{'role': 'user'|'assistant', 'text': str}}, got {m!r:.200}")
            messages.append(Message(m["role"], m["text"]))
        for k, v in d.get("scores", {}).items():
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{prefix}scores[{k!r:.50}] must be a finite number, got {v!r:.50}")
        return cls(**{**d, "messages": messages, "task_id": str(d["task_id"])})

    def transcript(self) -> str:
        """The conversation as plain text, one message a line."""
        return "\n".join(f"{m.role:>9}: {m.text}" for m in self.messages)


def write_jsonl(path: str | os.PathLike, dialogues: Iterable[Dialogue]) -> Path:
    """Write dialogues as JSON Lines, atomically (a crash leaves the old file, never half a new one)."""
    lines = [json.dumps(d.to_dict(), ensure_ascii=False) for d in dialogues]
    return atomic_write(path, lambda f: f.write("".join(line + "\n" for line in lines)))


def read_jsonl(path: str | os.PathLike, max_line_bytes: int = 1 << 20) -> list[Dialogue]:
    """Read dialogues as they were written (no check of content: see :func:`calirl_lite.inputs.read_dialogues` for
    files from a user); a bad row raises :class:`~calirl_lite.io.InputError` naming the file and line."""
    out = []
    for lineno, row in read_json_lines(path, max_line_bytes):
        try:
            out.append(Dialogue.from_dict(row))
        except ValueError as e:
            raise InputError(path, lineno, str(e)) from None
    return out


def to_dataset(dialogues: Iterable[Dialogue]):
    """A ``datasets.Dataset`` with one row per dialogue (goal and scores as JSON strings, messages as a list)."""
    from datasets import Dataset

    rows = []
    for d in dialogues:
        row = d.to_dict()
        row["goal"] = json.dumps(row["goal"], ensure_ascii=False)
        row["scores"] = json.dumps(row["scores"])
        rows.append(row)
    return Dataset.from_list(rows)


def from_dataset(ds) -> list[Dialogue]:
    """Inverse of :func:`to_dataset`."""
    out = []
    for i, row in enumerate(ds):
        row = dict(row)
        row["goal"] = json.loads(row["goal"])
        row["scores"] = json.loads(row["scores"])
        out.append(Dialogue.from_dict(row, where=f"dataset row {i}"))
    return out
