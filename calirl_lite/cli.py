"""The ``calirl`` command (also ``python -m calirl_lite``).

Subcommands:

* ``calirl shift --horizons 5 10 20 40 80 --out DIR`` — notebook 01's sweep: ``DIR/shift.json``, ``DIR/shift.png``
* ``calirl world build`` (``calirl world prepare``: the world and SmolLM2, made once before a class), ``calirl calibrate``, ``calirl train --method M`` — the stages, one at a time
* ``calirl evaluate --policy base|RUN`` — a policy against the real users on held-out goals, per seed and mean ± std
* ``calirl bench rollout|train|world|memory`` — speed figures, what the world's LM can copy, a GPU profile's memory plan
* ``calirl reproduce --profile tiny --seeds 0 1 2`` — the main job: the paper's table in the toy world, under ``results/``
* ``calirl lab`` — the mismatch lab: which simulator errors compound into a bad policy, under ``results/lab/``
* ``calirl calibration-study`` — how much calibration is enough: the validation gap of each calibration budget, and
  the default chosen by it, under ``results/calibration-study/``
* ``calirl diagnose`` — what calibration leaves: policies trained against the calibrated simulator corrected where its
  gap is, under ``results/diagnosis/``
* ``calirl notebooks`` — runs every notebook top to bottom and keeps the executed copies under ``results/notebooks/``

Flags of a subcommand come from the fields of its settings dataclass, with the field's
docstring as help, so the command line and the notebooks share one set of defaults.
Bad input ends with a one-line message and exit status 2, never a traceback.

The command line is an entry: it reads the environment once (:func:`calirl_lite.env.context`) and hands the
context to the stage it runs. Each command's module is imported when that command runs, not before — they pull in
torch, transformers and matplotlib, and ``calirl --help`` should start at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
import typing
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .endpoints import EndpointError
from .env import context, judge_api_key
from .grading import OtterError
from .quiet import set_loudness
from .settings import SEED_MAX, Settings, field_docs, number_arg

COUNT = number_arg(int, 1)
"""a count of one or more (dialogues, goals, steps, repeats …)"""
SEED = number_arg(int, 0, SEED_MAX)
"""a seed"""


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type[Settings], skip: Sequence[str] = ()) -> None:
    """One ``--flag`` per field of ``cls`` (defaults left to the dataclass), help from its docstring."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    numbers = cls.number_fields()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        default = f.default_factory() if f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING else f.default
        help_text = f"{docs[f.name]} (default: {default!r})".replace("%", "%%")  # argparse reads % as a format
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        parse = number_arg(*numbers[f.name]) if f.name in numbers else None
        if typing.get_origin(hint) is tuple:
            kwargs.update(nargs="+", type=parse or typing.get_args(hint)[0])
        elif typing.get_origin(hint) is dict:
            kwargs.update(type=json.loads, metavar="JSON")
        elif hint is bool or set(typing.get_args(hint)) == {bool, type(None)}:  # (bool | None: unset means a default of another setting)
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            kwargs.update(type=parse or hint)
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def settings_from_args(cls: type[Settings], args: argparse.Namespace) -> Settings:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls.make(**{k: v for k, v in vars(args).items() if k in names})


def json_or_text(args: argparse.Namespace, compute: Any, text: Any, dumps: Any = None) -> int:
    """Run ``compute()``; with ``--json`` stdout gets only the JSON of its result (everything else printed goes to
    stderr), otherwise ``text(result)`` is printed."""
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
        result = compute()
    plain = result.to_dict() if hasattr(result, "to_dict") else result  # a typed result (RunResult, EvalResult) as its JSON
    print((dumps or (lambda r: json.dumps(r, indent=2)))(plain) if args.json else text(result))
    return 0


def cmd_shift(args: argparse.Namespace) -> int:
    from .shift import ShiftConfig, format_slopes, run_shift  # (each command imports its own module: see above)

    cfg = settings_from_args(ShiftConfig, args)
    result = run_shift(cfg, out=args.out)
    print(format_slopes(result))
    print(f"wrote {Path(args.out) / 'shift.json'} and {Path(args.out) / 'shift.png'}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import ReproduceConfig, reproduce

    reproduce(settings_from_args(ReproduceConfig, args), context(), out=args.out)
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from .lab import LabConfig, lab

    lab(settings_from_args(LabConfig, args), context(), out=args.out)
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from .diagnosis import DiagnosisConfig, diagnose

    diagnose(settings_from_args(DiagnosisConfig, args), context(), out=args.out)
    return 0


def cmd_calibration_study(args: argparse.Namespace) -> int:
    from .calibration_study import CalibrationStudyConfig, calibration_study

    calibration_study(settings_from_args(CalibrationStudyConfig, args), context(), out=args.out)
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from .notebook_runner import run_notebooks

    start = time.perf_counter()
    results = Path(args.out) if args.out else context().results
    out = run_notebooks(results, dict(os.environ), args.notebooks)
    print(f"results under {out}; total time {time.perf_counter() - start:.1f} s")
    return 0


def world_settings(args: argparse.Namespace) -> Any:
    """The world the flags name: the context's (``CALIRL_WORLD_SEED``, the run mode's sizes, the cache) with the
    flags given on top."""
    from .world import WorldConfig

    ctx = context()
    given = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(WorldConfig)}}
    return dataclasses.replace(ctx.world, **given) if given else ctx.world


def cmd_world_build(args: argparse.Namespace) -> int:
    from .world import SHIPPED, build_world, verify_world

    cfg = world_settings(args)
    if args.verify:
        from .bench import copy_rates

        return print_verification(verify_world(cfg.seed, measure=copy_rates))
    world = build_world(cfg, force=args.force)
    seconds = f"its build took {world.manifest['build_seconds']:.1f} s" + (" (shipped with the kit)" if world.folder.is_relative_to(SHIPPED) else "")
    print(f"world {world.folder}: {world.manifest['parameters']:,} parameters, vocabulary {world.manifest['vocab_size']}; {seconds}")
    return 0


def print_verification(report: dict[str, Any]) -> int:
    """What ``calirl world build --verify`` found: the rebuilt world against the shipped one; where the weights differ,
    what the two worlds' LMs can do (``calirl bench world``'s measure of both). Exit status 1 where the key differs or
    the files do and the two LMs' abilities are not within 0.05 of each other."""
    print(f"world seed {report['seed']}: rebuilt in {report['build_seconds']:.0f} s; key {'matches' if report['key_matches'] else 'DIFFERS from'} the shipped one")
    if report["identical"]:
        print("every shipped file is bit for bit what the code builds here")
        return 0 if report["key_matches"] else 1
    print(f"files that differ: {', '.join(report['differ'])}")
    if not report["abilities"]:
        return 1
    w, shipped, rebuilt = report["weights"], report["abilities"]["shipped"], report["abilities"]["rebuilt"]
    print(f"the LM's weights differ by at most {w['max_abs_difference']:.3g} (in {w['tensor']}): this CPU rounds otherwise; what the two LMs can do:")
    for key in shipped:
        print(f"  {key:<14} shipped {shipped[key]:.3f}   rebuilt {rebuilt[key]:.3f}")
    close = all(abs(shipped[k] - rebuilt[k]) <= 0.05 for k in shipped) and report["differ"] == ["model/model.safetensors"]
    return 0 if close and report["key_matches"] else 1


def cmd_world_prepare(args: argparse.Namespace) -> int:
    """Find (or build) the default world and convert SmolLM2 (or find it): what class mode assumes is there."""
    from .profiles import smol_folder

    ctx = context()
    start = time.perf_counter()
    world = ctx.toy_world()
    print(f"world {world.folder}: ready ({time.perf_counter() - start:.0f} s)")
    start = time.perf_counter()
    smol = smol_folder(ctx.cache)
    where = "ready" if smol.is_dir() else "not converted (install it: pip install \"calirl-lite[smol]\"); the notebooks' English sections will fetch it from the hub"
    print(f"SmolLM2-135M-Instruct {smol}: {where} ({time.perf_counter() - start:.0f} s)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import CalibrationConfig, calibrate, format_gap, report_json

    cfg = settings_from_args(CalibrationConfig, args)
    return json_or_text(args, lambda: calibrate(cfg, context()), lambda r: f"{format_gap(r)}\nadapter: {r['adapter']}", report_json)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, format_result, train, train_share

    cfg, ctx = settings_from_args(TrainConfig, args), context()
    if ctx.rank > 0:  # another process of `accelerate launch`: its share of the steps; the first one reports
        print(f"process {ctx.rank} trained its share of {train_share(cfg, ctx, args.force)}", file=sys.stderr if args.json else sys.stdout)
        return 0
    return json_or_text(args, lambda: train(cfg, ctx, force=args.force), lambda r: f"{format_result(r)}\nrun folder: {r.run}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvaluateConfig, evaluate_seeds

    cfg = settings_from_args(EvaluateConfig, args)
    judge = cfg.judge(judge_api_key())  # a bad judge setting is refused before any model is loaded
    return json_or_text(args, lambda: evaluate_seeds(cfg, context(), judge=judge), lambda r: r.text())


def bench_rollout_text(r: dict[str, Any]) -> str:
    return "\n".join([
        f"engine   {r['engine_tok_s']:9.1f} tok/s  ({r['n_dialogues']} dialogues in lock step, user: {r['user']}; median of {r['repeats']} runs)",
        f"generate {r['generate_tok_s']:9.1f} tok/s  (plain batched generate of single turns, same prompts and tokens)",
        f"         {r['generate_fixed_length_tok_s']:9.1f} tok/s  (upper bound: generate with no turn ends, every row full length)",
        f"stream   {r['stream_tok_s']:9.1f} tok/s  (the kit's sampling loop, {r['forward']}, on the same single turns)",
        f"naive    {r['naive_tok_s']:9.1f} tok/s  (one dialogue at a time, {r['n_naive']} dialogues)",
        f"engine / generate = {r['engine_vs_generate']:.2f}   stream / generate = {r['stream_vs_generate']:.2f}   engine / naive = {r['engine_vs_naive']:.1f}",
    ])


def bench_train_text(r: dict[str, Any]) -> str:
    lines = [f"GRPO on {r['task']} ({r['profile']} profile, user: {r['user']}, {r['prompts_per_step']}×{r['group_size']} dialogues per step, "
             f"{r['threads']} threads; timed over {r['steps'] - 1} steps after a warm-up)"]
    for name in ("single_turn", "multi_turn"):
        x = r[name]
        lines.append(f"{name.replace('_', '-'):>12} ({x['max_messages']:>2} messages): {x['steps_per_s']:6.3f} steps/s  {x['policy_tok_s']:8.1f} policy tok/s  "
                     f"{x['all_tok_s']:9.1f} tok/s in training sequences  rollouts {100 * x['rollout_share']:.0f}% of the time  "
                     f"{x['policy_tokens_per_dialogue']:.1f} policy tokens per dialogue")
    return "\n".join(lines)


def bench_world_text(r: dict[str, Any]) -> str:
    return "\n".join([
        f"world seed {r['seed']} built in {r['build_seconds']:.1f} s ({r['pretrain_steps']} pre-training steps, final loss {r['final_loss']}, {r['threads']} threads)",
        f"told every detail up front, on {r['n_goals']} test goals, the base policy's first turn:",
        f"  arith-chat   answers {r['arith_answers']:.2f}; of its answers right {r['arith_right']:.2f}",
        f"  docedit-chat drafts  {r['docedit_drafts']:.2f}; of its drafts with the right name {r['name']:.2f}, tone {r['tone']:.2f}, "
        f"place {r['place']:.2f}, day {r['day']:.2f}",
    ])


def bench_memory_text(r: dict[str, Any]) -> str:
    from .memory import format_plan
    from .timeplan import format_time_plan

    lines = [format_plan(r["plan"])]
    for stage, m in r["measured"].items():
        peak = f"peak {m['peak_allocated_gib']:.2f} GiB allocated, {m['peak_reserved_gib']:.2f} reserved" if "peak_allocated_gib" in m else "no GPU: no peak"
        lines.append(f"  measured {stage:<11} {peak}; micro-batch {m['micro_batch']} × {m['accumulation']}; {m['seconds']:.1f} s")
    lines.append(format_time_plan(r["time"]))
    if r["commands"]:
        lines += ["the commands that run it:", *(f"  {c}" for c in r["commands"])]
    return "\n".join(lines)


def bench_parsing_text(r: dict[str, Any]) -> str:
    k = r["read_as"]
    return "\n".join([
        f"{r['profile']}'s base policy with {r['task']}'s real users: {r['dialogues']} dialogues, {r['turns']} assistant turns",
        f"  read as an answer {k['answer']} (judged right {r['answers_judged_right']}), as a question {k['ask']}, as neither {k['other']}",
        f"  dialogues with an answer read: {r['dialogues_with_an_answer']} of {r['dialogues']}; accuracy {r['accuracy']:.3f}",
        f"  {r['sample_size']} turns to check by hand: {r['sample']}",
    ])


def bench_parser(bench: Any, name: str, help: str, cls: type[Settings], run: Any, text: Any) -> argparse.ArgumentParser:
    """A ``calirl bench NAME`` parser: the flags of its settings dataclass, and ``--json``; it runs
    ``run(settings, context)`` and prints ``text(figures)`` (or the JSON)."""
    p = bench.add_parser(name, help=help)
    add_settings_arguments(p, cls)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=lambda args: json_or_text(args, lambda: run(settings_from_args(cls, args), context()), text))
    return p


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``calirl`` parser. With ``argv``, only the command it names gets its flags (and imports its module), so
    ``calirl --help`` and every command start without loading the model libraries the others need."""
    parser = argparse.ArgumentParser(prog="calirl", description="Calibrated Interactive RL, small enough for a laptop.")
    parser.add_argument("--version", action="version", version=f"calirl_lite {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="no progress bars (results, warnings and errors still show)")
    loudness.add_argument("-v", "--verbose", action="store_true", help="also the libraries' own logs and the warnings the kit silences")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for name, (help, add) in COMMANDS.items():
        p = sub.add_parser(name, help=help)
        if argv is None or named == name:
            add(p)
    return parser


def add_shift(p: argparse.ArgumentParser) -> None:
    from .shift import ShiftConfig

    add_settings_arguments(p, ShiftConfig, skip=("seed", "n_random_mdps"))
    p.add_argument("--out", required=True, help="folder for shift.json, shift.png and config.json")
    p.set_defaults(func=cmd_shift)


def add_world(p: argparse.ArgumentParser) -> None:
    from .world import WorldConfig

    world = p.add_subparsers(dest="world_command", required=True, metavar="ACTION")
    p = world.add_parser("build", help="build (or reuse: shipped, or from the cache) the tiny world: tasks, corpus, tokenizer, tiny LM")
    add_settings_arguments(p, WorldConfig)
    p.add_argument("--force", action="store_true", help="build it even where it is shipped with the kit or the cache holds it")
    p.add_argument("--verify", action="store_true", help="rebuild the world shipped with the kit afresh and compare it with the shipped one, file by file")
    p.set_defaults(func=cmd_world_build)
    p = world.add_parser("prepare", help="everything the notebooks load, made once before a class: the default world and SmolLM2's HF folder")
    p.set_defaults(func=cmd_world_prepare)


def add_bench(p: argparse.ArgumentParser) -> None:
    from . import bench as b

    bench = p.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    bench_parser(bench, "rollout", "tokens/s: batched rollout engine vs plain generate vs one dialogue at a time", b.RolloutBench, b.bench_rollout,
                 bench_rollout_text)
    bench_parser(bench, "train", "GRPO steps/s and tokens/s for single-turn and multi-turn rollouts", b.TrainBench, b.bench_train, bench_train_text)
    bench_parser(bench, "memory", "the memory plan of a GPU profile per stage; --measure: the peaks on this machine's GPU", b.MemoryBench, b.bench_memory,
                 bench_memory_text)
    bench_parser(bench, "world", "build the toy world afresh (timed) and measure what its LM copies from the chat", b.WorldBench, b.bench_world,
                 bench_world_text)
    bench_parser(bench, "parsing", "how the scripted real users read a real model's turns: a tally, and a sample to check by hand", b.ParsingBench,
                 b.bench_parsing, bench_parsing_text)


def add_calibrate(p: argparse.ArgumentParser) -> None:
    from .calibration import CalibrationConfig

    add_settings_arguments(p, CalibrationConfig)
    p.add_argument("--json", action="store_true", help="end by printing the gap metrics of both simulators as JSON")
    p.set_defaults(func=cmd_calibrate)


def add_train(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig

    add_settings_arguments(p, TrainConfig)
    p.add_argument("--force", action="store_true", help="train again even if this run has finished before")
    p.add_argument("--json", action="store_true", help="end by printing the run's results as JSON")
    p.set_defaults(func=cmd_train)


def add_evaluate(p: argparse.ArgumentParser) -> None:
    from .evaluate import EvaluateConfig

    add_settings_arguments(p, EvaluateConfig)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_evaluate)


def add_reproduce(p: argparse.ArgumentParser) -> None:
    from .reproduce import ReproduceConfig

    add_settings_arguments(p, ReproduceConfig)
    p.add_argument("--out", default=None, help="results folder (default: results/ at the project root, or $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_reproduce)


def add_lab(p: argparse.ArgumentParser) -> None:
    from .lab import LabConfig

    add_settings_arguments(p, LabConfig)
    p.add_argument("--out", default=None, help="results folder (default: results/lab/ at the project root, or under $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_lab)


def add_diagnose(p: argparse.ArgumentParser) -> None:
    from .diagnosis import DiagnosisConfig

    add_settings_arguments(p, DiagnosisConfig)
    p.add_argument("--out", default=None, help="results folder (default: results/diagnosis/ at the project root, or under $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_diagnose)


def add_calibration_study(p: argparse.ArgumentParser) -> None:
    from .calibration_study import CalibrationStudyConfig

    add_settings_arguments(p, CalibrationStudyConfig)
    p.add_argument("--out", default=None, help="results folder (default: results/calibration-study/ at the project root, or under $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_calibration_study)


def add_notebooks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notebooks", nargs="*", default=None, help="notebook files to run (default: all under notebooks/)")
    p.add_argument("--out", default=None, help="results folder (default: results/ at the project root, or $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_notebooks)


def cmd_class_export(args: argparse.Namespace) -> int:
    from .grading import export

    for stem, student in export(args.out, args.notebooks).items():
        print(f"{stem}: hand out {student}; grade with {next(student.parent.parent.joinpath('autograder').glob('*.zip'))}")
    return 0


def cmd_class_grade(args: argparse.Namespace) -> int:
    from .grading import grade

    scores = grade(args.autograder, args.notebook, args.out)
    for name, marks in scores["exercises"].items():
        print(f"{name}: {marks:g}")
    print(f"total {scores['total']:g} of {scores['possible']:g} ({scores['seconds']:.1f} s)")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from .site import build_site, site_problems

    counts = build_site(args.executed, args.out)
    for name, c in counts.items():
        print(f"{name}.html: {c['images']} images ({c['figure_cells']} figure cells)")
    problems = site_problems(counts)
    for problem in problems:
        print(f"calirl site: a page misses figures: {problem}", file=sys.stderr)
    print(f"wrote {Path(args.out) / 'index.html'}")
    return 1 if problems else 0


def add_site(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executed", default="results/site-run/notebooks", help="the executed notebooks (`calirl notebooks --out DIR` leaves them in DIR/notebooks)")
    p.add_argument("--out", default="results/site", help="folder for index.html and one page per notebook")
    p.set_defaults(func=cmd_site)


def add_class(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="class_command", required=True, metavar="ACTION")
    e = actions.add_parser("export", help="student notebooks (no solutions) and otter-grader autograders, from a checkout")
    e.add_argument("out", help="folder to write one sub-folder per notebook into")
    e.add_argument("--notebooks", nargs="*", default=(), help="notebook numbers (e.g. 01 04; default: every notebook with exercises)")
    e.set_defaults(func=cmd_class_export)
    g = actions.add_parser("grade", help="score a filled notebook with an exported autograder: per-exercise marks in scores.json")
    g.add_argument("autograder", help="the autograder zip written by `calirl class export`")
    g.add_argument("notebook", help="the filled notebook a student handed in")
    g.add_argument("--out", default=None, help="folder for scores.json and otter's results.json (default: graded-<notebook> beside it)")
    g.set_defaults(func=cmd_class_grade)


COMMANDS = {
    "shift": ("compounding shift in toy MDPs: gaps and bounds against the horizon (notebook 01)", add_shift),
    "world": ("the toy dialogue world of the tiny profile", add_world),
    "bench": ("benchmarks that print their figures", add_bench),
    "calibrate": ("phase 1: LoRA-SFT a user simulator on real-user traces; gap metrics naive vs calibrated", add_calibrate),
    "train": ("phase 2: GRPO of the policy (static, naive, calibrated or oracle), then its evaluation", add_train),
    "evaluate": ("a policy (base, or a trained run) against the real users on held-out goals: scores per seed, mean ± std", add_evaluate),
    "reproduce": ("the main job: world, calibration, every method × task × seed, the table and figures under results/", add_reproduce),
    "lab": ("the mismatch lab: policies trained against simulators with one error each, per reward source, scored by the real users", add_lab),
    "calibration-study": ("how much calibration is enough: each calibration budget's gap on validation goals, and the default it chooses",
                          add_calibration_study),
    "diagnose": ("what calibration leaves: train against the calibrated simulator corrected where it differs, scored by the real users",
                 add_diagnose),
    "notebooks": ("run the numbered notebooks top to bottom; executed copies under results/notebooks/", add_notebooks),
    "site": ("a readable site: one HTML page per executed notebook, with its figures, and an index (make site)", add_site),
    "class": ("for teachers: student notebooks and autograders (otter-grader), and grading a handed-in notebook", add_class),
}
"""Every subcommand: its one-line help and the function that adds its flags."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    set_loudness(args.quiet, args.verbose)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, ImportError, EndpointError, OtterError) as e:
        print(f"calirl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None:  # not about a path: a bug or the machine, so the traceback helps
            raise
        why = " (a file stands where a folder is needed)" if isinstance(e, (FileExistsError, NotADirectoryError)) else ""
        print(f"calirl {args.command}: error: {e.strerror or e}: {e.filename}{why}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"calirl {args.command}: interrupted; finished outputs are kept", file=sys.stderr)
        return 130
