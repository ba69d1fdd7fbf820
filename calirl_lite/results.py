"""What training and evaluation leave behind, typed: one run's result, one evaluation's, and the paper's table.

* :class:`RunResult` — ``eval.json`` of a ``calirl train`` run: the base and the trained policy, each scored by
  the run's training user and by the real users on held-out goals.
* :class:`EvalResult` — ``calirl evaluate``: one policy with one user, per seed, with mean and std.
* :data:`METHOD_LABELS` — the one name of each row of the table (Base and the four ways to train), in table order.
* :func:`summarise` and :func:`table_markdown` — the paper's table from any set of run results, with its
  qualitative claims checked on the means (``calirl reproduce`` writes it; notebooks 04 and 05 show it).

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

CLAIMS = (("oracle", ">", "static"), ("calibrated", ">", "static"), ("static", ">", "base"), ("naive", "<", "calibrated"))
"""The paper's qualitative results (DESIGN.md), checked on both tasks; on docedit-chat also naive < base."""
TASK_CLAIMS = {"docedit-chat": (("naive", "<", "base"),)}

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
    method with its own training user); and the paper's claims checked on the means."""
    import numpy as np

    tasks: dict[str, Any] = {}
    for task in sorted({r.task for r in results}):
        rows = [r for r in results if r.task == task]
        per: dict[str, dict[int, float]] = {"base": {r.seed: r.score("real", "base") for r in rows}}
        sim: dict[str, dict[int, float]] = {}
        for r in rows:
            per.setdefault(r.method, {})[r.seed] = r.score("real")
            sim.setdefault(r.method, {})[r.seed] = r.score("simulator")
        methods = {}
        for name in METHOD_LABELS:
            if name not in per:
                continue
            v = [per[name][s] for s in sorted(per[name])]
            methods[name] = {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_seed": {str(s): per[name][s] for s in sorted(per[name])}}
            if name in sim:
                methods[name]["with_training_user_mean"] = float(np.mean(list(sim[name].values())))
        claims = []
        for a, op, b in CLAIMS + TASK_CLAIMS.get(task, ()):
            if a in methods and b in methods:
                x, y = methods[a]["mean"], methods[b]["mean"]
                claims.append({"claim": f"{a} {op} {b}", "holds": bool(x > y if op == ">" else x < y), "left": x, "right": y})
        tasks[task] = {"metric": rows[0].metric, "methods": methods, "claims": claims}
    return {"seeds": list(seeds), "tasks": tasks}


def table_markdown(summary: dict[str, Any]) -> str:
    """The paper's table for the toy world (``results/table.md``), a column for what each policy's training user
    made of it, and the qualitative claims checked."""
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
    lines += ["", "The paper's qualitative results, checked on the means:", ""]
    for t, d in summary["tasks"].items():
        for c in d["claims"]:
            lines.append(f"- {t}: {c['claim']} — {'holds' if c['holds'] else 'does NOT hold'} ({c['left']:.3f} vs {c['right']:.3f})")
    if "seconds" in summary:
        reused = summary.get("reused_runs", 0)
        lines += ["", f"Measured: this `calirl reproduce` took {summary['seconds'] / 60:.1f} min ({summary['workers']} worker processes"
                  + (f"; {reused} of {len(summary.get('runs', {}))} training runs had finished before and were reused)." if reused else ").")]
    return "\n".join(lines) + "\n"
