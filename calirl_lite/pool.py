"""Stages side by side: a small pool of single-threaded worker processes with one progress bar.

``calirl reproduce`` runs its calibrations, training runs and gap-study points through :func:`run_pool`. The tiny
models spend their time in Python, not in arithmetic, so two single-threaded runs go about twice as fast as one
two-threaded run. Each job is a plain function with picklable arguments that writes what it finishes to disk, so
a stopped pool loses only the runs in flight (they resume from their checkpoints when run again).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Sequence

from .quiet import no_bars


def _worker_start(parent: int) -> None:
    """A worker runs one torch thread, and leaves as soon as the process that started it is gone (killed, or
    interrupted with Ctrl-C) instead of training on for nobody; finished runs are on disk, unfinished ones resume."""
    import threading
    import time

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


def run_pool(jobs: Sequence[tuple[str, Callable[..., Any], tuple]], workers: int, desc: str) -> dict[str, Any]:
    """Run ``(name, function, args)`` jobs in ``workers`` single-threaded processes (in this process if 1), with a
    progress bar; returns name → result. A failed job stops the stage with its name in the error."""
    from tqdm.auto import tqdm

    out: dict[str, Any] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=no_bars())
    if workers <= 1:
        for name, fn, args in jobs:
            bar.set_postfix_str(name)
            try:
                out[name] = fn(*args)
            except Exception as e:  # noqa: BLE001 - re-raised with the run's name
                raise _named(e, f"{desc}: {name} failed") from e
            bar.update()
        bar.close()
        return out
    import multiprocessing as mp

    quiet = {"OMP_NUM_THREADS": "1",  # inherited by the spawned workers before they import torch
             "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "TRL_EXPERIMENTAL_SILENCE": "1"}  # one bar, here
    old = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_start, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(fn, *args): name for name, fn, args in jobs}
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    out[name] = fut.result()
                except Exception as e:  # noqa: BLE001 - re-raised with the run's name
                    for f in futures:
                        f.cancel()
                    raise _named(e, f"{desc}: {name} failed") from e
                bar.set_postfix_str(name)
                bar.update()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bar.close()
    return out
