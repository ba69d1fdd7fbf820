"""``calirl notebooks``: the numbered notebooks run top to bottom in fresh kernels, executed copies kept apart.

Each kernel gets its environment as an argument (the command's own, with ``CALIRL_RESULTS`` pointing at the results
folder), so the notebooks' own entry (:func:`calirl_lite.env.context`) reads the same settings as the command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

from .io import atomic_write_text
from .paths import PLACE_VARIABLES, project_root
from .profiles import require
from .quiet import no_bars

REPLY_POLL_SECONDS = 0.5
"""How often a waiting notebook client looks again for a kernel's reply that has arrived (:func:`steady_replies`)."""


def notebook_paths(root: Path | None = None) -> list[Path]:
    """The numbered notebooks under ``notebooks/``, in order."""
    folder = (root or project_root()) / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return paths


def run_notebook(path: Path, out_dir: Path, environ: Mapping[str, str], timeout: int = 3600) -> Path:
    """Execute one notebook in a fresh kernel whose environment is ``environ``, in the notebook's own folder; write
    the executed copy to ``out_dir``."""

    require("nbclient", 'pip install "calirl-lite[notebooks]"')
    import nbformat
    from nbclient import NotebookClient

    steady_replies()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=dict(environ))
    return atomic_write_text(out_dir / path.name, nbformat.writes(nb))


def run_notebooks(results: Path, environ: Mapping[str, str], notebooks: Sequence[str] | None = None) -> Path:
    """Run the given notebooks (default: all, in order) in kernels with ``environ`` and their results going to
    ``results``; the executed copies (with outputs) go to ``results/notebooks/`` and the copies in ``notebooks/``
    stay clean."""
    from tqdm.auto import tqdm

    results = results.resolve()
    (results / "notebooks").mkdir(parents=True, exist_ok=True)  # a bad folder is named before any notebook runs
    # the kernels run in notebooks/: every folder is handed over absolute (a relative one would move), results here
    environ = {**environ, **{var: str(Path(environ[var]).resolve()) for var in PLACE_VARIABLES.values() if environ.get(var)},
               PLACE_VARIABLES["results"]: str(results)}
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"notebook {p} does not exist")
    bar = tqdm(paths, desc="notebooks", unit="nb", disable=no_bars())
    for p in bar:
        bar.set_postfix_str(p.name)
        start = time.perf_counter()
        written = run_notebook(p.resolve(), results / "notebooks", environ)
        tqdm.write(f"{p.name}: {time.perf_counter() - start:.1f} s → {written}")
    return results


def steady_replies() -> None:
    """Make jupyter_client's asyncio channels (nbclient's, nbmake's) look for a ready reply every
    :data:`REPLY_POLL_SECONDS` while they wait, instead of once for the whole wait. Safe to call more than once.

    Why: on a busy machine a client running a notebook does not always hear the kernel's ``execute_reply`` to a cell
    that displays widgets (a burst of ``comm_open`` messages on IOPub while the reply comes on the shell socket): the
    kernel has replied and gone idle, but the asyncio poll on the shell socket is not woken (a ZeroMQ socket signals
    readiness by an edge-triggered file descriptor, and that edge can be consumed elsewhere), and the reply is read
    only when the poll's timeout ends — the cell's whole timeout (an hour in :func:`run_notebook`; nbmake's 300 s).
    Measured on 2 busy cores, notebook 01 in class mode: 10 of 12 runs waited ~59 s (timeout 60 s) at its widget
    cells, with ipykernel 7.4 and with 6.31 alike; a plain blocking client on the same kernel heard every reply at
    once. Looking again every half second (and asking the socket itself whether a message is there) ends the wait
    within that half second of the reply."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "steady", False):
        return
    AsyncZMQSocketChannel.get_msg = _get_msg_steadily  # type: ignore[method-assign]


async def _get_msg_steadily(self, timeout: float | None = None) -> dict:
    """``AsyncZMQSocketChannel.get_msg``, waiting in slices of :data:`REPLY_POLL_SECONDS` (``queue.Empty`` after
    ``timeout`` seconds with nothing there, as the original)."""
    from queue import Empty

    import zmq

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = REPLY_POLL_SECONDS if left is None else min(left, REPLY_POLL_SECONDS)
        if await self.socket.poll(int(step * 1000)) or self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return await self._recv()
        if left is not None and left <= REPLY_POLL_SECONDS:
            raise Empty


_get_msg_steadily.steady = True  # type: ignore[attr-defined]
