"""Where the kit writes: ``results/`` for figures and numbers, ``runs/`` for training runs, a cache for built worlds
and converted models.

Run from a checkout (found by walking up from the working directory to calirl_lite's ``pyproject.toml``), all
three sit at the project root: ``results/``, ``runs/``, ``data/cache/``. Run from anywhere else — a notebook opened
alone in Colab or a fresh folder, the kit installed with pip — results go to ``./results`` beside the notebook, and
worlds, models and runs to a per-user cache (``$XDG_CACHE_HOME/calirl_lite``, by default ``~/.cache/calirl_lite``),
where every notebook and every later session finds them again. ``CALIRL_RESULTS``, ``CALIRL_RUNS`` and
``CALIRL_CACHE`` override each (the tests point them at a temporary folder so that a test run never touches yours).
"""

from __future__ import annotations

import os
from pathlib import Path


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


def user_cache() -> Path:
    """The per-user folder for worlds, models and runs outside a checkout: ``$XDG_CACHE_HOME/calirl_lite``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "calirl_lite"


def results_dir(name: str = "") -> Path:
    """``results/<name>`` (created): at the project root in a checkout, else in the working directory; under
    ``$CALIRL_RESULTS`` if set."""
    base = Path(os.environ.get("CALIRL_RESULTS") or project_root() / "results")
    path = base / name if name else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str = "") -> Path:
    """Built worlds and converted models: ``data/cache/`` in a checkout, else the user cache; ``$CALIRL_CACHE`` if set."""
    root = checkout_root()
    base = Path(os.environ.get("CALIRL_CACHE") or (root / "data" / "cache" if root else user_cache() / "cache"))
    return base / name if name else base


def runs_dir() -> Path:
    """Training runs (calibration, GRPO): ``runs/`` in a checkout, else the user cache; ``$CALIRL_RUNS`` if set."""
    root = checkout_root()
    return Path(os.environ.get("CALIRL_RUNS") or (root / "runs" if root else user_cache() / "runs"))
