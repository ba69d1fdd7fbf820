"""The gap study: how far a simulator's score drifts from the real users' as its behaviour gap and the horizon grow.

One policy (the base policy) is scored by simulators of graded quality (:func:`calirl_lite.tasks.graded_persona`:
``w`` moves a scripted user from the real users toward the forthcoming corpus user) and by the real users, at
several horizons. Each point records the drop |J_sim − J_real|, the measured per-turn behaviour gap ε between the
two users, and notebook 01's bound R_max · Σ_i (H − i) · ε. :func:`gap_trends` asks whether the drop grows with
the gap and with the horizon, and whether every drop lies under its bound.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from .dialogue import read_jsonl, write_jsonl
from .evaluate import evaluate_policy
from .io import atomic_write_json
from .paths import runs_dir
from .profiles import get_profile
from .rollout import base_policy, mean_scores
from .settings import short_hash
from .shift import compounding_bound
from .stats import PER_TURN_STATS, behaviour_tv
from .tasks import get_task, graded_persona
from .users import ScriptedUsers
from .world import World, build_world


def gap_points(profile: str, task: str, w: float, horizons: Sequence[int], n_goals: int, seed: int, world: World | None = None) -> list[dict[str, Any]]:
    """The base policy with the graded simulator ``w`` and with the real users, at each horizon: scores, the
    behaviour gap ε between the two users (per user turn), and the bound R_max · Σ_i (H − i) · ε. Kept under
    ``runs/gap-study/`` and reused. ``world``: the toy world whose test goals are used (default: the default one)."""
    world = world or build_world(verbose=False)
    key = {"profile": profile, "task": task, "w": w, "horizons": sorted(horizons), "n_goals": n_goals, "seed": seed, "world": world.config.key()}
    done = runs_dir() / "gap-study" / f"{profile}-{task}-w{w:g}-{short_hash(key)}.json"
    if done.is_file():  # finished before: the same policy, users, goals and seed give the same numbers
        return json.loads(done.read_text())
    goals = [t["goal"] for t in world.tasks(task, "test")][:n_goals]
    policy = base_policy(profile)
    metric = get_task(task).metric
    batch = get_profile(profile).eval_batch
    sim = ScriptedUsers(graded_persona(w))

    def with_real_users(H: int) -> tuple[dict[str, float], list[Any]]:
        """The real users' side, the same for every simulator: once per task and horizon, kept beside the points."""
        path = done.parent / f"{profile}-{task}-real-H{H}-{short_hash({**key, 'w': None, 'horizon': H})}.jsonl"
        if path.is_file():
            dialogues = read_jsonl(path)
            return mean_scores(dialogues), dialogues
        scores, dialogues = evaluate_policy(policy, ScriptedUsers(), task, goals, H, seed, batch_size=batch)
        write_jsonl(path, dialogues)
        return scores, dialogues

    rows, eps = [], 0.0
    for H in sorted(horizons, reverse=True):
        s, sim_d = evaluate_policy(policy, sim, task, goals, H, seed, batch_size=batch)
        r, real_d = with_real_users(H)
        if not rows:  # ε is the simulator's per-turn rate: measured once, on the longest dialogues
            tv = behaviour_tv(sim_d, real_d)
            eps = float(np.mean([np.nan_to_num(tv[k]) for k in PER_TURN_STATS]))
        rows.append({"task": task, "w": w, "horizon": H, "metric": metric, "sim": s[metric], "real": r[metric],
                     "drop": abs(s[metric] - r[metric]), "eps": eps, "bound": compounding_bound(eps, (H + 1) // 2)})
    rows.sort(key=lambda x: x["horizon"])
    atomic_write_json(done, rows)
    return rows


def gap_trends(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Does the drop grow with the gap (at each horizon) and with the horizon (for each simulator)? Per task, of the
    pairs of points that differ in that one variable (and not both with a drop of 0), how many have the larger drop
    at the larger value; and whether every drop lies under its bound."""
    out: dict[str, Any] = {}
    for task in sorted({r["task"] for r in rows}):
        rs = [r for r in rows if r["task"] == task]

        def concordant(key: str, group: str) -> tuple[int, int]:
            up = pairs = 0
            for g in {r[group] for r in rs}:
                part = sorted((r for r in rs if r[group] == g), key=lambda r: r[key])
                for i in range(len(part)):
                    for j in range(i + 1, len(part)):
                        if part[i][key] != part[j][key] and (part[i]["drop"] or part[j]["drop"]):  # both 0: nothing to compare
                            pairs += 1
                            up += part[j]["drop"] > part[i]["drop"]
            return up, pairs

        g_up, g_pairs = concordant("eps", "horizon")
        h_up, h_pairs = concordant("horizon", "w")
        out[task] = {"drop_rises_with_gap": f"{g_up}/{g_pairs}", "drop_rises_with_horizon": f"{h_up}/{h_pairs}",
                     "under_bound": all(r["drop"] <= r["bound"] + 1e-9 for r in rs)}
    return out


def format_trends(trends: dict[str, Any]) -> str:
    return "\n".join(f"gap study, {t}: the drop rises with the gap in {d['drop_rises_with_gap']} pairs of simulators (same horizon), "
                     f"with the horizon in {d['drop_rises_with_horizon']} pairs of horizons (same simulator); "
                     f"every drop under notebook 01's bound: {d['under_bound']}" for t, d in trends.items())
