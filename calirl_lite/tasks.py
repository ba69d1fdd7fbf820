"""Every task family of the kit, by name: the toy world's (:mod:`calirl_lite.toy_tasks`) and the English world's
and real human chat (:mod:`calirl_lite.english_tasks`); what a family is, :mod:`calirl_lite.task_family`."""

from __future__ import annotations

from .english_tasks import ENGLISH_TASKS
from .task_family import Task
from .toy_tasks import TASKS

OTHER_TASKS: dict[str, Task] = ENGLISH_TASKS
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
