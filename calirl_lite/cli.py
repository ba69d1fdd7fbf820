"""The ``calirl`` command (also ``python -m calirl_lite``).

Subcommands:

* ``calirl shift --horizons 5 10 20 40 80 --out DIR`` — notebook 01's sweep: ``DIR/shift.json``, ``DIR/shift.png``
* ``calirl reproduce`` — the main job: runs every notebook top to bottom and keeps their figures and numbers under ``results/``

Flags of a subcommand come from the fields of its settings dataclass, with the field's
docstring as help, so the command line and the notebooks share one set of defaults.
Bad input ends with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import typing
from pathlib import Path
from typing import Any, Sequence

from .settings import Settings, field_docs


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type[Settings], skip: Sequence[str] = ()) -> None:
    """One ``--flag`` per field of ``cls`` (defaults left to the dataclass), help from its docstring."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{docs[f.name]} (default: {f.default!r})"}
        if typing.get_origin(hint) is tuple:
            kwargs.update(nargs="+", type=typing.get_args(hint)[0])
        elif hint is bool:
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(type=hint)
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def settings_from_args(cls: type[Settings], args: argparse.Namespace) -> Settings:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls.make(**{k: v for k, v in vars(args).items() if k in names})


def cmd_shift(args: argparse.Namespace) -> int:
    from .shift import ShiftConfig, format_slopes, run_shift

    cfg = settings_from_args(ShiftConfig, args)
    result = run_shift(cfg, out=args.out)
    print(format_slopes(result))
    print(f"wrote {Path(args.out) / 'shift.json'} and {Path(args.out) / 'shift.png'}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import run_notebooks

    start = time.perf_counter()
    out = run_notebooks(args.notebooks, args.out)
    print(f"results under {out}; total time {time.perf_counter() - start:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .shift import ShiftConfig

    parser = argparse.ArgumentParser(prog="calirl", description="Calibrated Interactive RL, small enough for a laptop.")
    parser.add_argument("--version", action="version", version=f"calirl_lite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("shift", help="compounding shift in toy MDPs: gaps and bounds against the horizon (notebook 01)")
    add_settings_arguments(p, ShiftConfig, skip=("seed", "n_random_mdps"))
    p.add_argument("--out", required=True, help="folder for shift.json, shift.png and config.json")
    p.set_defaults(func=cmd_shift)

    p = sub.add_parser("reproduce", help="the main job: run the notebooks top to bottom, figures and numbers under results/")
    p.add_argument("--profile", default="tiny", choices=["tiny"], help="model/data profile (only 'tiny' so far)")
    p.add_argument("--notebooks", nargs="*", default=None, help="notebook files to run (default: all under notebooks/)")
    p.add_argument("--out", default=None, help="results folder (default: results/ at the project root, or $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"calirl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"calirl {args.command}: interrupted; finished outputs are kept", file=sys.stderr)
        return 130
