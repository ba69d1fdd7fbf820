"""Real data for the GPU profiles and for ``smol``, loaded from the hub or from local files.

* CollabLLM's multi-turn datasets, ``collabllm/collabllm-multiturn-{math-hard,medium,bigcodebench}``
  (and their ``-large`` versions): columns ``prompt`` (the chat so far, a list of
  ``{role, content}``), ``completion``, ``conv_id``, ``turn_id``, ``score``,
  ``single_turn_prompt`` (the full hidden problem or request: only the user simulator sees it),
  ``single_turn_completion`` (reference answer or document), ``single_turn_metadata``,
  ``sessions``, ``rewards``. A local ``.jsonl`` / ``.json`` / ``.parquet`` file with the same
  columns loads the same way (that is how the tests run offline). Two of them are tasks of the kit
  (:mod:`calirl_lite.collabllm_tasks`): where their goals come from is :data:`COLLABLLM_TASK_DATA`, how they are
  split in train and test :func:`collabllm_split`, and :func:`collabllm_task_goals` reads them.
* GSM-style problems from the ``reasoning-gym`` package (offline), for the ``smol`` profile, and the English
  world's math-chat goals made from them (:func:`math_chat_goals`); its doc-chat goals (:func:`doc_chat_goals`);
  :func:`task_goals` gives any task's goals.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dialogue import Dialogue, Message
from .english_tasks import DocChat, MathChat
from .inputs import DEFAULT_LIMITS, check_collabllm_row, read_collabllm_rows
from .io import InputError
from .mathcheck import boxed_answer
from .profiles import require
from .task_family import Task
from .tasks import TASKS, scored_tasks
from .world import World

COLLABLLM_NAMES = ("math-hard", "medium", "bigcodebench")


def collabllm_source(name: str) -> str:
    """Hub id for a short name (``math-hard``, ``medium-large`` …); other strings are returned as they are."""
    base = name.removesuffix("-large")
    if base in COLLABLLM_NAMES:
        return f"collabllm/collabllm-multiturn-{name}"
    return name


def load_collabllm(source: str, split: str = "train", limits: Any = None) -> Any:
    """A CollabLLM multi-turn dataset as a ``datasets.Dataset``, every row checked
    (:func:`calirl_lite.inputs.check_collabllm_row`: columns, types, message sizes within ``limits``).

    ``source`` is a short name (``math-hard``), a hub id, or a local ``.jsonl`` / ``.json`` / ``.parquet`` file with
    the same columns (read by :func:`calirl_lite.inputs.read_collabllm_rows`: a fault names the file and line).
    """
    from datasets import Dataset, load_dataset

    limits = limits or DEFAULT_LIMITS
    if Path(source).suffix in (".jsonl", ".json", ".parquet"):
        return Dataset.from_list(read_collabllm_rows(source, limits))
    where = collabllm_source(source)
    try:
        ds = load_dataset(where, split=split)
    except Exception as e:  # offline, unknown name …
        raise ValueError(f"could not load {where!r} from the hub ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                         f"offline, pass a local file with the same columns") from None
    for i, row in enumerate(ds, 1):
        try:
            check_collabllm_row(row, limits)
        except ValueError as e:
            raise InputError(where, i, str(e), unit="row") from None
    return ds


@dataclass(frozen=True)
class CollabLLMData:
    """Where a CollabLLM task of the kit takes its goals from."""

    hub_id: str
    """the multi-turn dataset on the hub"""
    hub_split: str
    """the hub split read: CollabLLM's multi-turn datasets have one, ``train``; the kit's train and test splits are
    made from it (:func:`collabllm_split`)"""
    kind: str
    """what :func:`collabllm_goal` makes of a row: ``math`` (with the reference's boxed answer) or ``medium``"""


COLLABLLM_TASK_DATA: dict[str, CollabLLMData] = {
    "collabllm-math": CollabLLMData("collabllm/collabllm-multiturn-math-hard", "train", "math"),
    "collabllm-docedit": CollabLLMData("collabllm/collabllm-multiturn-medium", "train", "medium"),
}
"""The one place that says which hub dataset and split each CollabLLM task of the kit reads."""

COLLABLLM_TEST_BUCKETS = 5
"""one conversation in this many goes to the test split (:func:`collabllm_split`)"""


def collabllm_goal(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """The hidden goal of a CollabLLM row: ``conv_id``; ``problem``, the complete request (``single_turn_prompt``:
    only the user simulator sees it); ``reference`` (``single_turn_completion``); ``metadata``; and for ``math`` the
    ``answer``, the reference's last ``\\boxed{}`` (the whole reference where it boxes none)."""
    meta = row["single_turn_metadata"]
    goal: dict[str, Any] = {"conv_id": str(row["conv_id"]), "problem": row["single_turn_prompt"], "reference": row["single_turn_completion"],
                            "metadata": meta if isinstance(meta, (dict, list, str, int, float)) or meta is None else str(meta)}
    if kind == "math":
        answer = boxed_answer(row["single_turn_completion"])
        goal["answer"] = answer if answer is not None else row["single_turn_completion"].strip()
    return goal


def collabllm_goals(ds: Any, task: str) -> list[dict[str, Any]]:
    """One hidden goal per conversation (:func:`collabllm_goal`; rows of one ``conv_id`` are turns of one
    conversation, the first row met stands for it), in the order the conversations first appear."""
    goals: dict[str, dict[str, Any]] = {}
    for row in ds:
        conv = str(row["conv_id"])
        if conv not in goals:
            goals[conv] = {"task_id": conv, "goal": collabllm_goal(row, task)}
    return list(goals.values())


def collabllm_contexts(ds: Any, task: str) -> list[Dialogue]:
    """Each row's chat history as a Dialogue (a static context for Static Context RL), of the kit's task for the
    rows' kind (``math``: collabllm-math, ``medium``: collabllm-docedit; another kind ``k``: ``collabllm-k``)."""
    name = next((n for n, data in COLLABLLM_TASK_DATA.items() if data.kind == task), f"collabllm-{task}")
    out = []
    for row in ds:
        msgs = [Message(m["role"], m["content"]) for m in row["prompt"] if m["role"] in ("user", "assistant")]
        out.append(Dialogue(name, f"{row['conv_id']}-{row['turn_id']}", collabllm_goal(row, task), msgs, user="logged", policy="logged"))
    return out


def collabllm_split(goal: dict[str, Any]) -> str:
    """The kit's split of a CollabLLM goal: ``test`` for one conversation in :data:`COLLABLLM_TEST_BUCKETS` (by a
    CRC-32 hash of the hidden request, so a request that several conversations share lands in one split only),
    ``train`` for the rest. The hub's datasets have a train split only; this derives a test split from it, the
    same on every machine and every run."""
    return "test" if zlib.crc32(goal["problem"].encode("utf-8")) % COLLABLLM_TEST_BUCKETS == 0 else "train"


def collabllm_task_goals(task: str, split: str, source: str | None = None) -> list[dict[str, Any]]:
    """``{"task_id", "goal"}`` of every conversation of CollabLLM task ``task`` (``collabllm-math`` or
    ``collabllm-docedit``) in the kit's ``split`` (:func:`collabllm_split`), read from the hub dataset and split of
    :data:`COLLABLLM_TASK_DATA` — or, given ``source``, from a local file with the same columns (offline; a
    malformed row is an :class:`~calirl_lite.io.InputError` naming the file and line)."""
    if task not in COLLABLLM_TASK_DATA:
        raise ValueError(f"{task!r} is no CollabLLM task; they are {', '.join(COLLABLLM_TASK_DATA)}")
    split_parity(split)  # a clear error for a split that is neither train nor test
    data = COLLABLLM_TASK_DATA[task]
    ds = load_collabllm(source or data.hub_id, data.hub_split)
    return [g for g in collabllm_goals(ds, data.kind) if collabllm_split(g["goal"]) == split]


def gsm_goals(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` GSM-style word problems with numeric answers from ``reasoning-gym`` (offline)."""
    require("reasoning_gym", "pip install reasoning-gym")
    import reasoning_gym

    ds = reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=seed)
    return [{"task_id": f"gsm-{seed}-{i}", "goal": {"problem": x["question"], "answer": str(x["answer"])}} for i, x in enumerate(ds)]



def split_parity(split: str) -> int:
    """0 for 'train', 1 for 'test': the English world's goals go to a split by the parity of a template or a hash."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return {"train": 0, "test": 1}[split]


MATH_CHAT_POOL = 1000
"""math-chat goals per split"""


@functools.lru_cache(maxsize=4)
def _math_chat_goals(split: str, n: int) -> tuple[dict[str, Any], ...]:
    require("reasoning_gym", 'pip install "calirl-lite[smol]"')
    import reasoning_gym

    parity = split_parity(split)
    ds = reasoning_gym.create_dataset("gsm_symbolic", size=8 * n, seed=0)
    out: list[dict[str, Any]] = []
    for i in range(len(ds)):
        if ds.task_indices[i] % 2 != parity:
            continue
        x = ds[i]
        goal = MathChat.from_problem(x["question"], x["answer"])
        if goal is not None:
            out.append({"task_id": f"math-{split}-{i}", "goal": goal})
        if len(out) == n:
            break
    return tuple(out)


def math_chat_goals(split: str, n: int = MATH_CHAT_POOL) -> list[dict[str, Any]]:
    """The English world's math-chat goals: reasoning-gym's ``gsm_symbolic`` problems (seed 0, offline), each cut
    into the question and the facts (:meth:`calirl_lite.english_tasks.MathChat.from_problem`). Train goals come from the
    even problem templates and test goals from the odd ones, so no test problem is a train problem with other
    numbers."""
    split_parity(split)  # a clear error before the cached work
    return [dict(t, goal=dict(t["goal"])) for t in _math_chat_goals(split, n)]


def doc_chat_goals(split: str) -> list[dict[str, Any]]:
    """The English world's doc-chat goals: every combination of name, place, day and tone
    (:class:`calirl_lite.english_tasks.DocChat`), split in two by a hash of the combination — half train, half test, none in
    both — in a fixed shuffled order."""
    import itertools
    import zlib

    import numpy as np

    task, parity = DocChat(), split_parity(split)
    combos = [c for c in itertools.product(*(task.OPTIONS[s] for s in task.slots)) if zlib.crc32("|".join(c).encode()) % 2 == parity]
    order = np.random.default_rng(0).permutation(len(combos))
    goals = [dict(zip(task.slots, combos[i])) for i in order]
    return [{"task_id": f"doc-{split}-{n}", "goal": {**g, "target": task.document(g)}} for n, g in enumerate(goals)]


def task_goals(task: Task, split: str, world: World | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """``{"task_id", "goal"}`` of every goal of ``task`` in ``split``: the toy world's tasks from ``world`` (the toy
    world the stage uses), the English world's from their sources, CollabLLM's from the hub
    (:func:`collabllm_task_goals`) or, given ``source``, from a local file with the hub's columns."""
    if source is not None and task.name not in COLLABLLM_TASK_DATA:
        raise ValueError(f"a source file gives goals to CollabLLM's tasks ({', '.join(COLLABLLM_TASK_DATA)}) only, not to {task.name!r}")
    if task.name in TASKS:
        if world is None:
            raise ValueError(f"{task.name} is a task of the toy world: give the world whose goals to use")
        return world.tasks(task.name, split)
    if task.name == "math-chat":
        return math_chat_goals(split)
    if task.name == "doc-chat":
        return doc_chat_goals(split)
    if task.name in COLLABLLM_TASK_DATA:
        return collabllm_task_goals(task.name, split, source)
    raise ValueError(f"task {task.name!r} has no goals to train or evaluate on; tasks with goals: {', '.join(scored_tasks())}")
