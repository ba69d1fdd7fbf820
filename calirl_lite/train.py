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

The dialogues come from the rollout engine (:mod:`calirl_lite.rollout`), plugged into the trainer
as its ``rollout_func``: it returns the token ids the policy saw and wrote, and ``env_mask`` (TRL's
``tool_mask``) is 0 on the user's tokens, so they carry no gradient. The reward is sparse, on the
final turn, from the source ``reward`` names (:data:`REWARDS`): the task score (accuracy or BLEU); that minus
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

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .dialogue import Dialogue, Message, write_jsonl
from .io import atomic_dir, atomic_write_json, folder_lock, json_safe
from .quiet import no_bars, tidy_trainer
from .results import METHOD_LABELS, RunResult
from .settings import EVAL_SEED_OFFSET, RUN_SEED_STRIDE, STEP_SEED_STRIDE, Settings
from .tasks import TASKS

METHODS = {
    "static": f"{METHOD_LABELS['static']}: one turn at logged contexts, completed by the calibrated simulator",
    "naive": f"{METHOD_LABELS['naive']}: on-policy dialogues with the prompted, uncalibrated simulator",
    "calibrated": f"{METHOD_LABELS['calibrated']}: on-policy dialogues with the LoRA-calibrated simulator",
    "oracle": f"{METHOD_LABELS['oracle']}: on-policy dialogues with the real users",
}
"""The four ways to train, one code path."""

SIMULATOR = {"static": "calibrated", "naive": "naive", "calibrated": "calibrated", "oracle": "real"}
"""Which user each method trains against (the user that completes Static Context's dialogues is the calibrated one)."""

REWARDS = {
    "task": "the task score (accuracy or BLEU) against the hidden goal: ground truth",
    "task-efficiency": "the task score minus token_penalty × the assistant's tokens (CollabLLM's efficiency term)",
    "verdict": "the training user's own verdict: 1 when it ended the chat content (accepted the answer or draft), else 0",
}
"""Where a run's reward comes from; every method can train on each."""

REAL_CURVE_GOALS = 32
"""Test goals the real-reward curve (``real_every``) scores the policy on at each of its points."""


@dataclass
class TrainConfig(Settings):
    """Settings of GRPO training (``calirl train``); every method shares them."""

    method: str = "calibrated"
    """static, naive, calibrated or oracle (see METHODS)"""
    profile: str = "tiny"
    """model profile (tiny, smol, colab-t4, paper)"""
    task: str = "arith-chat"
    """task family to train on: arith-chat or docedit-chat (toy world), math-chat or doc-chat (English world)"""
    seed: int = 0
    """seed of training, rollouts and evaluation"""
    calibration_seed: int = 0
    """seed of the `calirl calibrate` run whose adapter (and, for static, traces) is used: one calibrated simulator serves every training seed"""
    steps: int = 30
    """GRPO optimiser steps (the budget, equal for every method)"""
    prompts_per_step: int = 4
    """distinct starts (goals, or logged contexts for static) per step"""
    group_size: int = 8
    """dialogues per start; their rewards are standardised within the group (GRPO's G)"""
    learning_rate: float = 1e-4
    """peak learning rate (constant after a short warm-up; at ≥ 3e-4 runs collapse)"""
    kl_beta: float = 0.0
    """weight of the KL penalty to the base policy (TRL's beta; 0 = none, and no reference model is kept)"""
    finetune: str = "auto"
    """'full' (every weight), 'lora' (a PEFT LoRA adapter), or 'auto': full for the tiny and smol profiles, LoRA on GPU profiles"""
    lora_r: int = 16
    """LoRA rank (finetune=lora)"""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)"""
    max_messages: int = 0
    """message budget of a dialogue, user and assistant together (0: the world's, 14 as in CollabLLM)"""
    reward: str = "task"
    """where the reward comes from: task, task-efficiency or verdict (see REWARDS)"""
    token_penalty: float = 0.0
    """reward task-efficiency: subtracted from the task score per assistant token (CollabLLM's efficiency term)"""
    user: str = ""
    """scripted users with errors instead of the real users — single errors (sycophantic, over-forthcoming:0.5, …) or
    behaviours set (p_accept_wrong=0.8), comma-separated ('' = the real users): method oracle trains against them,
    method calibrated against the LM calibrated on their traces (`calirl calibrate --persona`)"""
    real_every: int = 0
    """every this many steps, score the policy with the real users on a few test goals (the real-reward curve in log.json; 0 = never)"""
    n_eval: int = 200
    """held-out test goals for the before/after evaluation with the real users (the score of the table)"""
    n_eval_simulator: int = 50
    """the first this many of them for the score from the training simulator (LM simulators are slow)"""
    save_steps: int = 10
    """checkpoint every this many steps"""
    adapter: str = ""
    """the calibrated simulator's LoRA adapter (default: the adapter of `calirl calibrate` with the same profile and task, seed calibration_seed)"""
    traces: str = ""
    """logged base-policy × real-user dialogues (JSONL) for Static Context (default: the same calibration run's traces.jsonl)"""
    report_to: str = "none"
    """'none' or 'tensorboard' (logs under the run folder's tb/)"""
    out_dir: str = ""
    """run folder (default: runs/train-<method>-<profile>-<task>-seed<seed>-<hash of the settings and the world>, under $CALIRL_RUNS if set)"""

    SMOKE = {"steps": 4, "prompts_per_step": 2, "group_size": 4, "n_eval": 8, "n_eval_simulator": 8, "save_steps": 2}
    CLASS = {"steps": 20, "n_eval": 100, "n_eval_simulator": 20}
    BOUNDS = {"steps": (1, None), "prompts_per_step": (1, None), "group_size": (2, None), "n_eval": (1, None), "n_eval_simulator": (1, None),
              "save_steps": (1, None), "lora_r": (1, None), "learning_rate": (0, None), "kl_beta": (0, None), "token_penalty": (0, None),
              "real_every": (0, None)}

    def __post_init__(self) -> None:
        from .profiles import get_profile
        from .tasks import get_task, scored_tasks

        super().__post_init__()
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; methods: {', '.join(METHODS)}")
        get_profile(self.profile)
        if not get_task(self.task).metric:
            raise ValueError(f"task {self.task!r} has no reward to train on; train on one with a score: {', '.join(scored_tasks())}")
        if self.finetune not in ("auto", "full", "lora"):
            raise ValueError(f"finetune must be 'auto', 'full' or 'lora', got {self.finetune!r}")
        if self.max_messages and self.max_messages < 2:
            raise ValueError(f"max_messages must be 0 (the world's) or ≥ 2, got {self.max_messages}")
        if self.kl_beta < 0:
            raise ValueError(f"kl_beta must be ≥ 0, got {self.kl_beta}")
        if self.token_penalty < 0:
            raise ValueError(f"token_penalty must be ≥ 0, got {self.token_penalty}")
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; rewards: {', '.join(REWARDS)}")
        if (self.reward == "task-efficiency") != (self.token_penalty > 0):
            raise ValueError("reward task-efficiency needs token_penalty > 0 (e.g. 0.002), and token_penalty is that reward's alone: "
                             f"got reward {self.reward!r} with token_penalty {self.token_penalty}")
        if self.user:
            from .users import persona_from_spec

            if self.method not in ("oracle", "calibrated"):
                raise ValueError(f"user {self.user!r} replaces the real users an interactive run trains against (oracle) or its simulator "
                                 f"learned (calibrated): it goes with method 'oracle' or 'calibrated', not {self.method!r}")
            persona_from_spec(self.user)
        if self.report_to not in ("none", "tensorboard"):
            raise ValueError(f"report_to must be 'none' or 'tensorboard', got {self.report_to!r}")

    def folder(self) -> Path:
        """The run folder; its name carries a hash of the settings, so a changed setting never resumes an old run."""
        from .world import WorldConfig

        return self.run_folder("train", f"{self.method}-{self.profile}-{self.task}-seed{self.seed}", self.out_dir,
                               world_key=WorldConfig.make().key(), exclude=("out_dir", "report_to"))

    def budget(self) -> int:
        """The message budget of a dialogue: ``max_messages``, or the world's when it is 0."""
        from .world import message_budget

        return message_budget(self.max_messages)

    def lora(self) -> bool:
        from .profiles import get_profile

        return self.finetune == "lora" or (self.finetune == "auto" and get_profile(self.profile).needs_cuda)

    def simulator(self) -> str:
        """Who the run trains against: 'real', 'naive', 'calibrated', the spec of a scripted simulator (``user``, method
        oracle) or 'lm <spec>' (the LM calibrated on that scripted simulator's traces, method calibrated)."""
        if self.user:
            return self.user if self.method == "oracle" else f"lm {self.user}"
        return SIMULATOR[self.method]

    def calibration(self) -> Any:
        """The calibration run this method's simulator (or Static Context's logged data) comes from."""
        from .calibration import CalibrationConfig

        return CalibrationConfig.make(profile=self.profile, task=self.task, seed=self.calibration_seed, persona=self.user if self.method == "calibrated" else "")


# ----------------------------------------------------------------------------- checks before any compute


def check_inputs(cfg: TrainConfig) -> dict[str, Any]:
    """Everything that can be checked before a model is loaded or a folder made; returns what the method needs
    (``adapter``: the calibrated simulator's folder; ``logged``: Static Context's logged dialogues, read and checked).

    Stops with a clear message for a GPU profile without CUDA, a missing calibrated adapter, an
    adapter calibrated for another task or profile, or missing or faulty logged dialogues for Static Context
    (:func:`calirl_lite.inputs.read_dialogues`: the file and line of the first fault).
    """
    import torch

    from .calibration import calibrate_hint, calibrated_adapter
    from .profiles import get_profile

    prof = get_profile(cfg.profile)
    if prof.needs_cuda and not torch.cuda.is_available():
        raise ValueError(f"profile {cfg.profile!r} is meant for a CUDA GPU and none is available; use --profile tiny or smol on this machine")
    if cfg.report_to == "tensorboard":
        from .profiles import require

        require("tensorboard", "pip install tensorboard")
    need: dict[str, Any] = {}
    calib = cfg.calibration()
    if SIMULATOR[cfg.method] == "calibrated":
        need["adapter"] = calibrated_adapter(calib, cfg.adapter, f"method {cfg.method!r} needs the calibrated simulator")
    if cfg.method == "static":
        traces = Path(cfg.traces) if cfg.traces else calib.folder() / "traces.jsonl"
        if not traces.is_file():
            raise FileNotFoundError(f"Static Context needs logged dialogues of the base policy with the real users, and {traces} "
                                    f"does not exist; {calibrate_hint(calib)} (it logs them), or pass --traces")
        from .inputs import read_dialogues
        from .profiles import text_limits

        need["logged"] = read_dialogues(traces, cfg.task, text_limits(cfg.profile))
    return need


# ----------------------------------------------------------------------------- starts, users, rewards


@dataclass
class Start:
    """Where a training dialogue starts: a hidden goal, and for Static Context a logged history."""

    goal: dict[str, Any]
    context: list[Message] | None = None


def static_contexts(dialogues: Sequence[Dialogue], task: str, max_messages: int) -> list[Start]:
    """Every point in the logged dialogues where the assistant spoke next: the history up to that turn."""
    starts = []
    for d in dialogues:  # of ``task``, with goals it can read: checked where they were read (check_inputs)
        for k, m in enumerate(d.messages):
            if m.role == "assistant" and k < max_messages:
                starts.append(Start(d.goal, d.messages[:k]))
    if not starts:
        raise ValueError("the logged dialogues hold no assistant turn to train at")
    return starts


def task_reward(metric: str, token_penalty: float = 0.0, source: str = "task") -> Callable[..., list[float]]:
    """TRL reward function of a source of :data:`REWARDS`: each dialogue's final-turn task score (minus the token
    penalty for task-efficiency), or the training user's verdict."""
    key = "verdict" if source == "verdict" else metric
    penalty = token_penalty if source == "task-efficiency" else 0.0

    def reward(completions: list[Any], dialogues: list[Dialogue], **_: Any) -> list[float]:
        return [d.scores[key] - penalty * d.scores["assistant_tokens"] for d in dialogues]

    reward.__name__ = key  # TRL logs it as rewards/<key>/mean
    return reward


def rollout_seed(seed: int, step: int, rank: int = 0) -> int:
    """The rollout seed of a training step: a function of the run's seed, the step and (in a launch of several
    processes) the process's rank only, so a resumed run samples as an uninterrupted one."""
    return seed * RUN_SEED_STRIDE + step * STEP_SEED_STRIDE + 1 + rank * 104_729


def process_rank() -> tuple[int, int]:
    """``(rank, number of processes)`` under ``accelerate launch`` or ``torchrun`` (which set ``RANK`` and
    ``WORLD_SIZE``); ``(0, 1)`` for a plain run. Every process trains its share of each step's dialogues; the
    first (rank 0) alone writes the run folder, evaluates and saves."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


# ----------------------------------------------------------------------------- the trainer


@dataclass
class RolloutStats:
    """What the rollout_func did, per call (for benchmarks and logs)."""

    seconds: list[float]
    policy_tokens: list[int]
    all_tokens: list[int]


def reward_bar(desc: str) -> Any:
    """A trainer callback showing one progress bar per run with the latest mean reward (instead of a printed dict per step)."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class RewardBar(TrainerCallback):
        bar: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=desc, unit="step", disable=no_bars())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if self.bar is not None and logs and "reward" in logs:
                self.bar.n = state.global_step
                self.bar.set_postfix(reward=f"{logs['reward']:.3f}", refresh=True)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.n = state.global_step
                self.bar.close()

    return RewardBar()


def grpo_args(cfg: TrainConfig) -> Any:
    """TRL's ``GRPOConfig`` for ``cfg``: the same for every method."""
    import torch
    from trl import GRPOConfig

    from .memory import micro_batches
    from .profiles import get_profile, uses_cuda

    prof, run = get_profile(cfg.profile), cfg.folder()
    cuda = uses_cuda(cfg.profile)
    # every step samples prompts_per_step × group_size dialogues at once; on a GPU the loss runs over them in
    # micro-batches that the memory plan fits to the profile's GPU, with gradient accumulation (the same update)
    micro, _ = micro_batches(cfg.profile, "training", max_messages=cfg.budget(), prompts_per_step=cfg.prompts_per_step,
                             group_size=cfg.group_size, lora_r=cfg.lora_r)
    # under `accelerate launch` the step's dialogues are shared out among the processes: the same budget per step
    batch, processes = cfg.prompts_per_step * cfg.group_size, process_rank()[1]
    if batch % processes:
        raise ValueError(f"{batch} dialogues a step (prompts_per_step × group_size) do not share out among {processes} processes")
    micro = math.gcd(micro, batch // processes)
    accumulate = batch // processes // micro
    bf16 = cuda and torch.cuda.is_bf16_supported()
    if cfg.report_to == "tensorboard":  # transformers' TensorBoard callback reads its folder from this variable
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run / "tb")
    return GRPOConfig(
        output_dir=str(run / "checkpoints"), max_steps=cfg.steps, per_device_train_batch_size=micro, gradient_accumulation_steps=accumulate,
        num_generations=cfg.group_size, learning_rate=cfg.learning_rate, lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, cfg.steps // 20), beta=cfg.kl_beta, loss_type="bnpo", temperature=prof.policy_temperature,
        max_completion_length=cfg.budget() * prof.max_new_tokens * 2, logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to], seed=cfg.seed, data_seed=cfg.seed,
        bf16=bf16, fp16=cuda and not bf16, use_cpu=not cuda, dataloader_num_workers=0, disable_tqdm=True,  # RewardBar instead
        # TRL turns checkpointing on by default (under its deprecated name): it saves GPU memory, and on a CPU only
        # costs a second forward pass
        activation_checkpointing=cuda, gradient_checkpointing=None,
    )


def make_trainer(cfg: TrainConfig, starts: Sequence[Start], user: Any, callbacks: Sequence[Any] = ()) -> tuple[Any, RolloutStats]:
    """TRL's GRPOTrainer with the rollout engine as its ``rollout_func``; nothing is trained yet."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from .profiles import device_for, get_profile, load_model
    from .rollout import Policy, rollout
    from .tasks import get_task

    prof = get_profile(cfg.profile)
    task = get_task(cfg.task)
    max_messages = cfg.budget()
    model, tok = load_model(prof.policy_model, device=device_for(cfg.profile))
    args = grpo_args(cfg)
    stats = RolloutStats([], [], [])
    learn_turns = 1 if cfg.method == "static" else None

    def rollout_func(prompts: list[str], trainer: Any) -> dict[str, Any]:
        # TRL hands each start already repeated group_size times and wants one dialogue back per entry.
        picked = [starts[int(p)] for p in prompts]
        policy = Policy(trainer.model, tok, f"{cfg.method}-policy", prof.policy_temperature, prof.max_new_tokens)
        training = trainer.model.training
        trainer.model.eval()
        batch = rollout(policy, user, task, [s.goal for s in picked], max_messages, seed=rollout_seed(cfg.seed, trainer.state.global_step, process_rank()[0]),
                        contexts=[s.context for s in picked] if learn_turns else None, learn_turns=learn_turns)
        trainer.model.train(training)
        stats.seconds.append(batch.seconds)
        stats.policy_tokens.append(int(sum(sum(m) for m in batch.env_mask)))
        stats.all_tokens.append(batch.generated_tokens)
        return batch.as_trl()

    peft_config = None
    if cfg.lora():
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = GRPOTrainer(
        model=model, reward_funcs=task_reward(task.metric, cfg.token_penalty, cfg.reward), args=args,
        train_dataset=Dataset.from_list([{"prompt": str(i)} for i in range(len(starts))]), processing_class=tok,
        rollout_func=rollout_func, peft_config=peft_config, callbacks=list(callbacks),
    )
    tidy_trainer(trainer)  # no dict printed per step; the logs go to log.json and the reward bar
    return trainer, stats


def training_user(cfg: TrainConfig, need: dict[str, Any]) -> Any:
    """The user a run trains against: its method's (:data:`SIMULATOR`), or for method oracle the scripted simulator of
    ``cfg.user`` (for method calibrated, ``cfg.user`` picks the calibration run whose adapter ``need`` holds)."""
    from .users import ScriptedUsers, make_user, persona_from_spec

    if cfg.user and cfg.method == "oracle":
        return ScriptedUsers(persona_from_spec(cfg.user))
    return make_user(SIMULATOR[cfg.method], cfg.profile, need.get("adapter"))


def real_reward_curve(cfg: TrainConfig, real_user: Any, goals: Sequence[dict[str, Any]], seed: int) -> Any:
    """A trainer callback: every ``cfg.real_every`` steps (and before the first) the policy plays ``goals`` (a few
    test goals) with the real users, and their task score and verdict go into the log beside the training reward
    (``real_<metric>``, ``real_verdict``). The random state is put back afterwards, so training goes on exactly as
    it would have without the curve."""
    import random

    import numpy as np
    import torch
    from transformers import TrainerCallback

    from .evaluate import evaluate_policy
    from .profiles import get_profile
    from .rollout import Policy
    from .tasks import get_task

    prof, metric = get_profile(cfg.profile), get_task(cfg.task).metric

    def score(state: Any, model: Any, tokenizer: Any) -> None:
        if any(h.get("step") == state.global_step and "real_verdict" in h for h in state.log_history):
            return  # this point was logged before an interruption
        saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
        policy = Policy(model, tokenizer, "policy", prof.policy_temperature, prof.max_new_tokens)
        scores, _ = evaluate_policy(policy, real_user, cfg.task, goals, cfg.budget(), seed, False, prof.eval_batch)
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
        state.log_history.append({"step": state.global_step, f"real_{metric}": scores[metric], "real_verdict": scores["verdict"]})

    class RealRewardCurve(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 0:
                score(state, kw["model"], kw["processing_class"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % cfg.real_every == 0 or state.global_step == state.max_steps:
                score(state, kw["model"], kw["processing_class"])

    return RealRewardCurve()


def training_starts(cfg: TrainConfig, need: dict[str, Any], world: Any = None) -> list[Start]:
    """Interactive methods start from the task's train goals (``world``: the toy world, for its tasks); Static
    Context from the logged contexts."""
    from .sources import task_goals

    if cfg.method == "static":
        return static_contexts(need["logged"], cfg.task, cfg.budget())
    return [Start(t["goal"]) for t in task_goals(cfg.task, "train", world)]


def save_policy(trainer: Any, folder: Path) -> Path:
    """The trained weights (or LoRA adapter) with the tokenizer, written to a temp folder and renamed."""
    from .quiet import no_library_bars

    with atomic_dir(folder, ".saving") as tmp, no_library_bars():
        trainer.save_model(str(tmp))
    return folder


def base_eval_path(cfg: TrainConfig, who: str, adapter: Path | None) -> Path:
    """Where the base policy's scores with one user (``who``: 'real', 'naive', 'calibrated' or a scripted
    simulator's spec, :meth:`TrainConfig.simulator`) are kept. The base
    policy, the goals and the seed do not depend on the method, so the real users' scores are computed once per
    task and seed for every method, and a simulator's once for every method trained against it."""
    from .paths import runs_dir
    from .settings import short_hash
    from .world import WorldConfig

    key = {"profile": cfg.profile, "task": cfg.task, "user": who, "adapter": str(adapter.resolve()) if adapter and (who == "calibrated" or who.startswith("lm ")) else "",
           "n_eval": cfg.n_eval if who == "real" else cfg.n_eval_simulator, "max_messages": cfg.budget(), "seed": cfg.seed,
           "world": WorldConfig.make().key(), "layout": "scores with the verdict, and per_goal"}
    name = who if who in ("real", "naive", "calibrated") else "lm" if who.startswith("lm ") else "scripted"  # no spec in a file name
    return runs_dir() / "base-eval" / f"{cfg.profile}-{cfg.task}-{name}-seed{cfg.seed}-{short_hash(key)}.json"


def cached_scores(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``path`` holds, or ``compute()``'s result, written there (atomically) for the next run."""
    import json

    if path.is_file():
        return json.loads(path.read_text())
    scores = compute()
    atomic_write_json(path, scores)
    return scores


def train(cfg: TrainConfig, callbacks: Sequence[Any] = (), force: bool = False, progress: bool = True, world: Any = None) -> RunResult:
    """Train one method and evaluate it; returns (and writes, as ``eval.json``) its :class:`RunResult`.

    A finished run (its ``eval.json`` exists) is returned as it is unless ``force``; an interrupted
    one resumes from its newest checkpoint. ``world``: the toy world whose goals it trains and evaluates on
    (default: the world of the default settings, built or loaded).
    """
    need = check_inputs(cfg)  # clear errors before any compute
    run = cfg.folder()
    done = run / "eval.json"
    if process_rank()[1] > 1:  # several processes of one launch: they train together, the first writes
        from .world import WorldConfig, cached_world

        if cached_world(WorldConfig.make()) is None:  # its pre-training would wait for the other processes, which wait for it
            raise ValueError("under accelerate launch the toy world must be built first, by one process: run `calirl world build`")
        if force:  # the first would remove checkpoints the others may be resuming from
            raise ValueError(f"--force under accelerate launch: remove the run folder {run} first, then launch")
        if done.is_file() and not force:
            return RunResult.load(run)
        if process_rank()[0] > 0:
            return _train_and_evaluate(cfg, need, run, callbacks, False, world)
    with folder_lock(run):  # a second `train` of the same run waits for the first, then finds it finished
        if done.is_file() and not force:
            return RunResult.load(run)
        if force and run.exists():
            shutil.rmtree(run)  # train again from scratch: no old checkpoint may be resumed
        run.mkdir(parents=True, exist_ok=True)
        cfg.save(run)
        return _train_and_evaluate(cfg, need, run, callbacks, progress, world)


def _train_and_evaluate(cfg: TrainConfig, need: dict[str, Any], run: Path, callbacks: Sequence[Any], progress: bool, world: Any = None) -> Any:
    from .checkpoints import train_or_resume
    from .evaluate import evaluate_policy
    from .profiles import get_profile
    from .rollout import Policy
    from .settings import set_seed
    from .sources import task_goals
    from .tasks import get_task
    from .users import make_user

    set_seed(cfg.seed)
    prof = get_profile(cfg.profile)
    max_messages = cfg.budget()
    starts = training_starts(cfg, need, world)
    train_user = training_user(cfg, need)
    real_user = train_user if cfg.simulator() == "real" else make_user("real", cfg.profile)
    bar = [reward_bar(f"GRPO {cfg.method} · {cfg.task} · seed {cfg.seed}")] if progress else []
    goals = [t["goal"] for t in task_goals(cfg.task, "test", world)][: cfg.n_eval]
    eval_seed = EVAL_SEED_OFFSET + cfg.seed
    curve = [real_reward_curve(cfg, real_user, goals[:REAL_CURVE_GOALS], eval_seed)] if cfg.real_every else []
    trainer, stats = make_trainer(cfg, starts, train_user, [*bar, *curve, *callbacks])

    def evaluate(name: str, user: Any) -> tuple[dict[str, float], list[Dialogue]]:
        policy = Policy(trainer.model, trainer.processing_class, name, prof.policy_temperature, prof.max_new_tokens)
        n = cfg.n_eval if user is real_user else cfg.n_eval_simulator
        return evaluate_policy(policy, user, cfg.task, goals[:n], max_messages, eval_seed, progress, prof.eval_batch)

    if process_rank()[0] > 0:  # another process of a launch: its share of the training, nothing else
        train_or_resume(trainer, run / "checkpoints", cfg.steps)
        return {"run": str(run), "rank": process_rank()[0]}
    metric = get_task(cfg.task).metric
    base, base_per_goal = base_scores(cfg, need, evaluate, real_user, train_user, metric)
    start = time.perf_counter()
    checkpoint = train_or_resume(trainer, run / "checkpoints", cfg.steps)  # a finished run is loaded, not trained again
    seconds = time.perf_counter() - start
    save_training(trainer, run, metric, f"{cfg.method} on {cfg.task} (seed {cfg.seed})")
    real, real_dialogues = evaluate(cfg.method, real_user)
    sim, sim_dialogues = (real, []) if train_user is real_user else evaluate(cfg.method, train_user)
    trained = {"simulator": sim, "real": real}
    write_jsonl(run / "eval_dialogues.jsonl", sim_dialogues + real_dialogues)
    result = RunResult(cfg.method, cfg.profile, cfg.task, cfg.seed, metric, cfg.simulator(), trainer.state.global_step, base, trained, str(run),
                       resumed_from=checkpoint, train_seconds=seconds, rollout_seconds=sum(stats.seconds), policy_tokens=sum(stats.policy_tokens),
                       per_goal={"base": base_per_goal, "trained": [d.scores[metric] for d in real_dialogues]})
    result.save()
    # the checkpoints hold the optimiser state, needed only to resume; a finished run keeps its policy (a smol
    # run's checkpoints alone take 1.6 GB)
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    return result


def base_scores(cfg: TrainConfig, need: dict[str, Any], evaluate: Callable[[str, Any], tuple[dict[str, float], list[Dialogue]]],
                real_user: Any, train_user: Any, metric: str) -> tuple[dict[str, dict[str, float]], list[float]]:
    """The base policy's scores with the real users and with the training user, and its real-user score per goal.

    Kept under ``runs/base-eval/`` and shared by every method of this task and seed (:func:`base_eval_path`): one
    Base for the whole table. The oracle's training user is the real user (same seed, same dialogues): scored once.
    """
    def cached(who: str, user: Any) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            scores, dialogues = evaluate("base", user)
            return {"scores": scores, "per_goal": [d.scores[metric] for d in dialogues]}
        return cached_scores(base_eval_path(cfg, who, need.get("adapter")), compute)

    real = cached("real", real_user)
    base = {"real": real["scores"]}
    base["simulator"] = base["real"] if train_user is real_user else cached(cfg.simulator(), train_user)["scores"]
    return base, real["per_goal"]


def save_training(trainer: Any, run: Path, metric: str, title: str) -> None:
    """The trained policy (``policy/``), the trainer's log (``log.json``) and its reward curve (``rewards.png``)."""
    from .plots import reward_curve

    save_policy(trainer, run / "policy")
    log = [json_safe(h) for h in trainer.state.log_history]
    atomic_write_json(run / "log.json", log)
    reward_curve(log, metric, title, run / "rewards.png")


def format_result(r: RunResult) -> str:
    """Base → trained, against the training simulator and against the real users."""
    m = r.metric
    lines = [f"{r.label} on {r.task} (seed {r.seed}, {r.steps} steps, {r.train_seconds:.0f} s of training)"]
    for who, label in (("simulator", f"its training simulator ({r.simulator})"), ("real", "the real users")):
        b, t = r.base[who], r.trained[who]
        lines.append(f"  {m} with {label}: {b[m]:.3f} → {t[m]:.3f}   (assistant tokens {b['assistant_tokens']:.1f} → {t['assistant_tokens']:.1f})")
    return "\n".join(lines)


def train_job(profile: str, method: str, task: str, seed: int, settings: dict[str, Any] | None = None) -> RunResult:
    """Train one method on one task with one seed (reused when finished), without a progress bar: a job of a worker
    pool (``calirl reproduce``, ``calirl lab``); ``settings``: other TrainConfig fields."""
    return train(TrainConfig.make(profile=profile, method=method, task=task, seed=seed, **(settings or {})), progress=False)


def finished_results(methods: Sequence[str] = tuple(METHODS), tasks: Sequence[str] = tuple(TASKS),
                     seeds: Sequence[int] = (0, 1, 2), **settings: Any) -> list[RunResult]:
    """The result of every finished run with these settings (nothing is trained; unfinished runs are left out)."""
    out = []
    for method in methods:
        for task in tasks:
            for seed in seeds:
                folder = TrainConfig.make(method=method, task=task, seed=seed, **settings).folder()
                if (folder / RunResult.FILE).is_file():
                    out.append(RunResult.load(folder))
    return out
