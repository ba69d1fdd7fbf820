"""Where the kit writes: ``results/`` for figures and numbers, ``runs/`` for training runs, a cache for built worlds
and converted models.

Run from a checkout (found by walking up from the working directory to calirl_lite's ``pyproject.toml``), all
three sit at the project root: ``results/``, ``runs/``, ``data/cache/``. Run from anywhere else — a notebook opened
alone in Colab or a fresh folder, the kit installed with pip — results go to ``./results`` beside the notebook, and
worlds, models and runs to a per-user cache (``$XDG_CACHE_HOME/calirl_lite``, by default ``~/.cache/calirl_lite``),
where every notebook and every later session finds them again. ``CALIRL_RESULTS``, ``CALIRL_RUNS`` and
``CALIRL_CACHE`` override each (the tests point them at a temporary folder so that a test run never touches yours).

:func:`places` works the three folders out from the environment it is *given*: :func:`calirl_lite.env.context`
hands it ``os.environ`` once, at the entry, and every stage below gets the folders in its
:class:`~calirl_lite.context.Context`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PLACE_VARIABLES = {"results": "CALIRL_RESULTS", "runs": "CALIRL_RUNS", "cache": "CALIRL_CACHE"}
"""The environment variable that moves each folder."""


@dataclass(frozen=True)
class Places:
    """The three folders the kit writes to."""

    results: Path
    """figures and numbers (``results/``)"""
    runs: Path
    """training runs: calibration, GRPO, the gap study's points, base-policy evaluations (``runs/``)"""
    cache: Path
    """built worlds and converted models (``data/cache/``)"""


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding calirl_lite's pyproject.toml, else ``start``."""
    return checkout_root(start) or Path(start or Path.cwd()).resolve()


def checkout_root(start: str | os.PathLike | None = None) -> Path | None:
    """The root of the calirl_lite checkout at or above ``start`` (default: cwd), or None outside one."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "calirl_lite"' in pyproject.read_text(errors="replace"):
            return folder
    return None


def places(environ: Mapping[str, str], cwd: str | os.PathLike | None = None) -> Places:
    """The three folders for a process whose environment is ``environ`` and working directory ``cwd``: in a
    checkout ``results/``, ``runs/`` and ``data/cache/`` at its root; elsewhere ``./results`` and the user cache
    (``$XDG_CACHE_HOME/calirl_lite``, by default ``~/.cache/calirl_lite``); each moved by its variable
    (:data:`PLACE_VARIABLES`)."""
    root = checkout_root(cwd)
    user = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "calirl_lite"
    default = {"results": (root or Path(cwd or Path.cwd()).resolve()) / "results",
               "runs": root / "runs" if root else user / "runs",
               "cache": root / "data" / "cache" if root else user / "cache"}
    return Places(**{name: Path(environ.get(var) or default[name]) for name, var in PLACE_VARIABLES.items()})
