"""The main job: the paper's table in the toy world, from nothing, in one command.

``calirl reproduce --profile tiny --seeds 0 1 2`` (``make reproduce``) runs every stage, reusing any
that has finished before:

1. **world** — builds the toy world (tasks, corpus, tokenizer, tiny LM), or loads it from the cache;
2. **calibration** — per task, logs the base policy with the real users and LoRA-SFTs the simulator
   on those traces (``calirl calibrate``; one calibrated simulator, calibration seed 0, serves every seed);
3. **training** — Static, Naive, Calibrated and Oracle on both tasks for every seed, one code path and
   one budget (``calirl train``), each evaluated with the real users on held-out goals next to Base;
4. **gap versus drop** — one policy (the base policy) scored by simulators of graded quality and by the
   real users at several horizons: the drop |J_sim − J_real| against the measured per-turn behaviour gap ε
   and against notebook 01's bound R_max · Σ_i (H − i) · ε;
5. **table and figures** — ``results/table.md``, ``results/table.json`` (per task and method: mean, std,
   per-seed values, and whether each of the paper's qualitative claims holds), ``results/table.png``,
   ``results/gap_vs_drop.json`` and ``results/gap_vs_drop.png``.

Runs of stages 2–4 go to a pool of worker processes, one per CPU core with one thread each (the tiny
models spend their time in Python, not in arithmetic, so two single-threaded runs go twice as fast as
one two-threaded run). The elapsed time is printed at the end and kept in ``table.json``.

``calirl notebooks`` (:func:`run_notebooks`) executes the numbered notebooks top to bottom instead.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .io import atomic_write_json, atomic_write_text, json_safe
from .paths import project_root, results_dir
from .settings import Settings
from .tasks import TASKS

TASK_NAMES = tuple(TASKS)
"""The toy world's tasks, each with its own calibrated simulator and its column in the table."""

CLAIMS = (
    ("oracle", ">", "static"), ("calibrated", ">", "static"), ("static", ">", "base"),
    ("naive", "<", "calibrated"),
)
"""The paper's qualitative results (DESIGN.md), checked on both tasks; on docedit-chat also naive < base."""
DOCEDIT_CLAIMS = (("naive", "<", "base"),)


@dataclass
class ReproduceConfig(Settings):
    """Settings of the whole reproduction (``calirl reproduce``). Training settings are ``calirl train``'s defaults."""

    profile: str = "tiny"
    """model profile (only 'tiny' runs on a CPU in minutes)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds of every method (the paper: 3 runs)"""
    workers: int = 0
    """processes running stages side by side (0: one per CPU core)"""
    gap_mixes: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """graded simulators of the gap study: how far each moves from the real users toward the forthcoming corpus user"""
    gap_horizons: tuple[int, ...] = (2, 4, 8, 14)
    """message budgets of the gap study"""
    gap_goals: int = 100
    """held-out goals per point of the gap study"""
    gap_seed: int = 0
    """seed of the gap study's dialogues"""

    SMOKE = {"seeds": (0,), "gap_mixes": (0.0, 1.0), "gap_horizons": (2, 6), "gap_goals": 8}
    BOUNDS = {"gap_mixes": (0, 1), "gap_horizons": (2, None), "gap_goals": (1, None)}

    def __post_init__(self) -> None:
        from .profiles import get_profile

        super().__post_init__()
        get_profile(self.profile)
        if self.profile != "tiny":
            raise ValueError(f"calirl reproduce runs the toy world of the 'tiny' profile; got profile {self.profile!r}")
        if not self.seeds:
            raise ValueError("seeds must name at least one training seed")

    def n_workers(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 4))


# ----------------------------------------------------------------------------- jobs (run in worker processes)


def _worker_start(parent: int) -> None:
    """A worker runs one torch thread, and leaves as soon as the process that started it is gone (killed, or
    interrupted with Ctrl-C) instead of training on for nobody; finished runs are on disk, unfinished ones resume."""
    import threading
    import time

    import torch

    torch.set_num_threads(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def calibration_job(profile: str, task: str) -> dict[str, Any]:
    """Calibrate the simulator of ``task`` (reused when finished); returns gap.json's contents."""
    from .calibration import CalibrationConfig, calibrate

    cfg = CalibrationConfig.make(profile=profile, task=task, seed=0)
    done = cfg.folder() / "gap.json"
    if done.is_file() and (cfg.folder() / "adapter" / "adapter_config.json").is_file():
        return json.loads(done.read_text())
    return calibrate(cfg)


def train_job(profile: str, method: str, task: str, seed: int) -> dict[str, Any]:
    """Train one method on one task with one seed (reused when finished); returns eval.json's contents."""
    from .train import TrainConfig, train

    return train(TrainConfig.make(profile=profile, method=method, task=task, seed=seed), progress=False)


def gap_job(profile: str, task: str, w: float, horizons: Sequence[int], n_goals: int, seed: int) -> list[dict[str, Any]]:
    """The base policy with the graded simulator ``w`` and with the real users, at each horizon: scores, the
    behaviour gap ε between the two users (per user turn), and the bound R_max · Σ_i (H − i) · ε. Kept under
    ``runs/gap-study/`` and reused."""
    import numpy as np

    from .dialogue import read_jsonl, write_jsonl
    from .evaluate import evaluate_policy
    from .paths import runs_dir
    from .profiles import get_profile
    from .rollout import base_policy, mean_scores
    from .settings import short_hash
    from .shift import compounding_bound
    from .stats import PER_TURN_STATS, behaviour_tv
    from .tasks import get_task, graded_persona
    from .users import ScriptedUsers
    from .world import WorldConfig, build_world

    world = build_world(WorldConfig.make(), verbose=False)
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


def _named(e: Exception, what: str) -> Exception:
    """``e`` with the failed run named; ValueError and FileNotFoundError keep their type (the CLI prints them in one line)."""
    kind = type(e) if isinstance(e, (ValueError, FileNotFoundError)) else RuntimeError
    return kind(f"{what}: {e}")


def run_pool(jobs: Sequence[tuple[str, Callable[..., Any], tuple]], workers: int, desc: str) -> dict[str, Any]:
    """Run ``(name, function, args)`` jobs in ``workers`` single-threaded processes (in this process if 1), with a
    progress bar; returns name → result. A failed job stops the stage with its name in the error."""
    from tqdm.auto import tqdm

    out: dict[str, Any] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit="run")
    if workers <= 1:
        for name, fn, args in jobs:
            bar.set_postfix_str(name)
            try:
                out[name] = fn(*args)
            except Exception as e:  # noqa: BLE001 - re-raised with the run's name
                raise _named(e, f"{desc}: {name} failed") from e
            bar.update()
        bar.close()
        return out
    import multiprocessing as mp

    quiet = {"OMP_NUM_THREADS": "1",  # inherited by the spawned workers before they import torch
             "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "TRL_EXPERIMENTAL_SILENCE": "1"}  # one bar, here
    old = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_start, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(fn, *args): name for name, fn, args in jobs}
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    out[name] = fut.result()
                except Exception as e:  # noqa: BLE001 - re-raised with the run's name
                    for f in futures:
                        f.cancel()
                    raise _named(e, f"{desc}: {name} failed") from e
                bar.set_postfix_str(name)
                bar.update()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bar.close()
    return out


# ----------------------------------------------------------------------------- the table


def summarise(results: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Per task, Base and every method with the real users: mean, std and per-seed values; and the claims."""
    import numpy as np

    from .train import METHODS

    tasks: dict[str, Any] = {}
    for task in sorted({r["task"] for r in results}):
        rows = [r for r in results if r["task"] == task]
        metric = rows[0]["metric"]
        per: dict[str, dict[int, float]] = {"base": {r["seed"]: r["base"]["real"][metric] for r in rows}}
        sim: dict[str, dict[int, float]] = {}
        for r in rows:
            per.setdefault(r["method"], {})[r["seed"]] = r["trained"]["real"][metric]
            sim.setdefault(r["method"], {})[r["seed"]] = r["trained"]["simulator"][metric]
        methods = {}
        for name in ("base", *METHODS):
            if name not in per:
                continue
            v = [per[name][s] for s in sorted(per[name])]
            methods[name] = {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_seed": {str(s): per[name][s] for s in sorted(per[name])}}
            if name in sim:
                methods[name]["with_training_user_mean"] = float(np.mean(list(sim[name].values())))
        claims = []
        for a, op, b in CLAIMS + (DOCEDIT_CLAIMS if task == "docedit-chat" else ()):
            if a in methods and b in methods:
                x, y = methods[a]["mean"], methods[b]["mean"]
                claims.append({"claim": f"{a} {op} {b}", "holds": bool(x > y if op == ">" else x < y), "left": x, "right": y})
        tasks[task] = {"metric": metric, "methods": methods, "claims": claims}
    return {"seeds": list(seeds), "tasks": tasks}


def table_markdown(summary: dict[str, Any]) -> str:
    """``results/table.md``: the paper's table for the toy world, and its qualitative claims checked."""
    lines = [f"Scores with the real users on held-out goals, mean ± std over seeds {', '.join(map(str, summary['seeds']))} "
             f"(per-seed values in brackets).", "",
             "| method | " + " | ".join(f"{t} ({d['metric']})" for t, d in summary["tasks"].items()) + " |",
             "|---|" + "---|" * len(summary["tasks"])]
    names = {"base": "Base", "static": "Static Context RL", "naive": "Naive Interactive RL", "calibrated": "Calibrated Interactive RL", "oracle": "Oracle"}
    for m, label in names.items():
        cells = []
        for d in summary["tasks"].values():
            x = d["methods"].get(m)
            cells.append(f"{x['mean']:.3f} ± {x['std']:.3f} [{', '.join(f'{v:.3f}' for v in x['per_seed'].values())}]" if x else "—")
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


# ----------------------------------------------------------------------------- the whole job


def reproduce(cfg: ReproduceConfig | None = None, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every stage (reusing finished ones) and write the table and figures; returns table.json's contents."""
    from .plots import close_figure, plot_gap_vs_drop, plot_sim_vs_real
    from .train import METHODS, finished_results
    from .world import WorldConfig, build_world

    cfg = cfg or ReproduceConfig.make()
    start = time.perf_counter()
    base = Path(out) if out else results_dir()
    base.mkdir(parents=True, exist_ok=True)
    workers = cfg.n_workers()

    def stage(name: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {name}", flush=True)

    stage("1/5 world: build or load the toy world")
    build_world(WorldConfig.make())
    stage("2/5 calibration: traces of the base policy with the real users, LoRA-SFT of the simulator, per task")
    run_pool([(t, calibration_job, (cfg.profile, t)) for t in TASK_NAMES], min(workers, len(TASK_NAMES)), "calibrate")
    stage(f"3/5 training: {len(METHODS)} methods × {len(TASK_NAMES)} tasks × {len(cfg.seeds)} seeds, then evaluation with the real users")
    # longest runs first (docedit dialogues are longer; LM users are slower than scripted ones), so the pool ends together
    order = {"calibrated": 0, "static": 1, "naive": 2, "oracle": 3}
    jobs = sorted(((f"{m} · {t} · seed {s}", train_job, (cfg.profile, m, t, s)) for m in METHODS for t in TASK_NAMES for s in cfg.seeds),
                  key=lambda j: (j[2][2] != "docedit-chat", order[j[2][1]], j[2][3]))
    reused = len(finished_results(METHODS, TASK_NAMES, cfg.seeds, profile=cfg.profile))
    results = list(run_pool(jobs, workers, "train").values())
    stage("4/5 gap versus drop: the base policy with graded simulators and with the real users, at several horizons")
    gap_jobs = [(f"{t} · w={w:g}", gap_job, (cfg.profile, t, w, cfg.gap_horizons, cfg.gap_goals, cfg.gap_seed)) for t in TASK_NAMES for w in cfg.gap_mixes]
    gap_rows = [row for rows in run_pool(gap_jobs, workers, "gap study").values() for row in rows]
    gap_rows.sort(key=lambda r: (r["task"], r["w"], r["horizon"]))
    stage("5/5 table and figures")
    summary = summarise(results, cfg.seeds)
    summary.update(profile=cfg.profile, workers=workers, seconds=time.perf_counter() - start, settings=cfg.to_dict(), reused_runs=reused,
                   runs={r["method"] + "/" + r["task"] + "/" + str(r["seed"]): r["run"] for r in results})
    close_figure(plot_sim_vs_real(results, base / "table.png"))
    atomic_write_json(base / "gap_vs_drop.json", json_safe({"rows": gap_rows, "trends": gap_trends(gap_rows)}))
    close_figure(plot_gap_vs_drop(gap_rows, base / "gap_vs_drop.png"))
    summary["seconds"] = time.perf_counter() - start
    atomic_write_json(base / "table.json", json_safe(summary))
    atomic_write_text(base / "table.md", table_markdown(summary))
    print(table_markdown(summary))
    print(format_trends(gap_trends(gap_rows)))
    print(f"wrote {base / 'table.md'}, table.json, table.png, gap_vs_drop.json, gap_vs_drop.png")
    print(f"calirl reproduce took {summary['seconds']:.0f} s ({summary['seconds'] / 60:.1f} min) with {workers} worker processes"
          + (f"; {reused} of {len(jobs)} training runs were reused" if reused else ""))
    return summary


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


# ----------------------------------------------------------------------------- notebooks


def notebook_paths(root: Path | None = None) -> list[Path]:
    """The numbered notebooks under ``notebooks/``, in order."""
    folder = (root or project_root()) / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return paths


def run_notebook(path: Path, out_dir: Path, timeout: int = 3600) -> Path:
    """Execute one notebook in a fresh kernel, in its own folder; write the executed copy to ``out_dir``."""
    from .profiles import require

    require("nbclient", 'pip install "calirl-lite[notebooks]"')
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return atomic_write_text(out_dir / path.name, nbformat.writes(nb))


def run_notebooks(notebooks: Sequence[str] | None = None, out: str | None = None) -> Path:
    """Run the given notebooks (default: all, in order) with results going to ``out``; the executed copies
    (with outputs) go to ``results/notebooks/`` and the copies in ``notebooks/`` stay clean."""
    from tqdm.auto import tqdm

    if out:
        os.environ["CALIRL_RESULTS"] = str(Path(out).resolve())  # the kernels inherit it
    base = results_dir()
    os.environ["CALIRL_RESULTS"] = str(base.resolve())
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"notebook {p} does not exist")
    bar = tqdm(paths, desc="notebooks", unit="nb")
    for p in bar:
        bar.set_postfix_str(p.name)
        start = time.perf_counter()
        written = run_notebook(p.resolve(), base / "notebooks")
        tqdm.write(f"{p.name}: {time.perf_counter() - start:.1f} s → {written}")
    return base
