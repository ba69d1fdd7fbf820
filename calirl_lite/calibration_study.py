"""How much calibration is enough: the dose-response of the simulator's gap, and the default chosen by it.

Every point is one calibration run (``calirl calibrate``) of the toy LM, measured where nothing is evaluated: on the
validation goals (each task's last train goals, which no trace and no evaluation uses), by

* the **exact gap** Σ_t ε_t of the simulation lemma (:mod:`calirl_lite.exact_gap`) along the base policy's
  real-user histories on those goals, each dialogue's own sum kept so that two settings compare **paired** (the same
  histories for every setting of one calibration seed), and
* the NLL of the real users' turns there.

The points (:data:`POINTS`) move one thing at a time away from a reference — 600 traces, 300 SFT steps, LoRA r = 16,
the plain loss —: the traces (150 → 2,400), the SFT steps (150 → 2,400), a smaller LoRA rank or full fine-tuning, the
weight of a turn's decision tokens in the loss, and the realism reward on top of SFT
(:mod:`calirl_lite.realism`). The reference is calibrated again with seed 1, to show how much one calibration
differs from another of the same setting.

**The rule that chooses** (fixed before the study ran, and applied by :func:`choose`, never to RL results): on each
task, the best point is the one with the lowest validation gap; a point is *within noise* of it when the 95 % paired
bootstrap interval of its gap minus the best's reaches 0. The default is the cheapest point (the least measured time
for traces and simulator training, both tasks together) within noise of the best on every task.

``calirl calibration-study`` runs it (finished calibrations are reused) and writes ``results/calibration-study/``:
``study.md``, ``study.json`` and ``study.png`` (notebook 03 shows the figure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .calibration import calibrate_once
from .context import Context
from .io import atomic_write_json, atomic_write_text, json_safe
from .pool import Job, pool_size, run_pool
from .results import paired_difference
from .settings import Settings
from .stages import CalibrationConfig
from .tasks import TASKS

REFERENCE = {"n_traces": 600, "steps": 300, "lora_r": 16, "finetune": "lora", "decision_weight": 1.0, "method": "sft"}
"""The calibration every point departs from (the kit's setting before the study)."""

POINTS: dict[str, dict[str, Any]] = {
    "reference": {},
    **{f"traces {n}": {"n_traces": n} for n in (150, 1200, 2400)},
    **{f"steps {n}": {"steps": n} for n in (150, 600, 1200, 2400)},
    "LoRA r 4": {"lora_r": 4},
    "full fine-tuning": {"finetune": "full"},
    **{f"decision weight {w:g}": {"decision_weight": w} for w in (3.0, 10.0)},
    "SFT + realism": {"method": "sft+realism"},
}
"""The study's settings, each a change to :data:`REFERENCE` (the axes the calibration budget can move along). It takes
72 minutes on 2 CPU cores (the 13 points), most of it measuring each calibration's gap (every reply of the real users scored, 8
replies sampled at each of ~1,000 histories per task)."""

@dataclass
class CalibrationStudyConfig(Settings):
    """Settings of the calibration study (``calirl calibration-study``)."""

    profile: str = "tiny"
    """model profile (the study is sized for the tiny one)"""
    tasks: tuple[str, ...] = tuple(TASKS)
    """toy tasks to calibrate on"""
    points: tuple[str, ...] = tuple(POINTS)
    """which of the study's settings to run (names of :data:`POINTS`)"""
    seed: int = 0
    """calibration seed of every point (the reference is also run with seed + 1)"""
    workers: int = 0
    """processes running side by side (0: one per CPU core)"""

    SMOKE = {"tasks": ("arith-chat",), "points": ("reference", "traces 150", "decision weight 3")}

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, values, known in (("tasks", self.tasks, TASKS), ("points", self.points, POINTS)):
            unknown = [v for v in values if v not in known]
            if unknown or not values:
                raise ValueError(f"{name} must name at least one of {', '.join(known)}; got {', '.join(map(repr, values)) or 'none'}")
        if "reference" not in self.points:
            raise ValueError("the study needs its reference point: add 'reference' to points")


def point_config(ctx: Context, cfg: CalibrationStudyConfig, task: str, point: str, seed: int | None = None) -> CalibrationConfig:
    """The calibration settings of one point on one task (the run mode's sizes for everything the study does not move;
    in smoke mode the study's budgets are scaled down with the rest)."""
    settings = {**REFERENCE, **POINTS[point]}
    if ctx.mode == "smoke":  # the smoke world is small: the same points, at a twentieth of the traces and steps
        settings = {**settings, "n_traces": max(8, settings["n_traces"] // 20), "steps": max(2, settings["steps"] // 20)}
    return ctx.make(CalibrationConfig, profile=cfg.profile, task=task, seed=cfg.seed if seed is None else seed, **settings)


def calibration_study(cfg: CalibrationStudyConfig, ctx: Context, out: str | Path | None = None) -> dict[str, Any]:
    """Run every point's calibration (reusing finished ones), compare them on the validation gap, choose the default by
    :func:`choose`, and write the study's table, numbers and figure; returns study.json's contents."""
    start = time.perf_counter()
    base = Path(out) if out else ctx.results_dir("calibration-study")
    base.mkdir(parents=True, exist_ok=True)
    ctx.toy_world()
    runs = {(t, p, cfg.seed): point_config(ctx, cfg, t, p) for t in cfg.tasks for p in cfg.points}
    runs.update({(t, "reference", cfg.seed + 1): point_config(ctx, cfg, t, "reference", cfg.seed + 1) for t in cfg.tasks})
    cost = {"steps 2400": 0, "steps 1200": 1, "SFT + realism": 2, "steps 600": 3, "full fine-tuning": 4}  # the longest first, so the pool ends together
    jobs = sorted((Job(f"{t} · {p} · seed {s}", calibrate_once, (c, ctx)) for (t, p, s), c in runs.items()),
                  key=lambda j: cost.get(j.name.split(" · ", 1)[1].rsplit(" · seed", 1)[0], 9))
    print(f"calirl calibration-study: {len(jobs)} calibrations ({len(cfg.points)} settings × {len(cfg.tasks)} tasks, and the reference with a "
          f"second seed), {pool_size(cfg.workers)} worker processes", flush=True)
    done = run_pool(jobs, pool_size(cfg.workers), "calibration study")
    reports = {key: done[f"{key[0]} · {key[1]} · seed {key[2]}"] for key in runs}
    result = summarise_study(cfg, runs, reports)
    result["seconds"] = time.perf_counter() - start
    write_study(base, result)
    print(study_markdown(result))
    print(f"calirl calibration-study took {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min); wrote {base / 'study.md'}, study.json, study.png")
    return result


def summarise_study(cfg: CalibrationStudyConfig, runs: dict[tuple[str, str, int], CalibrationConfig],
                    reports: dict[tuple[str, str, int], dict[str, Any]]) -> dict[str, Any]:
    """Per task and point: the validation gap (Σ_t ε_t with its interval, per turn, by category), the NLL, the naive
    simulator's gap beside it, the minutes it took, and the paired difference to the task's best point; then the
    choice (:func:`choose`)."""
    tasks: dict[str, Any] = {}
    for task in cfg.tasks:
        points = {}
        for point in cfg.points:
            rep = reports[(task, point, cfg.seed)]
            exact = rep["calibrated"]["exact"]
            points[point] = {"settings": {k: getattr(runs[(task, point, cfg.seed)], k) for k in REFERENCE},
                             "gap": exact["total"], "gap_error": exact["total_error"], "per_turn": exact["eps"],
                             "by_category": {c: float(sum(v)) for c, v in exact["by_category"].items()},
                             "per_dialogue": exact["per_dialogue"], "nll": rep["calibrated"]["nll"],
                             "minutes": sum(rep.get("seconds", {}).get(k, 0.0) for k in ("traces", "simulator")) / 60}
        best = min(points, key=lambda p: points[p]["gap"])
        for point, row in points.items():
            diff = paired_difference({0: row["per_dialogue"]}, {0: points[best]["per_dialogue"]})
            row["vs_best"] = {k: diff[k] for k in ("mean", "low", "high")}
            row["within_noise"] = point == best or diff["low"] <= 1e-6  # (an LM's probabilities differ by ~1e-9 where nothing differs)
        again = reports[(task, "reference", cfg.seed + 1)]["calibrated"]["exact"]
        naive = reports[(task, "reference", cfg.seed)]["naive"]
        tasks[task] = {"points": points, "best": best, "naive_gap": naive["exact"]["total"], "naive_nll": naive["nll"],
                       "reference_seed_again": {"seed": cfg.seed + 1, "gap": again["total"], "gap_error": again["total_error"]}}
    for t in tasks.values():
        for row in t["points"].values():
            row.pop("per_dialogue")  # kept in each calibration's gap.json
    return {"settings": cfg.to_dict(), "reference": REFERENCE, "tasks": tasks, "choice": choose(tasks), "rule": RULE}


RULE = ("On each task the best point has the lowest validation gap; a point is within noise of it when the 95 % paired bootstrap "
        "interval of its gap minus the best's reaches 0. The default is the cheapest point (least minutes for traces and simulator "
        "training, both tasks together) within noise of the best on every task.")
"""How the study chooses the default (fixed before it ran; :func:`choose`)."""


def choose(tasks: dict[str, Any]) -> dict[str, Any]:
    """:data:`RULE`: the chosen point, its settings, the points within noise of the best everywhere, its minutes."""
    names = list(next(iter(tasks.values()))["points"])
    eligible = [p for p in names if all(t["points"][p]["within_noise"] for t in tasks.values())]
    fallback = not eligible
    if fallback:  # no point is near the best on every task: the one whose worst excess over a task's best is least
        eligible = [min(names, key=lambda p: max(t["points"][p]["vs_best"]["low"] for t in tasks.values()))]
    minutes = {p: sum(t["points"][p]["minutes"] for t in tasks.values()) for p in eligible}
    pick = min(eligible, key=lambda p: (minutes[p], p))
    return {"point": pick, "settings": {**REFERENCE, **POINTS[pick]}, "within_noise_everywhere": [] if fallback else eligible, "minutes": minutes[pick],
            "best": {task: t["best"] for task, t in tasks.items()}}


def study_markdown(result: dict[str, Any]) -> str:
    """The study's table: per task, each point's validation gap, its paired difference to the best, NLL and minutes."""
    lines = ["# How much calibration is enough", "",
             "Every point is one calibration of the toy LM, measured on the validation goals (never evaluated on): the exact gap "
             "Σ_t ε_t of the simulation lemma along the base policy's real-user histories there (95 % interval over dialogues), "
             "its paired difference to the task's best point (95 % bootstrap interval over the same dialogues), the NLL of the real "
             "users' turns, and the minutes traces and simulator training took on this machine.", ""]
    for task, t in result["tasks"].items():
        lines += [f"## {task}", "", "| setting | gap Σ ε | − best [95 % CI] | within noise | NLL | minutes |", "|---|---|---|---|---|---|"]
        for point, r in t["points"].items():
            d = r["vs_best"]
            lines.append(f"| {point} | {r['gap']:.3f} ± {r['gap_error']:.3f} | {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] | "
                         f"{'yes' if r['within_noise'] else 'no'} | {r['nll']:.3f} | {r['minutes']:.1f} |")
        again = t["reference_seed_again"]
        lines += ["", f"The naive simulator: gap {t['naive_gap']:.3f}, NLL {t['naive_nll']:.3f}. The reference calibrated with seed "
                      f"{again['seed']}: gap {again['gap']:.3f} ± {again['gap_error']:.3f} (other traces, other held-out dialogues).", ""]
    c = result["choice"]
    changed = {k: v for k, v in c["settings"].items() if result["reference"].get(k) != v}
    within = (f"Within noise of the best on every task: {', '.join(c['within_noise_everywhere'])}." if c["within_noise_everywhere"] else
              "No point is within noise of the best on every task; the rule's fallback takes the point whose largest excess over a "
              "task's best is least (the lowest of its intervals' lower ends).")
    lines += ["## The choice", "", f"Rule: {result['rule']}", "",
              f"{within} Chosen: **{c['point']}** "
              f"({', '.join(f'{k} = {v}' for k, v in changed.items()) or 'the reference itself'}; {c['minutes']:.1f} min for both tasks)."]
    return "\n".join(lines) + "\n"


def write_study(base: Path, result: dict[str, Any]) -> None:
    from .plots import close_figure, plot_calibration_study

    atomic_write_json(base / "study.json", json_safe(result))
    atomic_write_text(base / "study.md", study_markdown(result))
    close_figure(plot_calibration_study(result, base / "study.png"))
