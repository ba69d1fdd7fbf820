"""The confirmatory study: registered before it ran, run exactly as registered (``calirl reproduce --confirm``).

Everything ``make reproduce`` shows was designed where it is measured: the world's format was judged on world 0's
first 200 test goals with training seeds 0–2. A table cannot confirm the choices it was used to make, so the kit's
result is the registered study's:

* :data:`RECORD` (``calirl_lite/registered/confirmatory.json``; the reasons in docs/preregistration.md) fixes the claims
  with their direction, the design (the world's format, the budgets, the calibration method and budget), the training
  and calibration seeds, the worlds (never built before), the evaluation goals and the analysis, and carries the
  SHA-256 of the design's settings and of the code that makes the world and its users. Its git history shows it was
  committed before any result of the study existed; an amendment is a new commit of the record with its reason under
  ``amendments`` (``scripts/register_study.py --amend REASON``).
* :func:`check_record` — the code's design against the record's: the study refuses to run where they differ, and
  names what differs.
* :func:`confirm` — the study: per world, the world itself, each task's calibrations (every calibration seed) and
  every method's training runs (every training seed, each paired with one calibration seed), in one worker pool.
* :func:`analyse` — per world and pooled over the worlds: each claim's mean difference with its nested bootstrap
  interval (:func:`~calirl_lite.results.hierarchical_difference`: in one world, calibration seeds and the training
  seeds within them; pooled, worlds and the runs within them), Holm's correction across the claims
  (:func:`~calirl_lite.results.holm_family`) and how many (world, training seed) pairs agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from .calibration import calibrate_once
from .context import Context
from .io import atomic_write_json, atomic_write_text, json_safe
from .pool import Job, pool_size, run_pool
from .results import CLAIMS, Claim, RunResult, hierarchical_difference, holm_family, judge
from .stages import METHODS, CalibrationConfig, TrainConfig
from .train import train_job
from .world import WorldConfig, file_digests

RECORD = Path(__file__).parent / "registered" / "confirmatory.json"
"""The registered study (machine-readable; docs/preregistration.md is its text)."""
DESIGN_CODE = ("world.py", "toy_tasks.py", "task_family.py")
"""The modules that make the toy world, its tasks and its scripted users: their SHA-256 is part of the record."""
PER_RUN = ("seed", "out_dir", "cache_dir", "method", "task", "calibration_seed")
"""Settings that name one run, not the design (left out of the design's hash)."""
USES_CALIBRATION = ("static", "calibrated")
"""Methods whose runs read a calibration (Static its traces, Calibrated its simulator)."""


# ----------------------------------------------------------------------------- the record


def design() -> dict[str, Any]:
    """The study's design as the code has it now: the full-size world, training and calibration settings."""
    def settings(cls: Any) -> dict[str, Any]:
        return {k: v for k, v in cls.for_mode("full").to_dict().items() if k not in PER_RUN}

    return {"world": settings(WorldConfig), "train": settings(TrainConfig), "calibration": settings(CalibrationConfig)}


def design_hashes(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """SHA-256 of the design's settings (``settings``, default :func:`design`, as sorted JSON) and of each module of
    :data:`DESIGN_CODE` (its bytes, as the shipped world's files are digested: :func:`~calirl_lite.world.file_digests`)."""
    settings = design() if settings is None else settings
    return {"settings": hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest(),
            "code": file_digests(Path(__file__).parent, list(DESIGN_CODE))}


def load_record(path: str | os.PathLike = RECORD) -> dict[str, Any]:
    """The registered study's record."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_record(record: dict[str, Any]) -> None:
    """Refuse (ValueError) where the code's design differs from the record's: which settings, which modules."""
    current = design()
    now, then = design_hashes(current), record["hashes"]
    differ = [f"{part}.{k}" for part, fields in current.items() for k, v in fields.items() if record["design"][part].get(k, "—") != v]
    differ += [f"{part}.{k}" for part, fields in record["design"].items() for k in fields if k not in current[part]]
    if now["settings"] != then["settings"] and not differ:
        differ.append("the settings' hash")
    differ += [f"calirl_lite/{name}" for name, digest in now["code"].items() if then["code"].get(name) != digest]
    if differ:
        raise ValueError(f"the design differs from the registered study's ({RECORD.name}): {', '.join(differ)}. The study runs only as "
                         "registered: restore the design, or amend the record — a new commit of it with the reason "
                         "(`python scripts/register_study.py --amend REASON`)")


def calibration_seed(record: dict[str, Any], seed: int) -> int:
    """The calibration seed training seed ``seed`` is paired with (the record's rule: seeds taken in turn)."""
    seeds, cal = record["seeds"]["training"], record["seeds"]["calibration"]
    return cal[seeds.index(seed) % len(cal)]


# ----------------------------------------------------------------------------- the study


def world_job(ctx: Context) -> str:
    """Build (or load) the context's toy world: a job of the study's pool."""
    return str(ctx.toy_world(verbose=False).folder)


def study_jobs(record: dict[str, Any], ctx: Context) -> list[Job]:
    """Every job of the study, for every registered world: the world, each task's calibrations, the training runs
    (those that read a calibration after it; the docedit runs, the longest, first)."""
    jobs = []
    for w in record["worlds"]:
        wctx, world = ctx.with_world(w), f"world {w}"
        jobs.append(Job(world, world_job, (wctx,)))
        for task in record["tasks"]:
            jobs += [Job(f"{world} · calibrate · {task} · {c}", calibrate_once, (wctx.make(CalibrationConfig, task=task, seed=c), wctx), (world,))
                     for c in record["seeds"]["calibration"]]
        for task in sorted(record["tasks"], key=lambda t: t != "docedit-chat"):
            for method in METHODS:
                for s in record["seeds"]["training"]:
                    c = calibration_seed(record, s)
                    cfg = wctx.make(TrainConfig, method=method, task=task, seed=s, calibration_seed=c)
                    after = (world, f"{world} · calibrate · {task} · {c}") if method in USES_CALIBRATION else (world,)
                    jobs.append(Job(f"{world} · {method} · {task} · seed {s}", train_job, (cfg, wctx), after))
    return jobs


def confirm(ctx: Context, out: str | os.PathLike | None = None, workers: int = 0, record_path: str | os.PathLike = RECORD) -> dict[str, Any]:
    """Run the registered study (refusing a changed design first), analyse it, write ``confirm.json`` and ``confirm.md``
    under ``results/confirm/``; returns the analysis."""
    record = load_record(record_path)
    check_record(record)
    start, n = time.perf_counter(), pool_size(workers)
    base = Path(out) if out else ctx.results_dir("confirm")
    jobs = study_jobs(record, ctx)
    print(f"the registered study: worlds {record['worlds']}, training seeds {record['seeds']['training']}, calibration seeds "
          f"{record['seeds']['calibration']} — {len(jobs)} jobs in one pool of {n} workers", flush=True)
    done = run_pool(jobs, n, "confirm")
    runs = {w: [done[j.name] for j in jobs if j.fn is train_job and j.name.startswith(f"world {w} ")] for w in record["worlds"]}
    result = {**analyse(record, runs), "seconds": time.perf_counter() - start, "workers": n, "record": record["study"]}
    atomic_write_json(base / "confirm.json", json_safe(result))
    atomic_write_text(base / "confirm.md", confirm_markdown(result))
    print(confirm_markdown(result))
    print(f"calirl reproduce --confirm took {result['seconds'] / 60:.1f} min with {n} worker processes; wrote {base / 'confirm.md'}, confirm.json")
    return result


# ----------------------------------------------------------------------------- the analysis


def analyse(record: dict[str, Any], runs: dict[int, list[RunResult]]) -> dict[str, Any]:
    """Each registered claim per world (runs keyed by calibration seed, then training seed) and pooled (by world, then
    run), Holm across the claims of each table."""
    def in_world(w: int) -> Callable[[RunResult], Any]:
        return lambda r: (calibration_seed(record, r.seed), r.seed) if r.method in USES_CALIBRATION else r.seed

    worlds = {str(w): judge_claims(record, [(w, r) for r in rs], in_world(w)) for w, rs in runs.items()}
    pooled = judge_claims(record, [(w, r) for w, rs in runs.items() for r in rs], None)
    return {"worlds": worlds, "pooled": pooled, "alpha": record["analysis"]["alpha"]}


def judge_claims(record: dict[str, Any], runs: list[tuple[int, RunResult]], key: Callable[[RunResult], Any] | None) -> list[dict[str, Any]]:
    """Every registered claim on these ``(world, run)`` pairs: the nested interval over ``key(run)`` (None: (world,
    seed), worlds as the upper level), seeds agreeing per (world, seed), Holm across the claims."""
    claims = []
    for entry in record["claims"]:
        claim = Claim(entry["left"], entry["op"], entry["right"])
        sides = [_side(runs, entry["task"], name, key) for name in (claim.left, claim.right)]
        nested = hierarchical_difference(sides[0][0], sides[1][0])
        per_seed = {f"{w}/{s}": sum(sides[0][1][(w, s)]) / len(sides[0][1][(w, s)]) - sum(sides[1][1][(w, s)]) / len(sides[1][1][(w, s)])
                    for w, s in sorted(sides[0][1]) if (w, s) in sides[1][1]}
        out = judge(claim, {**{k: nested[k] for k in ("mean", "low", "high")}, "per_seed": per_seed})
        claims.append({**out, "task": entry["task"], "p_one_sided": nested["p_greater" if claim.op == ">" else "p_less"]})
    holm_family(claims, record["analysis"]["alpha"])
    return claims


def _side(runs: list[tuple[int, RunResult]], task: str, method: str, key: Callable[[RunResult], Any] | None) -> tuple[dict[Any, list[float]], dict[tuple[int, int], list[float]]]:
    """One side of a claim: its per-goal scores by the bootstrap's key, and by (world, seed) for the seeds' count. Base
    is scored in every run; its scores are read from the Oracle's runs (the same base policy, evaluation seed and
    goals)."""
    by_key, by_seed = {}, {}
    for w, r in runs:
        s = r.seed
        if r.task != task or r.method != ("oracle" if method == "base" else method):
            continue
        scores = r.per_goal["base" if method == "base" else "trained"]
        k = (w, s) if key is None else (s if method == "base" else key(r))
        by_key[k], by_seed[(w, s)] = scores, scores
    return by_key, by_seed


def confirm_markdown(result: dict[str, Any]) -> str:
    """The study's table: each claim pooled and per world — difference [nested interval], Holm p, seeds agree, verdict."""
    worlds = list(result["worlds"])
    lines = ["| task | claim | pooled: difference [95 % nested interval] | Holm p | seeds agree | verdict | "
             + " | ".join(f"world {w}" for w in worlds) + " |", "|---|---|---|---|---|---|" + "---|" * len(worlds)]
    for i, c in enumerate(result["pooled"]):
        cells = [f"{'holds' if x['holds'] else 'not shown'} ({x['mean']:+.3f} [{x['low']:+.3f}, {x['high']:+.3f}])"
                 for x in (result["worlds"][w][i] for w in worlds)]
        lines.append(f"| {c['task']} | {c['claim']} | {c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] | {c['p_holm']:.3f} | "
                     f"{c['seeds_agree']} of {c['seeds']} | {'holds' if c['holds'] else '**not shown**'} | " + " | ".join(cells) + " |")
    lines += ["", f"A claim holds when its nested interval excludes 0 in the claimed direction, its one-sided p-value Holm-adjusted "
              f"across the table's claims is ≤ {result['alpha']} and at least two thirds of the (world, training seed) pairs agree. "
              "Pooled: worlds resampled, then the runs within them; per world: calibration seeds, then the training seeds paired "
              "with them; goals resampled within."]
    return "\n".join(lines) + "\n"


def registered_claims() -> list[dict[str, str]]:
    """The kit's claims (:data:`~calirl_lite.results.CLAIMS`) as the record lists them: task, left, op, right."""
    return [{"task": t, "left": c.left, "op": c.op, "right": c.right} for c in CLAIMS for t in c.tasks]
