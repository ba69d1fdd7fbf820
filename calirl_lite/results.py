"""What training and evaluation leave behind, typed: one run's result, one evaluation's, and the paper's table.

* :class:`RunResult` — ``eval.json`` of a ``calirl train`` run: the base and the trained policy, each scored by
  the run's training user and by the real users on held-out goals.
* :class:`EvalResult` — ``calirl evaluate``: one policy with one user, per seed, with mean and std.
* :data:`METHOD_LABELS` — the one name of each row of the table (Base and the four ways to train), in table order.
* :data:`CLAIMS` (with the paper's own numbers, :data:`PAPER`), :func:`hierarchical_difference`, :func:`holm_family`
  and :func:`judge` — each qualitative claim judged by a nested bootstrap interval (training seeds, then goals), Holm's
  correction across the table's claims and how many seeds agree: it holds, or it is "not shown"; the goal-only paired
  interval (:func:`paired_difference`) is reported beside it for what it is, conditional on the runs in hand;
* :func:`summarise`, :func:`table_markdown` and :func:`paper_markdown` — the paper's table from any set of run
  results with every claim judged, and the paper side by side (``calirl reproduce`` writes them; notebooks 04 and
  05 show them).

A score is a dict of metric → value (``accuracy`` or ``bleu``, plus ``assistant_tokens``, ``turns`` …: see
:func:`calirl_lite.rollout.mean_scores`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .io import InputError, atomic_write_json, json_safe, require_file

METHOD_LABELS = {"base": "Base", "static": "Static Context RL", "naive": "Naive Interactive RL",
                 "calibrated": "Calibrated Interactive RL", "oracle": "Oracle"}
"""Each row of the table: the base policy and the four ways to train it, in this order."""


@dataclass(frozen=True)
class Claim:
    """One of the paper's qualitative results as the toy world checks it: ``left op right`` with the real users."""

    left: str
    op: str
    """'>' or '<'"""
    right: str
    tasks: tuple[str, ...] = ("arith-chat", "docedit-chat")

    @property
    def text(self) -> str:
        return f"{self.left} {self.op} {self.right}"


CLAIMS = (Claim("oracle", ">", "static"), Claim("calibrated", ">", "static"), Claim("static", ">", "base"),
          Claim("naive", "<", "calibrated"), Claim("naive", "<", "base", ("docedit-chat",)))
"""What the toy world must reproduce (DESIGN.md): Oracle and Calibrated > Static > Base on both tasks, Naive <
Calibrated on both, and on docedit-chat Naive < Base (the simulator-induced collapse)."""

PAPER = {"arith-chat": ("MATH-Chat", "accuracy", {"base": 82.3, "static": 85.0, "naive": 89.3, "calibrated": 91.5, "oracle": 89.7}),
         "docedit-chat": ("MediumDocEdit-Chat", "BLEU", {"base": 32.2, "static": 33.8, "naive": 26.1, "calibrated": 34.6})}
"""The paper's table (means of 3 runs, in percent; Naive on MATH-Chat 89.3 ± 3.4; no Oracle row for
MediumDocEdit-Chat), beside the toy task that stands for each of its tasks."""

BOOTSTRAP = 10_000
"""bootstrap resamples behind each interval"""


def paired_difference(left: dict[int, Sequence[float]], right: dict[int, Sequence[float]], rng_seed: int = 0,
                      draws: int = BOOTSTRAP) -> dict[str, Any]:
    """``left − right`` over (seed, goal) pairs: the mean, its 95 % paired bootstrap interval and each seed's mean.

    Both sides were scored on the same held-out goals with the same evaluation seed, so every (seed, goal) is a
    paired difference. The bootstrap resamples goals (the same draw in every seed, as a goal is the same goal in
    every seed) and keeps the seeds: the interval is the uncertainty of judging on these goals. Whether the
    training seeds agree is counted beside it (``per_seed``).
    """
    import numpy as np

    seeds = sorted(set(left) & set(right))
    if not seeds:
        raise ValueError("no seed has per-goal scores on both sides")
    if len({len(left[s]) for s in seeds} | {len(right[s]) for s in seeds}) != 1:
        raise ValueError("both sides need scores for the same goals in every seed")
    d = np.asarray([left[s] for s in seeds], float) - np.asarray([right[s] for s in seeds], float)  # [seeds, goals]
    picks = np.random.default_rng(rng_seed).integers(d.shape[1], size=(draws, d.shape[1]))
    boot = d[:, picks].mean(axis=(0, 2))
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"mean": float(d.mean()), "low": float(low), "high": float(high), "per_seed": {str(s): float(x) for s, x in zip(seeds, d.mean(1))}}


def _clusters(keys: Sequence[Any]) -> list[Any]:
    """The clusters of a side's run keys (a key's first element; a bare training seed: one cluster for all)."""
    return sorted({k[0] if isinstance(k, tuple) else 0 for k in keys})


def _run_weights(keys: Sequence[Any], rng: Any, draws: int, picks: Any = None) -> Any:
    """``draws × runs``: each run's share of one two-level bootstrap draw — clusters (a key's first element: the
    calibration seed, or the world) drawn with replacement (or the given ``picks``: ``draws × clusters`` indices into
    the sorted clusters, shared with the other side), then the runs within each drawn cluster (its training seeds)."""
    import numpy as np

    keys = [k if isinstance(k, tuple) else (0, k) for k in keys]  # a bare training seed: every run in one cluster
    clusters = _clusters(keys)
    members = {c: np.asarray([i for i, k in enumerate(keys) if k[0] == c]) for c in clusters}
    weights = np.zeros((draws, len(keys)))
    picks = rng.integers(len(clusters), size=(draws, len(clusters))) if picks is None else picks
    for slot in range(len(clusters)):
        for ci, c in enumerate(clusters):
            rows = np.nonzero(picks[:, slot] == ci)[0]
            chosen = members[c][rng.integers(len(members[c]), size=(len(rows), len(members[c])))]
            np.add.at(weights, (rows[:, None], chosen), 1.0)
    return weights / weights.sum(1, keepdims=True)


def hierarchical_difference(left: dict[Any, Sequence[float]], right: dict[Any, Sequence[float]], rng_seed: int = 0,
                            draws: int = BOOTSTRAP, paired_clusters: bool = False) -> dict[str, Any]:
    """``left − right`` with the uncertainty of the runs as well as of the goals: a nested bootstrap that draws, for
    each side on its own, the calibration seeds and the training seeds within them (a key ``(calibration_seed,
    seed)``, or a bare training seed), and draws the goals once for both sides (every run is scored on the same goals,
    so goals stay paired). Each draw's difference is the mean over its runs and goals; the interval is the 2.5 and
    97.5 percentiles, ``p`` the two-sided bootstrap p-value of 0 (for :func:`holm`), ``p_greater`` and ``p_less`` the
    one-sided ones of "left > right" and "left < right" (the share of draws on the other side of 0).

    Why nested and not goal-only: a goal-only interval (:func:`paired_difference`) is conditional on the trained
    policies in hand; two seeds of the same method can differ by more than its whole width. In the tests' synthetic
    studies (3 calibration seeds × 3 training seeds a method, 150 goals) the nested interval holds the true difference
    in 94 % of 400 studies and the goal-only one in 39 %; with few runs a bootstrap is somewhat narrow (3 training seeds
    and no calibration level: about 91 %).

    ``paired_clusters``: draw the clusters once for both sides (they must have the same ones) — for a cluster both
    sides share, such as the world both methods were trained and scored in: then a cluster's level, which moves
    both sides alike, does not count as uncertainty of their difference. (The registered study's pooled analysis
    draws the worlds for each side on its own: docs/results.md reports both.)"""
    import numpy as np

    goals = {len(v) for v in [*left.values(), *right.values()]}
    if not left or not right or len(goals) != 1:
        raise ValueError("both sides need runs, each scored on the same goals")
    x_left, x_right = np.asarray(list(left.values()), float), np.asarray(list(right.values()), float)
    rng, n_goals = np.random.default_rng(rng_seed), goals.pop()
    goal_w = np.stack([np.bincount(row, minlength=n_goals) for row in rng.integers(n_goals, size=(draws, n_goals))]) / n_goals
    picks = None
    if paired_clusters:
        clusters = _clusters(left)
        if clusters != _clusters(right):
            raise ValueError("paired clusters need the same clusters on both sides")
        picks = rng.integers(len(clusters), size=(draws, len(clusters)))
    boot = ((_run_weights(list(left), rng, draws, picks) * (goal_w @ x_left.T)).sum(1)
            - (_run_weights(list(right), rng, draws, picks) * (goal_w @ x_right.T)).sum(1))
    low, high = np.percentile(boot, [2.5, 97.5])
    below, above = float(np.mean(boot <= 0)), float(np.mean(boot >= 0))
    return {"mean": float(x_left.mean() - x_right.mean()), "low": float(low), "high": float(high), "p": min(1.0, 2 * min(below, above)),
            "p_greater": below, "p_less": above, "runs": [len(left), len(right)]}


def holm(pvalues: dict[str, float], alpha: float = 0.05) -> dict[str, bool]:
    """Holm's step-down correction: which of a study's claims are rejected at family-wise level ``alpha`` — the
    smallest p-value against alpha / m, the next against alpha / (m − 1), …, stopping at the first that fails."""
    return {name: p <= alpha for name, p in holm_adjusted(pvalues).items()}


def holm_adjusted(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values: the k-th smallest p times (m − k + 1), never below the one before it, at most 1 — a
    claim is rejected at family-wise level alpha exactly when its adjusted p-value is ≤ alpha."""
    order = sorted(pvalues, key=pvalues.get)
    out, running = {}, 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * pvalues[name]))
        out[name] = running
    return out


FAMILY_ALPHA = 0.05
"""family-wise error rate of one table's claims (Holm)"""


def judge(claim: Claim, diff: dict[str, Any]) -> dict[str, Any]:
    """The verdict on ``claim`` from an interval of its left minus its right side (``mean``, ``low``, ``high``) and each
    seed's mean difference (``per_seed``): it *holds* when the interval excludes 0 in the claimed direction and at least
    two thirds of the seeds (2 of 3) agree; else it is "not shown". (The table's claims then also pass Holm's
    correction: :func:`holm_family`.)"""
    sign = 1 if claim.op == ">" else -1
    agree = sum(sign * x > 0 for x in diff["per_seed"].values())
    excludes = diff["low"] > 0 if sign > 0 else diff["high"] < 0
    return {"claim": claim.text, **diff, "seeds_agree": agree, "seeds": len(diff["per_seed"]), "judged": True,
            "holds": bool(excludes and 3 * agree >= 2 * len(diff["per_seed"]))}

Scores = dict[str, float]


def _load_fields(cls: type, path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` with every field ``cls`` needs (an :class:`InputError` names the file and field)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"not JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise InputError(path, 0, f"expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    needed = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(needed - set(data))
    if missing:
        raise InputError(path, 0, f"no field {', '.join(map(repr, missing))} (is this a {cls.__name__} file?)")
    return {k: v for k, v in data.items() if k in names}


@dataclass
class RunResult:
    """One ``calirl train`` run: its settings, the base and trained policy's scores, and where it lives."""

    method: str
    profile: str
    task: str
    seed: int
    metric: str
    """the task's score: ``accuracy`` (arith-chat) or ``bleu`` (docedit-chat)"""
    simulator: str
    """the user the method trained against: real, naive or calibrated"""
    steps: int
    base: dict[str, Scores]
    """the base policy's scores with the training user (``simulator``) and with the real users (``real``)"""
    trained: dict[str, Scores]
    """the trained policy's, the same way"""
    run: str
    """the run folder"""
    resumed_from: str | None = None
    train_seconds: float = 0.0
    rollout_seconds: float = 0.0
    policy_tokens: int = 0
    per_goal: dict[str, list[float]] = field(default_factory=dict)
    """the real users' score of each held-out goal (same goals, same order, same evaluation seed for every method):
    ``base`` and ``trained`` — what the claims' paired intervals are computed from"""
    simulator_gap: dict[str, Any] | None = None
    """toy tasks, a simulator as training user: the exact gap Σ_t ε_t of that simulator against the real users along
    the trained policy's real-user histories (the first ``n_eval_simulator`` goals): :func:`calirl_lite.exact_gap.exact_gap`"""
    real_user_calls: dict[str, Any] = field(default_factory=dict)
    """what the real users' replies cost this run (:func:`calirl_lite.users.real_user_calls`): ``user`` (``scripted``,
    ``endpoint:BASE_URL#MODEL`` or ``local:MODEL``), ``requests`` sent to the endpoint (or the local model), replies found in its ``cached`` replies,
    ``prompt_tokens`` and ``completion_tokens`` (the endpoint's ``usage``) and ``seconds`` waited — the training of
    method oracle and every evaluation with the real users (the base policy's once per task and seed); empty in runs
    made before it was kept"""

    FILE = "eval.json"

    @property
    def label(self) -> str:
        return METHOD_LABELS.get(self.method, self.method)

    @property
    def folder(self) -> Path:
        return Path(self.run)

    def score(self, who: str = "real", when: str = "trained") -> float:
        """The task score of the ``when`` ('base' or 'trained') policy with ``who`` ('real' or 'simulator')."""
        return getattr(self, when)[who][self.metric]

    def curves(self) -> dict[str, list[list[float]]]:
        """The run's training reward per step (``train``) and its real users' score at the real-reward curve's points
        (``real``; ``real_every``), as ``[step, value]`` pairs from its ``log.json``."""
        log = json.loads((self.folder / "log.json").read_text(encoding="utf-8"))
        return {"train": [[h["step"], h["reward"]] for h in log if "reward" in h],
                "real": [[h["step"], h[f"real_{self.metric}"]] for h in log if f"real_{self.metric}" in h]}

    def tokens_per_step(self) -> float:
        """Policy tokens trained per GRPO step (those with ``env_mask`` 1: the training signal the method gets)."""
        return self.policy_tokens / max(1, self.steps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self) -> Path:
        """Write ``eval.json`` into the run folder (atomically)."""
        return atomic_write_json(self.folder / self.FILE, json_safe(self.to_dict()))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> RunResult:
        """The result of the run in ``folder`` (or of an ``eval.json`` given itself)."""
        path = Path(folder)
        return cls(**_load_fields(cls, require_file(path / cls.FILE if path.is_dir() else path)))


@dataclass
class EvalResult:
    """One policy with one user on held-out goals (``calirl evaluate``): scores per seed, their mean and std."""

    profile: str
    task: str
    policy: str
    user: str
    n_eval: int
    seeds: list[int]
    per_seed: dict[int, Scores]
    mean: Scores = field(default_factory=dict)
    std: Scores = field(default_factory=dict)
    real_user_calls: dict[str, Any] = field(default_factory=dict)
    """user real: what the real users' replies cost, as :attr:`RunResult.real_user_calls`"""

    @classmethod
    def of(cls, profile: str, task: str, policy: str, user: str, n_eval: int, per_seed: dict[int, Scores]) -> EvalResult:
        import numpy as np

        keys = sorted(next(iter(per_seed.values())))
        return cls(profile, task, policy, user, n_eval, list(per_seed), per_seed,
                   {k: float(np.mean([v[k] for v in per_seed.values()])) for k in keys},
                   {k: float(np.std([v[k] for v in per_seed.values()])) for k in keys})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(Path(path), json_safe(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> EvalResult:
        data = _load_fields(cls, require_file(path))
        data["per_seed"] = {int(k): v for k, v in data["per_seed"].items()}  # JSON keys are strings
        return cls(**data)

    def text(self) -> str:
        lines = [f"{self.policy} on {self.task} with the {self.user} users, {self.n_eval} held-out goals, seeds {self.seeds}:"]
        lines += [f"  {k:>17}: {self.mean[k]:.3f} ± {self.std[k]:.3f}   per seed: " + ", ".join(f"{v[k]:.3f}" for v in self.per_seed.values())
                  for k in self.mean]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the table


def summarise(results: Sequence[RunResult], seeds: Sequence[int]) -> dict[str, Any]:
    """Per task, Base and every method with the real users: mean, std and per-seed values (and the mean of each
    method with its own training user); every claim and every ordering of the paper's rows judged (:func:`judge`)
    where both sides have per-goal scores (runs trained before per-goal scores were kept have none: those claims are
    listed as not judged)."""
    import numpy as np

    tasks: dict[str, Any] = {}
    for task in sorted({r.task for r in results}):
        rows = [r for r in results if r.task == task]
        per: dict[str, dict[int, float]] = {"base": {r.seed: r.score("real", "base") for r in rows}}
        goals: dict[str, dict[int, list[float]]] = {"base": {r.seed: r.per_goal["base"] for r in rows if r.per_goal}}
        sim: dict[str, dict[int, float]] = {}
        for r in rows:
            per.setdefault(r.method, {})[r.seed] = r.score("real")
            sim.setdefault(r.method, {})[r.seed] = r.score("simulator")
            if r.per_goal:
                goals.setdefault(r.method, {})[r.seed] = r.per_goal["trained"]
        methods = {}
        for name in METHOD_LABELS:
            if name not in per:
                continue
            v = [per[name][s] for s in sorted(per[name])]
            methods[name] = {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_seed": {str(s): per[name][s] for s in sorted(per[name])}}
            if name in sim:
                methods[name]["with_training_user_mean"] = float(np.mean(list(sim[name].values())))
        claims = [_judged(c, per, goals) for c in CLAIMS if task in c.tasks and c.left in per and c.right in per]
        orders = [_judged(Claim(a, ">", b), per, goals) for a, b in paper_orderings(task) if a in per and b in per]
        tasks[task] = {"metric": rows[0].metric, "methods": methods, "claims": claims, "paper_orderings": orders}
    for family in ("claims", "paper_orderings"):  # Holm across every task's claims of the table, and across the orderings
        holm_family([c for d in tasks.values() for c in d[family]])
    return {"seeds": list(seeds), "tasks": tasks}


def _judged(claim: Claim, per: dict[str, dict[int, float]], goals: dict[str, dict[int, list[float]]]) -> dict[str, Any]:
    """``claim`` judged where both sides have per-goal scores for every seed (else marked as not judged): the interval
    is the nested one (training seeds and goals resampled: :func:`hierarchical_difference`), the goal-only paired
    interval (:func:`paired_difference`, conditional on these runs) is kept beside it as ``goal_only``, and
    ``p_one_sided`` is the nested bootstrap's p-value of the claimed direction (for Holm: :func:`holm_family`)."""
    left, right = goals.get(claim.left, {}), goals.get(claim.right, {})
    if not (left and set(left) == set(right) == set(per[claim.left]) == set(per[claim.right])):
        return {"claim": claim.text, "holds": False, "judged": False}
    flat = paired_difference(left, right)
    nested = hierarchical_difference(left, right)
    out = judge(claim, {**{k: nested[k] for k in ("mean", "low", "high")}, "per_seed": flat["per_seed"]})
    return {**out, "goal_only": {k: flat[k] for k in ("mean", "low", "high")}, "p_one_sided": nested["p_greater" if claim.op == ">" else "p_less"]}


def holm_family(claims: list[dict[str, Any]], alpha: float = FAMILY_ALPHA) -> None:
    """Holm's correction across one family of judged claims (one table's claims; the paper's orderings are another):
    each gets ``p_holm``, and it *holds* only where its interval and seeds say so and its adjusted one-sided p-value
    is ≤ ``alpha``."""
    judged = {i: c["p_one_sided"] for i, c in enumerate(claims) if c.get("judged")}
    for i, p in holm_adjusted(judged).items():
        claims[i]["p_holm"] = p
        claims[i]["holds"] = bool(claims[i]["holds"] and p <= alpha)


def paper_orderings(task: str) -> list[tuple[str, str]]:
    """Every ordered pair (higher, lower) of the paper's rows for the paper task ``task`` stands for."""
    if task not in PAPER:
        return []
    rows = PAPER[task][2]
    names = sorted(rows, key=rows.get, reverse=True)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


def _interval(c: dict[str, Any]) -> str:
    """The last cells of a judged claim's row: difference [nested interval] | Holm p | goal-only interval | seeds agree |
    verdict."""
    if not c.get("judged"):
        return "— | — | — | — | not judged: no per-goal scores (runs trained before they were kept: train them again)"
    g = c.get("goal_only", c)
    return (f"{c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] | {c.get('p_holm', float('nan')):.3f} | [{g['low']:+.3f}, {g['high']:+.3f}] | "
            f"{c['seeds_agree']} of {c['seeds']} | {'holds' if c['holds'] else '**not shown**'}")


REASONS: dict[tuple[str, str, str], str] = {
    ("arith-chat", "calibrated", "oracle"): "the toy's Oracle trains against the real users themselves, so nothing it learns fails to transfer; the "
    "paper's lead of Calibrated is inside its own run-to-run spread, and the toy has no mechanism that would produce it",
    ("arith-chat", "naive", "static"): "the toy's naive simulator is the corpus's forthcoming user, who volunteers numbers and accepts wrong "
    "answers: trained against it the policy answers before it asks, which the withholding real users punish — the toy builds the "
    "collapse the paper saw on documents into both tasks, where the paper's prompted simulator was good enough on math",
    ("arith-chat", "naive", "base"): "as for naive > static: the naive simulator teaches answering first, and the real users do not give "
    "the numbers unasked",
    ("arith-chat", "oracle", "static"): "the Oracle leads Static in every seed, but by less than training either again moves it: "
    "the nested interval reaches below zero; three seeds cannot settle it, the registered confirmatory study is built to",
    ("arith-chat", "calibrated", "static"): "whether Calibrated leads on arith-chat depends on which calibration and which seeds are "
    "drawn — on what calibration leaves; `calirl diagnose` trains against the calibrated simulator corrected where its gap is "
    "and says which of its errors cost the policy (results/diagnosis/)",
}
"""Where the toy world disagrees with the paper's ordering (task, higher, lower in the paper), or does not show it —
why we think so. Written from the measured table (``results/paper.md``)."""


def paper_markdown(summary: dict[str, Any]) -> str:
    """The paper's table beside the toy's, row by row, and every ordering of the paper's rows judged in the toy
    (as the claims are: interval and seeds), with the reason where the toy disagrees."""
    tasks = [t for t in summary["tasks"] if t in PAPER]
    lines = ["| method | " + " | ".join(f"paper {PAPER[t][0]} ({PAPER[t][1]}) | toy {t}" for t in tasks) + " |",
             "|---|" + "---|---|" * len(tasks)]
    for m, label in METHOD_LABELS.items():
        cells = []
        for t in tasks:
            paper, toy = PAPER[t][2].get(m), summary["tasks"][t]["methods"].get(m)
            cells += [f"{paper:.1f}" if paper is not None else "—", f"{100 * toy['mean']:.1f}" if toy else "—"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Every ordering of the paper's rows, judged in the toy world as the claims are (toy scores × 100 above):", "",
              "| paper task | paper's ordering | toy difference [95 % nested interval] | Holm p | goal-only interval | seeds agree | toy | why, where it disagrees |",
              "|---|---|---|---|---|---|---|---|"]
    for t in tasks:
        for c in summary["tasks"][t]["paper_orderings"]:
            a, _, b = c["claim"].split()
            paper = PAPER[t][2]
            agrees = "agrees" if c["holds"] else ("reversed" if c.get("judged") and c["high"] < 0 and 3 * (c["seeds"] - c["seeds_agree"]) >= 2 * c["seeds"]
                                                  else "not shown")
            lines.append(f"| {PAPER[t][0]} | {c['claim']} ({paper[a]:.1f} vs {paper[b]:.1f}) | {_interval(c).rsplit(' | ', 1)[0]} | {agrees} | "
                         f"{REASONS.get((t, a, b), '') if agrees != 'agrees' else ''} |")
    return "\n".join(lines) + "\n"


def table_markdown(summary: dict[str, Any]) -> str:
    """The paper's table for the toy world (``results/table.md``), a column for what each policy's training user
    made of it, and every qualitative claim judged (difference, interval, seeds that agree, verdict)."""
    lines = [f"Scores with the real users on held-out goals, mean ± std over seeds {', '.join(map(str, summary['seeds']))} "
             f"(per-seed values in brackets); in italics, the mean its own training user gave it.", "",
             "| method | " + " | ".join(f"{t} ({d['metric']})" for t, d in summary["tasks"].items()) + " |",
             "|---|" + "---|" * len(summary["tasks"])]
    for m, label in METHOD_LABELS.items():
        cells = []
        for d in summary["tasks"].values():
            x = d["methods"].get(m)
            cell = f"{x['mean']:.3f} ± {x['std']:.3f} [{', '.join(f'{v:.3f}' for v in x['per_seed'].values())}]" if x else "—"
            cells.append(cell + (f" · *{x['with_training_user_mean']:.3f}*" if x and "with_training_user_mean" in x else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "The paper's qualitative results: the mean difference over (seed, goal) pairs with its 95 % nested bootstrap "
              "interval (training seeds resampled, then goals: the uncertainty of training the method again, not only of "
              "scoring these policies), its one-sided p-value Holm-adjusted across the table's claims, the goal-only paired "
              "interval (conditional on these trained policies: narrower, and not a claim about the method), and how many "
              "seeds agree. A claim *holds* when the nested interval excludes 0 in the claimed direction, the Holm-adjusted "
              f"p-value is ≤ {FAMILY_ALPHA} and at least 2 of 3 seeds agree; otherwise it is *not shown*.", "",
              "| task | claim | difference [95 % nested interval] | Holm p | goal-only interval | seeds agree | verdict |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {t} | {c['claim']} | {_interval(c)} |" for t, d in summary["tasks"].items() for c in d["claims"]]
    if "seconds" in summary:
        reused = summary.get("reused_runs", 0)
        lines += ["", f"Measured: this `calirl reproduce` took {summary['seconds'] / 60:.1f} min ({summary['workers']} worker processes"
                  + (f"; {reused} of {len(summary.get('runs', {}))} training runs had finished before and were reused)." if reused else ").")]
    return "\n".join(lines) + "\n"
