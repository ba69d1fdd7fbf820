"""The mismatch lab: which simulator errors compound into a bad policy, and which do not.

The paper names one failure of uncalibrated simulators — sycophancy — but cannot vary a simulator's errors one at a
time. The toy world can, because its real users are programs: a *single-error simulator* is the real users with
exactly one behaviour moved (:data:`~calirl_lite.task_family.SINGLE_ERRORS`: over-forthcoming, sycophantic,
question-averse, over-correcting, impatient), so its gap to the real users is known exactly.

``calirl lab`` trains, for every task, reward source (:data:`~calirl_lite.train.REWARDS`) and seed, one policy
against each single-error simulator and one against the real users themselves (the Oracle of that reward source)
— the same code path, budget and seeds (``calirl train --method oracle --user <error> --reward <source>``) — and
scores every policy with the real users (the ground-truth task score on the held-out goals) and with its own
training simulator (in its reward's terms). Beside them it measures each simulator's gap per behaviour: the base
policy's dialogues with it against those with the real users (:func:`calirl_lite.stats.behaviour_tv`).

With the reward taken from the simulator's own verdict, a sycophantic simulator can be exploited: the run's
training reward rises while its real-user score falls. Every lab run logs its real-user score every
``real_every`` steps (:func:`calirl_lite.train.real_reward_curve`), which draws that picture.

Outputs under ``results/lab/``: ``lab.json``, ``lab.md`` (the table), ``lab.png`` (real-user score per simulator and
reward source) and ``lab_curves.png`` (training reward against real-user score over training). Finished runs are
reused, like every run of the kit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .calibration import calibrate_once, calibrated_adapter
from .context import Context
from .evaluate import evaluate_policy
from .exact_gap import exact_gap, replies_of
from .io import atomic_write_json, atomic_write_text, json_safe
from .plots import close_figure, plot_designs, plot_lab, plot_lab_curves
from .pool import pool_size, run_pool
from .results import RunResult, paired_difference
from .rollout import base_policy
from .settings import EVAL_SEED_OFFSET, Settings
from .sources import task_goals
from .stages import REWARDS, Stage, TrainConfig, calibration_for, resolve
from .stats import behaviour_stats, behaviour_tv, proxy_gap
from .task_family import REAL_USER, SINGLE_ERRORS, single_error_persona
from .toy_tasks import TASKS
from .train import train, train_job
from .users import ScriptedUsers, User, make_user, persona_from_spec

MOVES = {"over-forthcoming": "unprompted_reveal_rate", "sycophantic": "accept_wrong_rate", "question-averse": "quit_on_question_rate",
         "over-correcting": "point_out_rate", "impatient": "messages"}
"""The behaviour statistic each single error moves (the one its gap is read on)."""


@dataclass
class LabConfig(Settings):
    """Settings of the mismatch lab (``calirl lab``). Training settings are ``calirl train``'s defaults."""

    profile: str = "tiny"
    """model profile (the lab is sized for the tiny one)"""
    tasks: tuple[str, ...] = tuple(TASKS)
    """toy tasks to run the lab on"""
    errors: tuple[str, ...] = tuple(SINGLE_ERRORS)
    """single-error simulators to train against (each also has an Oracle: the real users)"""
    strength: float = 1.0
    """how far each error's behaviour is moved from the real users' toward its extreme (1: all the way)"""
    rewards: tuple[str, ...] = ("task", "verdict")
    """reward sources (task, task-efficiency, verdict)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds of every run"""
    steps: int = 0
    """GRPO steps of every run (0: `calirl train`'s default)"""
    token_penalty: float = 0.002
    """the efficiency term's weight, for runs with reward task-efficiency"""
    real_every: int = 5
    """every this many steps each run is scored with the real users on a few test goals (the real-reward curves)"""
    gap_goals: int = 100
    """held-out goals on which each simulator's behaviour gap to the real users is measured"""
    lm: bool = False
    """also train against each error as an LM simulator: the toy LM calibrated on the traces of that scripted simulator
    (`calirl calibrate --persona`), so the LM's own imperfections come on top of the error (one calibration per task and error)"""
    workers: int = 0
    """processes running side by side (0: one per CPU core)"""

    SMOKE = {"tasks": ("arith-chat",), "errors": ("sycophantic",), "seeds": (0,), "real_every": 2, "gap_goals": 32}
    CLASS = {"tasks": ("docedit-chat",), "rewards": ("task",), "seeds": (0,), "gap_goals": 50}
    BOUNDS = {"strength": (0, 1), "steps": (0, None), "token_penalty": (0, None), "real_every": (1, None), "gap_goals": (1, None)}

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, values, known in (("tasks", self.tasks, TASKS), ("errors", self.errors, SINGLE_ERRORS), ("rewards", self.rewards, REWARDS)):
            unknown = [v for v in values if v not in known]
            if unknown or not values:
                raise ValueError(f"{name} must name at least one of {', '.join(known)}; got {', '.join(map(repr, values)) or 'none'}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if self.strength == 0:
            raise ValueError("strength 0 is the real users themselves: give a strength in (0, 1]")

    def n_workers(self) -> int:
        return pool_size(self.workers)

    def spec(self, error: str) -> str:
        """The ``--user`` spec of one single-error simulator ('' for the real users)."""
        return "" if not error else error if self.strength == 1 else f"{error}:{self.strength:g}"

    def users(self) -> list[str]:
        """The grid's training users: 'real' (the Oracle), each error's spec, and with ``lm`` each 'lm <spec>'."""
        specs = [self.spec(e) for e in self.errors]
        return ["real", *specs, *(f"lm {s}" for s in specs if self.lm)]

    def method(self, who: str) -> str:
        """The method of the lab run against training user ``who`` (:meth:`users`): oracle against a scripted
        simulator (or the real users), calibrated against an LM simulator."""
        return "calibrated" if who.startswith("lm ") else "oracle"

    def run_settings(self, who: str, reward: str) -> dict[str, Any]:
        """The TrainConfig fields of the lab run against training user ``who`` besides profile, method, task and seed."""
        return {"user": who.removeprefix("lm ") if who != "real" else "", "reward": reward, "real_every": self.real_every,
                **({"token_penalty": self.token_penalty} if reward == "task-efficiency" else {}), **({"steps": self.steps} if self.steps else {})}


def error_of(who: str) -> str:
    """The single error of a lab training user ('lm sycophantic:0.5' → 'sycophantic'; '' for the real users)."""
    return "" if who == "real" else who.removeprefix("lm ").split(":")[0]


# ----------------------------------------------------------------------------- jobs (run in worker processes)


def lab_user(stage: Stage, who: str) -> User:
    """The user of a lab training user ``who``: the real users, a scripted simulator, or ('lm <spec>') the LM
    calibrated on that scripted simulator's traces (calibration seed 0)."""
    if not who.startswith("lm "):
        return ScriptedUsers(persona_from_spec("" if who == "real" else who))
    ctx = stage.ctx
    cal = calibration_for(ctx, stage.profile.name, stage.task.name, persona=who.removeprefix("lm "))
    return make_user("calibrated", stage.models, calibrated_adapter(cal, why=f"the LM simulator {who!r}"))


def gap_job(ctx: Context, profile: str, task: str, users: Sequence[str], goals: int) -> dict[str, Any]:
    """Each simulator's behaviour against the real users': the base policy plays the same ``goals`` test goals
    (same seed) with every user of ``users`` (:meth:`LabConfig.users`). Per user: its behaviour statistics, their TV
    to the real users' (per statistic), the four-rate summary (``proxy_gap``) and the exact gap Σ_t ε_t of the
    simulation lemma along the real users' histories (``exact``: total, its error, what carries it)."""
    stage = resolve(ctx, profile, task)
    policy = base_policy(stage.models)
    picked = [t["goal"] for t in task_goals(stage.task, "test", stage.world)][:goals]
    sims = {who: lab_user(stage, who) for who in users}
    dialogues = {who: evaluate_policy(policy, sim, stage.task, picked, stage.budget, EVAL_SEED_OFFSET, batch_size=stage.profile.eval_batch)[1]
                 for who, sim in sims.items()}
    real = dialogues["real"]
    out = {}
    for who, ds in dialogues.items():
        exact = exact_gap(replies_of(sims[who]), REAL_USER, real)
        out[who] = {"stats": behaviour_stats(ds), "tv": behaviour_tv(ds, real), "proxy_gap": proxy_gap(ds, real),
                    "exact": {k: exact[k] for k in ("total", "total_error", "by_category", "by_context")}}
    return out


# ----------------------------------------------------------------------------- the lab


def lab(cfg: LabConfig, ctx: Context, out: str | Path | None = None) -> dict[str, Any]:
    """Train and score every run of the grid (reusing finished ones), measure the simulators' gaps, and write the
    table and figures; returns lab.json's contents."""
    start = time.perf_counter()
    base = Path(out) if out else ctx.results_dir("lab")
    base.mkdir(parents=True, exist_ok=True)
    ctx.toy_world()
    users = cfg.users()
    print(f"calirl lab: {len(cfg.tasks) * len(cfg.rewards) * len(users) * len(cfg.seeds)} runs ({len(cfg.tasks)} tasks × {len(cfg.rewards)} "
          f"reward sources × {len(users)} training users × {len(cfg.seeds)} seeds) and the simulators' gaps, {cfg.n_workers()} worker processes", flush=True)
    if cfg.lm:  # the LM simulators first: their runs and gaps need them
        calibrations = [(f"calibrate {t} · {who}", calibrate_once, (calibration_for(ctx, cfg.profile, t, persona=who.removeprefix("lm ")).cfg, ctx))
                        for t in cfg.tasks for who in users if who.startswith("lm ")]
        run_pool(calibrations, cfg.n_workers(), "lab: LM simulators")
    grid = {(t, r, who, s): f"{t} · {r} · {who} · seed {s}" for t in cfg.tasks for r in cfg.rewards for who in users for s in cfg.seeds}
    runs_of = {key: ctx.make(TrainConfig, profile=cfg.profile, method=cfg.method(key[2]), task=key[0], seed=key[3], **cfg.run_settings(key[2], key[1]))
               for key in grid}
    jobs = [(name, train_job, (runs_of[key], ctx)) for key, name in grid.items()]
    jobs.sort(key=lambda j: (j[2][0].method != "calibrated", j[2][0].task != "docedit-chat"))  # the longest first, so the pool ends together
    gap_jobs = [(f"gap · {t}", gap_job, (ctx, cfg.profile, t, users, cfg.gap_goals)) for t in cfg.tasks]
    done = run_pool(gap_jobs + jobs, cfg.n_workers(), "lab")
    runs = {key: done[name] for key, name in grid.items()}
    gaps = {t: done[f"gap · {t}"] for t in cfg.tasks}
    result = summarise_lab(cfg, runs, gaps)
    result["seconds"] = time.perf_counter() - start
    write_lab(base, result)
    print(lab_markdown(result))
    print(f"calirl lab took {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min); wrote {base / 'lab.md'}, lab.json, lab.png, lab_curves.png")
    return result


def summarise_lab(cfg: LabConfig, by: dict[tuple[str, str, str, int], RunResult], gaps: dict[str, Any]) -> dict[str, Any]:
    """Per task, reward source and training user: the real-user score over seeds, its paired difference to Base
    and to the Oracle of the same reward source (95 % bootstrap interval over (seed, goal), seeds that agree), what
    the training simulator said, the reward-hacking check, and the simulator's measured gap. ``by``: the runs by
    (task, reward source, training user's spec or 'real', seed); ``gaps``: :func:`gap_job`'s result per task."""
    tasks: dict[str, Any] = {}
    for task in cfg.tasks:
        metric = TASKS[task].metric
        rows = []
        for reward in cfg.rewards:
            oracle = {s: by[(task, reward, "real", s)] for s in cfg.seeds}
            for who in cfg.users():
                error = error_of(who)
                mine = {s: by[(task, reward, who, s)] for s in cfg.seeds}
                trained = {s: r.per_goal["trained"] for s, r in mine.items()}
                sim_key = "verdict" if reward == "verdict" else metric
                curves = {s: r.curves() for s, r in mine.items()}
                rows.append({
                    "reward": reward, "error": (f"{error} (LM)" if who.startswith("lm ") else error) or "none (the real users)", "simulator": who,
                    "real": {str(s): r.trained["real"][metric] for s, r in mine.items()},
                    "simulator_says": {str(s): r.trained["simulator"][sim_key] for s, r in mine.items()},
                    "simulator_says_base": {str(s): r.base["simulator"][sim_key] for s, r in mine.items()},
                    "real_says": {str(s): r.trained["real"][sim_key] for s, r in mine.items()},
                    "vs_base": paired_difference(trained, {s: r.per_goal["base"] for s, r in mine.items()}),
                    "vs_oracle": paired_difference(trained, {s: r.per_goal["trained"] for s, r in oracle.items()}) if error else None,
                    "hacked": hacking(curves), "curves": curves, "runs": {str(s): r.run for s, r in mine.items()},
                    "gap": gaps[task][who]["tv"][MOVES[error]] if error else 0.0,  # NaN: the base policy never met that behaviour
                    "proxy_gap": gaps[task][who]["proxy_gap"], "exact_gap": gaps[task][who]["exact"]["total"],
                })
        base_real = {str(s): by[(task, cfg.rewards[0], "real", s)].base["real"][metric] for s in cfg.seeds}
        tasks[task] = {"metric": metric, "base": base_real, "rows": rows, "gaps": gaps[task]}
    return {"settings": cfg.to_dict(), "tasks": tasks, "moves": MOVES, "errors": {e: SINGLE_ERRORS[e][0] for e in cfg.errors}}


def hacking(curves: dict[int, dict[str, list[list[float]]]]) -> dict[str, Any]:
    """Whether training was exploited: per seed, the training reward's change (mean of the last third of the
    steps minus the first third) and the real-user score's (last point minus the first, before training). Reward
    hacking: the training reward rose while the real-user score fell, in at least two thirds of the seeds."""
    per_seed = {}
    for seed, c in curves.items():
        rewards = [r for _, r in c["train"]]
        third = max(1, len(rewards) // 3)
        train_change = sum(rewards[-third:]) / third - sum(rewards[:third]) / third if rewards else 0.0
        real_change = c["real"][-1][1] - c["real"][0][1] if len(c["real"]) > 1 else 0.0
        per_seed[str(seed)] = {"train_change": train_change, "real_change": real_change}
    hacked = sum(x["train_change"] > 0 and x["real_change"] < 0 for x in per_seed.values())
    return {"per_seed": per_seed, "seeds_hacked": hacked, "seeds": len(per_seed), "hacked": 3 * hacked >= 2 * len(per_seed)}


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def _diff(d: dict[str, Any] | None) -> str:
    if d is None:
        return "—"
    agree = sum(x < 0 for x in d["per_seed"].values()) if d["mean"] < 0 else sum(x > 0 for x in d["per_seed"].values())
    shown = d["high"] < 0 or d["low"] > 0
    text = f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] {agree}/{len(d['per_seed'])}"
    return f"**{text}**" if shown and 3 * agree >= 2 * len(d["per_seed"]) else text


def lab_markdown(result: dict[str, Any]) -> str:
    """The lab's table: per task, one row per reward source and training user."""
    lines = []
    for task, t in result["tasks"].items():
        m = t["metric"]
        lines += [f"### {task} ({m}; Base with the real users: {_mean(t['base']):.3f})", "",
                  f"| reward | trained against | gap (its behaviour) | real users' {m} | vs Base | vs Oracle | its simulator says (base → trained) | hacked |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in t["rows"]:
            h = row["hacked"]
            gap = "not met" if row["gap"] is None or row["gap"] != row["gap"] else f"{row['gap']:.2f}"
            lines.append(f"| {row['reward']} | {row['error']} | {gap} | {_mean(row['real']):.3f} | {_diff(row['vs_base'])} | {_diff(row['vs_oracle'])} | "
                         f"{_mean(row['simulator_says_base']):.3f} → {_mean(row['simulator_says']):.3f} | {'**yes**' if h['hacked'] else 'no'} ({h['seeds_hacked']}/{h['seeds']}) |")
        lines.append("")
    seeds = ", ".join(map(str, result["settings"]["seeds"]))
    lines.append(f"Seeds {seeds}. *gap*: TV between the base policy's dialogues with that simulator and with the real users on the behaviour "
                 "its error moves (dialogue length for impatience). *vs Base*, *vs Oracle*: the paired difference in the real users' score over "
                 "(seed, goal), its 95 % bootstrap interval and the seeds that agree — bold where the interval excludes 0 and ≥ 2/3 of the seeds "
                 "agree; the Oracle is the policy trained with the real users on the same reward source. *its simulator says*: the training "
                 "simulator's score in its reward's terms (its verdict, or the task score it lets the policy reach). *hacked*: the training "
                 "reward rose while the real users' score fell over training (seeds).")
    return "\n".join(lines)


def simulators_markdown(result: dict[str, Any]) -> str:
    """The lab's simulators: what each error does, the behaviour it sets (the real users' value → its own), and the
    gap measured on the base policy's dialogues with it, per task (TV on that behaviour; the exact gap Σ_t ε_t along the
    real users' histories)."""
    strength = result["settings"]["strength"]
    tasks = list(result["tasks"])
    lines = ["| error | what it does | behaviour set | " + " | ".join(f"gap on {t} (exact Σ ε)" for t in tasks) + " |", "|---|---|---|" + "---|" * len(tasks)]
    for error, what in result["errors"].items():
        sim = single_error_persona(error, strength)
        moved = ", ".join(f"{f} {getattr(REAL_USER, f):g} → {getattr(sim, f):g}" for f in SINGLE_ERRORS[error][1])
        spec = error if strength == 1 else f"{error}:{strength:g}"
        gaps = []
        for t in tasks:
            g = result["tasks"][t]["gaps"][spec]
            tv = g["tv"][MOVES[error]]
            gaps.append(f"{'not met' if tv is None or tv != tv else f'{tv:.2f}'} ({g['exact']['total']:.2f} ± {g['exact']['total_error']:.2f})")
        lines.append(f"| {error} | {what} | {moved} | " + " | ".join(gaps) + " |")
    return "\n".join(lines)


def find_row(result: dict[str, Any], task: str, reward: str, simulator: str) -> dict[str, Any]:
    """The lab's row of one task, reward source and training user ('real', or an error's spec)."""
    for row in result["tasks"][task]["rows"]:
        if row["reward"] == reward and row["simulator"] == simulator:
            return row
    raise ValueError(f"the lab has no run of {task} with reward {reward!r} against {simulator!r}")


def write_lab(base: Path, result: dict[str, Any]) -> None:
    atomic_write_json(base / "lab.json", json_safe(result))
    atomic_write_text(base / "lab.md", lab_markdown(result))
    close_figure(plot_lab(result, base / "lab.png"))
    close_figure(plot_lab_curves(result, path=base / "lab_curves.png"))


# ----------------------------------------------------------------------------- the simulator designer (notebook 06)

DESIGNER_SLIDERS = {
    "p_unprompted_reveal": "volunteers a detail",
    "p_answer_when_asked": "answers when asked",
    "p_accept_wrong": "accepts a wrong answer",
    "p_quit_on_question": "leaves at a question",
    "p_point_out": "says what is wrong",
    "patience": "wrong answers it takes",
}
"""The behaviours the designer's sliders set, with their labels (the rest stay the real users')."""


class SimulatorDesigner:
    """Sliders for a scripted simulator's behaviour rates (starting at the real users'), a reward source, and a
    button that trains a short run against that simulator and draws, live, its training reward beside its real
    users' score. Every design stays on the figure, so one can be compared with the last; a design trained before
    is loaded, not trained again. ``designs`` holds each one's spec, reward, curves and final scores."""

    def __init__(self, ctx: Context, task: str = "arith-chat", steps: int = 0, real_every: int = 2, seed: int = 0, profile: str = "tiny") -> None:
        import ipywidgets as w

        self.ctx, self.task, self.steps, self.real_every, self.seed, self.profile = ctx, task, steps, real_every, seed, profile
        self.metric = TASKS[task].metric
        self.sliders = {name: (w.IntSlider(value=REAL_USER.patience, min=1, max=5, description=label) if name == "patience" else
                               w.FloatSlider(value=getattr(REAL_USER, name), min=0.0, max=1.0, step=0.05, description=label))
                        for name, label in DESIGNER_SLIDERS.items()}
        for s in self.sliders.values():
            s.style.description_width = "170px"
            s.layout.width = "420px"
        self.reward = w.Dropdown(options=list(REWARDS), value="verdict", description="reward from")
        self.button = w.Button(description="train against it", button_style="primary")
        self.status = w.HTML()
        self.out = w.Output()
        self.designs: list[dict[str, Any]] = []
        self.button.on_click(lambda _: self.train())
        self.widget = w.VBox([w.HTML("<b>Design a simulator</b> (starts as the real users)"), *self.sliders.values(), self.reward, self.button,
                              self.status, self.out])

    def spec(self) -> str:
        """The ``--user`` spec of the sliders' simulator: the behaviours moved from the real users'."""
        return ",".join(f"{name}={s.value:g}" for name, s in self.sliders.items() if s.value != getattr(REAL_USER, name))

    def train(self) -> dict[str, Any]:
        """Train against the sliders' simulator (redrawing as it goes); returns the design's record."""
        from transformers import TrainerCallback

        spec, reward = self.spec(), self.reward.value
        design = {"name": f"#{len(self.designs) + 1} {spec or 'real users'}", "spec": spec, "reward": reward, "train": [], "real": []}
        self.designs.append(design)
        designer = self

        class Live(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                design["real"] = [[h["step"], h[f"real_{designer.metric}"]] for h in state.log_history if f"real_{designer.metric}" in h]
                designer.redraw()

            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
                if logs and "reward" in logs:
                    design["train"].append([state.global_step, logs["reward"]])

        self.button.disabled = True
        self.status.value = f"training against <code>{spec or 'the real users'}</code>, reward from {reward} …"
        try:
            settings = {"token_penalty": 0.002} if reward == "task-efficiency" else {}
            cfg = self.ctx.make(TrainConfig, method="oracle", profile=self.profile, task=self.task, seed=self.seed, user=spec, reward=reward,
                                real_every=self.real_every, **({"steps": self.steps} if self.steps else {}), **settings)
            start = time.perf_counter()
            result = train(cfg, self.ctx, callbacks=[Live()], progress=False)
            curves = result.curves()
            design.update(curves, seconds=time.perf_counter() - start, simulator_says=result.trained["simulator"]["verdict" if reward == "verdict" else self.metric],
                          real_score=result.trained["real"][self.metric], base_score=result.base["real"][self.metric])
            self.status.value = "<br>".join(
                f"{d['name']} (reward from {d['reward']}): its simulator says {d['simulator_says']:.2f}; the real users' {self.metric} "
                f"{d['base_score']:.2f} → {d['real_score']:.2f} ({d['seconds']:.0f} s)" for d in self.designs if "real_score" in d)
            self.redraw()
        except ValueError as e:  # shown beside the button: a click handler's exception would go to the log console only
            self.status.value = f"<span style='color:#b00'>error: {e}</span>"
        finally:
            self.button.disabled = False
        return design

    def redraw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = plot_designs(self.designs, self.metric)
        with self.out:
            self.out.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
