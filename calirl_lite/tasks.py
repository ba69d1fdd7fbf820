"""Every task family of the kit, by name: the toy world's (:mod:`calirl_lite.toy_tasks`), the English world's
and real human chat (:mod:`calirl_lite.english_tasks`), and CollabLLM's own two (:mod:`calirl_lite.collabllm_tasks`); what a
family is, :mod:`calirl_lite.task_family`."""

from __future__ import annotations

from .collabllm_tasks import COLLABLLM_TASKS
from .english_tasks import ENGLISH_TASKS, ChitChat, DocChat, MathChat
from .task_family import (
    ACCEPT,
    CONFUSED,
    GIVE_UP,
    NOT_SURE,
    REAL_USER,
    REJECT,
    SINGLE_ERRORS,
    AssistantPersona,
    Intent,
    ScriptedAssistant,
    ScriptedUser,
    Task,
    UserPersona,
    single_error_persona,
)
from .toy_tasks import CORPUS_ASSISTANTS, CORPUS_USERS, DAYS, ITEMS, NAMES, PLACES, TASKS, TONES, VERBS, ArithChat, DocEditChat, graded_persona, vocabulary

__all__ = ["ACCEPT", "CONFUSED", "CORPUS_ASSISTANTS", "CORPUS_USERS", "DAYS", "GIVE_UP", "ITEMS", "NAMES", "NOT_SURE", "OTHER_TASKS", "PLACES",
           "REAL_USER", "REJECT", "SINGLE_ERRORS", "TASKS", "TONES", "VERBS", "ArithChat", "AssistantPersona", "ChitChat", "DocChat",
           "DocEditChat", "Intent", "MathChat", "ScriptedAssistant", "ScriptedUser", "Task", "UserPersona", "get_task", "graded_persona",
           "scored_tasks", "single_error_persona", "vocabulary"]
"""The registry, and (for code written against the one module it once was) every name of the task modules."""

OTHER_TASKS: dict[str, Task] = {**ENGLISH_TASKS, **COLLABLLM_TASKS}
"""Tasks outside the toy world: real human chat, the English world's task families (for instruction-tuned models), and
CollabLLM's MATH-Chat and MediumDocEdit-Chat (``collabllm-math``, ``collabllm-docedit``; their users are language models)."""


def scored_tasks() -> list[str]:
    """The tasks with a score (and goals): those that can be trained on and evaluated."""
    return [name for name, task in {**TASKS, **OTHER_TASKS}.items() if task.metric]


def get_task(name: str) -> Task:
    """The task called ``name``; a clear error lists the known ones."""
    task = TASKS.get(name) or OTHER_TASKS.get(name)
    if task is None:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join([*TASKS, *OTHER_TASKS])}")
    return task
