"""An LLM user's replies, kept by request, and what asking for them cost.

A real user played by a large model behind an endpoint (:class:`calirl_lite.users.EndpointUser`) is the slowest and
dearest part of a run, and its replies are samples: asked twice, it answers twice differently. So every reply is
kept in a file named by its request, and a request that was made before is answered from the file:

* **the key** (:func:`request_key`) is the SHA-256 of everything that decides the reply — the endpoint's base URL,
  the model, the exact messages, the temperature, ``max_tokens`` — and of the request's *sample*, a number the
  user draws from the dialogue's own random stream. Several dialogues that ask the same thing (a GRPO group's
  openings: one goal, no history yet) draw different samples and get distinct replies, as from a live model; the
  same run again draws the same samples and gets the same replies. The API key is no part of it;
* **the files** (:class:`ReplyCache`) are ``<folder>/<key[:2]>/<key>.json``, one per reply, written atomically
  (:func:`calirl_lite.io.atomic_write_json`): a reader never sees half a file, and two processes that write the same
  key leave one whole reply. The file holds the request (less the key) beside the reply, so it can be read;
* **the cost** (:class:`CallCounts`) — requests sent, replies found in the cache, prompt and completion tokens (the
  endpoint's ``usage``) and seconds spent waiting — goes into each run's results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .io import atomic_write_json


def request_fields(base_url: str, model: str, messages: list[dict[str, str]], temperature: float, max_tokens: int, sample: int) -> dict[str, Any]:
    """Everything that decides one request's reply, written the one way the cache keys and keeps it."""
    return {"base_url": base_url.rstrip("/"), "model": model, "messages": messages, "temperature": float(temperature),
            "max_tokens": int(max_tokens), "sample": int(sample)}


def fields_key(fields: dict[str, Any]) -> str:
    """The cache key of a request's :func:`request_fields`: 64 hex digits of the SHA-256 of them as sorted JSON."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def request_key(base_url: str, model: str, messages: list[dict[str, str]], temperature: float, max_tokens: int, sample: int) -> str:
    """The cache key of one request (:func:`fields_key` of its :func:`request_fields`).

    >>> hi = [{"role": "user", "content": "hi"}]
    >>> key = request_key("http://h/v1", "m", hi, 1.0, 64, 0)
    >>> key == request_key("http://h/v1/", "m", hi, 1.0, 64, 0), key == request_key("http://h/v1", "m", hi, 1.0, 64, 1)
    (True, False)
    """
    return fields_key(request_fields(base_url, model, messages, temperature, max_tokens, sample))


@dataclass
class CallCounts:
    """What an LLM user's replies cost: requests sent, replies found in the cache, tokens the endpoint read and wrote
    (its ``usage``, where it reports it) and seconds spent waiting for replies (wall time)."""

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ReplyCache:
    """Replies kept by request key under ``folder``: :meth:`get` what was kept, :meth:`put` a new one."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """Where the reply of ``key`` is kept: ``<folder>/<key[:2]>/<key>.json`` (256 subfolders, none of them huge)."""
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The kept reply of ``key`` (``{"text", "prompt_tokens", "completion_tokens"}``), or None. A file that does not
        read as a kept reply (written by something else) counts as none: the request is made again and the file
        replaced."""
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        reply = entry.get("reply") if isinstance(entry, dict) else None
        return reply if isinstance(reply, dict) and isinstance(reply.get("text"), str) else None

    def put(self, key: str, request: dict[str, Any], reply: dict[str, Any]) -> Path:
        """Keep ``reply`` under ``key``, beside the ``request`` it answers (atomically: safe with other processes)."""
        return atomic_write_json(self.path(key), {"request": request, "reply": reply})
