"""The run context: where a stage runs, worked out once at the entry and handed down.

The command line, ``calirl reproduce``, the lab and the notebooks build one :class:`Context` —
:func:`calirl_lite.env.context` reads it off the environment: the run mode, the toy world, where files go — and
pass it to every stage. A worker process gets it as an argument. Below the entry nothing reads an environment
variable, and each stage turns its settings' names into objects once (:mod:`calirl_lite.stages`).

>>> ctx = Context("smoke", WorldConfig.for_mode("smoke", cache_dir="/tmp/cache"), Path("/tmp/runs"), Path("/tmp/cache"), Path("/tmp/results"))
>>> ctx.make(WorldConfig).train_steps  # settings at the context's mode
40
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .settings import Settings, check_mode
from .world import World, WorldConfig, build_world

S = TypeVar("S", bound=Settings)


@dataclass(frozen=True)
class Context:
    """Where a stage runs: the run mode, the toy world and the folders — the same for every stage of one job."""

    mode: str
    """the run mode: full, class or smoke (:func:`calirl_lite.settings.run_mode`); it sizes every settings
    dataclass made through :meth:`make`"""
    world: WorldConfig
    """the toy world every stage draws its goals, traces and the tiny profile's LM from (its ``cache_dir`` set)"""
    runs: Path
    """where training runs go (``runs/``)"""
    cache: Path
    """where built worlds and converted models go (``data/cache/``)"""
    results: Path
    """where figures and numbers go (``results/``)"""
    rank: int = 0
    """this process's rank under ``accelerate launch`` (0 in a plain run): the first process alone writes"""
    processes: int = 1
    """processes of the launch (1 in a plain run)"""
    calibration: tuple[tuple[str, Any], ...] = ()
    """settings every calibration of this context uses over :class:`~calirl_lite.stages.CalibrationConfig`'s
    defaults, as (field, value) pairs — empty but for the registered study, which calibrates with its record's
    budget (:meth:`with_calibration`); the training runs, evaluations and gap-study points of the context find their
    calibration with them (:func:`~calirl_lite.stages.calibration_for`)"""
    real_user_key: str = field(default="", repr=False, compare=False)
    """the API key of an LLM real user's endpoint ('' where it needs none; :func:`calirl_lite.env.real_user_api_key`);
    never printed"""

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if not self.world.cache_dir:
            raise ValueError("the context's world needs its cache_dir (the context's cache folder)")
        if not 0 <= self.rank < self.processes:
            raise ValueError(f"rank {self.rank} is not one of {self.processes} processes")

    def make(self, cls: type[S], **overrides: Any) -> S:
        """``cls``'s settings at this context's mode, with ``overrides`` on top."""
        return cls.for_mode(self.mode, **overrides)

    def toy_world(self, verbose: bool = True) -> World:
        """The toy world of this context: the shipped one, or built (once, then loaded from the cache)."""
        return build_world(self.world, verbose=verbose)

    def with_world(self, seed: int) -> Context:
        """This context with the world of another seed (same sizes, same cache)."""
        return dataclasses.replace(self, world=dataclasses.replace(self.world, seed=seed))

    def with_calibration(self, settings: dict[str, Any]) -> Context:
        """This context with every calibration made, and found, with ``settings`` over the defaults."""
        return dataclasses.replace(self, calibration=tuple(sorted(settings.items())))

    def results_dir(self, name: str = "") -> Path:
        """``results/<name>``, made if missing."""
        path = self.results / name if name else self.results
        path.mkdir(parents=True, exist_ok=True)
        return path
