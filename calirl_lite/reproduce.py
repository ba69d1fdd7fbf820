"""The main job: the paper's table in the toy world, from nothing, in one command.

``calirl reproduce --profile tiny --seeds 0 1 2`` (``make reproduce``) runs every stage, reusing any
that has finished before:

1. **world** — the toy world shipped with the kit (world seed 0), or builds it (tasks, corpus, tokenizer, tiny LM)
   once and loads it from the cache;
2. **calibration** — per task, logs the base policy with the real users and LoRA-SFTs the simulator
   on those traces (``calirl calibrate``; one calibrated simulator, calibration seed 0, serves every seed);
3. **training** — Static, Naive, Calibrated and Oracle on both tasks for every seed, one code path and
   one budget (``calirl train``), each evaluated with the real users on held-out goals next to Base;
4. **gap versus drop** — one policy (the base policy) scored by simulators of graded quality, by the two LM
   simulators and by the real users at several horizons and dialogue seeds: the drop |J_sim − J_real| against the
   measured per-turn behaviour gap ε and against the bound that fits the reward, R_max · Σ_t ε_t (and the paper's
   per-turn-reward bound beside it); the trained policies join as points (:mod:`calirl_lite.gap_study`);
5. **table and figures** — ``results/table.md``, ``results/table.json`` (per task and method: mean, std,
   per-seed values, and each of the paper's qualitative claims judged by a nested bootstrap interval, Holm's
   correction and the seeds that agree), ``results/paper.md`` (the paper's table beside the toy's, every ordering of its rows judged),
   ``results/table.png``, ``results/gap_vs_drop.json`` and ``results/gap_vs_drop.png``.

The jobs of stages 2–4 go to one pool of worker processes, one per CPU core with one thread each (the tiny
models spend their time in Python, not in arithmetic, so two single-threaded runs go twice as fast as
one two-threaded run); each starts as soon as a worker is free and what it reads is there (:func:`pipeline_jobs`).
Every job gets its settings and the :class:`~calirl_lite.context.Context` as arguments. The elapsed time is printed
at the end and kept in ``table.json``.

``calirl notebooks`` (:mod:`calirl_lite.notebook_runner`) executes the numbered notebooks top to bottom instead.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .calibration import calibrate_once
from .confirm import confirm, confirm_secondary
from .context import Context
from .gap_study import LM_SIMULATORS, format_trends, gap_points, gap_trends, seed_means, trained_points
from .io import atomic_write_json, atomic_write_text, json_safe
from .plots import close_figure, plot_gap_vs_drop, plot_sim_vs_real
from .pool import Job, pool_size, run_pool
from .profiles import get_profile
from .results import RunResult, paper_markdown, summarise, table_markdown
from .settings import Settings
from .stages import METHODS, SIMULATOR, TrainConfig, calibration_for
from .tasks import TASKS
from .train import finished_results, train_job

TASK_NAMES = tuple(TASKS)
"""The toy world's tasks, each with its own calibrated simulator and its column in the table."""


@dataclass
class ReproduceConfig(Settings):
    """Settings of the whole reproduction (``calirl reproduce``). Training settings are ``calirl train``'s defaults."""

    profile: str = "tiny"
    """model profile (only 'tiny' runs on a CPU in minutes)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds of every method (the paper: 3 runs)"""
    workers: int = 0
    """processes running stages side by side (0: one per CPU core)"""
    gap_mixes: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """graded simulators of the gap study: how far each moves from the real users toward the forthcoming corpus user"""
    gap_horizons: tuple[int, ...] = (2, 4, 8, 14)
    """message budgets of the gap study"""
    gap_goals: int = 100
    """held-out goals per point of the gap study"""
    gap_seeds: tuple[int, ...] = (0, 1, 2)
    """seeds of the gap study's dialogues (each point: the mean drop over them, and their range)"""
    gap_study: bool = True
    """run the gap study (stage 4); the robustness study leaves it out"""
    calibration_seed: int = 0
    """seed of the calibration run whose simulator (and, for Static, traces) every method uses"""
    steps: int = 0
    """GRPO steps of every run (0: `calirl train`'s default)"""
    robustness: bool = False
    """instead of the table: the robustness study — the claims again on training seeds 3–5, a second world, a second
    calibration seed and twice the GRPO budget (results/robustness/)"""
    confirm: bool = False
    """instead of the table: the registered confirmatory study, exactly as docs/preregistration.md registers it
    (refused where the code's design differs from the record's; results/confirm/)"""
    secondary: bool = False
    """with --confirm: the record's secondary analyses instead of its claims — Static Context at every turn, and the
    learning curves (results/confirm/secondary.md, curves.png)"""

    SMOKE = {"seeds": (0,), "gap_mixes": (0.0, 1.0), "gap_horizons": (2, 6), "gap_goals": 8, "gap_seeds": (0, 1)}
    CLASS = {"seeds": (0,), "gap_goals": 50, "gap_seeds": (0,)}
    BOUNDS = {"gap_mixes": (0, 1), "gap_horizons": (2, None), "gap_goals": (1, None)}

    def __post_init__(self) -> None:
        super().__post_init__()
        get_profile(self.profile)
        if self.profile != "tiny":
            raise ValueError(f"calirl reproduce runs the toy world of the 'tiny' profile; got profile {self.profile!r}")
        if not self.seeds or not self.gap_seeds:
            raise ValueError("seeds and gap_seeds must each name at least one seed")
        if self.robustness and self.confirm:
            raise ValueError("--robustness and --confirm are two studies: run one at a time")
        if self.secondary and not self.confirm:
            raise ValueError("--secondary is part of the registered study: give it with --confirm")

    def n_workers(self) -> int:
        return pool_size(self.workers)


# ----------------------------------------------------------------------------- jobs (run in worker processes)


def run_settings(cfg: ReproduceConfig) -> dict[str, Any]:
    """The TrainConfig fields the reproduction sets besides method, task and seed."""
    return {"calibration_seed": cfg.calibration_seed, **({"steps": cfg.steps} if cfg.steps else {})}


# ----------------------------------------------------------------------------- the whole job


def reproduce(cfg: ReproduceConfig, ctx: Context, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every stage (reusing finished ones) and write the table and figures; returns table.json's contents.
    With ``cfg.robustness``, the robustness study instead (:func:`robustness`).

    Calibrations, training runs and gap-study points go to one pool of worker processes, each job as soon as what it
    reads is there: the interactive runs against the naive simulator and the real users start while the simulators
    are being calibrated, and the gap study fills the workers' last minutes."""
    if cfg.robustness:
        return robustness(cfg, ctx, out)
    if cfg.confirm:
        return (confirm_secondary if cfg.secondary else confirm)(ctx, out, cfg.workers)
    start = time.perf_counter()
    base = Path(out) if out else ctx.results_dir()
    base.mkdir(parents=True, exist_ok=True)
    workers = cfg.n_workers()
    print(f"[{time.perf_counter() - start:6.0f} s] 1/3 world: the shipped toy world, or built (once) and loaded", flush=True)
    ctx.toy_world()
    settings = run_settings(cfg)
    jobs = pipeline_jobs(cfg, ctx, settings)
    training = [j.name for j in jobs if j.fn is train_job]
    reused = len(finished_results(ctx, METHODS, TASK_NAMES, cfg.seeds, profile=cfg.profile, **settings))
    print(f"[{time.perf_counter() - start:6.0f} s] 2/3 {len(TASK_NAMES)} calibrations, {len(training)} training runs (4 methods × "
          f"{len(TASK_NAMES)} tasks × {len(cfg.seeds)} seeds) and {len(jobs) - len(training) - len(TASK_NAMES)} gap-study points, in one pool "
          f"of {workers} workers; {reused} of the training runs finished already and are reused, everything else is made now "
          f"(at {ctx.mode} size)", flush=True)
    done = run_pool(jobs, workers, "reproduce")
    results = [done[name] for name in training]
    gap_rows = sorted((row for j in jobs if j.fn is gap_points for row in done[j.name]), key=lambda r: (r["task"], r["simulator"], r["horizon"], r["seed"]))
    print(f"[{time.perf_counter() - start:6.0f} s] 3/3 table and figures", flush=True)
    summary = summarise(results, cfg.seeds)
    summary.update(profile=cfg.profile, workers=workers, settings=cfg.to_dict(), world=ctx.world.seed, reused_runs=reused,
                   runs={f"{r.method}/{r.task}/{r.seed}": r.run for r in results})
    write_outputs(base, summary, results, gap_rows, start)
    print(f"calirl reproduce took {summary['seconds']:.0f} s ({summary['seconds'] / 60:.1f} min) with {workers} worker processes"
          + (f"; {reused} of {len(training)} training runs were reused" if reused else ""))
    return summary


def pipeline_jobs(cfg: ReproduceConfig, ctx: Context, settings: dict[str, Any]) -> list[Job]:
    """Every job of the reproduction, in the order a free worker takes them: each task's calibration; the training
    runs, the longest first (docedit dialogues are longer, LM users slower than scripted ones), those that use a
    simulator after its calibration; then the gap study's points (the calibrated simulator's after its calibration)."""
    calibrations = {t: calibration_for(ctx, cfg.profile, t, cfg.calibration_seed).cfg for t in TASK_NAMES}
    jobs = [Job(f"calibrate · {t}", calibrate_once, (c, ctx)) for t, c in calibrations.items()]
    order = {"calibrated": 0, "static": 1, "naive": 2, "oracle": 3}
    runs = [ctx.make(TrainConfig, profile=cfg.profile, method=m, task=t, seed=s, **settings) for m in METHODS for t in TASK_NAMES for s in cfg.seeds]
    runs.sort(key=lambda r: (r.task != "docedit-chat", order[r.method], r.seed))
    jobs += [Job(f"{r.method} · {r.task} · seed {r.seed}", train_job, (r, ctx), (f"calibrate · {r.task}",) if SIMULATOR[r.method] == "calibrated" else ())
             for r in runs]
    if cfg.gap_study:
        simulators = [*cfg.gap_mixes, *LM_SIMULATORS]
        jobs += [Job(f"gap · {t} · {sim} · seed {seed}", gap_points, (ctx, cfg.profile, t, sim, cfg.gap_horizons, cfg.gap_goals, seed, cfg.calibration_seed),
                     (f"calibrate · {t}",) if sim == "calibrated" else ()) for t in TASK_NAMES for sim in simulators for seed in cfg.gap_seeds]
    return jobs


def write_outputs(base: Path, summary: dict[str, Any], results: list[RunResult], gap_rows: list[dict[str, Any]], start: float) -> None:
    """Stage 5: table.md / .json / .png, paper.md and (with a gap study) gap_vs_drop.json / .png, printed too."""
    close_figure(plot_sim_vs_real(results, base / "table.png"))
    gap: dict[str, Any] = {}
    if gap_rows:
        gap = {"rows": gap_rows, "points": seed_means(gap_rows), "trained": trained_points(results), "trends": gap_trends(gap_rows)}
        atomic_write_json(base / "gap_vs_drop.json", json_safe(gap))
        close_figure(plot_gap_vs_drop(gap, base / "gap_vs_drop.png"))
    summary["seconds"] = time.perf_counter() - start
    atomic_write_json(base / "table.json", json_safe(summary))
    atomic_write_text(base / "table.md", table_markdown(summary))
    atomic_write_text(base / "paper.md", paper_markdown(summary))
    print(table_markdown(summary))
    print(paper_markdown(summary))
    if gap:
        print(format_trends(gap["trends"]))
    print(f"wrote {base / 'table.md'}, table.json, table.png, paper.md" + (", gap_vs_drop.json, gap_vs_drop.png" if gap else ""))


# ----------------------------------------------------------------------------- the robustness study

VARIANTS: dict[str, tuple[str, dict[str, Any], int | None]] = {
    "seeds 3–5": ("training seeds 3, 4 and 5 (the table's are 0, 1, 2)", {"seeds": (3, 4, 5)}, None),
    "world seed 1": ("a second toy world (world seed 1: other goals, corpus and LM)", {}, 1),
    "calibration seed 1": ("the simulator calibrated with seed 1 (other traces, other SFT order)", {"calibration_seed": 1}, None),
    "twice the budget": ("60 GRPO steps instead of 30", {"steps": 60}, None),
}
"""The robustness study's variants: (what it changes, ReproduceConfig fields, the world seed it runs in — None: the context's)."""


def robustness(cfg: ReproduceConfig, ctx: Context, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every claim again, judged the same way, under each of :data:`VARIANTS` — on seeds, a world and a calibration
    nobody tuned on, and with twice the training budget. Each variant is a whole reproduction (without the gap study)
    under ``results/robustness/<variant>/``; ``summary.md`` (claim × variant → holds / not shown) and
    ``summary.json`` sit beside them. The world's design is not touched: the second world is the same design with
    another seed."""
    start = time.perf_counter()
    base = Path(out) if out else ctx.results_dir("robustness")
    verdicts: dict[str, dict[str, Any]] = {}
    for name, (what, fields, world_seed) in VARIANTS.items():
        print(f"[{time.perf_counter() - start:6.0f} s] robustness: {name} — {what}", flush=True)
        variant = dataclasses.replace(cfg, robustness=False, gap_study=False, **fields)
        where = ctx.with_world(world_seed) if world_seed is not None else ctx
        summary = reproduce(variant, where, out=base / name.replace(" ", "-").replace("–", "-"))
        verdicts[name] = {"what": what, "claims": {t: d["claims"] for t, d in summary["tasks"].items()}}
    result = {"variants": verdicts, "seconds": time.perf_counter() - start}
    atomic_write_json(base / "summary.json", json_safe(result))
    atomic_write_text(base / "summary.md", robustness_markdown(result))
    print(robustness_markdown(result))
    return result


def robustness_markdown(result: dict[str, Any]) -> str:
    """Claim × variant → holds / not shown (with the mean difference), one row per task and claim."""
    names = list(result["variants"])
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for name, v in result["variants"].items():
        for task, claims in v["claims"].items():
            for c in claims:
                cell = "not judged" if not c.get("judged") else f"{'holds' if c['holds'] else '**not shown**'} ({c['mean']:+.3f}, {c['seeds_agree']}/{c['seeds']})"
                rows.setdefault((task, c["claim"]), {})[name] = cell
    lines = ["| task | claim | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    lines += [f"| {t} | {c} | " + " | ".join(cells.get(n, "—") for n in names) + " |" for (t, c), cells in rows.items()]
    lines += ["", "Each cell: the verdict (interval and seeds, as in the table), the mean difference and the seeds that agree. "
              + "; ".join(f"*{n}*: {v['what']}" for n, v in result["variants"].items()) + "."]
    return "\n".join(lines) + "\n"
