"""Library noise that the kit's own calls cause, silenced where it arises, so a user sees the kit's bars and results.

* :func:`filter_library_warnings` (run when the package is imported): TRL reads a property and (on a GPU, where
  the kit asks for activation checkpointing under transformers' current name) calls two methods that transformers has
  renamed, and TRL marks its ``rollout_func`` API — which the kit pins and tests — as experimental. Neither is
  something a user of the kit can act on. Every other warning still shows.
* :func:`no_library_bars`: transformers draws a "Loading weights" bar for every model it loads (and a "Writing
  model shards" bar for every one it saves), and the kit loads and saves the same
  small models many times (policy, users, evaluation).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator


def filter_library_warnings() -> None:
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"`gradient_checkpointing_(enable|disable)` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"You are using 'rollout_func'", category=UserWarning)


@contextlib.contextmanager
def no_library_bars() -> Iterator[None]:
    """Inside: no transformers progress bars (the previous setting comes back after)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
