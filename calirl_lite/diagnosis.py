"""What calibration leaves, as an experiment: which of a calibrated simulator's errors cost the policy trained on it.

The exact gap (:mod:`calirl_lite.exact_gap`) says *where* a calibrated simulator differs from the real users — by
what the user replies to (its opening, a right or a wrong answer, a question …) and by what the reply does. Whether a
difference *matters* is another question, answered by training: correct the simulator there and only there, train
with the same code and budget, and score the policy with the real users. ``calirl diagnose`` trains, on one task
(arith-chat unless told), with the table's calibration and training seeds:

* **Calibrated**, **Static Context** and the **Oracle** — the table's runs (reused when ``calirl reproduce`` made them);
* **scripted at the calibrated rates** — method oracle against the scripted user fitted
  (:func:`~calirl_lite.stats.fit_persona`) to the calibrated simulator's own dialogues with the base policy on the
  held-out goals: the simulator's behaviour *rates*, and nothing of its off-script text or its errors no rate names
  (rejecting a right answer);
* **corrected at answers** — the calibrated simulator whose replies to an answer, right or wrong, are the real users'
  (:class:`~calirl_lite.users.HybridUser`): is it the accept/reject decision? Then **at right answers** only and **at
  wrong answers** only: rejecting a right answer, or accepting a wrong one?
* **corrected where the gap is** — corrected at the contexts that carry the most of the calibration's validation gap
  (its ``by_context``, the two largest; read before training, never from RL results) — left out when those are a row
  above already.

**The rule** (fixed before it ran): a correction *matters* when its row beats Calibrated with the nested interval
(training seeds and goals resampled: :func:`~calirl_lite.results.hierarchical_difference`) above 0 and every seed
agreeing; the simulator's rates may explain its cost when the scripted row is *within noise of Calibrated* (that
interval holds 0) — weak evidence where the interval is wide, and said as no more than that. The goal-only paired
interval is shown beside it, for what it is: conditional on the trained policies. ``results/diagnosis/`` gets
``diagnosis.md`` and ``diagnosis.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .calibration import calibrate_once
from .context import Context
from .dialogue import read_jsonl
from .io import atomic_write_json, atomic_write_text, json_safe
from .pool import Job, pool_size, run_pool
from .results import RunResult, hierarchical_difference, paired_difference
from .settings import Settings
from .stages import TrainConfig, calibration_for
from .stats import fit_persona, persona_spec
from .tasks import TASKS
from .train import train_job

ANSWERS = ("right answer", "wrong answer")
"""The contexts of the accept/reject decision."""


@dataclass
class DiagnosisConfig(Settings):
    """Settings of the diagnosis (``calirl diagnose``); training settings are ``calirl train``'s defaults."""

    task: str = "arith-chat"
    """toy task whose calibrated simulator is diagnosed"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds of every row (the table's)"""
    calibration_seed: int = 0
    """the calibration diagnosed (the table's)"""
    workers: int = 0
    """processes running side by side (0: one per CPU core)"""

    SMOKE = {"seeds": (0,)}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task not in TASKS:
            raise ValueError(f"the diagnosis corrects a simulator with the toy world's scripted users; task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not self.seeds:
            raise ValueError("seeds must name at least one training seed")


def diagnosis_rows(cfg: DiagnosisConfig, ctx: Context) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The rows' training settings (``TrainConfig`` fields besides the seed), and what they were read from: the
    calibration's simulated dialogues (the fitted persona) and its gap.json (the contexts of most gap)."""
    calibration = calibration_for(ctx, "tiny", cfg.task, cfg.calibration_seed)
    report = calibrate_once(calibration.cfg, ctx)
    fitted = fit_persona(read_jsonl(calibration.folder / "simulated-calibrated.jsonl"), name="calibrated rates")
    by_context = report["calibrated"]["exact"]["by_context"]
    top = tuple(sorted(by_context, key=lambda c: -by_context[c])[:2])
    common = {"task": cfg.task, "calibration_seed": cfg.calibration_seed}
    rows = {"Calibrated": {**common, "method": "calibrated"},
            "Static Context": {**common, "method": "static"},
            "Oracle": {**common, "method": "oracle"},
            "scripted at the calibrated rates": {**common, "method": "oracle", "user": persona_spec(fitted)},
            "corrected at answers": {**common, "method": "calibrated", "corrected": ",".join(ANSWERS)},
            "corrected at right answers": {**common, "method": "calibrated", "corrected": "right answer"},
            "corrected at wrong answers": {**common, "method": "calibrated", "corrected": "wrong answer"}}
    if not any(set(r.get("corrected", "").split(",")) == set(top) for r in rows.values()):
        rows[f"corrected where the gap is ({', '.join(top)})"] = {**common, "method": "calibrated", "corrected": ",".join(top)}
    return rows, {"fitted": persona_spec(fitted), "by_context": by_context, "top_contexts": list(top),
                  "validation_gap": report["calibrated"]["exact"]["total"]}


def diagnose(cfg: DiagnosisConfig, ctx: Context, out: str | Path | None = None) -> dict[str, Any]:
    """Train every row (reusing finished runs), compare each with Calibrated and Static Context, apply the rule,
    write ``diagnosis.md`` / ``.json``; returns the json's contents."""
    start = time.perf_counter()
    base = Path(out) if out else ctx.results_dir("diagnosis")
    base.mkdir(parents=True, exist_ok=True)
    ctx.toy_world()
    rows, read = diagnosis_rows(cfg, ctx)
    names = {(row, s): f"{row} · seed {s}" for row in rows for s in cfg.seeds}
    jobs = [Job(names[row, s], train_job, (ctx.make(TrainConfig, seed=s, **settings), ctx)) for row, settings in rows.items() for s in cfg.seeds]
    print(f"calirl diagnose: {len(rows)} rows × {len(cfg.seeds)} seeds on {cfg.task}, {pool_size(cfg.workers)} worker processes", flush=True)
    done = run_pool(jobs, pool_size(cfg.workers), "diagnosis")
    results = {row: [done[names[row, s]] for s in cfg.seeds] for row in rows}
    result = {"settings": cfg.to_dict(), **read, "rows": summarise_rows(rows, results), "seconds": time.perf_counter() - start}
    atomic_write_json(base / "diagnosis.json", json_safe(result))
    atomic_write_text(base / "diagnosis.md", diagnosis_markdown(result))
    print(diagnosis_markdown(result))
    print(f"calirl diagnose took {result['seconds']:.0f} s; wrote {base / 'diagnosis.md'}, diagnosis.json")
    return result


def summarise_rows(rows: dict[str, dict[str, Any]], results: dict[str, list[RunResult]]) -> dict[str, Any]:
    """Per row: the real users' score per seed and its mean, the exact gap of its training user on the trained
    policy's real-user histories, and its paired difference to Calibrated and to Static Context, with the rule's verdict."""
    def per_goal(rs: list[RunResult]) -> dict[int, list[float]]:
        return {r.seed: r.per_goal["trained"] for r in rs}

    out = {}
    for row, rs in results.items():
        entry: dict[str, Any] = {"settings": rows[row], "real": [r.score("real") for r in rs], "seeds": [r.seed for r in rs],
                                 "gap": [r.simulator_gap["total"] if r.simulator_gap else None for r in rs]}
        entry["mean"] = sum(entry["real"]) / len(rs)
        for other in ("Calibrated", "Static Context"):
            if row != other:
                d = paired_difference(per_goal(rs), per_goal(results[other]))
                d["agree"] = all((v > 0) == (d["mean"] > 0) for v in d["per_seed"].values())
                d["nested"] = hierarchical_difference(per_goal(rs), per_goal(results[other]))
                entry[f"vs {other}"] = d
        vs = entry.get("vs Calibrated")
        nested = vs["nested"] if vs else None
        entry["verdict"] = ("" if nested is None else "within noise of Calibrated" if row.startswith("scripted") and nested["low"] <= 0 <= nested["high"]
                            else "matters (beats Calibrated, seeds agree)" if nested["low"] > 0 and vs["agree"] else "not shown")
        out[row] = entry
    return out


def diagnosis_markdown(result: dict[str, Any]) -> str:
    """The diagnosis as a table: each row's real-user score per seed, its training user's gap, and its difference to
    Calibrated and Static Context (95 % nested interval over seeds and goals; the goal-only one in brackets), with
    the verdict."""
    s = result["settings"]
    lines = [f"# What calibration leaves: {s['task']}", "",
             f"Calibration seed {s['calibration_seed']}; its validation gap Σ ε = {result['validation_gap']:.3f}, by what the user replies to: "
             + ", ".join(f"{c} {v:.3f}" for c, v in result["by_context"].items()) + ".",
             f"Where it is largest: {', '.join(result.get('top_contexts', []))}. The scripted user fitted to the calibrated simulator's "
             f"dialogues: `{result['fitted'] or 'the real users'}`.", "",
             f"| row | real users, seeds {', '.join(map(str, s['seeds']))} | mean | training user's gap Σ ε | − Calibrated [95 % CI] | − Static [95 % CI] | verdict |",
             "|---|---|---|---|---|---|---|"]
    for row, e in result["rows"].items():
        def diff(key: str) -> str:
            d = e.get(key)
            if d is None:
                return ""
            n = d["nested"]
            return (f"{d['mean']:+.3f} [{n['low']:+.3f}, {n['high']:+.3f}] (goals only [{d['low']:+.3f}, {d['high']:+.3f}])"
                    + ("" if d["agree"] else " (seeds disagree)"))

        gaps = [g for g in e["gap"] if g is not None]
        lines.append(f"| {row} | {', '.join(f'{v:.3f}' for v in e['real'])} | {e['mean']:.3f} | {f'{sum(gaps) / len(gaps):.2f}' if gaps else '—'} | "
                     f"{diff('vs Calibrated')} | {diff('vs Static Context')} | {e['verdict']} |")
    lines += ["", "The rule (fixed before it ran): a correction matters when it beats Calibrated with the interval above 0 and every seed "
                  "agreeing; a row whose interval to Calibrated holds 0 is within noise of it. Intervals: "
                  "the nested bootstrap (training seeds, then goals); in brackets the goal-only one, conditional on these policies."]
    return "\n".join(lines) + "\n"
