"""Files in and out: atomic writes, and the one line-by-line reader of the files the kit accepts.

Everything the kit writes (results, configs, traces, figures) goes through these
helpers: the data is written to a temporary file in the same folder, flushed to disk,
and only then renamed over the target with :func:`os.replace`, which is atomic.
Folders (a saved model, an adapter, a built world) go through :func:`atomic_dir`.

Everything the kit reads from a user (Dialogue JSON Lines, traces, CollabLLM rows) goes through
:func:`read_json_lines`, and every way such a file can be wrong ends in one error, :class:`InputError`, that
names the file and the line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


class InputError(ValueError):
    """Bad input in a file the kit reads: ``str(e)`` is ``file:line: what is wrong`` (line 0: the file as a whole;
    ``unit="row"`` for formats without lines, such as parquet: ``file: row N: …``).

    A ``ValueError``, so code that already handles bad values handles it; the CLI prints it as one line and
    exits with status 2."""

    def __init__(self, path: str | os.PathLike, line: int, message: str, unit: str = "line") -> None:
        self.path, self.line, self.message = str(path), line, message
        where = "" if not line else f":{line}" if unit == "line" else f": {unit} {line}"
        super().__init__(f"{path}{where}: {message}")


def require_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when a file is there; else an :class:`InputError` saying what is there instead."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, 0, "no such file" if not path.exists() else "not a file")
    return path


def read_json_lines(path: str | os.PathLike, max_line_bytes: int, why: str = "") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file.

    A line longer than ``max_line_bytes`` is refused before it is decoded or parsed (one huge line must not cost
    gigabytes; ``why`` says where that bound comes from); bytes that are not UTF-8, JSON that does not parse, nesting too deep or a number too long for
    Python end in an :class:`InputError` naming the line. A missing file, a folder or an empty file too.
    """
    path = require_file(path)
    rows = 0
    with open(path, "rb") as f:
        for lineno in range(1, 2**62):
            raw = f.readline(max_line_bytes + 2)
            if not raw:
                break
            if len(raw.rstrip(b"\r\n")) > max_line_bytes:
                raise InputError(path, lineno, f"the line is longer than {max_line_bytes:,} bytes, the most a line may hold{f' ({why})' if why else ''}")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, lineno, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(path, lineno, f"not valid JSON ({e.msg}, column {e.colno})") from None
            except (ValueError, RecursionError) as e:  # a number of over 4,300 digits; nesting deeper than the stack
                raise InputError(path, lineno, f"JSON the kit does not read ({type(e).__name__}: {str(e)[:80]})") from None
            rows += 1
            yield lineno, value
    if rows == 0:
        raise InputError(path, 0, "the file holds no rows")


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "w") -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it into place.

    If ``write`` raises, the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it 0600: readable as any other file written here
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def json_safe(x: Any) -> Any:
    """``x`` with every NaN or infinite float (in nested dicts and lists) replaced by None, which JSON can hold."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (serialised before the file is touched)."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically (format from the file's suffix)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight"), mode="wb")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, suffix: str = ".writing") -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` (``path`` + ``suffix``); when the block ends without an error
    it replaces ``path``, and on an error it is removed and ``path`` keeps what it held."""
    path = Path(path)
    tmp = path.with_name(path.name + suffix)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def folder_lock(path: str | os.PathLike) -> Any:
    """A lock file beside ``path`` (``<path>.lock``), for processes that build or train into the same folder: the
    second waits for the first (``with folder_lock(run): …``)."""
    from filelock import FileLock

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")
