"""Phase 2 of the paper and its baselines: GRPO of the policy, one code path for every method.

``calirl train --method M --profile P --task T --seed S`` trains the profile's policy with TRL's
``GRPOTrainer``. Every method gets the same trainer settings and the same budget — ``steps``
optimiser steps, each on ``prompts_per_step × group_size`` dialogues (``group_size`` dialogues per
start, their rewards standardised within the group). Only where the dialogues come from differs:

============  =====================================================  ========================
method        the policy writes …                                     the user is …
============  =====================================================  ========================
static        one turn at a context cut from a *logged* dialogue of    the calibrated simulator
              the base policy with the real users; the dialogue is     (it completes the rest)
              then completed by forward sampling (CollabLLM), and
              only that one turn is trained
naive         whole dialogues, on-policy                              the prompted LM (naive)
calibrated    whole dialogues, on-policy                              the LoRA-calibrated LM
oracle        whole dialogues, on-policy                              the real users themselves
============  =====================================================  ========================

The settings are :class:`~calirl_lite.stages.TrainConfig` (resolved once into a
:class:`~calirl_lite.stages.TrainStage`, with the calibration the run uses); TRL's trainer, the rewards and the
callbacks are wired in :mod:`calirl_lite.trainer`; this module is the run's lifecycle: its checks, folder, resuming,
evaluation and saving. The dialogues come from the rollout engine (:mod:`calirl_lite.rollout`), plugged into the
trainer as its ``rollout_func``, with ``env_mask`` 0 on the user's tokens, so they carry no gradient. The reward is
sparse, on the final turn, from the source ``reward`` names (:data:`~calirl_lite.stages.REWARDS`): the task score (accuracy or BLEU); that minus
``token_penalty`` × the assistant's tokens (CollabLLM's efficiency term); or the training user's own verdict —
whether it ended the chat content, the only signal where no ground truth exists, and the one a sycophantic
simulator lets a policy exploit. ``user`` trains an interactive run against a scripted simulator with chosen
errors (the mismatch lab), ``real_every`` scores it with the real users as it trains (the real-reward curve).

A run folder ``runs/train-<method>-<profile>-<task>-seed<S>-<settings hash>/`` holds
``config.json``, ``checkpoints/`` (an interrupted run resumes from the newest; removed once the run has
finished, for they hold the optimiser state), ``policy/`` (the
trained weights, or the LoRA adapter), ``log.json`` (TRL's log: reward per step, loss, …),
``rewards.png``, ``eval.json`` (base and trained policy, each against the training simulator and
against the real users, on held-out goals) and ``eval_dialogues.jsonl``. A finished run is reused.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .calibration import calibrate_hint, calibrated_adapter
from .checkpoints import train_or_resume
from .context import Context
from .dialogue import Dialogue, write_jsonl
from .evaluate import evaluate_policy
from .exact_gap import exact_gap, replies_of
from .inputs import read_dialogues
from .io import atomic_dir, atomic_write_json, folder_lock, json_safe
from .plots import reward_curve
from .profiles import require
from .quiet import no_library_bars
from .results import RunResult
from .rollout import Policy
from .settings import EVAL_SEED_OFFSET, set_seed
from .sources import task_goals
from .stages import METHODS, REAL_CURVE_GOALS, TrainConfig, TrainStage, kept_result, train_stage
from .task_family import REAL_USER
from .tasks import TASKS
from .trainer import make_trainer, real_reward_curve, reward_bar, training_starts, training_user
from .users import User, real_user_calls
from .vllm_turns import require_vllm, synced_engine
from .world import cached_world

# ----------------------------------------------------------------------------- checks before any compute


@dataclass
class Inputs:
    """What a method needs besides its models, read and checked before any compute."""

    adapter: Path | None = None
    """the calibrated simulator's LoRA adapter (methods calibrated and static)"""
    logged: list[Dialogue] | None = None
    """Static Context's logged dialogues of the base policy with the real users"""


def check_inputs(stage: TrainStage) -> Inputs:
    """Everything that can be checked before a model is loaded or a folder made; returns what the method needs.

    Stops with a clear message for a GPU profile without CUDA, vLLM asked for and not installed, a missing calibrated
    adapter, an adapter calibrated for another task or profile, or missing or faulty logged dialogues for Static Context
    (:func:`calirl_lite.inputs.read_dialogues`: the file and line of the first fault).
    """
    import torch

    cfg = stage.cfg
    if stage.profile.needs_cuda and not torch.cuda.is_available():
        raise ValueError(f"profile {cfg.profile!r} is meant for a CUDA GPU and none is available; use --profile tiny or smol on this machine")
    if cfg.report_to == "tensorboard":
        require("tensorboard", "pip install tensorboard")
    if cfg.vllm:
        require_vllm()
    inputs = Inputs()
    calib = stage.calibration
    if calib is not None:
        inputs.adapter = calibrated_adapter(calib, cfg.adapter, f"method {cfg.method!r} needs the calibrated simulator")
    if cfg.method == "static":
        traces = Path(cfg.traces) if cfg.traces else calib.folder / "traces.jsonl"
        if not traces.is_file():
            raise FileNotFoundError(f"Static Context needs logged dialogues of the base policy with the real users, and {traces} "
                                    f"does not exist; {calibrate_hint(calib.cfg)} (it logs them), or pass --traces")
        inputs.logged = read_dialogues(traces, cfg.task, stage.models.text_limits())
    return inputs


# ----------------------------------------------------------------------------- the run


def train(cfg: TrainConfig, ctx: Context, callbacks: Sequence[Any] = (), force: bool = False, progress: bool = True) -> RunResult:
    """Train one method and evaluate it; returns (and writes, as ``eval.json``) its :class:`RunResult`.

    A finished run (its ``eval.json`` exists) is returned as it is unless ``force``; an interrupted one resumes from
    its newest checkpoint. Under ``accelerate launch`` the first process (``ctx.rank`` 0) runs this — it trains its
    share of each step, and alone writes, evaluates and saves — and every other process :func:`train_share`.
    """
    stage = train_stage(cfg, ctx)
    inputs = check_inputs(stage)  # clear errors before any compute
    run, done = stage.folder, stage.folder / RunResult.FILE
    if ctx.rank > 0:
        raise ValueError(f"process {ctx.rank} of a launch trains its share with train_share(); the first process runs train()")
    if ctx.processes > 1:
        check_launch(stage, force)
        if done.is_file() and not force:
            return RunResult.load(run)
    with folder_lock(run):  # a second `train` of the same run waits for the first, then finds it finished
        if done.is_file() and not force:
            return RunResult.load(run)
        if force and run.exists():
            shutil.rmtree(run)  # train again from scratch: no old checkpoint may be resumed
        run.mkdir(parents=True, exist_ok=True)
        cfg.save(run)
        return run_and_evaluate(stage, inputs, callbacks, progress)


def check_launch(stage: TrainStage, force: bool) -> None:
    """What a launch of several processes needs: the toy world built beforehand (its pre-training would wait for the
    other processes, which wait for it) and no ``--force`` (the first would remove checkpoints the others resume from)."""
    if stage.world_config is not None and cached_world(stage.world_config) is None:
        raise ValueError("under accelerate launch the toy world must be built first, by one process: run `calirl world build`")
    if force:
        raise ValueError(f"--force under accelerate launch: remove the run folder {stage.folder} first, then launch")


def train_share(cfg: TrainConfig, ctx: Context, force: bool = False) -> Path:
    """Another process of a launch (``ctx.rank`` > 0): its share of every training step of the run, nothing else;
    returns the run folder, where the first process writes the result."""
    stage = train_stage(cfg, ctx)
    inputs = check_inputs(stage)
    check_launch(stage, force)  # every process refuses what the first refuses
    if not (stage.folder / RunResult.FILE).is_file():
        set_seed(cfg.seed)
        trainer, _ = make_trainer(stage, training_starts(stage, inputs.logged), training_user(stage, inputs.adapter))
        train_or_resume(trainer, stage.folder / "checkpoints", cfg.steps)
    return stage.folder


def run_and_evaluate(stage: TrainStage, inputs: Inputs, callbacks: Sequence[Any], progress: bool) -> RunResult:
    """Train (resuming if interrupted), save, evaluate with the real users and the training user, write eval.json."""
    cfg, prof, run, metric = stage.cfg, stage.profile, stage.folder, stage.task.metric
    set_seed(cfg.seed)
    train_user = training_user(stage, inputs.adapter)
    real_user = train_user if cfg.simulator() == "real" else stage.real_user()
    goals = [t["goal"] for t in task_goals(stage.task, "test", stage.world)][: cfg.n_eval]
    eval_seed = EVAL_SEED_OFFSET + cfg.seed
    bar = [reward_bar(f"GRPO {cfg.method} · {cfg.task} · seed {cfg.seed}")] if progress else []
    curve = [real_reward_curve(stage, real_user, goals[:REAL_CURVE_GOALS], eval_seed)] if cfg.real_every else []
    trainer, stats = make_trainer(stage, training_starts(stage, inputs.logged), train_user, [*bar, *curve, *callbacks])

    def evaluate(name: str, user: User) -> tuple[dict[str, float], list[Dialogue]]:
        policy = Policy(trainer.model, trainer.processing_class, name, prof.policy_temperature, prof.max_new_tokens, synced_engine(trainer))
        n = cfg.n_eval if user is real_user else cfg.n_eval_simulator
        return evaluate_policy(policy, user, stage.task, goals[:n], stage.budget, eval_seed, progress, prof.eval_batch)

    base, base_per_goal = base_scores(stage, inputs, evaluate, real_user, train_user)
    start = time.perf_counter()
    checkpoint = train_or_resume(trainer, run / "checkpoints", cfg.steps)  # a finished run is loaded, not trained again
    seconds = time.perf_counter() - start
    save_training(trainer, run, metric, f"{cfg.method} on {cfg.task} (seed {cfg.seed})")
    real, real_dialogues = evaluate(cfg.method, real_user)
    sim, sim_dialogues = (real, []) if train_user is real_user else evaluate(cfg.method, train_user)
    write_jsonl(run / "eval_dialogues.jsonl", sim_dialogues + real_dialogues)
    gap = None
    # what the training user gets wrong where the trained policy takes the real users (the scripted ones: their replies' chances are known)
    if sim_dialogues and stage.task.name in TASKS and stage.real_user_spec.kind == "scripted":
        gap = exact_gap(replies_of(train_user), REAL_USER, real_dialogues[: cfg.n_eval_simulator])
        gap = {k: gap[k] for k in ("simulator", "dialogues", "eps", "eps_error", "total", "total_error", "left_out", "by_category")}
    result = RunResult(cfg.method, cfg.profile, cfg.task, cfg.seed, metric, cfg.simulator(), trainer.state.global_step, base, {"simulator": sim, "real": real},
                       str(run), resumed_from=checkpoint, train_seconds=seconds, rollout_seconds=sum(stats.seconds), policy_tokens=sum(stats.policy_tokens),
                       per_goal={"base": base_per_goal, "trained": [d.scores[metric] for d in real_dialogues]}, simulator_gap=gap,
                       real_user_calls=real_user_calls(real_user))
    result.save()
    # the checkpoints hold the optimiser state, needed only to resume; a finished run keeps its policy (a smol
    # run's checkpoints alone take 1.6 GB)
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    return result


# ----------------------------------------------------------------------------- the base policy's scores, kept


def base_eval_path(stage: TrainStage, who: str, adapter: Path | None) -> Path:
    """Where the base policy's scores with one user (``who``: 'real', 'naive', 'calibrated' or a scripted
    simulator's spec, :meth:`~calirl_lite.stages.TrainConfig.simulator`) are kept. The base policy, the goals and the
    seed do not depend on the method, so the real users' scores are computed once per task and seed for every
    method, and a simulator's once for every method trained against it."""
    cfg = stage.cfg
    key = {"profile": cfg.profile, "task": cfg.task, "user": who, "adapter": str(adapter.resolve()) if adapter and (who == "calibrated" or who.startswith("lm ")) else "",
           "n_eval": cfg.n_eval if who == "real" else cfg.n_eval_simulator, "max_messages": stage.budget, "max_new_tokens": stage.profile.max_new_tokens, "seed": cfg.seed,
           "layout": "scores with the verdict, and per_goal"}
    if stage.real_user_spec.kind != "scripted":  # an LLM's replies are other real users' (the scripted users' keys stay as they were)
        key["real_user"] = str(stage.real_user_spec)
    if who != "real" and stage.profile.user_tokens != stage.profile.max_new_tokens:  # an LM user's turns capped shorter (other keys stay)
        key["user_max_new_tokens"] = stage.profile.user_tokens
    name = who if who in ("real", "naive", "calibrated") else "lm" if who.startswith("lm ") else "scripted"  # no spec in a file name
    return kept_result(stage.ctx, "base-eval", f"{cfg.profile}-{cfg.task}-{name}-seed{cfg.seed}", key, stage.world_config)


def cached_scores(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``path`` holds, or ``compute()``'s result, written there (atomically) for the next run."""
    if path.is_file():
        return json.loads(path.read_text())
    scores = compute()
    atomic_write_json(path, scores)
    return scores


def base_scores(stage: TrainStage, inputs: Inputs, evaluate: Callable[[str, Any], tuple[dict[str, float], list[Dialogue]]],
                real_user: User, train_user: User) -> tuple[dict[str, dict[str, float]], list[float]]:
    """The base policy's scores with the real users and with the training user, and its real-user score per goal.

    Kept under ``runs/base-eval/`` and shared by every method of this task and seed (:func:`base_eval_path`): one
    Base for the whole table. The oracle's training user is the real user (same seed, same dialogues): scored once.
    """
    metric = stage.task.metric

    def cached(who: str, user: User) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            scores, dialogues = evaluate("base", user)
            return {"scores": scores, "per_goal": [d.scores[metric] for d in dialogues]}
        return cached_scores(base_eval_path(stage, who, inputs.adapter), compute)

    real = cached("real", real_user)
    base = {"real": real["scores"]}
    base["simulator"] = base["real"] if train_user is real_user else cached(stage.cfg.simulator(), train_user)["scores"]
    return base, real["per_goal"]


# ----------------------------------------------------------------------------- saving and reporting


def save_policy(trainer: Any, folder: Path) -> Path:
    """The trained weights (or LoRA adapter) with the tokenizer, written to a temp folder and renamed."""
    with atomic_dir(folder, ".saving") as tmp, no_library_bars():
        trainer.save_model(str(tmp))
    return folder


def save_training(trainer: Any, run: Path, metric: str, title: str) -> None:
    """The trained policy (``policy/``), the trainer's log (``log.json``) and its reward curve (``rewards.png``)."""
    save_policy(trainer, run / "policy")
    log = [json_safe(h) for h in trainer.state.log_history]
    atomic_write_json(run / "log.json", log)
    reward_curve(log, metric, title, run / "rewards.png")


def format_result(r: RunResult) -> str:
    """Base → trained, against the training simulator and against the real users (and, where they are an LLM, what
    their replies cost)."""
    m = r.metric
    lines = [f"{r.label} on {r.task} (seed {r.seed}, {r.steps} steps, {r.train_seconds:.0f} s of training)"]
    for who, label in (("simulator", f"its training simulator ({r.simulator})"), ("real", "the real users")):
        b, t = r.base[who], r.trained[who]
        lines.append(f"  {m} with {label}: {b[m]:.3f} → {t[m]:.3f}   (assistant tokens {b['assistant_tokens']:.1f} → {t['assistant_tokens']:.1f})")
    calls = r.real_user_calls
    if calls.get("user", "scripted") != "scripted":
        lines.append(f"  the real users ({calls['user']}): {calls['requests']} requests, {calls['cached']} replies from the cache, "
                     f"{calls['prompt_tokens'] + calls['completion_tokens']:,} tokens, {calls['seconds']:.0f} s")
    return "\n".join(lines)


def train_job(cfg: TrainConfig, ctx: Context) -> RunResult:
    """Train one run (reused when finished), without a progress bar: a job of a worker pool (``calirl reproduce``,
    ``calirl lab``), which gets its settings and context as arguments."""
    return train(cfg, ctx, progress=False)


def finished_results(ctx: Context, methods: Sequence[str] = tuple(METHODS), tasks: Sequence[str] = tuple(TASKS),
                     seeds: Sequence[int] = (0, 1, 2), **settings: Any) -> list[RunResult]:
    """The result of every finished run with these settings (nothing is trained; unfinished runs are left out)."""
    out = []
    for method in methods:
        for task in tasks:
            for seed in seeds:
                folder = train_stage(ctx.make(TrainConfig, method=method, task=task, seed=seed, **settings), ctx).folder
                if (folder / RunResult.FILE).is_file():
                    out.append(RunResult.load(folder))
    return out
