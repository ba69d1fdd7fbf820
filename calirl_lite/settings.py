"""Settings shared by every stage: the smoke switch, seeds, and settings dataclasses.

Every stage of the kit takes one settings dataclass (``ShiftConfig`` for notebook 01,
more for the later stages). Each field carries a docstring right under it, in the
CleanRL style, so a reader sees what a knob does where it is defined;
:func:`field_docs` reads those docstrings back for ``--help`` texts and tests.

Three sizes, one code path (:func:`run_mode` reads the two switches, nothing else does):

* full (the default) — the sizes of every number in docs/results.md;
* class (``CALIRL_CLASS=1``) — every notebook top to bottom in under two minutes on a 2-core laptop, once the toy
  world is built (``calirl world prepare``): one training seed, 20 GRPO steps, fewer evaluation dialogues, a
  smaller lab, and the sections with a real model skipped on a CPU — sized so that each notebook still shows its
  point (docs/teaching.md has the minutes);
* smoke (``CALIRL_SMOKE=1``, the tests') — everything tiny, so that CI executes the notebooks in seconds; the
  numbers mean nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import math
import os
import random
import textwrap
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from .io import atomic_write_json

SMOKE_ENV = "CALIRL_SMOKE"
"""Name of the environment variable that turns smoke mode on (the tests' tiny sizes)."""
CLASS_ENV = "CALIRL_CLASS"
"""Name of the environment variable that turns class mode on (every notebook in under two minutes)."""
MODES = ("full", "class", "smoke")
"""The sizes the kit runs at (see :func:`run_mode`)."""


EVAL_SEED_OFFSET = 50_000
"""Evaluation dialogues use seed ``EVAL_SEED_OFFSET + training seed``: a stream no training run draws from."""
HELDOUT_SEED_OFFSET = 10_000
"""Held-out real-user traces use ``calibration seed + HELDOUT_SEED_OFFSET`` (the training traces use the seed itself)."""
SIMULATOR_SEED_OFFSET = 20_000
"""The dialogues that measure a simulator's behaviour use ``calibration seed + SIMULATOR_SEED_OFFSET``."""
RUN_SEED_STRIDE, STEP_SEED_STRIDE = 1_000_003, 7_919
"""A GRPO step's rollouts use ``seed · RUN_SEED_STRIDE + step · STEP_SEED_STRIDE + 1`` (two primes: no two runs and
steps share a stream)."""


SEED_MAX = 2**32 - 1
"""the largest seed (NumPy's generators take seeds below 2**32)"""


def number_rule(kind: type = int, lo: float | None = None, hi: float | None = None) -> str:
    """How an error states what a number must be: ``an integer ≥ 1``, ``a number from 0 to 1`` …"""
    what = "an integer" if kind is int else "a number"
    if lo is not None and hi is not None:
        return f"{what} from {lo} to {hi}"
    return f"{what} ≥ {lo}" if lo is not None else f"{what} ≤ {hi}" if hi is not None else f"a finite {what[2:]}"


def check_number(name: str, value: Any, kind: type = int, lo: float | None = None, hi: float | None = None) -> Any:
    """``value`` when it is a ``kind`` (an int for ``float`` too; never a bool) from ``lo`` to ``hi``; else a
    ``ValueError``: ``{name} must be {number_rule(…)}, got {value}``. Every number the kit takes is checked here:
    the settings dataclasses' fields (``name`` is the field) and, through :func:`number_arg`, the command line's
    flags (where argparse names the flag)."""
    kinds = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and (isinstance(value, (int, np.integer)) or math.isfinite(value))
    if not ok or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be {number_rule(kind, lo, hi)}, got {value!r:.60}")
    return value


def number_arg(kind: type = int, lo: float | None = None, hi: float | None = None) -> Any:
    """An argparse ``type=`` that reads a number and checks it with :func:`check_number`: argparse then names the
    flag (``argument --steps: must be an integer ≥ 1, got 0``) and exits with status 2."""
    import argparse

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {number_rule(kind, lo, hi)}, got {text!r}") from None
        try:
            return check_number("", value, kind, lo, hi)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).strip()) from None

    parse.__name__ = kind.__name__  # argparse's own messages name the type by this
    return parse


def seed_bounds(name: str, kind: type) -> tuple[float | None, float | None]:
    """The default range of a numeric setting: seeds from 0 to :data:`SEED_MAX`, other integers ≥ 0, other
    numbers any finite value (``Settings.BOUNDS`` says otherwise where a field needs it)."""
    if kind is int:
        return (0, SEED_MAX) if "seed" in name else (0, None)
    return (None, None)


def _switch(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={value!r} is not understood: use 1 (on) or 0 (off)")


def run_mode() -> str:
    """``'smoke'`` when ``CALIRL_SMOKE`` is on, else ``'class'`` when ``CALIRL_CLASS`` is on, else ``'full'``
    (each switch takes ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``).

    This is the only function in the kit that reads the two switches; everything else asks it (or
    :func:`smoke_mode`, :func:`class_mode`, :func:`by_mode`).
    """
    return "smoke" if _switch(SMOKE_ENV) else "class" if _switch(CLASS_ENV) else "full"


def smoke_mode() -> bool:
    """True in smoke mode (``CALIRL_SMOKE=1``): the tests' tiny runs."""
    return run_mode() == "smoke"


def class_mode() -> bool:
    """True in class mode (``CALIRL_CLASS=1``, and smoke mode off): every notebook in under two minutes."""
    return run_mode() == "class"


def by_mode(full: Any, klass: Any, smoke: Any, mode: str | None = None) -> Any:
    """The value for ``mode`` (default: the current :func:`run_mode`): ``by_mode(200, 100, 16)`` is 100 in class mode.
    The notebooks' own sizes (those that are not a settings field) are chosen with it, so a reader sees all three at
    once; below the notebooks and the command line, code passes the mode of its :class:`~calirl_lite.context.Context`."""
    return dict(zip(MODES, (full, klass, smoke)))[check_mode(mode) if mode is not None else run_mode()]


def check_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`MODES`, else a clear error."""
    if mode not in MODES:
        raise ValueError(f"unknown run mode {mode!r}; modes: {', '.join(MODES)}")
    return mode




def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Code that draws random numbers with NumPy should still take an explicit
    ``np.random.Generator`` (``np.random.default_rng(seed)``); this helper is for the
    libraries that use global state (torch, transformers, TRL).
    """
    check_number("seed", seed, int, 0, SEED_MAX)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        import torch
    except ImportError:  # the tabular notebooks do not need torch
        return
    torch.manual_seed(int(seed))
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(int(seed))


S = TypeVar("S", bound="Settings")


@dataclasses.dataclass
class Settings:
    """Base class of the per-stage settings dataclasses.

    Subclasses list their smoke-mode values in ``SMOKE`` and their class-mode values in ``CLASS`` (dicts of
    field → value); :meth:`make` applies the current mode's (:func:`run_mode`), then the caller's own values on top,
    so the same notebook code runs full-size, class-size or tiny.
    """

    SMOKE: ClassVar[dict[str, Any]] = {}
    CLASS: ClassVar[dict[str, Any]] = {}
    BOUNDS: ClassVar[dict[str, tuple[float | None, float | None]]] = {}
    """``field: (lowest, highest)`` (None: no bound) for numeric fields whose range is not the default of
    :func:`seed_bounds`; checked on construction and turned into the command line's checks"""
    LATER: ClassVar[dict[str, Any]] = {}
    """``field: value`` for fields added after runs and the registered study were made, with the value that does what
    those did: at that value a field is left out of :meth:`identity`, so the runs made before it keep their folders"""

    def __post_init__(self) -> None:
        for name, (kind, lo, hi) in self.number_fields().items():
            value = getattr(self, name)
            for v in value if isinstance(value, (tuple, list)) else (value,):
                check_number(name, v, kind, lo, hi)

    @classmethod
    def number_fields(cls) -> dict[str, tuple[type, float | None, float | None]]:
        """``field: (int or float, lowest, highest)`` for every numeric field (tuples of numbers included)."""
        out = {}
        for name, hint in typing.get_type_hints(cls).items():
            if typing.get_origin(hint) is tuple:
                hint = typing.get_args(hint)[0]
            if name in {f.name for f in dataclasses.fields(cls)} and hint in (int, float):
                out[name] = (hint, *cls.BOUNDS.get(name, seed_bounds(name, hint)))
        return out

    @classmethod
    def make(cls: type[S], **overrides: Any) -> S:
        """The settings at the current :func:`run_mode` (:meth:`for_mode`): what a notebook or the command line calls.
        Below them, code builds settings with the mode of its :class:`~calirl_lite.context.Context` (``ctx.make``)."""
        return cls.for_mode(run_mode(), **overrides)

    @classmethod
    def for_mode(cls: type[S], mode: str, **overrides: Any) -> S:
        """Build the settings: defaults, then the values of ``mode`` (``SMOKE`` or ``CLASS``), then ``overrides``."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}; fields are {sorted(field_docs(cls))}")
        values = dict(by_mode(full={}, klass=cls.CLASS, smoke=cls.SMOKE, mode=mode))
        values.update(overrides)
        return cls(**_finite(cls, values))

    def digest(self, exclude: tuple[str, ...] = (), extra: dict[str, Any] | None = None) -> str:
        """A short hash of the settings (less ``exclude``, plus ``extra``): names cache and run folders, so a changed setting never reuses an old one."""
        d = {k: v for k, v in self.identity().items() if k not in exclude}
        d.update(extra or {})
        return short_hash(d)

    def identity(self) -> dict[str, Any]:
        """The settings that say what a run is: :meth:`to_dict` less the :data:`LATER` fields at their earlier value."""
        return {k: v for k, v in self.to_dict().items() if k not in self.LATER or self.LATER[k] != v}

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=_jsonable))

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write ``config.json`` (atomically) into ``out_dir`` and return its path."""
        path = Path(out_dir) / "config.json"
        atomic_write_json(path, {"settings": type(self).__name__, **self.to_dict()})
        return path

    @classmethod
    def load(cls: type[S], path: str | os.PathLike) -> S:
        """Read settings back from a ``config.json`` written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
        data.pop("settings", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {sorted(unknown)} for {cls.__name__}")
        try:
            return cls(**_finite(cls, data))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _finite(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values``, after checking that no number among them (nested ones included) is NaN or infinite — the same
    rule as the JSON every run's ``config.json`` is written in (:func:`calirl_lite.io.atomic_write_json`)."""
    for name, value in values.items():
        try:
            json.dumps(value, allow_nan=False, default=_jsonable)
        except ValueError:
            raise ValueError(f"{cls.__name__}.{name} must be a finite number, got {value!r}") from None
    return values


def short_hash(data: Any) -> str:
    """Ten hex digits of the SHA-256 of ``data`` as sorted JSON: the name part of cache and run folders."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def field_docs(cls: type) -> dict[str, str]:
    """Map each dataclass field of ``cls`` to the docstring written under it ('' if none)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for stmt, nxt in zip(body, body[1:] + [None]):
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                doc = ""
                if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                    doc = inspect.cleandoc(nxt.value.value)
                docs[stmt.target.id] = doc
    return {f.name: docs.get(f.name, "") for f in dataclasses.fields(cls)}
