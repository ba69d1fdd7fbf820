"""The gap study: how far a simulator's score drifts from the real users' as its behaviour gap and the horizon grow.

One policy (the base policy) is scored by a simulator and by the real users, at several horizons (message budgets)
and with several dialogue seeds. The simulators are scripted users of graded quality
(:func:`calirl_lite.toy_tasks.graded_persona`: ``w`` moves a user from the real users toward the forthcoming corpus
user) and the two LM simulators (``naive``, ``calibrated``). Each point records the drop |J_sim − J_real|, the
measured per-turn behaviour gap ε between the two users, and two bounds:

* ``bound_final`` — the one that fits the toy world's reward, a single score in [0, 1] at the end:
  R_max · min(1, Σ_t ε_t), growing like H (:func:`calirl_lite.shift.final_reward_bound`);
* ``bound_per_turn`` — the paper's R_max · Σ_t (H − t) · ε_t, for a reward at every turn, growing like H².

:func:`gap_trends` asks, on the graded simulators, whether the drop grows with the gap and with the horizon — leaving
out the points equal by construction (``w = 0`` is the real user itself; at H = 2 a graded user has only opened
the dialogue, as the real users do) — and whether every drop lies under each bound. :func:`trained_points` adds
the trained policies: each scored by its training simulator and by the real users on the same goals.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from .calibration import calibrated_adapter
from .context import Context
from .dialogue import Dialogue, read_jsonl, write_jsonl
from .evaluate import evaluate_policy
from .exact_gap import exact_gaps, replies_of
from .io import atomic_write_json
from .rollout import base_policy, mean_scores
from .shift import compounding_bound, final_reward_bound
from .stages import Stage, calibration_for, kept_result, resolve
from .stats import proxy_gap
from .task_family import REAL_USER
from .toy_tasks import graded_persona
from .users import ScriptedUsers, User, make_user

LM_SIMULATORS = ("naive", "calibrated")


def _simulator(stage: Stage, simulator: float | str, calibration: Stage | None = None) -> User:
    """The graded scripted user ``w`` (a number), or an LM simulator ('naive', 'calibrated' with the adapter of
    ``calibration``)."""
    if not isinstance(simulator, str):
        return ScriptedUsers(graded_persona(float(simulator)))
    if simulator not in LM_SIMULATORS:
        raise ValueError(f"simulator must be a number w in [0, 1] or one of {LM_SIMULATORS}, got {simulator!r}")
    return make_user(simulator, stage.models, calibrated_adapter(calibration) if calibration is not None else None)


def gap_points(ctx: Context, profile: str, task: str, simulator: float | str, horizons: Sequence[int], n_goals: int, seed: int,
               calibration_seed: int = 0) -> list[dict[str, Any]]:
    """The base policy with ``simulator`` (a graded user's ``w``, or 'naive' / 'calibrated') and with the real users,
    at each horizon: scores, the drop, the per-turn gap ε and both bounds, on the first ``n_goals`` test goals of the
    context's toy world. Kept under ``runs/gap-study/`` and reused (a job of ``calirl reproduce``'s worker pool)."""
    stage = resolve(ctx, profile, task)
    calibration = calibration_for(ctx, profile, task, calibration_seed) if simulator == "calibrated" else None
    key = {"profile": profile, "task": task, "simulator": simulator, "horizons": sorted(horizons), "n_goals": n_goals, "seed": seed, "gap": "exact",
           **({"calibration_seed": calibration_seed, "calibration": calibration.folder.name} if calibration is not None else {})}
    name = f"w{simulator:g}" if not isinstance(simulator, str) else simulator
    done = kept_result(ctx, "gap-study", f"{profile}-{task}-{name}-seed{seed}", key, stage.world_config)
    if done.is_file():  # finished before: the same policy, users, goals and seed give the same numbers
        return json.loads(done.read_text())
    goals = [t["goal"] for t in stage.world.tasks(task, "test")][:n_goals]
    policy, metric, batch = base_policy(stage.models), stage.task.metric, stage.profile.eval_batch
    sim = _simulator(stage, simulator, calibration)

    def with_real_users(H: int) -> tuple[dict[str, float], list[Any]]:
        """The real users' side, the same for every simulator: once per task, horizon and seed, kept beside the points."""
        path = kept_result(ctx, "gap-study", f"{profile}-{task}-real-H{H}-seed{seed}", {**key, "simulator": None, "horizon": H}, stage.world_config, ".jsonl")
        if path.is_file():
            dialogues = read_jsonl(path)
            return mean_scores(dialogues), dialogues
        scores, dialogues = evaluate_policy(policy, ScriptedUsers(), stage.task, goals, H, seed, batch_size=batch)
        write_jsonl(path, dialogues)
        return scores, dialogues

    rows, by_horizon = [], {}
    graded = not isinstance(simulator, str)
    for H in sorted(horizons, reverse=True):
        s, sim_d = evaluate_policy(policy, sim, stage.task, goals, H, seed, batch_size=batch)
        r, real_d = with_real_users(H)
        by_horizon[H] = (s, sim_d, r, real_d)
    # ε_t along each horizon's own real-user histories (a history two horizons share is measured once)
    gaps = exact_gaps(replies_of(sim), REAL_USER, {H: v[3] for H, v in by_horizon.items()})
    for H, (s, sim_d, r, real_d) in by_horizon.items():
        g, drop, drop_error = gaps[H], abs(s[metric] - r[metric]), difference_error(sim_d, real_d, metric)
        rows.append({"task": task, "simulator": name, "w": float(simulator) if graded else None, "horizon": H, "seed": seed, "metric": metric,
                     "sim": s[metric], "real": r[metric], "drop": drop, "drop_error": drop_error,
                     "eps": g["total"], "eps_error": g["total_error"], "eps_t": g["eps"], "eps_t_error": g["eps_error"],
                     "by_category": {c: sum(v) for c, v in g["by_category"].items()}, "proxy_eps": proxy_gap(sim_d, real_d),
                     "bound_final": final_reward_bound(g["eps"]), "bound_final_high": min(1.0, g["total"] + g["total_error"] + len(g["eps"]) * g["left_out"]),
                     "bound_per_turn": compounding_bound(g["eps"]) if g["eps"] else 0.0,
                     "by_construction": graded and (float(simulator) == 0.0 or H <= 2)})
    rows.sort(key=lambda x: x["horizon"])
    atomic_write_json(done, rows)
    return rows


def difference_error(a: Sequence[Dialogue], b: Sequence[Dialogue], metric: str) -> float:
    """The 95 % half-width of a difference of two independent means of ``metric`` (the two sides' sampling noise)."""
    var = sum(float(np.var([d.scores[metric] for d in ds], ddof=1)) / len(ds) for ds in (a, b) if len(ds) > 1)
    return 1.96 * float(np.sqrt(var))


def seed_means(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per (task, simulator, horizon): the mean over dialogue seeds of the drop and of Σ_t ε_t with their
    95 % half-widths (``drop_error``, ``eps_error``: the seeds' own, combined), the seeds' range of the drop
    (``drop_low``, ``drop_high``) and the bounds at the mean ε_t."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["simulator"], r["horizon"]), []).append(r)
    out = []
    for (task, simulator, H), part in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        k, drops = len(part), [p["drop"] for p in part]
        turns = max(len(p["eps_t"]) for p in part)  # a seed whose dialogues all ended sooner has ε_t = 0 past its last turn
        eps_t = np.mean([list(p["eps_t"]) + [0.0] * (turns - len(p["eps_t"])) for p in part], axis=0).tolist()
        eps, eps_error = float(np.mean([p["eps"] for p in part])), float(np.sqrt(sum(p["eps_error"] ** 2 for p in part))) / k
        cats = {c: float(np.mean([p["by_category"].get(c, 0.0) for p in part])) for c in {c for p in part for c in p["by_category"]}}
        out.append({**{key: part[0][key] for key in ("task", "simulator", "w", "horizon", "metric", "by_construction")},
                    "drop": float(np.mean(drops)), "drop_error": float(np.sqrt(sum(p["drop_error"] ** 2 for p in part))) / k,
                    "drop_low": min(drops), "drop_high": max(drops), "eps": eps, "eps_error": eps_error, "eps_t": eps_t, "seeds": k,
                    "by_category": dict(sorted(cats.items(), key=lambda kv: -kv[1])), "proxy_eps": float(np.mean([p["proxy_eps"] for p in part])),
                    "bound_final": min(1.0, eps), "bound_final_high": min(1.0, eps + eps_error), "bound_per_turn": compounding_bound(eps_t) if eps_t else 0.0})
    return out


def above_bound(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points whose drop lies above R_max · min(1, Σ_t ε_t), each with whether it still does once both sides'
    sampling noise is allowed for (``beyond_noise``: drop − its half-width above the bound at Σ ε + its half-width)."""
    return [{**{k: p[k] for k in ("task", "simulator", "horizon", "drop", "drop_error", "eps", "eps_error", "bound_final")},
             "beyond_noise": p["drop"] - p["drop_error"] > p["bound_final_high"] + 1e-9}
            for p in points if p["drop"] > p["bound_final"] + 1e-9]


def _concordant(points: Sequence[dict[str, Any]], key: str, group: str) -> tuple[int, int]:
    """Pairs of points with the same ``group`` and different ``key``: how many have the larger drop at the larger value."""
    up = pairs = 0
    for g in {p[group] for p in points}:
        part = sorted((p for p in points if p[group] == g), key=lambda p: p[key])
        for i in range(len(part)):
            for j in range(i + 1, len(part)):
                if part[i][key] != part[j][key]:
                    pairs += 1
                    up += part[j]["drop"] > part[i]["drop"]
    return up, pairs


def gap_trends(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per task, on the graded simulators without the points equal by construction: in how many pairs the drop is
    larger at the larger gap (same horizon) and at the longer horizon (same simulator) — on the seeds' mean drops,
    and in each seed — and whether every drop (every seed, every simulator) lies under each bound; ``above``: the seed
    means (every simulator) above R_max · min(1, Σ_t ε_t), with whether they are beyond both sides' noise."""
    out: dict[str, Any] = {}
    for task in sorted({r["task"] for r in rows}):
        rs = [r for r in rows if r["task"] == task]
        graded = [p for p in seed_means(rs) if p["w"] is not None and not p["by_construction"]]
        seeds = sorted({r["seed"] for r in rs})
        per_seed = [[r for r in rs if r["seed"] == s and r["w"] is not None and not r["by_construction"]] for s in seeds]
        out[task] = {
            "drop_rises_with_gap": "{}/{}".format(*_concordant(graded, "eps", "horizon")),
            "drop_rises_with_horizon": "{}/{}".format(*_concordant(graded, "horizon", "w")),
            "per_seed_gap": ["{}/{}".format(*_concordant(p, "eps", "horizon")) for p in per_seed],
            "per_seed_horizon": ["{}/{}".format(*_concordant(p, "horizon", "w")) for p in per_seed],
            "seeds": seeds,
            "under_final_bound": all(r["drop"] <= r["bound_final"] + 1e-9 for r in rs),
            "under_per_turn_bound": all(r["drop"] <= r["bound_per_turn"] + 1e-9 for r in rs),
            "points": len(graded_all := seed_means(rs)), "above": above_bound(graded_all),
            "rows_above": sum(r["drop"] > r["bound_final"] + 1e-9 for r in rs), "rows": len(rs),
        }
    return out


def trained_points(results: Sequence[Any]) -> list[dict[str, Any]]:
    """The trained policies as points: each run trained against a simulator (naive, calibrated), scored by that
    simulator and by the real users on the same held-out goals (the first ``n_eval_simulator``), with the exact gap
    Σ_t ε_t of that simulator along the trained policy's real-user histories (measured when the run was evaluated;
    a run that has none gets the four-rate proxy, ``gap`` says which)."""
    out = []
    for r in results:
        path = r.folder / "eval_dialogues.jsonl"
        if r.simulator == "real" or not path.is_file():
            continue
        dialogues = read_jsonl(path)
        sim = [d for d in dialogues if d.user == r.simulator]
        real = {d.task_id: d for d in dialogues if d.user == "real"}
        real = [real[d.task_id] for d in sim if d.task_id in real]
        if not sim or len(real) != len(sim):
            continue
        s, rr = mean_scores(sim)[r.metric], mean_scores(real)[r.metric]
        exact = getattr(r, "simulator_gap", None)
        out.append({"task": r.task, "method": r.method, "seed": r.seed, "metric": r.metric, "horizon": max(len(d.messages) for d in real),
                    "sim": s, "real": rr, "drop": abs(s - rr), "eps": exact["total"] if exact else proxy_gap(sim, real),
                    "gap": "exact" if exact else "proxy", "proxy_eps": proxy_gap(sim, real), "goals": len(sim)})
    return out


def format_trends(trends: dict[str, Any]) -> str:
    """The trend counts per task, then every seed mean above the final-reward bound with why: within both sides'
    sampling noise, or beyond it (which would contradict the lemma)."""
    lines = []
    for t, d in trends.items():
        lines.append(
            f"gap study, {t}: the drop rises with the gap in {d['drop_rises_with_gap']} pairs of simulators (same horizon; per seed "
            f"{', '.join(d['per_seed_gap'])}), with the horizon in {d['drop_rises_with_horizon']} pairs of horizons (same simulator; per seed "
            f"{', '.join(d['per_seed_horizon'])}) — points equal by construction left out; every drop under the bound that fits the reward "
            f"(R_max · min(1, Σ_t ε_t)): {d['rows'] - d['rows_above']} of {d['rows']} (seed means above it: {len(d['above'])} of {d['points']}, "
            f"beyond both sides' noise: {sum(a['beyond_noise'] for a in d['above'])}); under the paper's per-turn-reward bound: {d['under_per_turn_bound']}")
        lines += [f"  above the bound: {a['simulator']} at H = {a['horizon']}: drop {a['drop']:.3f} ± {a['drop_error']:.3f} > bound {a['bound_final']:.3f} "
                  f"(Σ ε {a['eps']:.3f} ± {a['eps_error']:.3f}) — "
                  + ("beyond both sides' noise: a contradiction of the lemma, to be explained" if a["beyond_noise"] else
                     "within both sides' sampling noise (the drop and Σ ε are each estimated from a finite sample of dialogues)")
                  for a in d["above"]]
    return "\n".join(lines)
