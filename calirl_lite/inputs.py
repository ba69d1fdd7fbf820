"""What the kit accepts from a user's files, checked once, where the data is read.

Logged dialogues for Static Context RL, calibration traces and evaluation outputs are Dialogue JSON Lines; the
real-model profiles also read CollabLLM's rows. Each goes through one reader here, and every way a file can be
wrong — bytes that are not UTF-8, JSON that does not parse, a field of the wrong type, a goal without the keys its
task needs, an empty user turn, turns out of order, a message or dialogue longer than the kit accepts — ends in
one error, :class:`~calirl_lite.io.InputError`, naming the file and the line. The CLI prints it as one line.

The size limits are the profile's (:attr:`calirl_lite.profiles.Profile.max_message_tokens` and
``max_dialogue_tokens``), counted in tokens of the profile's tokenizer; a message is also refused when it is longer
than :data:`BYTES_PER_TOKEN` bytes per token of its limit, and a line of a file when it is longer than that for a
whole dialogue twice over, so that one huge line is refused before it is parsed, let alone tokenized.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .dialogue import ROLES, Dialogue
from .io import InputError, read_json_lines, require_file
from .tasks import OTHER_TASKS, TASKS, get_task

BYTES_PER_TOKEN = 16
"""bytes of text allowed per token of a limit: no tokenizer of the kit's models needs more for real text"""


@dataclass(frozen=True)
class Limits:
    """The longest message and dialogue accepted, in tokens counted by ``count_tokens`` (None: bytes only)."""

    max_message_tokens: int
    max_dialogue_tokens: int
    count_tokens: Callable[[str], int] | None = None
    source: str = ""
    """where the limits come from, for error messages (e.g. ``profile tiny``)"""

    @property
    def max_line_bytes(self) -> int:
        """The longest line of a file the readers parse: a whole dialogue at the byte bound, twice over (its goal,
        scores and JSON quoting ride along)."""
        return 2 * self.max_dialogue_tokens * BYTES_PER_TOKEN

    def lines(self, path: str | os.PathLike) -> Iterable[tuple[int, Any]]:
        """:func:`~calirl_lite.io.read_json_lines` with this bound, which its error explains."""
        return read_json_lines(path, self.max_line_bytes, f"{self.source}: twice max_dialogue_tokens at {BYTES_PER_TOKEN} bytes a token")

    def check_text(self, text: str, what: str) -> int:
        """The token count of ``text`` (a message); an error naming the limit when it is too long."""
        limit = f"the longest message accepted is {self.max_message_tokens:,} tokens ({self.source}, max_message_tokens)"
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_message_tokens * BYTES_PER_TOKEN:
            raise ValueError(f"{what} is {size:,} bytes long; {limit}, at most {BYTES_PER_TOKEN} bytes each")
        tokens = self.count_tokens(text) if self.count_tokens else math.ceil(size / BYTES_PER_TOKEN)
        if tokens > self.max_message_tokens:
            raise ValueError(f"{what} is {tokens:,} tokens long; {limit}")
        return tokens


DEFAULT_LIMITS = Limits(4096, 16384, source="default limits")
"""Limits for files read without a profile at hand (bytes only)."""


def check_goal(goal: Any, task: str) -> None:
    """The hidden goal of a dialogue of ``task`` has every field the task's users and scores read, of the right type."""
    if not isinstance(goal, dict) or not goal:
        raise ValueError("field 'goal' must be a non-empty object (the hidden goal)")
    fields = get_task(task).goal_fields
    missing = [k for k in fields if k not in goal]
    if missing:
        raise ValueError(f"the goal lacks field(s) {missing}; goals of {task} have {list(fields)}")
    for name, kind in fields.items():
        value = goal[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"goal field {name!r} must be {'an integer' if kind is int else 'a string'}, got {value!r}"[:300])
    get_task(task).check_goal_values(goal)


def check_dialogue(d: Dialogue, task: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
    """What every dialogue the kit reads must be: of ``task`` (if given) with a goal that task can read, messages
    from the user first and alternating, no empty user turn, and within ``limits``. Raises ``ValueError``."""
    if task is not None and d.task != task:
        raise ValueError(f"the dialogue is of task {d.task!r}, not {task!r}")
    if task is not None or d.task in TASKS or d.task in OTHER_TASKS:
        check_goal(d.goal, d.task)
    if not d.messages:
        raise ValueError("the dialogue has no messages")
    total = 0
    for k, m in enumerate(d.messages):
        want = ROLES[k % 2]
        if m.role != want:
            raise ValueError(f"message {k} has role {m.role!r}, expected {want!r} (dialogues start with the user and alternate)")
        if m.role == "user" and not m.text.strip():
            raise ValueError(f"message {k} is an empty user turn")
        total += limits.check_text(m.text, f"message {k}")
    if total > limits.max_dialogue_tokens:
        raise ValueError(f"the dialogue is {total:,} tokens long; the longest accepted is {limits.max_dialogue_tokens:,} tokens "
                         f"({limits.source}, max_dialogue_tokens)")


def read_dialogues(path: str | os.PathLike, task: str | None = None, limits: Limits = DEFAULT_LIMITS) -> list[Dialogue]:
    """Every dialogue of a JSON Lines file, each checked by :func:`check_dialogue`; any fault is an
    :class:`~calirl_lite.io.InputError` naming the file and line."""
    out = []
    for lineno, row in limits.lines(path):
        try:
            d = Dialogue.from_dict(row)
            check_dialogue(d, task, limits)
        except ValueError as e:
            raise InputError(path, lineno, str(e)) from None
        out.append(d)
    return out


def check_dialogues(dialogues: Sequence[Dialogue], where: str, task: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
    """:func:`check_dialogue` for dialogues in memory (made by the kit or a package); errors name ``where`` and the
    dialogue's position, as :class:`~calirl_lite.io.InputError` with its line number."""
    if not dialogues:
        raise InputError(where, 0, "no dialogues")
    for n, d in enumerate(dialogues):
        try:
            check_dialogue(d, task, limits)
        except ValueError as e:
            raise InputError(where, n + 1, f"dialogue {d.task_id}: {e}") from None


# ----------------------------------------------------------------------------- CollabLLM rows

COLLABLLM_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (list,), "completion": (str,), "conv_id": (str, int), "turn_id": (int,), "score": (int, float),
    "single_turn_prompt": (str,), "single_turn_completion": (str,),
}
"""The columns of a CollabLLM multi-turn row the kit reads, and their JSON types (``single_turn_metadata`` may be
anything)."""


def check_collabllm_row(row: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """One CollabLLM row: every column of the right type, ``prompt`` a list of ``{role, content}`` messages, each
    text within the limits. Raises ``ValueError``."""
    if not isinstance(row, dict):
        raise ValueError(f"a row must be a JSON object, got {type(row).__name__}")
    missing = [c for c in (*COLLABLLM_TYPES, "single_turn_metadata") if c not in row]
    if missing:
        raise ValueError(f"missing column(s) {missing}; a CollabLLM multi-turn row has {[*COLLABLLM_TYPES, 'single_turn_metadata']}")
    for name, kinds in COLLABLLM_TYPES.items():
        if not isinstance(row[name], kinds) or isinstance(row[name], bool):
            raise ValueError(f"column {name!r} must be {' or '.join(k.__name__ for k in kinds)}, got {type(row[name]).__name__}")
    for k, m in enumerate(row["prompt"]):
        if not isinstance(m, dict) or m.get("role") not in (*ROLES, "system") or not isinstance(m.get("content"), str):
            raise ValueError(f"prompt[{k}] must be {{'role': 'user'|'assistant'|'system', 'content': str}}")
        limits.check_text(m["content"], f"prompt[{k}]")
    for name in ("completion", "single_turn_prompt", "single_turn_completion"):
        limits.check_text(row[name], f"column {name!r}")


def read_collabllm_rows(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """The rows of a local CollabLLM file: JSON Lines (``.jsonl``, or ``.json`` holding one row per line) or
    ``.parquet``; each checked by :func:`check_collabllm_row`, faults named by file and line (parquet: row)."""
    path = require_file(path)
    whole = path.suffix == ".parquet" or (path.suffix == ".json" and _starts_with(path, b"["))
    rows = _whole_file_rows(path) if whole else limits.lines(path)
    out = []
    for n, row in rows:
        try:
            check_collabllm_row(row, limits)
        except ValueError as e:
            raise InputError(path, n, str(e), unit="row" if whole else "line") from None
        out.append(row)
    return out


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(4096).lstrip().startswith(prefix)


def _whole_file_rows(path: Path) -> Iterable[tuple[int, Any]]:
    """Rows of a parquet table or of a JSON array, numbered from 1 (these formats have no lines to name)."""
    import json

    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            rows = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(path, 0, f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"not valid JSON ({e.msg}, column {e.colno})") from None
    except Exception as e:  # noqa: BLE001 - pyarrow's many error types, deep nesting, huge numbers: not a table the kit reads
        raise InputError(path, 0, f"not a readable {path.suffix[1:]} table ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(rows, list) or not rows:
        raise InputError(path, 0, "the file holds no rows" if rows == [] else "a .json file must hold a list of rows or one row per line")
    return enumerate(rows, 1)
