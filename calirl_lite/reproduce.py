"""The main job: the paper's table in the toy world, from nothing, in one command.

``calirl reproduce --profile tiny --seeds 0 1 2`` (``make reproduce``) runs every stage, reusing any
that has finished before:

1. **world** — builds the toy world (tasks, corpus, tokenizer, tiny LM), or loads it from the cache;
2. **calibration** — per task, logs the base policy with the real users and LoRA-SFTs the simulator
   on those traces (``calirl calibrate``; one calibrated simulator, calibration seed 0, serves every seed);
3. **training** — Static, Naive, Calibrated and Oracle on both tasks for every seed, one code path and
   one budget (``calirl train``), each evaluated with the real users on held-out goals next to Base;
4. **gap versus drop** — one policy (the base policy) scored by simulators of graded quality and by the
   real users at several horizons: the drop |J_sim − J_real| against the measured per-turn behaviour gap ε
   and against notebook 01's bound R_max · Σ_i (H − i) · ε;
5. **table and figures** — ``results/table.md``, ``results/table.json`` (per task and method: mean, std,
   per-seed values, and whether each of the paper's qualitative claims holds), ``results/table.png``,
   ``results/gap_vs_drop.json`` and ``results/gap_vs_drop.png``.

Runs of stages 2–4 go to a pool of worker processes, one per CPU core with one thread each (the tiny
models spend their time in Python, not in arithmetic, so two single-threaded runs go twice as fast as
one two-threaded run). The elapsed time is printed at the end and kept in ``table.json``.

``calirl notebooks`` (:mod:`calirl_lite.notebook_runner`) executes the numbered notebooks top to bottom instead.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .calibration import CalibrationConfig, calibrate
from .gap_study import format_trends, gap_points, gap_trends
from .io import atomic_write_json, atomic_write_text, json_safe
from .paths import results_dir
from .plots import close_figure, plot_gap_vs_drop, plot_sim_vs_real
from .pool import run_pool
from .results import RunResult, summarise, table_markdown
from .settings import Settings
from .tasks import TASKS
from .train import METHODS, TrainConfig, finished_results, train
from .world import build_world

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
    gap_seed: int = 0
    """seed of the gap study's dialogues"""

    SMOKE = {"seeds": (0,), "gap_mixes": (0.0, 1.0), "gap_horizons": (2, 6), "gap_goals": 8}
    BOUNDS = {"gap_mixes": (0, 1), "gap_horizons": (2, None), "gap_goals": (1, None)}

    def __post_init__(self) -> None:
        from .profiles import get_profile

        super().__post_init__()
        get_profile(self.profile)
        if self.profile != "tiny":
            raise ValueError(f"calirl reproduce runs the toy world of the 'tiny' profile; got profile {self.profile!r}")
        if not self.seeds:
            raise ValueError("seeds must name at least one training seed")

    def n_workers(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 4))


# ----------------------------------------------------------------------------- jobs (run in worker processes)


def calibration_job(profile: str, task: str) -> dict[str, Any]:
    """Calibrate the simulator of ``task`` (reused when finished); returns gap.json's contents."""
    cfg = CalibrationConfig.make(profile=profile, task=task, seed=0)
    done = cfg.folder() / "gap.json"
    if done.is_file() and (cfg.folder() / "adapter" / "adapter_config.json").is_file():
        return json.loads(done.read_text())
    return calibrate(cfg)


def train_job(profile: str, method: str, task: str, seed: int) -> RunResult:
    """Train one method on one task with one seed (reused when finished)."""
    return train(TrainConfig.make(profile=profile, method=method, task=task, seed=seed), progress=False)


# ----------------------------------------------------------------------------- the whole job


def reproduce(cfg: ReproduceConfig | None = None, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every stage (reusing finished ones) and write the table and figures; returns table.json's contents."""
    cfg = cfg or ReproduceConfig.make()
    start = time.perf_counter()
    base = Path(out) if out else results_dir()
    base.mkdir(parents=True, exist_ok=True)
    workers = cfg.n_workers()

    def stage(name: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {name}", flush=True)

    stage("1/5 world: build or load the toy world")
    build_world()
    stage("2/5 calibration: traces of the base policy with the real users, LoRA-SFT of the simulator, per task")
    run_pool([(t, calibration_job, (cfg.profile, t)) for t in TASK_NAMES], min(workers, len(TASK_NAMES)), "calibrate")
    stage(f"3/5 training: {len(METHODS)} methods × {len(TASK_NAMES)} tasks × {len(cfg.seeds)} seeds, then evaluation with the real users")
    # longest runs first (docedit dialogues are longer; LM users are slower than scripted ones), so the pool ends together
    order = {"calibrated": 0, "static": 1, "naive": 2, "oracle": 3}
    jobs = sorted(((f"{m} · {t} · seed {s}", train_job, (cfg.profile, m, t, s)) for m in METHODS for t in TASK_NAMES for s in cfg.seeds),
                  key=lambda j: (j[2][2] != "docedit-chat", order[j[2][1]], j[2][3]))
    reused = len(finished_results(METHODS, TASK_NAMES, cfg.seeds, profile=cfg.profile))
    results = list(run_pool(jobs, workers, "train").values())
    stage("4/5 gap versus drop: the base policy with graded simulators and with the real users, at several horizons")
    gap_jobs = [(f"{t} · w={w:g}", gap_points, (cfg.profile, t, w, cfg.gap_horizons, cfg.gap_goals, cfg.gap_seed)) for t in TASK_NAMES for w in cfg.gap_mixes]
    gap_rows = [row for rows in run_pool(gap_jobs, workers, "gap study").values() for row in rows]
    gap_rows.sort(key=lambda r: (r["task"], r["w"], r["horizon"]))
    stage("5/5 table and figures")
    summary = summarise(results, cfg.seeds)
    summary.update(profile=cfg.profile, workers=workers, seconds=time.perf_counter() - start, settings=cfg.to_dict(), reused_runs=reused,
                   runs={f"{r.method}/{r.task}/{r.seed}": r.run for r in results})
    close_figure(plot_sim_vs_real(results, base / "table.png"))
    atomic_write_json(base / "gap_vs_drop.json", json_safe({"rows": gap_rows, "trends": gap_trends(gap_rows)}))
    close_figure(plot_gap_vs_drop(gap_rows, base / "gap_vs_drop.png"))
    summary["seconds"] = time.perf_counter() - start
    atomic_write_json(base / "table.json", json_safe(summary))
    atomic_write_text(base / "table.md", table_markdown(summary))
    print(table_markdown(summary))
    print(format_trends(gap_trends(gap_rows)))
    print(f"wrote {base / 'table.md'}, table.json, table.png, gap_vs_drop.json, gap_vs_drop.png")
    print(f"calirl reproduce took {summary['seconds']:.0f} s ({summary['seconds'] / 60:.1f} min) with {workers} worker processes"
          + (f"; {reused} of {len(jobs)} training runs were reused" if reused else ""))
    return summary


