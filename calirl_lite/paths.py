"""Where the kit writes: ``results/`` for figures and numbers, ``runs/`` for training runs.

Both sit at the project root when the kit runs from a checkout (found by walking up
from the working directory to ``pyproject.toml``), else in the working directory.
``CALIRL_RESULTS`` and ``CALIRL_RUNS`` override them (the tests point them at a
temporary folder so that a test run never touches your results).
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding calirl_lite's pyproject.toml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "calirl_lite"' in pyproject.read_text(errors="replace"):
            return folder
    return here


def results_dir(name: str = "") -> Path:
    """``results/<name>`` (created), under ``$CALIRL_RESULTS`` if set."""
    base = Path(os.environ.get("CALIRL_RESULTS") or project_root() / "results")
    path = base / name if name else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str = "") -> Path:
    """``data/cache/<name>`` for built worlds and converted models, under ``$CALIRL_CACHE`` if set."""
    base = Path(os.environ.get("CALIRL_CACHE") or project_root() / "data" / "cache")
    return base / name if name else base


def runs_dir() -> Path:
    """``runs/`` for training runs (calibration, GRPO), under ``$CALIRL_RUNS`` if set."""
    return Path(os.environ.get("CALIRL_RUNS") or project_root() / "runs")
