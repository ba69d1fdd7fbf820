"""Stages side by side: a small pool of single-threaded worker processes with one progress bar.

``calirl reproduce`` runs its calibrations, training runs and gap-study points through :func:`run_pool`. The tiny
models spend their time in Python, not in arithmetic, so two single-threaded runs go about twice as fast as one
two-threaded run. Each job is a plain function with picklable arguments that writes what it finishes to disk, so
a stopped pool loses only the runs in flight (they resume from their checkpoints when run again).

A job gets everything it needs as arguments — its settings and the :class:`~calirl_lite.context.Context` — and
nothing through the environment: a worker starts with the kit's own variables (``CALIRL_*``) removed, so its
result cannot depend on the environment of the process that started it.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .quiet import no_bars

WORKER_LIBRARY_ENV = {"OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "TRL_EXPERIMENTAL_SILENCE": "1"}
"""What a worker tells the libraries before it imports them: one thread, and no bars or logs of their own (the pool
draws one bar, here)."""


def _worker_start(parent: int) -> None:
    """A worker runs one torch thread, keeps no ``CALIRL_*`` variable (its jobs get their settings as arguments), and
    leaves as soon as the process that started it is gone (killed, or interrupted with Ctrl-C) instead of training on
    for nobody; finished runs are on disk, unfinished ones resume."""
    import threading
    import time

    for name in [k for k in os.environ if k.startswith("CALIRL_")]:
        del os.environ[name]
    os.environ.update(WORKER_LIBRARY_ENV)  # the libraries read these when they are imported: below
    import torch

    torch.set_num_threads(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _named(e: Exception, what: str) -> Exception:
    """``e`` with the failed run named; ValueError and FileNotFoundError keep their type (the CLI prints them in one line)."""
    kind = type(e) if isinstance(e, (ValueError, FileNotFoundError)) else RuntimeError
    return kind(f"{what}: {e}")


def pool_size(workers: int) -> int:
    """``workers``, or (0) one per CPU core, at most 4: the size of a stage's pool of single-threaded workers."""
    return workers or max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class Job:
    """One job of a pool: a plain function with picklable arguments, run once the jobs named in ``after`` finished."""

    name: str
    fn: Callable[..., Any]
    args: tuple
    after: tuple[str, ...] = ()
    """names of jobs whose results this one reads from disk (it starts only when they have finished)"""


def _ready(pending: list[Job], done: set[str]) -> Job | None:
    """The first pending job (in the order given: the caller's priority) whose jobs to wait for have all finished."""
    return next((j for j in pending if set(j.after) <= done), None)


def run_pool(jobs: Sequence[Job | tuple], workers: int, desc: str) -> dict[str, Any]:
    """Run jobs — :class:`Job` or ``(name, function, args)`` — in ``workers`` single-threaded processes (in this
    process if 1), with a progress bar; returns name → result. Jobs start in the order given, each as soon as a worker
    is free and the jobs it waits for (``after``) have finished, so one pool runs a whole pipeline without a pause
    between its stages. A failed job stops the pool with its name in the error."""
    from tqdm.auto import tqdm

    pending = [j if isinstance(j, Job) else Job(*j) for j in jobs]
    names = {j.name for j in pending}
    unknown = sorted({a for j in pending for a in j.after} - names)
    if unknown:
        raise ValueError(f"{desc}: jobs wait for jobs that are not in the pool: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    bar = tqdm(total=len(pending), desc=desc, unit="run", disable=no_bars())
    if workers <= 1:
        while (job := _ready(pending, set(out))) is not None:
            pending.remove(job)
            bar.set_postfix_str(job.name)
            try:
                out[job.name] = job.fn(*job.args)
            except Exception as e:  # noqa: BLE001 - re-raised with the run's name
                raise _named(e, f"{desc}: {job.name} failed") from e
            bar.update()
    else:
        _run_in_workers(pending, workers, desc, out, bar)
    bar.close()
    if pending:
        raise ValueError(f"{desc}: jobs wait in a circle and never start: {', '.join(j.name for j in pending)}")
    return out


def _run_in_workers(pending: list[Job], workers: int, desc: str, out: dict[str, Any], bar: Any) -> None:
    """:func:`run_pool`'s loop over spawned workers: ``workers`` jobs in flight at a time, the next ready one started
    as each finishes (``pending`` and ``out`` are updated in place)."""
    import multiprocessing as mp

    running: dict[Any, str] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_start, initargs=(os.getpid(),)) as pool:
        while True:
            while len(running) < workers and (job := _ready(pending, set(out))) is not None:
                pending.remove(job)
                running[pool.submit(job.fn, *job.args)] = job.name
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                try:
                    out[name] = fut.result()
                except Exception as e:  # noqa: BLE001 - re-raised with the run's name
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise _named(e, f"{desc}: {name} failed") from e
                bar.set_postfix_str(name)
                bar.update()
