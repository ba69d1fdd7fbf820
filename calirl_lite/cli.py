"""The ``calirl`` command (also ``python -m calirl_lite``).

Subcommands:

* ``calirl shift --horizons 5 10 20 40 80 --out DIR`` — notebook 01's sweep: ``DIR/shift.json``, ``DIR/shift.png``
* ``calirl world build``, ``calirl calibrate``, ``calirl train --method M`` — the stages, one at a time
* ``calirl evaluate --policy base|RUN`` — a policy against the real users on held-out goals, per seed and mean ± std
* ``calirl bench rollout|train|world|memory`` — speed figures, what the world's LM can copy, a GPU profile's memory plan
* ``calirl reproduce --profile tiny --seeds 0 1 2`` — the main job: the paper's table in the toy world, under ``results/``
* ``calirl notebooks`` — runs every notebook top to bottom and keeps the executed copies under ``results/notebooks/``

Flags of a subcommand come from the fields of its settings dataclass, with the field's
docstring as help, so the command line and the notebooks share one set of defaults.
Bad input ends with a one-line message and exit status 2, never a traceback.
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
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{docs[f.name]} (default: {f.default!r})"}
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
    print((dumps or (lambda r: json.dumps(r, indent=2)))(result) if args.json else text(result))
    return 0


def cmd_shift(args: argparse.Namespace) -> int:
    from .shift import ShiftConfig, format_slopes, run_shift

    cfg = settings_from_args(ShiftConfig, args)
    result = run_shift(cfg, out=args.out)
    print(format_slopes(result))
    print(f"wrote {Path(args.out) / 'shift.json'} and {Path(args.out) / 'shift.png'}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import ReproduceConfig, reproduce

    reproduce(settings_from_args(ReproduceConfig, args), out=args.out)
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from .reproduce import run_notebooks

    start = time.perf_counter()
    out = run_notebooks(args.notebooks, args.out)
    print(f"results under {out}; total time {time.perf_counter() - start:.1f} s")
    return 0


def cmd_world_build(args: argparse.Namespace) -> int:
    from .world import WorldConfig, build_world

    cfg = settings_from_args(WorldConfig, args)
    world = build_world(cfg, force=args.force)
    print(f"world {world.folder}: {world.manifest['parameters']:,} parameters, vocabulary {world.manifest['vocab_size']}; "
          f"its build took {world.manifest['build_seconds']:.1f} s")
    return 0


def cmd_bench_rollout(args: argparse.Namespace) -> int:
    from .bench import bench_rollout

    def text(r: dict[str, Any]) -> str:
        return "\n".join([
            f"engine   {r['engine_tok_s']:9.1f} tok/s  ({r['n_dialogues']} dialogues in lock step, user: {r['user']}; median of {r['repeats']} runs)",
            f"generate {r['generate_tok_s']:9.1f} tok/s  (plain batched generate of single turns, same prompts and tokens)",
            f"         {r['generate_fixed_length_tok_s']:9.1f} tok/s  (upper bound: generate with no turn ends, every row full length)",
            f"stream   {r['stream_tok_s']:9.1f} tok/s  (the kit's sampling loop, {r['forward']}, on the same single turns)",
            f"naive    {r['naive_tok_s']:9.1f} tok/s  (one dialogue at a time, {r['n_naive']} dialogues)",
            f"engine / generate = {r['engine_vs_generate']:.2f}   stream / generate = {r['stream_vs_generate']:.2f}   engine / naive = {r['engine_vs_naive']:.1f}",
        ])

    return json_or_text(args, lambda: bench_rollout(args.profile, args.task, args.dialogues, args.naive_dialogues, args.max_messages,
                                                    args.max_new_tokens, args.user, args.seed, args.repeats), text)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import CalibrationConfig, calibrate, format_gap, report_json

    cfg = settings_from_args(CalibrationConfig, args)
    return json_or_text(args, lambda: calibrate(cfg), lambda r: f"{format_gap(r)}\nadapter: {r['adapter']}", report_json)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, format_result, train

    cfg = settings_from_args(TrainConfig, args)

    def text(r: dict[str, Any]) -> str:  # (another process of `accelerate launch`: the first one reports)
        return f"process {r['rank']} trained its share of {r['run']}" if "rank" in r else f"{format_result(r)}\nrun folder: {r['run']}"

    return json_or_text(args, lambda: train(cfg, force=args.force), text)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_seeds

    def text(r: dict[str, Any]) -> str:
        lines = [f"{r['policy']} on {r['task']} with the {r['user']} users, {r['n_eval']} held-out goals, seeds {r['seeds']}:"]
        lines += [f"  {k:>17}: {r['mean'][k]:.3f} ± {r['std'][k]:.3f}   per seed: " + ", ".join(f"{v[k]:.3f}" for v in r["per_seed"].values())
                  for k in r["mean"]]
        return "\n".join(lines)

    from .judge import make_judge

    judge = make_judge(args.judge_endpoint, args.judge_model, args.judge_local, os.environ.get("CALIRL_JUDGE_API_KEY", ""), args.judge_timeout)
    return json_or_text(args, lambda: evaluate_seeds(args.profile, args.task, args.policy, args.user, args.seeds, args.n_eval, args.max_messages,
                                                     judge=judge), text)


def cmd_bench_train(args: argparse.Namespace) -> int:
    from .bench import bench_train

    def text(r: dict[str, Any]) -> str:
        lines = [f"GRPO on {r['task']} ({r['profile']} profile, user: {r['user']}, {r['prompts_per_step']}×{r['group_size']} dialogues per step, "
                 f"{r['threads']} threads; timed over {r['steps'] - 1} steps after a warm-up)"]
        for name in ("single_turn", "multi_turn"):
            x = r[name]
            lines.append(f"{name.replace('_', '-'):>12} ({x['max_messages']:>2} messages): {x['steps_per_s']:6.3f} steps/s  {x['policy_tok_s']:8.1f} policy tok/s  "
                         f"{x['all_tok_s']:9.1f} tok/s in training sequences  rollouts {100 * x['rollout_share']:.0f}% of the time  "
                         f"{x['policy_tokens_per_dialogue']:.1f} policy tokens per dialogue")
        return "\n".join(lines)

    return json_or_text(args, lambda: bench_train(args.profile, args.task, args.steps, args.prompts_per_step, args.group_size, args.user, args.seed), text)


def cmd_bench_world(args: argparse.Namespace) -> int:
    from .bench import bench_world

    def text(r: dict[str, Any]) -> str:
        return "\n".join([
            f"world seed {r['seed']} built in {r['build_seconds']:.1f} s ({r['pretrain_steps']} pre-training steps, final loss {r['final_loss']}, {r['threads']} threads)",
            f"told every detail up front, on {r['n_goals']} test goals, the base policy's first turn:",
            f"  arith-chat   answers {r['arith_answers']:.2f}; of its answers right {r['arith_right']:.2f}",
            f"  docedit-chat drafts  {r['docedit_drafts']:.2f}; of its drafts with the right name {r['name']:.2f}, tone {r['tone']:.2f}, "
            f"place {r['place']:.2f}, day {r['day']:.2f}",
        ])

    return json_or_text(args, lambda: bench_world(args.seed, args.goals), text)


def cmd_bench_memory(args: argparse.Namespace) -> int:
    from .bench import bench_memory
    from .memory import format_plan

    def text(r: dict[str, Any]) -> str:
        lines = [format_plan(r["plan"])]
        for stage, m in r["measured"].items():
            peak = f"peak {m['peak_allocated_gib']:.2f} GiB allocated, {m['peak_reserved_gib']:.2f} reserved" if "peak_allocated_gib" in m else "no GPU: no peak"
            lines.append(f"  measured {stage:<11} {peak}; micro-batch {m['micro_batch']} × {m['accumulation']}; {m['seconds']:.1f} s")
        return "\n".join(lines)

    return json_or_text(args, lambda: bench_memory(args.profile, args.budget, args.measure, args.max_messages), text)


def bench_parser(bench: Any, name: str, help: str, user: str, func: Any) -> argparse.ArgumentParser:
    """A ``calirl bench NAME`` parser with the flags every benchmark has (profile, task, user, seed, --json)."""
    p = bench.add_parser(name, help=help)
    p.add_argument("--profile", default="tiny", help="model profile (default: tiny)")
    p.add_argument("--task", default="arith-chat", help="task family")
    p.add_argument("--user", default=user, choices=["naive", "real"], help=f"who plays the user: the LM (naive simulator) or the scripted real user (default: {user})")
    p.add_argument("--seed", type=SEED, default=0, help="seed")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=func)
    return p


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
    add_world_and_bench_commands(sub)
    add_stage_commands(sub)
    return parser


def add_world_and_bench_commands(sub: Any) -> None:
    """``calirl world build`` and ``calirl bench rollout|train|world``."""
    from .world import WorldConfig

    world = sub.add_parser("world", help="the toy dialogue world of the tiny profile").add_subparsers(dest="world_command", required=True, metavar="ACTION")
    p = world.add_parser("build", help="build (or reuse from the cache) the tiny world: tasks, corpus, tokenizer, tiny LM")
    add_settings_arguments(p, WorldConfig)
    p.add_argument("--force", action="store_true", help="rebuild even if the cache holds this world")
    p.set_defaults(func=cmd_world_build)

    bench = sub.add_parser("bench", help="benchmarks that print their figures").add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    p = bench_parser(bench, "rollout", "tokens/s: batched rollout engine vs plain generate vs one dialogue at a time", "naive", cmd_bench_rollout)
    p.add_argument("--dialogues", type=COUNT, default=32, help="dialogues run together by the engine")
    p.add_argument("--naive-dialogues", type=COUNT, default=8, help="dialogues run one at a time by the naive loop")
    p.add_argument("--max-messages", type=number_arg(int, 2), default=8, help="message budget per dialogue")
    p.add_argument("--max-new-tokens", type=COUNT, default=24, help="tokens per turn at most")
    p.add_argument("--repeats", type=COUNT, default=3, help="runs of the engine and of generate (the median is reported)")

    p = bench_parser(bench, "train", "GRPO steps/s and tokens/s for single-turn and multi-turn rollouts", "real", cmd_bench_train)
    p.add_argument("--steps", type=number_arg(int, 2), default=6, help="GRPO steps per setting (the first is a warm-up)")
    p.add_argument("--prompts-per-step", type=COUNT, default=4, help="distinct goals per step")
    p.add_argument("--group-size", type=number_arg(int, 2), default=8, help="dialogues per goal")

    p = bench.add_parser("memory", help="the memory plan of a GPU profile per stage; --measure: the peaks on this machine's GPU")
    p.add_argument("--profile", default="colab-t4", help="a GPU profile (default: colab-t4)")
    p.add_argument("--budget", type=number_arg(float, 0), default=0.0, help="GiB each stage must fit (default: the profile's gpu_memory_gib)")
    p.add_argument("--max-messages", type=number_arg(int, 2), default=14, help="message budget of a dialogue")
    p.add_argument("--measure", action="store_true", help="also measure calibration and a GRPO step on random-weight models of the layouts (CUDA)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_bench_memory)

    p = bench.add_parser("world", help="build the toy world afresh (timed) and measure what its LM copies from the chat")
    p.add_argument("--seed", type=SEED, default=0, help="world seed")
    p.add_argument("--goals", type=COUNT, default=200, help="test goals per task for the copy rates")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_bench_world)


def add_stage_commands(sub: Any) -> None:
    """``calirl calibrate``, ``train``, ``evaluate``, ``reproduce`` and ``notebooks``."""
    from .calibration import CalibrationConfig

    p = sub.add_parser("calibrate", help="phase 1: LoRA-SFT a user simulator on real-user traces; gap metrics naive vs calibrated")
    add_settings_arguments(p, CalibrationConfig)
    p.add_argument("--json", action="store_true", help="end by printing the gap metrics of both simulators as JSON")
    p.set_defaults(func=cmd_calibrate)

    from .train import TrainConfig

    p = sub.add_parser("train", help="phase 2: GRPO of the policy (static, naive, calibrated or oracle), then its evaluation")
    add_settings_arguments(p, TrainConfig)
    p.add_argument("--force", action="store_true", help="train again even if this run has finished before")
    p.add_argument("--json", action="store_true", help="end by printing the run's results as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="a policy (base, or a trained run) against the real users on held-out goals: scores per seed, mean ± std")
    p.add_argument("--profile", default="tiny", help="model profile (default: tiny)")
    p.add_argument("--task", default="arith-chat", help="task family")
    p.add_argument("--policy", default="base", help="'base', a `calirl train` run folder, or its policy/ folder")
    p.add_argument("--user", default="real", choices=["real", "naive", "calibrated"], help="who plays the user (default: the real users)")
    p.add_argument("--seeds", type=SEED, nargs="+", default=[0, 1, 2], help="evaluation seeds")
    p.add_argument("--n-eval", type=COUNT, default=200, help="held-out goals")
    p.add_argument("--max-messages", type=number_arg(int, 0), default=0, help="message budget (0: the world's)")
    p.add_argument("--judge-endpoint", default="", help="optional LLM judge of interactivity: an OpenAI-compatible base URL such as http://127.0.0.1:8000/v1 "
                   "(API key, if any, from $CALIRL_JUDGE_API_KEY)")
    p.add_argument("--judge-model", default="", help="the model name the judge endpoint serves")
    p.add_argument("--judge-timeout", type=number_arg(float, 0.1), default=60.0, help="seconds the judge endpoint has for one reply, retries included")
    p.add_argument("--judge-local", default="", help="optional LLM judge as a local transformers model (folder or hub id)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_evaluate)

    from .reproduce import ReproduceConfig

    p = sub.add_parser("reproduce", help="the main job: world, calibration, every method × task × seed, the table and figures under results/")
    add_settings_arguments(p, ReproduceConfig)
    p.add_argument("--out", default=None, help="results folder (default: results/ at the project root, or $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("notebooks", help="run the numbered notebooks top to bottom; executed copies under results/notebooks/")
    p.add_argument("--notebooks", nargs="*", default=None, help="notebook files to run (default: all under notebooks/)")
    p.add_argument("--out", default=None, help="results folder (default: results/ at the project root, or $CALIRL_RESULTS)")
    p.set_defaults(func=cmd_notebooks)


def main(argv: Sequence[str] | None = None) -> int:
    from .endpoints import EndpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, ImportError, EndpointError) as e:
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
