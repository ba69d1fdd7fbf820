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

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .calibration import calibrate_once
from .context import Context
from .io import atomic_write_json, atomic_write_text, json_safe
from .pool import Job, pool_size, run_pool
from .results import CLAIMS, METHOD_LABELS, Claim, RunResult, hierarchical_difference, holm_family, judge
from .stages import CalibrationConfig, TrainConfig, calibration_for
from .train import train_job
from .world import WorldConfig, file_digests

RECORD = Path(__file__).parent / "registered" / "confirmatory.json"
"""The registered study (machine-readable; docs/preregistration.md is its text)."""
DESIGN_CODE = ("world.py", "toy_tasks.py", "task_family.py")
"""The modules that make the toy world, its tasks and its scripted users: their SHA-256 is part of the record."""
PER_RUN = ("seed", "out_dir", "cache_dir", "method", "task", "calibration_seed")
"""Settings that name one run, not the design (left out of the design's hash)."""
MEASURED = Path(__file__).parent / "registered" / "measured"
"""The study's results as measured for docs/results.md (``confirm.json``, ``secondary.json``): shipped so that
notebook 05 shows them where the study has not been run."""
LABELS = {**METHOD_LABELS, "static-all": "Static at every turn"}
"""The methods' names in the tables (the ablation's Static at every turn besides the methods)."""
USES_CALIBRATION = ("static", "calibrated")
"""Methods whose runs read a calibration (Static its traces, Calibrated its simulator)."""


# ----------------------------------------------------------------------------- the record


def design(calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The study's design as the code has it now: the full-size world, training and calibration settings (the
    calibration's with ``calibration`` over its defaults, as the study calibrates: :func:`registered_calibration`)."""
    def settings(cls: Any, **overrides: Any) -> dict[str, Any]:
        return {k: v for k, v in cls.for_mode("full", **overrides).identity().items() if k not in PER_RUN}

    return {"world": settings(WorldConfig), "train": settings(TrainConfig), "calibration": settings(CalibrationConfig, **(calibration or {}))}


def registered_calibration(record: dict[str, Any]) -> dict[str, Any]:
    """The record's calibration settings where they differ from :class:`~calirl_lite.stages.CalibrationConfig`'s
    defaults now. The study calibrates with them, and its runs find their calibration with them (its context's
    :attr:`~calirl_lite.context.Context.calibration`), so a later choice of the kit's default calibration (by the
    calibration study) leaves the study as registered; a field the record lacks or the code lacks is still refused."""
    now = CalibrationConfig.for_mode("full").identity()
    return {k: v for k, v in record["design"]["calibration"].items() if k in now and now[k] != v}


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
    current = design(registered_calibration(record))
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


def study_context(record: dict[str, Any], ctx: Context, w: int) -> Context:
    """The context of the study's jobs in world ``w``: that world, and the record's calibration settings."""
    return ctx.with_world(w).with_calibration(registered_calibration(record))


def world_jobs(record: dict[str, Any], ctx: Context, w: int) -> list[Job]:
    """World ``w`` and each task's calibrations in it (every calibration seed): what the study's runs read."""
    wctx, world = study_context(record, ctx, w), f"world {w}"
    return [Job(world, world_job, (wctx,))] + [
        Job(f"{world} · calibrate · {task} · {c}", calibrate_once, (calibration_for(wctx, "tiny", task, c).cfg, wctx), (world,))
        for task in record["tasks"] for c in record["seeds"]["calibration"]]


def run_job(record: dict[str, Any], ctx: Context, w: int, method: str, task: str, seed: int, name: str = "", **settings: Any) -> Job:
    """One training run of the study in world ``w`` (after the world, and after the calibration it reads)."""
    c, world = calibration_seed(record, seed), f"world {w}"
    wctx = study_context(record, ctx, w)
    cfg = wctx.make(TrainConfig, method=method, task=task, seed=seed, calibration_seed=c, **settings)
    after = (world, f"{world} · calibrate · {task} · {c}") if method in USES_CALIBRATION else (world,)
    return Job(f"{world} · {name or method} · {task} · seed {seed}", train_job, (cfg, wctx), after)


def study_jobs(record: dict[str, Any], ctx: Context) -> list[Job]:
    """Every job of the study, for every registered world: the world, each task's calibrations, the training runs
    (those that read a calibration after it; the docedit runs, the longest, first)."""
    jobs = []
    for w in record["worlds"]:
        jobs += world_jobs(record, ctx, w)
        jobs += [run_job(record, ctx, w, method, task, s) for task in sorted(record["tasks"], key=lambda t: t != "docedit-chat")
                 for method in record["methods"] if method != "base" for s in record["seeds"]["training"]]
    return jobs


def run_registered(ctx: Context, out: str | os.PathLike | None, workers: int, record_path: str | os.PathLike, name: str,
                   make_jobs: Callable[[dict[str, Any], Context], list[Job]],
                   analyse_done: Callable[[dict[str, Any], list[Job], dict[str, Any]], dict[str, Any]],
                   markdown: Callable[[dict[str, Any]], str]) -> tuple[dict[str, Any], Path]:
    """What the study and its secondary analyses share: the record checked (refused where the design differs), the
    jobs in one worker pool, the analysis with its wall time written to ``<name>.json`` and ``<name>.md`` under
    ``results/confirm/`` (or ``out``) and printed. Returns the result and the folder."""
    record = load_record(record_path)
    check_record(record)
    start, n = time.perf_counter(), pool_size(workers)
    base = Path(out) if out else ctx.results_dir("confirm")
    jobs = make_jobs(record, ctx)
    print(f"the registered study ({name}): worlds {record['worlds']}, training seeds {record['seeds']['training']}, calibration seeds "
          f"{record['seeds']['calibration']} — {len(jobs)} jobs in one pool of {n} workers", flush=True)
    done = run_pool(jobs, n, name)
    result = {**analyse_done(record, jobs, done), "seconds": time.perf_counter() - start, "workers": n, "record": record["study"]}
    atomic_write_json(base / f"{name}.json", json_safe(result))
    atomic_write_text(base / f"{name}.md", markdown(result))
    print(markdown(result))
    print(f"{name} took {result['seconds'] / 60:.1f} min with {n} worker processes; wrote {base / f'{name}.md'}, {name}.json")
    return result, base


def confirm(ctx: Context, out: str | os.PathLike | None = None, workers: int = 0, record_path: str | os.PathLike = RECORD) -> dict[str, Any]:
    """Run the registered study (``calirl reproduce --confirm``), analyse it, write ``confirm.json`` and ``confirm.md``
    under ``results/confirm/``; returns the analysis."""
    def by_world(record: dict[str, Any], jobs: list[Job], done: dict[str, Any]) -> dict[str, Any]:
        return analyse(record, {w: [done[j.name] for j in jobs if j.fn is train_job and j.name.startswith(f"world {w} ")] for w in record["worlds"]})

    return run_registered(ctx, out, workers, record_path, "confirm", study_jobs, by_world, confirm_markdown)[0]


# ----------------------------------------------------------------------------- the secondary analyses


def secondary_jobs(record: dict[str, Any], ctx: Context) -> list[Job]:
    """The record's secondary analyses (``record["secondary"]``): the Static-at-every-turn runs beside the study's
    Static and Calibrated runs they are compared with (reused where the study made them), and the learning-curve runs."""
    ablation, curves = record["secondary"]["static_all_turns"], record["secondary"]["curves"]
    jobs = [j for w in sorted({*ablation["worlds"], curves["world"]}) for j in world_jobs(record, ctx, w)]
    for w in ablation["worlds"]:
        for task in ablation["tasks"]:
            for s in ablation["seeds"]:
                jobs += [run_job(record, ctx, w, "static", task, s, "static-all", **ablation["settings"]),
                         run_job(record, ctx, w, "static", task, s), run_job(record, ctx, w, "calibrated", task, s)]
    jobs += [run_job(record, ctx, curves["world"], m, task, s, f"{m} curve", **curves["settings"])
             for task in curves["tasks"] for m in curves["methods"] for s in curves["seeds"]]
    return list({j.name: j for j in jobs}.values())


def confirm_secondary(ctx: Context, out: str | os.PathLike | None = None, workers: int = 0, record_path: str | os.PathLike = RECORD) -> dict[str, Any]:
    """Run the record's secondary analyses (``calirl reproduce --confirm --secondary``): the Static-at-every-turn
    ablation judged as the claims are (nested interval, Holm across its claims), the learning curves summarised
    (where each method's mean peaks, which seeds collapse) and drawn; ``secondary.json``, ``secondary.md`` and
    ``curves.png`` under ``results/confirm/``."""
    from .plots import close_figure, plot_study_curves

    result, base = run_registered(ctx, out, workers, record_path, "secondary", secondary_jobs, lambda record, _, done: analyse_secondary(record, done),
                                  secondary_markdown)
    close_figure(plot_study_curves(result["curves"], path=base / "curves.png"))
    return result


def analyse_secondary(record: dict[str, Any], done: dict[str, Any]) -> dict[str, Any]:
    """The ablation's claims (pooled over its worlds, Holm across them) and the curves' summary, from the pool's results
    by job name; the runs of Static at every turn count as method ``static-all``."""
    ablation, curves = record["secondary"]["static_all_turns"], record["secondary"]["curves"]
    runs = [(int(name.split()[1]), dataclasses.replace(r, method="static-all") if " · static-all · " in name else r)
            for name, r in sorted(done.items()) if isinstance(r, RunResult) and " curve · " not in name]  # by name: not the order they finished in
    plan, mine = {"claims": ablation["claims"], "analysis": record["analysis"]}, [(w, r) for w, r in runs if w in ablation["worlds"]]
    curve_runs = [r for name, r in sorted(done.items()) if " curve · " in name]
    return {"ablation": judge_claims(plan, mine, None), "ablation_paired_worlds": judge_claims(plan, mine, None, paired=True),
            "tokens": tokens_per_step([r for _, r in runs]), "curves": summarise_curves(curve_runs, curves), "alpha": record["analysis"]["alpha"]}


def summarise_curves(runs: list[RunResult], plan: dict[str, Any]) -> dict[str, Any]:
    """Per task and method: each seed's real-user curve, their mean, the step where the mean peaks, and the seeds that
    collapse (their last point more than ``plan["collapse"]`` below their own best)."""
    out: dict[str, Any] = {"budget": plan["budget"], "collapse": plan["collapse"], "tasks": {}}
    for r in runs:
        t = out["tasks"].setdefault(r.task, {"metric": r.metric, "methods": {}})
        t["methods"].setdefault(r.method, {"seeds": {}})["seeds"][str(r.seed)] = r.curves()["real"]
    for t in out["tasks"].values():
        for m in t["methods"].values():
            points = [np.asarray(c, float) for c in m["seeds"].values()]
            n = min(len(p) for p in points)
            mean = np.mean([p[:n, 1] for p in points], axis=0)
            m.update(steps=points[0][:n, 0].tolist(), mean=mean.tolist(), peak_step=float(points[0][int(np.argmax(mean)), 0]),
                     peak=float(mean.max()), last=float(mean[-1]),
                     collapsed=[s for s, c in m["seeds"].items() if max(v for _, v in c) - c[-1][1] > plan["collapse"]])
    return out


def tokens_per_step(runs: list[RunResult]) -> dict[str, dict[str, float]]:
    """Mean policy tokens trained per GRPO step, by task and method."""
    by: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        by.setdefault((r.task, r.method), []).append(r.tokens_per_step())
    out: dict[str, dict[str, float]] = {}
    for (task, method), v in sorted(by.items()):
        out.setdefault(task, {})[method] = sum(v) / len(v)
    return out


def secondary_markdown(result: dict[str, Any]) -> str:
    """The ablation's table, the policy tokens trained per step, and the curves' peaks and collapses."""
    lines = ["| task | claim | difference [95 % nested interval] | Holm p | seeds agree | verdict |", "|---|---|---|---|---|---|"]
    lines += [f"| {c['task']} | {c['claim']} | {c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] | {c['p_holm']:.3f} | "
              f"{c['seeds_agree']} of {c['seeds']} | {'holds' if c['holds'] else '**not shown**'} |" for c in result["ablation"]]
    if "ablation_paired_worlds" in result:
        lines += ["", "Not registered, beside it: each world drawn once for both sides — "
                  + "; ".join(f"{c['task']} {c['claim']} {c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] "
                              f"({'holds' if c['holds'] else 'not shown'})" for c in result["ablation_paired_worlds"]) + "."]
    lines += ["", tokens_markdown(result["tokens"]), "", "| task | method | real score at step 0 | peak (step) | last | seeds that collapse |",
              "|---|---|---|---|---|---|"]
    for task, t in result["curves"]["tasks"].items():
        lines += [f"| {task} | {LABELS.get(m, m)} | {c['mean'][0]:.3f} | {c['peak']:.3f} ({c['peak_step']:.0f}) | {c['last']:.3f} | "
                  f"{', '.join(c['collapsed']) or 'none'} |" for m, c in t["methods"].items()]
    return "\n".join(lines) + "\n"


def tokens_markdown(tokens: dict[str, dict[str, float]]) -> str:
    """Policy tokens trained per step, a row per task and a column per method."""
    methods = [m for m in LABELS if any(m in t for t in tokens.values())]
    return "\n".join([f"| policy tokens trained per step | {' | '.join(LABELS.get(m, m) for m in methods)} |",
                      "|---|" + "---|" * len(methods)]
                     + [f"| {task} | {' | '.join(f'{t[m]:.0f}' if m in t else '—' for m in methods)} |" for task, t in tokens.items()])


# ----------------------------------------------------------------------------- the analysis


def analyse(record: dict[str, Any], runs: dict[int, list[RunResult]]) -> dict[str, Any]:
    """Each registered claim per world (runs keyed by calibration seed, then training seed) and pooled (by world, then
    run), Holm across the claims of each table."""
    def in_world(w: int) -> Callable[[RunResult], Any]:
        return lambda r: (calibration_seed(record, r.seed), r.seed) if r.method in USES_CALIBRATION else r.seed

    worlds = {str(w): judge_claims(record, [(w, r) for r in rs], in_world(w)) for w, rs in runs.items()}
    every = [(w, r) for w, rs in runs.items() for r in rs]
    return {"worlds": worlds, "pooled": judge_claims(record, every, None), "alpha": record["analysis"]["alpha"],
            "pooled_paired_worlds": judge_claims(record, every, None, paired=True),
            "tokens": tokens_per_step([r for rs in runs.values() for r in rs])}


def judge_claims(record: dict[str, Any], runs: list[tuple[int, RunResult]], key: Callable[[RunResult], Any] | None,
                 paired: bool = False) -> list[dict[str, Any]]:
    """Every registered claim on these ``(world, run)`` pairs: the nested interval over ``key(run)`` (None: (world,
    seed), worlds as the upper level), seeds agreeing per (world, seed), Holm across the claims. ``paired``: the upper
    level drawn once for both sides (not the registered analysis, which draws it for each side on its own: the
    worlds' own levels then count as uncertainty of a difference; reported beside it, labelled)."""
    claims = []
    for entry in record["claims"]:
        claim = Claim(entry["left"], entry["op"], entry["right"])
        sides = [_side(runs, entry["task"], name, key) for name in (claim.left, claim.right)]
        nested = hierarchical_difference(sides[0][0], sides[1][0], paired_clusters=paired)
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
    if "pooled_paired_worlds" in result:
        lines += ["", "Not registered, reported beside it: the pooled analysis with each world drawn once for both sides of a claim "
                  "(both methods were trained and scored in the same worlds, so a world's own level does not count as "
                  "uncertainty of their difference):", "", "| task | claim | pooled, worlds paired: difference [95 % interval] | Holm p | verdict |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c['task']} | {c['claim']} | {c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] | {c['p_holm']:.3f} | "
                  f"{'holds' if c['holds'] else '**not shown**'} |" for c in result["pooled_paired_worlds"]]
    if "tokens" in result:
        lines += ["", tokens_markdown(result["tokens"])]
    return "\n".join(lines) + "\n"


def study_result(ctx: Context, name: str = "confirm") -> dict[str, Any] | None:
    """The study's ``<name>.json`` (``confirm`` or ``secondary``): this machine's run under ``results/confirm/``, else
    the kit's measured copy (:data:`MEASURED`); prints which, and how long it took."""
    for path, whose in ((ctx.results / "confirm" / f"{name}.json", "your run"), (MEASURED / f"{name}.json", "as measured for docs/results.md")):
        if path.is_file():
            result = json.loads(path.read_text(encoding="utf-8"))
            print(f"{name}: {whose} ({result['seconds'] / 60:.1f} min with {result['workers']} worker processes; {path})")
            return result
    print(f"not run here yet: `calirl reproduce --confirm{' --secondary' if name == 'secondary' else ''}`")
    return None


def registered_claims() -> list[dict[str, str]]:
    """The kit's claims (:data:`~calirl_lite.results.CLAIMS`) as the record lists them: task, left, op, right."""
    return [{"task": t, "left": c.left, "op": c.op, "right": c.right} for c in CLAIMS for t in c.tasks]
