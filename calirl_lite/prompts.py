"""The prompt views of a dialogue: the chat as the policy sees it and as a user simulator sees it.

One dialogue (:class:`calirl_lite.dialogue.Dialogue`) is shown to two models. The policy sees the turns under its
own system prompt and never the goal; a user simulator sees the same turns with the roles as they are, under a
system prompt that holds the hidden goal and CollabLLM's user rules. Pre-training, rollouts, calibration and the
model-played users all render chats through these functions, so the views cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .dialogue import TERMINATE, Message
from .task_family import Task

ASSISTANT_SYSTEM = "you are a helpful assistant ."
"""The policy's system prompt (the toy world's language: lower case, spaced punctuation)."""


def user_prompt(task: Task, goal: dict[str, Any], style: str = "tiny") -> str:
    """The user simulator's system prompt: the hidden goal and CollabLLM's user rules.

    ``style="tiny"`` is the condensed lower-case form the toy world's LM was pre-trained on;
    ``style="collabllm"`` is the plain-English form for real instruction-tuned models.
    """
    if style == "tiny":
        return (
            f"you are a user chatting with an assistant . your task : {task.goal_text(goal)} . "
            f"make minimal effort : start vague , give details only when asked , "
            f"and end with {TERMINATE} when you are done ."
        )
    if style == "collabllm":
        return (
            "You are role-playing as a human USER talking to an AI assistant. You want help with this task "
            f"(the assistant does not know it): {task.goal_text(goal)}\n"
            "Rules: make minimal effort. Start with a short, vague request. Give details only when the assistant "
            "asks for them, a little at a time, in your own words. You may occasionally make small mistakes. "
            "Do not accept an answer you know is wrong. Keep every message short. "
            f"When you are satisfied, or want to stop, end your message with {TERMINATE}. "
            "Write only the user's next message."
        )
    raise ValueError(f"unknown user prompt style {style!r}; use 'tiny' or 'collabllm'")


def assistant_messages(dialogue_messages: list[Message]) -> list[dict[str, str]]:
    """The chat as the policy sees it: its system prompt and the turns, no hidden goal."""
    return [{"role": "system", "content": ASSISTANT_SYSTEM}] + [{"role": m.role, "content": m.text} for m in dialogue_messages]


def user_messages(task: Task, goal: dict[str, Any], dialogue_messages: list[Message], style: str = "tiny") -> list[dict[str, str]]:
    """The chat as the user simulator sees it: the hidden goal in the system prompt, then the turns."""
    return [{"role": "system", "content": user_prompt(task, goal, style)}] + [{"role": m.role, "content": m.text} for m in dialogue_messages]
