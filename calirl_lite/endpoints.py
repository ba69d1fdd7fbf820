"""The one HTTP client of the kit: OpenAI-compatible chat endpoints, for endpoint users and LLM judges.

Kept apart from the users and the judge so that reading it (or the CLI, which names its errors) needs no model
library. Every call has one deadline — connecting, sending, and every byte of the reply, retries included — so an
endpoint that answers one byte at a time cannot hold a run up; transient failures (a refused or dropped
connection, a reply cut short, HTTP 408/429/5xx) are retried with exponential backoff while the deadline allows;
and every failure, of the transport or of the reply, ends in an :class:`EndpointError` that names the endpoint
(never the API key).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

RETRIES = 2
"""tries after the first, for transient failures"""
BACKOFF_SECONDS = 0.5
"""the wait before the first retry; it doubles for each next one"""
MAX_REPLY_BYTES = 8 << 20
"""the largest reply read (a chat completion is a few kilobytes)"""
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
"""HTTP statuses worth a retry"""


def require_http(url: str, what: str) -> None:
    """A clear error unless ``url`` is an http(s) address (endpoint users and judges)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{what} must start with http:// or https://, got {url!r}")


class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint could not be reached or gave no usable reply (the message names it)."""


_LATE = "gave no complete reply in time"


class _Transient(Exception):
    """A failure that a retry may cure; its message says what happened."""


@dataclass(frozen=True)
class Completion:
    """One reply of an endpoint: its text and, where the endpoint reports them (``usage``), the tokens it read and wrote."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def chat_completion(base_url: str, model: str, messages: list[dict[str, str]], temperature: float = 0.0, max_tokens: int = 256,
                    api_key: str = "", timeout: float = 60.0, retries: int = RETRIES) -> str:
    """One reply of an OpenAI-compatible endpoint (``POST {base_url}/chat/completions``), within ``timeout``
    seconds in all; an :class:`EndpointError` naming the endpoint otherwise. The text only: :func:`chat_reply`
    gives the token counts too."""
    return chat_reply(base_url, model, messages, temperature, max_tokens, api_key, timeout, retries).text


def chat_reply(base_url: str, model: str, messages: list[dict[str, str]], temperature: float = 0.0, max_tokens: int = 256,
               api_key: str = "", timeout: float = 60.0, retries: int = RETRIES, seed: int | None = None) -> Completion:
    """:func:`chat_completion` as a :class:`Completion`, with the reply's token counts. ``seed`` (sent where given:
    the OpenAI API's per-request ``seed``, which vLLM and TGI honour) makes a sampled reply repeatable."""
    request = {"model": model, "temperature": temperature, "max_tokens": max_tokens, "messages": messages}
    body = json.dumps(request if seed is None else {**request, "seed": seed}).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    start = time.monotonic()
    deadline, delay = start + timeout, BACKOFF_SECONDS
    for attempt in range(1, retries + 2):
        try:
            return _completion(_post(f"{base_url.rstrip('/')}/chat/completions", body, headers, deadline))
        except _Transient as e:
            why = str(e)
        except EndpointError as e:
            late = f" (the deadline is {timeout:g} s)" if str(e) == _LATE else ""
            raise EndpointError(f"endpoint {base_url} {e}{late}") from None
        if time.monotonic() + delay >= deadline or attempt > retries:
            break
        time.sleep(delay)
        delay *= 2
    tries = f"{attempt} tries" if attempt > 1 else "1 try"
    raise EndpointError(f"endpoint {base_url} {why} ({tries} in {time.monotonic() - start:.1f} s of the {timeout:g} s allowed)")


def _post(url: str, body: bytes, headers: dict[str, str], deadline: float) -> bytes:
    """The reply's body to one POST; a timer closes the socket at the deadline, however the server dawdles."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise EndpointError(_LATE)
    try:
        parts = urllib.parse.urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname or "", parts.port, timeout=left)
    except (ValueError, http.client.InvalidURL) as e:
        raise EndpointError(f"is not a URL the kit can reach ({e})") from None
    timer = threading.Timer(left, _shut, (conn,))
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body, headers)
        resp = conn.getresponse()
        if resp.length is not None and resp.length > MAX_REPLY_BYTES:
            raise EndpointError(f"announced a reply of {resp.length:,} bytes, more than the {MAX_REPLY_BYTES:,} read")
        data = resp.read() if resp.length is not None else resp.read(MAX_REPLY_BYTES + 1)
    except (OSError, http.client.HTTPException) as e:
        if time.monotonic() >= deadline - 0.01:
            raise EndpointError(_LATE) from None
        if isinstance(e, (ConnectionRefusedError, socket.gaierror)):
            raise _Transient(f"is unreachable ({e})") from None
        raise _Transient(_describe(e)) from None
    finally:
        timer.cancel()
        conn.close()
    if len(data) > MAX_REPLY_BYTES:
        raise EndpointError(f"sent a reply of more than {MAX_REPLY_BYTES:,} bytes")
    if resp.status in TRANSIENT_STATUS:
        raise _Transient(f"answered HTTP {resp.status}")
    if resp.status != 200:
        raise EndpointError(f"answered HTTP {resp.status}: {data[:200]!r}")
    return data


def _shut(conn: http.client.HTTPConnection) -> None:
    """Stop a connection from another thread: a blocked read returns at once."""
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _describe(e: BaseException) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return f"sent a reply cut short ({len(e.partial)} bytes of {len(e.partial) + (e.expected or 0)})"
    if isinstance(e, http.client.RemoteDisconnected):
        return "closed the connection without a reply"
    if isinstance(e, ConnectionResetError):
        return "reset the connection"
    return f"failed: {type(e).__name__}: {e}"


def _completion(data: bytes) -> Completion:
    """``choices[0].message.content`` of a reply body (UTF-8 JSON, the content a string), with ``usage``'s
    ``prompt_tokens`` and ``completion_tokens`` where the body has them (0 where not)."""
    try:
        reply: Any = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise EndpointError(f"sent bytes that are not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    except (ValueError, RecursionError):
        raise EndpointError(f"did not answer JSON: {data[:200]!r}") from None
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise EndpointError(f"gave no choices[0].message.content: {str(reply)[:200]}") from None
    if not isinstance(content, str):
        raise EndpointError(f"gave {json.dumps(content)[:50]} as choices[0].message.content, not text")
    usage = reply.get("usage") if isinstance(reply, dict) else None
    counts = [usage.get(k) if isinstance(usage, dict) else 0 for k in ("prompt_tokens", "completion_tokens")]
    return Completion(content.strip(), *(n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0 for n in counts))
