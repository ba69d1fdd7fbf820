"""Atomic file writes: a reader never sees half a file, a crash never eats the old one.

Everything the kit writes (results, configs, traces, figures) goes through these
helpers: the data is written to a temporary file in the same folder, flushed to disk,
and only then renamed over the target with :func:`os.replace`, which is atomic.
Folders (a saved model, an adapter, a built world) go through :func:`atomic_dir`.
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
