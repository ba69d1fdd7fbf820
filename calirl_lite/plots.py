"""Figures of the notebooks. Each function reads results (dicts written by a run) and draws;
none of them computes anything a test could not check on the result itself.

Every function returns the matplotlib ``Figure``; pass ``path=`` to also save it (atomically).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import matplotlib

if not os.environ.get("MPLBACKEND") and "ipykernel" not in __import__("sys").modules:
    matplotlib.use("Agg")  # scripts and tests: no display needed

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from .io import save_figure
from .results import METHOD_LABELS, RunResult

COLORS = {
    "static": "tab:red",
    "interactive": "tab:blue",
    "simulator": "tab:orange",
    "simulator_calibrated": "tab:green",
}
LABELS = {
    "static": "static context",
    "interactive": "interactive (on-policy)",
    "simulator": "naive simulator",
    "simulator_calibrated": "calibrated simulator",
}


def close_figure(fig: Any) -> None:
    """Close a figure that was only saved, so that a notebook does not also show it."""
    plt.close(fig)


def _finish(fig: Any, path: str | os.PathLike | None) -> Any:
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_shift(result: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """Gap and bound against horizon H, log–log: policy-induced shift left, simulator-induced right."""
    rows = result["per_horizon"]
    H = np.array([r["H"] for r in rows], dtype=float)
    slopes = result.get("slopes", {})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    panels = (
        (axes[0], ("static", "interactive"), f"policy-induced shift, ε = {rows[0]['eps']:.3g}"),
        (axes[1], ("simulator", "simulator_calibrated"), f"simulator-induced shift, δ = {rows[0]['delta']:.3g} → {rows[0]['delta_calibrated']:.3g}"),
    )
    for ax, keys, title in panels:
        for key in keys:
            gap = np.array([r[f"gap_{key}"] for r in rows])
            bound = np.array([r[f"bound_{key}"] for r in rows])
            slope = slopes.get(key)
            label = LABELS[key] + (f" (slope {slope:.2f})" if slope is not None and np.isfinite(slope) else "")
            keep = gap > 0
            ax.plot(H[keep], gap[keep], "o-", color=COLORS[key], label=label)
            ax.plot(H[bound > 0], bound[bound > 0], "--" if key in ("static", "simulator") else ":", lw=2, color=COLORS[key], alpha=0.6, label=f"bound, {LABELS[key]}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(H, [f"{h:g}" for h in H])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("horizon H (assistant turns)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("performance gap  J(π*) − J(π)")
    fig.tight_layout()
    return _finish(fig, path)


def plot_bound_scatter(cases: Sequence[dict[str, float]], path: str | os.PathLike | None = None) -> Any:
    """Measured gap against its bound on random MDPs: every point must lie on or below the diagonal."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    lo, hi = np.inf, 0.0
    for key, marker in (("static", "o"), ("interactive", "s"), ("simulator", "^")):
        gap = np.array([c[f"gap_{key}"] for c in cases])
        bound = np.array([c[f"bound_{key}"] for c in cases])
        keep = (gap > 1e-9) & (bound > 0)
        if keep.any():
            ax.scatter(bound[keep], gap[keep], s=14, marker=marker, alpha=0.6, color=COLORS[key], label=f"{LABELS[key]} ({keep.sum()} with gap > 0)")
            lo, hi = min(lo, gap[keep].min(), bound[keep].min()), max(hi, bound[keep].max())
    if hi > 0:
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="gap = bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bound  R_max Σ (H − i) ε_i")
    ax.set_ylabel("measured gap")
    ax.set_title(f"{len(cases)} random MDPs: all points below the diagonal", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


def plot_monte_carlo(study: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """Monte Carlo estimates of a gap (± 2 standard errors) against the number of episodes, beside the exact value."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n = np.array(study["n_episodes"], dtype=float)
    est, se = np.array(study["estimate"]), np.array(study["stderr"])
    ax.errorbar(n, est, yerr=2 * se, fmt="o", capsize=3, label="Monte Carlo ± 2 s.e.")
    ax.axhline(study["exact"], color="k", ls="--", label=f"exact = {study['exact']:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("episodes sampled per policy")
    ax.set_ylabel(study.get("label", "gap"))
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


def plot_behaviour(report: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """Users' behaviour statistics side by side, one panel per task (rates as bars, words per turn on the right)."""
    tasks = list(report)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 3.8), squeeze=False)
    rates = ("unprompted_reveal_rate", "accept_wrong_rate", "point_out_rate", "quit_on_question_rate", "termination_rate")
    for ax, task in zip(axes[0], tasks):
        users = list(report[task])
        width = 0.8 / len(users)
        x = np.arange(len(rates) + 1)
        for k, user in enumerate(users):
            s = report[task][user]["stats"]
            vals = [s[r] for r in rates] + [s["mean_user_words"] / 20]
            ax.bar(x + k * width, vals, width, label=user, color=USER_COLORS.get(user))
        ax.set_xticks(x + width * (len(users) - 1) / 2, ["unprompted\nreveal", "accept\nwrong", "points\nout", "quits on a\nquestion", "terminates", "words/turn\n(÷20)"], fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(task, fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


USER_COLORS = {"real": "tab:blue", "naive": "tab:orange", "calibrated": "tab:green", "oracle": "tab:purple"}


def plot_sft_loss(logs: dict[str, list[dict[str, float]]], path: str | os.PathLike | None = None) -> Any:
    """SFT training loss (on the users' tokens) against the step, one line per run."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, log in logs.items():
        ax.plot([h["step"] for h in log], [h["loss"] for h in log], "o-", ms=3, label=name)
    ax.set_xlabel("SFT step")
    ax.set_ylabel("loss on user tokens")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def plot_gap(reports: dict[str, dict[str, Any]], path: str | os.PathLike | None = None) -> Any:
    """Naive vs calibrated simulator on every gap metric (NLL of real-user turns, TV per behaviour statistic), per task."""
    tasks = list(reports)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rep = reports[task]
        metrics = ["nll"] + [f"tv:{k}" for k in rep["naive"].get("tv_to_real", {})]
        x = np.arange(len(metrics))
        for k, who in enumerate(("naive", "calibrated")):
            values = [rep[who]["nll"] if m == "nll" else rep[who]["tv_to_real"][m[3:]] for m in metrics]
            ax.bar(x + 0.4 * k, values, 0.4, label=who, color=USER_COLORS[who])
        ax.set_xticks(x + 0.2, ["NLL real\nuser turns"] + [m[3:].replace("_", "\n") for m in metrics[1:]], fontsize=7)
        ax.set_title(f"{task}: lower is closer to the real users", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


def plot_exact_gap(gaps: dict[str, dict[str, Any]], top: int = 5, path: str | os.PathLike | None = None) -> Any:
    """The exact per-turn gap of each simulator (``{label: exact_gap(...)}``): ε_t per user turn as stacked bars, split
    into the ``top`` reply categories that carry most of it (the rest together), with each turn's 95 % interval."""
    fig, axes = plt.subplots(1, len(gaps), figsize=(5.5 * len(gaps), 3.8), squeeze=False)
    for ax, (label, gap) in zip(axes[0], gaps.items()):
        turns = np.arange(len(gap["eps"]))
        cats = sorted(gap["by_category"], key=lambda c: -sum(gap["by_category"][c]))
        bottom = np.zeros(len(turns))
        rest = np.asarray(gap["eps"], float) - sum((np.asarray(gap["by_category"][c], float) for c in cats[:top]), np.zeros(len(turns)))
        for c, values in [*((c, gap["by_category"][c]) for c in cats[:top]), ("everything else", rest)]:
            v = np.clip(np.asarray(values, float), 0, None)
            if v.sum() > 1e-6:
                ax.bar(turns, v, 0.7, bottom=bottom, label=c)
                bottom += v
        ax.errorbar(turns, gap["eps"], yerr=gap["eps_error"], fmt="none", color="black", capsize=3, lw=1)
        ax.set_title(f"{label}: Σ_t ε_t = {gap['total']:.2f} ± {gap['total_error']:.2f}", fontsize=10)
        ax.set_xlabel("user turn t")
        ax.set_ylabel("ε_t (TV of the whole reply)")
        ax.legend(fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


METHOD_COLORS = {"base": "tab:gray", "static": "tab:red", "naive": "tab:orange", "calibrated": "tab:green", "oracle": "tab:purple"}


def reward_points(log: Sequence[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """(steps, mean reward) from a TRL log history (the entries that carry ``reward``)."""
    rows = [h for h in log if "reward" in h]
    return [int(h["step"]) for h in rows], [float(h["reward"]) for h in rows]


def plot_reward_curves(curves: dict[str, Sequence[dict[str, Any]]], metric: str, title: str = "", ax: Any = None,
                       path: str | os.PathLike | None = None) -> Any:
    """Training reward (against each method's own training user) per GRPO step, one line per run;
    a faint line is the raw step mean, the bold one its running mean over 5 steps."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, log in curves.items():
        steps, rewards = reward_points(log)
        if not steps:
            continue
        color = METHOD_COLORS.get(name.split()[0])
        ax.plot(steps, rewards, color=color, alpha=0.3, lw=1)
        smooth = np.convolve(rewards, np.ones(5) / 5, mode="valid") if len(rewards) >= 5 else np.array(rewards)
        ax.plot(steps[len(steps) - len(smooth):], smooth, color=color, lw=2, label=name)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel(f"reward ({metric}) from the training user")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if fig is None:
        return ax.figure
    fig.tight_layout()
    return _finish(fig, path)


def reward_curve(log: Sequence[dict[str, Any]], metric: str, title: str, path: str | os.PathLike) -> None:
    """Save one run's reward curve (and close it)."""
    close_figure(plot_reward_curves({"reward": log}, metric, title, path=path))


def plot_sim_vs_real(results: Sequence[RunResult], path: str | os.PathLike | None = None) -> Any:
    """Per task, each trained policy's score from its training user next to its score from the real users
    (mean over seeds, a dot per seed); the base policy with the real users first. Where the left bar of a
    pair stands far above the right one, the policy learned to please its simulator."""
    tasks = sorted({r.task for r in results})
    methods = [m for m in METHOD_LABELS if m != "base" and any(r.method == m for r in results)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in results if r.task == task]
        metric = rows[0].metric
        base = list({r.seed: r.score("real", "base") for r in rows}.values())  # the same for every method of a seed
        bars = [("base", None, base)] + [
            (m, [r.score("simulator") for r in rows if r.method == m], [r.score("real") for r in rows if r.method == m])
            for m in methods]
        for k, (name, sim, real) in enumerate(bars):
            for j, values in enumerate((sim, real)):
                if values is None:
                    continue
                color = "tab:olive" if j == 0 else "tab:blue"
                label = ("with its training user" if j == 0 else "with the real users") if k == 1 else None
                x = k + 0.38 * j if sim is not None else k + 0.19  # a lone bar (base) sits on its tick
                ax.bar(x, np.mean(values), 0.38, color=color, alpha=0.85, label=label)
                ax.plot([x] * len(values), values, "k.", ms=4)
        ax.set_xticks(np.arange(len(bars)) + 0.19, [b[0] for b in bars])
        ax.set_ylabel(metric)
        ax.set_title(f"{task}: each policy scored by its training user and by real users", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def plot_gap_vs_drop(gap: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """The gap study (``calirl reproduce``'s ``gap_vs_drop.json``): per task, the drop |J_sim − J_real| of one policy
    against the exact gap Σ_t ε_t of the simulation lemma — a line per horizon for the graded simulators (mean over
    dialogue seeds, bars 95 % intervals of both), the LM simulators and the trained policies as markers (left) — and
    against the bound that fits the reward, R_max · min(1, Σ_t ε_t) (right, filled, with both sides' noise; the paper's
    per-turn-reward bound hollow, far to the right): every point must lie under the diagonal."""
    points, trained = gap["points"], gap.get("trained", [])
    tasks = sorted({p["task"] for p in points})
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 4.8 * len(tasks)), squeeze=False)
    for (left, right), task in zip(axes, tasks):
        ps = [p for p in points if p["task"] == task]
        horizons = sorted({p["horizon"] for p in ps})
        colors = dict(zip(horizons, plt.cm.viridis(np.linspace(0.1, 0.85, len(horizons)))))
        for H in horizons:
            part = sorted((p for p in ps if p["horizon"] == H and p["w"] is not None), key=lambda p: p["eps"])
            left.errorbar([p["eps"] for p in part], [p["drop"] for p in part], xerr=[p.get("eps_error", 0.0) for p in part],
                          yerr=[p.get("drop_error", 0.0) for p in part], fmt="o-", color=colors[H], ms=4, capsize=2, label=f"graded, H = {H}")
            for p in (p for p in ps if p["horizon"] == H and p["w"] is None):
                left.plot(p["eps"], p["drop"], "s" if p["simulator"] == "naive" else "D", color=colors[H], mec="k", ms=7)
        method_colors = {"static": "tab:orange", "naive": "tab:red", "calibrated": "tab:blue"}
        for p in (p for p in trained if p["task"] == task):
            left.plot(p["eps"], p["drop"], "*", color=method_colors.get(p["method"], "grey"), ms=10, mec="k")
        left.plot([], [], "s", color="grey", mec="k", label="naive LM simulator")
        left.plot([], [], "D", color="grey", mec="k", label="calibrated LM simulator")
        left.plot([], [], "*", color="grey", mec="k", ms=10, label="trained policies vs their simulator (static orange, naive red, calibrated blue)")
        left.set_xlabel("exact gap Σ_t ε_t (TV of the user's whole reply, summed over the user turns)")
        left.set_ylabel(f"drop |J_sim − J_real| ({ps[0]['metric']})")
        left.set_title(f"{task}: the drop grows with the gap?", fontsize=9)
        left.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        left.grid(True, alpha=0.3)
        for p in ps:
            b = max(p["bound_final"], 1e-3)
            right.errorbar(b, p["drop"], xerr=[[0.0], [max(0.0, p.get("bound_final_high", b) - b)]], yerr=p.get("drop_error", 0.0), fmt="o",
                           color=colors[p["horizon"]], ms=4, capsize=2, elinewidth=0.8)
            right.plot(max(p["bound_per_turn"], 1e-3), p["drop"], "o", mfc="none", color=colors[p["horizon"]], alpha=0.5)
        line = np.logspace(-3, np.log10(max([p["bound_per_turn"] for p in ps] + [1.0])), 200)
        right.plot(line, line, "k--", lw=1, label="bound = drop")
        right.plot([], [], "o", color="grey", label="R_max · min(1, Σ_t ε_t)  (final reward: fits the task)")
        right.plot([], [], "o", mfc="none", color="grey", label="R_max · Σ_t (H − t) ε_t  (a reward every turn)")
        right.set_xscale("log")
        right.set_ylim(0, max(1.0, max(p["drop"] for p in ps)) * 1.05)
        right.set_xlabel("bound")
        right.set_ylabel("drop")
        right.set_title(f"{task}: every point under the diagonal = the bound holds", fontsize=9)
        right.legend(fontsize=7)
        right.grid(True, alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


def plot_calibration_study(result: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """The calibration study (``calirl calibration-study``'s ``study.json``): per task, the validation gap Σ_t ε_t against
    the number of traces and of SFT steps (left; bars 95 % intervals, the naive simulator's gap dashed), and every
    setting's gap (right; the best and the chosen marked, grey: not within noise of the best)."""
    tasks = list(result["tasks"])
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    chosen = result["choice"]["point"]
    for (left, right), task in zip(axes, tasks):
        t = result["tasks"][task]
        for axis, key, color in (("traces", "n_traces", "tab:blue"), ("steps", "steps", "tab:orange")):
            rows = sorted((r["settings"][key], r["gap"], r["gap_error"]) for p, r in t["points"].items()
                          if p == "reference" or (p.startswith(axis + " ") and "·" not in p))
            if rows:
                x, y, e = zip(*rows)
                left.errorbar(x, y, yerr=e, fmt="o-", color=color, capsize=2, label=f"{axis} (the other budget at the reference)")
        left.axhline(t["naive_gap"], color="grey", ls="--", lw=1, label="naive simulator")
        left.set_xscale("log")
        left.set_xticks([150, 300, 600, 1200, 2400], ["150", "300", "600", "1,200", "2,400"])
        left.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        left.set_xlabel("traces, or SFT steps")
        left.set_ylabel("validation gap Σ_t ε_t")
        left.set_title(f"{task}: how much calibration is enough", fontsize=9)
        left.legend(fontsize=7)
        left.grid(True, alpha=0.3)
        names = list(t["points"])
        gaps = [t["points"][p]["gap"] for p in names]
        colors = ["tab:green" if p == chosen else "tab:blue" if t["points"][p]["within_noise"] else "lightgrey" for p in names]
        right.barh(range(len(names)), gaps, xerr=[t["points"][p]["gap_error"] for p in names], color=colors, capsize=2)
        right.set_yticks(range(len(names)), [p + (" (best)" if p == t["best"] else "") for p in names], fontsize=7)
        right.invert_yaxis()
        right.set_xlabel("validation gap Σ_t ε_t (green: chosen; grey: not within noise of the best)")
        right.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


def plot_lab(result: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """The mismatch lab (:mod:`calirl_lite.lab`): per task, the real users' score of the policy trained against each
    simulator, one bar per reward source (mean over seeds, a dot per seed), the base policy as a dashed line.
    A bar below the first group (the real users themselves, the Oracle) is what that error alone costs."""
    tasks = list(result["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.8 * len(tasks), 3.9), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = result["tasks"][task]
        rewards = list(dict.fromkeys(r["reward"] for r in t["rows"]))
        users = list(dict.fromkeys(r["simulator"] for r in t["rows"]))
        width = 0.8 / len(rewards)
        for j, reward in enumerate(rewards):
            for k, user in enumerate(users):
                row = next(r for r in t["rows"] if r["reward"] == reward and r["simulator"] == user)
                values = list(row["real"].values())
                x = k + (j - (len(rewards) - 1) / 2) * width
                ax.bar(x, np.mean(values), width, color=plt.cm.tab10(j), alpha=0.85, label=f"reward: {reward}" if k == 0 else None)
                ax.plot([x] * len(values), values, "k.", ms=4)
        ax.axhline(np.mean(list(t["base"].values())), color="gray", ls="--", lw=1, label="base policy")
        ax.set_xticks(range(len(users)), ["real users" if u == "real" else u for u in users], rotation=20, fontsize=8)
        ax.set_ylabel(f"{t['metric']} with the real users")
        ax.set_title(f"{task}: trained against each simulator, scored by the real users", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def draw_reward_pair(ax: Any, train: Sequence[Sequence[float]], real: Sequence[Sequence[float]], color: Any, name: str, reward: str, metric: str,
                     faint: bool = False) -> None:
    """One policy's training reward per step (solid) and its real users' score at the curve's points (dashed,
    dots) on ``ax``: ``train`` and ``real`` are ``[step, value]`` pairs."""
    alpha, width = (0.35, 1.2) if faint else (1.0, 2.0)
    if len(train):
        t = np.asarray(train, float)
        ax.plot(t[:, 0], t[:, 1], "-", color=color, lw=width, alpha=alpha, label=f"{name}: training reward ({reward})")
    if len(real):
        r = np.asarray(real, float)
        ax.plot(r[:, 0], r[:, 1], "--", color=color, lw=width, alpha=alpha, marker="o", ms=3, label=f"{name}: real users' {metric}")


def _mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """The pointwise mean of several ``[step, value]`` curves (over their common length)."""
    curves = [np.asarray(c, float) for c in curves if len(c)]
    if not curves:
        return []
    n = min(len(c) for c in curves)
    return np.column_stack([curves[0][:n, 0], np.mean([c[:n, 1] for c in curves], axis=0)]).tolist()


def plot_lab_curves(result: dict[str, Any], simulators: Sequence[str] = ("sycophantic", "real"), reward: str = "verdict",
                    path: str | os.PathLike | None = None) -> Any:
    """Reward hacking made visible: per task, the training reward (what the simulator says, per step) beside the
    real users' score of the same policy over training (mean over seeds), for the policy trained against
    ``simulators`` with ``reward``. Training reward up while the real score goes down is a hacked simulator."""
    tasks = list(result["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.4 * len(tasks), 3.7), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = result["tasks"][task]
        for k, user in enumerate(simulators):
            row = next((r for r in t["rows"] if r["reward"] == reward and r["simulator"].split(":")[0] == user), None)
            if row is not None:
                draw_reward_pair(ax, _mean_curve([c["train"] for c in row["curves"].values()]), _mean_curve([c["real"] for c in row["curves"].values()]),
                                 plt.cm.tab10(k + 3), "real users" if user == "real" else user, reward, t["metric"])
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("reward / score")
        ax.set_title(f"{task}: what the simulator pays vs what the real users get", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def plot_designs(designs: Sequence[dict[str, Any]], metric: str, path: str | os.PathLike | None = None) -> Any:
    """The simulator designer's runs, newest in bold: each its training reward and its real users' score over
    training (``designs``: dicts with ``name``, ``reward``, ``train``, ``real``)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, d in enumerate(designs):
        draw_reward_pair(ax, d["train"], d["real"], plt.cm.tab10(k % 10), d["name"], d["reward"], metric, faint=k < len(designs) - 1)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("reward / score")
    ax.set_title("your simulators: what each pays the policy, and what the real users get", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def plot_shift_over_time(result: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """Distribution shift step by step (:func:`calirl_lite.shift.shift_over_time`): left, TV(d_t, d̂_t) of each learner
    against its reference per step — policy-induced shift on top, simulator-induced below; right, each learner's
    state visitation d_t over time with the real user (log colour: the off-script states are rare, but they are where
    the learners' dialogues drift)."""
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.6), gridspec_kw={"width_ratios": [1.3, 1, 1]}, layout="constrained")
    steps = np.arange(result["H"])
    rows = ((("static", "interactive"), ("static", "interactive"), f"policy-induced, ε = {result['eps']:.3g}"),
            (("naive-trained", "calibrated-trained"), ("simulator", "simulator_calibrated"),
             f"simulator-induced, δ = {result['delta']:.3g} (naive) → {result['delta_calibrated']:.3g} (calibrated)"))
    for row, (names, colors, title) in enumerate(rows):
        ax = axes[row, 0]
        for name, color in zip(names, colors):
            ax.plot(steps, result["tv"][name], "o-", ms=3, color=COLORS[color], label=f"{name} vs {result['reference'][name]}")
        ax.set_xlabel("step t")
        ax.set_ylabel("TV(d_t, d̂_t)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        for col, name in enumerate(names, start=1):
            d = np.maximum(np.asarray(result["d"][name]).T, 1e-6)
            image = axes[row, col].imshow(d, aspect="auto", cmap="viridis", norm=LogNorm(vmin=1e-6, vmax=1), origin="upper", interpolation="nearest")
            axes[row, col].set_yticks(range(len(result["states"])), result["states"] if col == 1 else [], fontsize=7)
            axes[row, col].set_xlabel("step t")
            axes[row, col].set_title(f"{name}: where its dialogues are", fontsize=9)
    fig.colorbar(image, ax=axes[:, 1:], shrink=0.8, label="d_t(state), log scale")
    return _finish(fig, path)


def plot_turn_profiles(profiles: dict[str, dict[str, Any]], turn: int, path: str | os.PathLike | None = None) -> Any:
    """Dialogues turn by turn (:func:`calirl_lite.stats.turn_profile`, one per set of dialogues): how many are still
    going at each turn (the selected one marked), and at turn ``turn`` the share of contexts that already state each
    hidden detail, the policy's action mix and the mix of the users' replies — one bar per set."""
    names = list(profiles)
    first = profiles[names[0]]
    acts = {key: list(first["turns"][0][key]) for key in ("policy", "user")}  # the profile's own order
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]}, layout="constrained")
    for k, name in enumerate(names):
        alive = [t["alive"] for t in profiles[name]["turns"]]
        axes[0].plot(range(len(alive)), alive, "o-", ms=3, color=plt.cm.tab10(k), label=name)
    axes[0].axvline(turn, color="k", lw=1, ls=":")
    axes[0].set_xlabel("assistant turn")
    axes[0].set_ylabel("share of dialogues still going")
    axes[0].legend(fontsize=7)
    panels = ((axes[1], "knows", first["slots"], "context already states …"), (axes[2], "policy", acts["policy"], "the policy's turn"),
              (axes[3], "user", acts["user"], "the user's reply"))
    width = 0.8 / len(names)
    for ax, key, keys, title in panels:
        for k, name in enumerate(names):
            shares = profiles[name]["turns"][turn][key] if turn < len(profiles[name]["turns"]) else {}
            ax.bar(np.arange(len(keys)) + (k - (len(names) - 1) / 2) * width, [np.nan_to_num(shares.get(x, 0.0)) for x in keys], width,
                   color=plt.cm.tab10(k), label=name if key == "knows" else None)
        ax.set_xticks(range(len(keys)), keys, rotation=20, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(f"turn {turn}: {title}", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{first['task']}, turn by turn", fontsize=10)
    return _finish(fig, path)


def plot_study_curves(curves: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """Learning curves with the real users: per task, each method's real-user score over GRPO steps (bold: the mean
    over training seeds; faint: each seed), the training budget of the table marked. ``curves``: the confirmatory
    study's summary (:func:`calirl_lite.confirm.summarise_curves`) or one of that shape."""
    tasks = curves["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.2 * len(tasks), 3.8), squeeze=False)
    for ax, (task, t) in zip(axes[0], tasks.items()):
        for method, m in t["methods"].items():
            color = METHOD_COLORS.get(method)
            for points in m["seeds"].values():
                p = np.asarray(points, float)
                ax.plot(p[:, 0], p[:, 1], color=color, lw=0.8, alpha=0.3)
            ax.plot(m["steps"], m["mean"], color=color, lw=2.2, marker="o", ms=3, label=METHOD_LABELS.get(method, method))
        ax.axvline(curves["budget"], color="0.4", ls=":", lw=1)
        ax.text(curves["budget"], ax.get_ylim()[0], " the table's budget", fontsize=7, color="0.4", va="bottom")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel(f"{t['metric']} with the real users")
        ax.set_title(f"{task}: the real users' score as each method trains", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)
