"""The kit's environment variables, read in one place: the entry of a job (the ``calirl`` command, a notebook).

:func:`context` turns them into a :class:`~calirl_lite.context.Context` that every stage is handed; nothing below
reads the environment (the run mode's switches are read by :func:`calirl_lite.settings.run_mode`, which this
calls). The variables:

============================  =====================================================================================
``CALIRL_SMOKE``              1: smoke mode (the tests' tiny sizes)
``CALIRL_CLASS``              1: class mode (every notebook in a few minutes)
``CALIRL_WORLD_SEED``         the toy world's seed (default 0: the world shipped with the kit)
``CALIRL_RESULTS``            where figures and numbers go (default: ``results/``)
``CALIRL_RUNS``               where training runs go (default: ``runs/``)
``CALIRL_CACHE``              where built worlds and converted models go (default: ``data/cache/``)
``CALIRL_JUDGE_API_KEY``      the API key of an LLM judge's endpoint (``calirl evaluate --judge-endpoint``)
``CALIRL_REAL_USER_API_KEY``  the API key of an LLM real user's endpoint (``--real-user endpoint:URL#MODEL``; default: the judge's key)
``RANK``, ``WORLD_SIZE``      set by ``accelerate launch`` / ``torchrun``: this process's rank and their number
============================  =====================================================================================

In a notebook: ``ctx = context()``, then ``ctx.toy_world()``, ``train(cfg, ctx)`` …
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from .context import Context
from .paths import places
from .settings import SEED_MAX, check_mode, run_mode
from .world import WorldConfig

WORLD_SEED_ENV = "CALIRL_WORLD_SEED"
"""Name of the environment variable that picks the toy world's seed."""
JUDGE_KEY_ENV = "CALIRL_JUDGE_API_KEY"
"""Name of the environment variable that holds an LLM judge's API key."""
REAL_USER_KEY_ENV = "CALIRL_REAL_USER_API_KEY"
"""Name of the environment variable that holds an LLM real user's API key (unset: the judge's)."""


def read_world_seed(environ: Mapping[str, str]) -> int:
    """The toy world's seed: ``CALIRL_WORLD_SEED`` if set, else 0 (the world shipped with the kit)."""
    value = environ.get(WORLD_SEED_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) > SEED_MAX:
        raise ValueError(f"{WORLD_SEED_ENV}={value!r} is not a seed: use a whole number from 0 to {SEED_MAX}")
    return int(value)


def launch_rank(environ: Mapping[str, str]) -> tuple[int, int]:
    """``(rank, number of processes)`` under ``accelerate launch`` or ``torchrun`` (``RANK``, ``WORLD_SIZE``);
    ``(0, 1)`` for a plain run."""
    return int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1))


def context(mode: str | None = None, world_seed: int | None = None) -> Context:
    """The context of a job started here: the run mode (``mode``, else :func:`~calirl_lite.settings.run_mode`), the
    toy world (seed ``world_seed``, else ``CALIRL_WORLD_SEED``, else 0; sized by the mode), the folders and the
    launch rank, read off this process's environment once."""
    env = os.environ
    mode = check_mode(mode) if mode is not None else run_mode()
    where = places(env, Path.cwd())
    seed = read_world_seed(env) if world_seed is None else world_seed
    rank, processes = launch_rank(env)
    world = WorldConfig.for_mode(mode, seed=seed, cache_dir=str(where.cache))
    return Context(mode, world, where.runs, where.cache, where.results, rank, processes, real_user_api_key())


def judge_api_key() -> str:
    """The LLM judge's API key (``CALIRL_JUDGE_API_KEY``; '' where unset)."""
    return os.environ.get(JUDGE_KEY_ENV, "")


def real_user_api_key() -> str:
    """The API key of an LLM real user's endpoint: ``CALIRL_REAL_USER_API_KEY``, else ``CALIRL_JUDGE_API_KEY`` (one
    server often serves both), else ''."""
    return os.environ.get(REAL_USER_KEY_ENV, "") or judge_api_key()


DRIVE_FOLDER = "/content/drive/MyDrive/calirl_lite"
"""where :func:`keep_on_drive` keeps the kit's folders in Colab"""


def keep_on_drive(folder: str = DRIVE_FOLDER, environ: Any = None) -> dict[str, str]:
    """Keep the kit's runs, cache and results under ``folder`` on Google Drive (Colab): mounts Drive where it is not
    mounted yet and points ``CALIRL_RUNS``, ``CALIRL_CACHE`` and ``CALIRL_RESULTS`` there, so that every notebook —
    each opened in its own runtime — finds what the ones before it made. Returns the variables it set."""
    environ = os.environ if environ is None else environ
    if folder.startswith("/content/drive/") and not os.path.isdir("/content/drive/MyDrive"):
        try:
            from google.colab import drive  # type: ignore[import-not-found]
        except ImportError:
            raise RuntimeError("keep_on_drive mounts Google Drive, which only Colab offers; elsewhere give it a folder "
                               "(keep_on_drive('/some/folder')) or set CALIRL_RUNS and CALIRL_CACHE") from None
        drive.mount("/content/drive")
    places = {"CALIRL_RUNS": f"{folder}/runs", "CALIRL_CACHE": f"{folder}/cache", "CALIRL_RESULTS": f"{folder}/results"}
    environ.update(places)
    print(f"the kit's runs, cache and results are kept under {folder}")
    return places
