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
from .io import atomic_write_json
from .rollout import base_policy, mean_scores
from .shift import compounding_bound, final_reward_bound
from .stages import Stage, calibration_for, kept_result, resolve
from .stats import PER_TURN_STATS, behaviour_tv
from .toy_tasks import graded_persona
from .users import ScriptedUsers, User, make_user

LM_SIMULATORS = ("naive", "calibrated")


def per_turn_gap(sim: Sequence[Dialogue], real: Sequence[Dialogue]) -> float:
    """ε: the mean TV distance of the per-turn behaviour rates (:data:`calirl_lite.stats.PER_TURN_STATS`)."""
    tv = behaviour_tv(sim, real)
    return float(np.mean([np.nan_to_num(tv[k]) for k in PER_TURN_STATS]))


def _simulator(stage: Stage, simulator: float | str) -> User:
    """The graded scripted user ``w`` (a number), or an LM simulator ('naive', 'calibrated' with the adapter of
    calibration seed 0)."""
    if not isinstance(simulator, str):
        return ScriptedUsers(graded_persona(float(simulator)))
    if simulator not in LM_SIMULATORS:
        raise ValueError(f"simulator must be a number w in [0, 1] or one of {LM_SIMULATORS}, got {simulator!r}")
    adapter = None
    if simulator == "calibrated":
        ctx = stage.ctx
        adapter = calibrated_adapter(calibration_for(ctx, stage.profile.name, stage.task.name))
    return make_user(simulator, stage.models, adapter)


def gap_points(ctx: Context, profile: str, task: str, simulator: float | str, horizons: Sequence[int], n_goals: int, seed: int) -> list[dict[str, Any]]:
    """The base policy with ``simulator`` (a graded user's ``w``, or 'naive' / 'calibrated') and with the real users,
    at each horizon: scores, the drop, the per-turn gap ε and both bounds, on the first ``n_goals`` test goals of the
    context's toy world. Kept under ``runs/gap-study/`` and reused (a job of ``calirl reproduce``'s worker pool)."""
    stage = resolve(ctx, profile, task)
    key = {"profile": profile, "task": task, "simulator": simulator, "horizons": sorted(horizons), "n_goals": n_goals, "seed": seed}
    name = f"w{simulator:g}" if not isinstance(simulator, str) else simulator
    done = kept_result(ctx, "gap-study", f"{profile}-{task}-{name}-seed{seed}", key, stage.world_config)
    if done.is_file():  # finished before: the same policy, users, goals and seed give the same numbers
        return json.loads(done.read_text())
    goals = [t["goal"] for t in stage.world.tasks(task, "test")][:n_goals]
    policy, metric, batch = base_policy(stage.models), stage.task.metric, stage.profile.eval_batch
    sim = _simulator(stage, simulator)

    def with_real_users(H: int) -> tuple[dict[str, float], list[Any]]:
        """The real users' side, the same for every simulator: once per task, horizon and seed, kept beside the points."""
        path = kept_result(ctx, "gap-study", f"{profile}-{task}-real-H{H}-seed{seed}", {**key, "simulator": None, "horizon": H}, stage.world_config, ".jsonl")
        if path.is_file():
            dialogues = read_jsonl(path)
            return mean_scores(dialogues), dialogues
        scores, dialogues = evaluate_policy(policy, ScriptedUsers(), stage.task, goals, H, seed, batch_size=batch)
        write_jsonl(path, dialogues)
        return scores, dialogues

    rows, eps = [], 0.0
    graded = not isinstance(simulator, str)
    for H in sorted(horizons, reverse=True):
        s, sim_d = evaluate_policy(policy, sim, stage.task, goals, H, seed, batch_size=batch)
        r, real_d = with_real_users(H)
        if not rows:  # ε is the simulator's per-turn rate: measured once, on the longest dialogues
            eps = per_turn_gap(sim_d, real_d)
        turns = (H + 1) // 2  # user messages in a dialogue of H messages
        rows.append({"task": task, "simulator": name, "w": float(simulator) if graded else None, "horizon": H, "seed": seed, "metric": metric,
                     "sim": s[metric], "real": r[metric], "drop": abs(s[metric] - r[metric]), "eps": eps,
                     "bound_final": final_reward_bound(eps, turns), "bound_per_turn": compounding_bound(eps, turns),
                     "by_construction": graded and (float(simulator) == 0.0 or H <= 2)})
    rows.sort(key=lambda x: x["horizon"])
    atomic_write_json(done, rows)
    return rows


def seed_means(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per (task, simulator, horizon): the mean over dialogue seeds of the drop and ε, the seeds' range of
    the drop (``drop_low``, ``drop_high``) and the bounds at the mean ε."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["simulator"], r["horizon"]), []).append(r)
    out = []
    for (task, simulator, H), part in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        drops, eps = [p["drop"] for p in part], float(np.mean([p["eps"] for p in part]))
        out.append({**{k: part[0][k] for k in ("task", "simulator", "w", "horizon", "metric", "by_construction")},
                    "drop": float(np.mean(drops)), "drop_low": min(drops), "drop_high": max(drops), "eps": eps, "seeds": len(part),
                    "bound_final": final_reward_bound(eps, (H + 1) // 2), "bound_per_turn": compounding_bound(eps, (H + 1) // 2)})
    return out


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
    and in each seed — and whether every drop (every seed, every simulator) lies under each bound."""
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
        }
    return out


def trained_points(results: Sequence[Any]) -> list[dict[str, Any]]:
    """The trained policies as points: each run trained against a simulator (naive, calibrated), scored by that
    simulator and by the real users on the same held-out goals (the first ``n_eval_simulator``), with the per-turn gap
    ε between the two users' turns in those dialogues."""
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
        out.append({"task": r.task, "method": r.method, "seed": r.seed, "metric": r.metric, "horizon": max(len(d.messages) for d in real),
                    "sim": s, "real": rr, "drop": abs(s - rr), "eps": per_turn_gap(sim, real), "goals": len(sim)})
    return out


def format_trends(trends: dict[str, Any]) -> str:
    return "\n".join(
        f"gap study, {t}: the drop rises with the gap in {d['drop_rises_with_gap']} pairs of simulators (same horizon; per seed "
        f"{', '.join(d['per_seed_gap'])}), with the horizon in {d['drop_rises_with_horizon']} pairs of horizons (same simulator; per seed "
        f"{', '.join(d['per_seed_horizon'])}) — points equal by construction left out; every drop under the bound that fits the reward "
        f"(R_max · Σ ε): {d['under_final_bound']}; under the paper's per-turn-reward bound: {d['under_per_turn_bound']}"
        for t, d in trends.items())
