"""Library noise that the kit's own calls cause, silenced where it arises, so a user sees the kit's bars and results.

* :func:`filter_library_warnings` (run when the package is imported): TRL reads a property and (on a GPU, where
  the kit asks for activation checkpointing under transformers' current name) calls two methods that transformers has
  renamed, and TRL marks its ``rollout_func`` API — which the kit pins and tests — as experimental. Neither is
  something a user of the kit can act on. Every other warning still shows.
* :func:`no_library_bars`: transformers draws a "Loading weights" bar for every model it loads (and a "Writing
  model shards" bar for every one it saves), and the kit loads and saves the same
  small models many times (policy, users, evaluation).
* :func:`set_loudness`: the command line's ``--quiet`` (no progress bars at all) and ``--verbose`` (the libraries'
  own logs, bars and the warnings above as well).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Iterator

SILENCED = (
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
    (r"`gradient_checkpointing_(enable|disable)` is deprecated", FutureWarning),
    (r"You are using 'rollout_func'", UserWarning),
)
"""The library warnings the kit's own calls cause: (message pattern, category)."""

_VERBOSE = False
_QUIET = False


def no_bars() -> bool:
    """Whether progress bars are off (``calirl -q``): every bar the kit draws asks this."""
    return _QUIET


def tidy_trainer(trainer: object) -> None:
    """A transformers ``Trainer`` that prints no dict per logging step (the kit keeps the logs in its run folders and
    plots them) and draws its progress bar only where bars are on (not under ``calirl -q``, nor in worker processes)."""
    from transformers import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    if no_bars():
        trainer.remove_callback(ProgressCallback)


def filter_library_warnings() -> None:
    for message, category in SILENCED:
        warnings.filterwarnings("ignore", message=message, category=category)


def set_loudness(quiet: bool = False, verbose: bool = False) -> None:
    """``quiet``: no progress bars (the kit's, TQDM's and the libraries'), in this process and in the worker
    processes it starts; the libraries log errors only. ``verbose``: the libraries log at info level, draw their own
    bars, and the warnings in :data:`SILENCED` show. Results, real warnings and errors show either way."""
    global _VERBOSE, _QUIET
    if quiet and verbose:
        raise ValueError("quiet and verbose exclude each other")
    _VERBOSE, _QUIET = verbose, quiet
    level = "error" if quiet else "info" if verbose else None
    if quiet:  # the libraries' bars, here (read when they are imported) and in worker processes
        os.environ.update(TQDM_DISABLE="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1")
        if "datasets" in sys.modules:
            import datasets

            datasets.disable_progress_bars()
    if level:
        os.environ["TRANSFORMERS_VERBOSITY"] = os.environ["DATASETS_VERBOSITY"] = level
        if "transformers" in sys.modules:  # already imported: the variable was read
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity(hf_logging.ERROR if quiet else hf_logging.INFO)
            if quiet:
                hf_logging.disable_progress_bar()
    if verbose:
        for message, category in SILENCED:
            warnings.filterwarnings("default", message=message, category=category)


@contextlib.contextmanager
def no_library_bars() -> Iterator[None]:
    """Inside: no transformers progress bars (the previous setting comes back after; under ``--verbose`` they show)."""
    from transformers.utils import logging as hf_logging

    if _VERBOSE:
        yield
        return

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
