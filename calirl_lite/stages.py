"""What each stage is given: its settings, resolved once into a :class:`Stage`, and the contract between stages.

A stage's settings dataclass names things — a profile, a task, a calibration seed. At the stage's entry
(:func:`calibration_stage`, :func:`train_stage`) the names become objects, once: the profile's models
(:class:`~calirl_lite.profiles.Models`), the task, the toy world the stage uses, the message budget and the run
folder. Every function below takes the :class:`Stage`.

The contract between stages is written here and nowhere else:

* **which world a folder belongs to** — a run folder's name carries a hash of its settings and of the key of the
  toy world the stage actually used, and of the calibration it reads (:func:`run_folder`); a stage that uses no toy
  world (the English world's tasks on a real model) is keyed on none. A rebuilt or another world, or another
  calibration, never reuses a run;
* **which calibration a training run uses** — :func:`calibration_of`: the calibration of the same profile and
  task, seed ``calibration_seed``, at the job's run mode with the context's calibration settings (the defaults, but
  in the registered study its record's); for ``--method calibrated --user SPEC`` the LM calibrated
  on that scripted simulator's traces. Its adapter is the simulator of the calibrated method (and, for Static
  Context, the completer of logged dialogues); its traces are Static Context's logged contexts.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context import Context
from .profiles import Models, Profile, get_profile
from .results import METHOD_LABELS
from .settings import Settings, short_hash
from .task_family import Task
from .tasks import TASKS, get_task, scored_tasks
from .users import CONTEXTS, RealUserSpec, User, make_real_user, parse_real_user, persona_from_spec
from .world import World, WorldConfig, build_world

# ----------------------------------------------------------------------------- the real users


def real_user_spec(value: str, profile: Profile) -> RealUserSpec:
    """Who a stage's real users are — the one place the choice is read: the settings' ``real_user`` where it is
    given, else the profile's ``oracle`` (:func:`~calirl_lite.users.parse_real_user`; a bad spec is an error naming
    the field, or the profile)."""
    if value.strip():
        return parse_real_user(value, "real_user")
    return parse_real_user(profile.oracle, f"profile {profile.name!r}'s oracle")


def check_real_user(value: str, profile: str, scripted_field: str = "") -> RealUserSpec:
    """The real users of settings with ``real_user`` = ``value`` and profile ``profile``, checked: an LLM is refused
    with profile tiny (whose LM speaks only the toy world's language, and whose numbers are the scripted users'), and
    beside a setting that puts scripted users' replies in the real users' place (``scripted_field``: persona, user,
    corrected)."""
    spec = real_user_spec(value, get_profile(profile))
    if spec.kind != "scripted" and profile == "tiny":
        raise ValueError(f"real_user {value!r}: the tiny profile's real users are the toy world's scripted users (its LM speaks only the world's "
                         "language); an LLM real user goes with another profile: smol, colab-t4 or paper")
    if spec.kind != "scripted" and scripted_field:
        raise ValueError(f"real_user {value!r} goes with no {scripted_field}: {scripted_field} puts scripted users' replies where the real "
                         "users' would be, and an LLM's cannot be replayed; give one of them")
    return spec


# ----------------------------------------------------------------------------- phase 1: calibration

CALIBRATION_METHODS = {
    "sft": "supervised fine-tuning (LoRA or full) of the simulator on the real users' turns",
    "sft+realism": "SFT, then GRPO of the simulator on a discriminator's log-odds that its turns are the real users' (a KL to the SFT simulator)",
}
"""The ways to calibrate a simulator."""

VALIDATION_GOALS = 200
"""Each task's last this many train goals are its validation goals: calibrations are measured and chosen on them; no
calibration trace is collected on them and no evaluation uses them (a test checks both)."""


@dataclass
class CalibrationConfig(Settings):
    """Settings of simulator calibration (``calirl calibrate``)."""

    profile: str = "tiny"
    """model profile (tiny, smol, colab-t4, paper)"""
    user_model: str = ""
    """the simulator's base model: a folder or hub id (default: the profile's user model)"""
    task: str = "arith-chat"
    """task whose real users the simulator learns: arith-chat, docedit-chat (toy world), math-chat, doc-chat (English world) or chitchat (real human turns)"""
    persona: str = ""
    """toy tasks: learn these scripted users instead of the real ones — a spec as `calirl train --user` takes
    (sycophantic, p_accept_wrong=0.8, …): the mismatch lab's LM simulators with one error ('' = the real users)"""
    n_traces: int = 600
    """training dialogues of the base policy with the real users (paper: 1,860 MATH-Chat, 16,028 MediumDocEdit); with
    ``steps`` chosen by the calibration study's rule on the validation gap (``calirl calibration-study``,
    docs/results.md): 600 traces and 600 SFT steps"""
    n_heldout: int = 200
    """held-out real-user dialogues for the gap metrics, on validation goals (each task's last train goals, which no
    trace and no evaluation uses: the last 200)"""
    n_sim_dialogues: int = 100
    """dialogues of the base policy with each simulator for its behaviour statistics"""
    max_messages: int = 0
    """message budget of every dialogue collected or sampled here (0: the world's, as in `calirl train`)"""
    max_new_tokens: int = 0
    """tokens a model writes per turn at most, the policy's and the simulator's (0: the profile's)"""
    seed: int = 0
    """seed of trace collection, training and evaluation rollouts"""
    steps: int = 600
    """SFT optimiser steps (chosen with ``n_traces``)"""
    batch_size: int = 16
    """examples (user turns) per SFT step"""
    learning_rate: float = 2e-3
    """peak learning rate of the LoRA parameters"""
    lora_r: int = 16
    """LoRA rank"""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)"""
    finetune: str = "lora"
    """'lora' (an adapter on the simulator's base model) or 'full' (every weight; the tiny profile only)"""
    decision_weight: float = 1.0
    """weight of a user turn's decision tokens in the SFT loss — its first token (accept, reject, answer, decline,
    leave …) and the end-of-chat marker — against 1 for the others (1: the plain loss)"""
    method: str = "sft"
    """'sft' (supervised fine-tuning on the real users' turns) or 'sft+realism' (then GRPO of the simulator on a
    discriminator's log-odds that its turns are the real users', with a KL to the SFT simulator; toy tasks)"""
    realism_steps: int = 100
    """sft+realism: GRPO steps on the realism reward (8 contexts × 8 sampled turns each)"""
    realism_kl: float = 0.1
    """sft+realism: weight of the KL term to the SFT simulator"""
    gap_samples: int = 8
    """replies sampled from each LM simulator at every held-out history to split its mass outside the real users'
    replies by what those replies do (0: one category, 'replies the real users never give'; the gap's total is the same)"""
    load_in_4bit: bool | None = None
    """QLoRA: load the base model in 4-bit nf4 (CUDA only); unset: the profile's ``user_in_4bit``, which is also how
    ``calirl train`` loads the simulator and finds this run's adapter"""
    save_steps: int = 50
    """checkpoint every this many steps (an interrupted run resumes from the last one)"""
    max_length: int = 512
    """longest SFT example in tokens (longer ones are cut at the end)"""
    real_user: str = ""
    """who the real users are, whose traces the simulator learns: '' (the profile's oracle: the world's scripted users
    for every profile the kit ships), 'scripted', an LLM behind an OpenAI-compatible endpoint,
    'endpoint:BASE_URL#MODEL' (a vLLM or TGI server; API key from $CALIRL_REAL_USER_API_KEY), or a chat model loaded
    here, 'local:MODEL' (a folder or hub id) — not with profile tiny"""
    out_dir: str = ""
    """run folder (default: runs/calibrate-<profile>-<task>-seed<seed>-<hash of the settings and of the world it used>)"""

    SMOKE = {"n_traces": 40, "n_heldout": 12, "n_sim_dialogues": 12, "steps": 8, "batch_size": 8, "save_steps": 4, "realism_steps": 3}
    CLASS = {"n_traces": 600, "n_heldout": 50, "n_sim_dialogues": 50, "steps": 150, "gap_samples": 0}
    BOUNDS = {"n_traces": (4, None), "n_heldout": (2, None), "n_sim_dialogues": (1, None), "steps": (1, None), "batch_size": (1, None),
              "decision_weight": (0, None), "realism_steps": (1, None), "realism_kl": (0, None), "gap_samples": (0, None),
              "lora_r": (1, None), "save_steps": (1, None), "max_length": (1, None), "learning_rate": (0, None),
              "max_messages": (0, None)}
    LATER = {"real_user": ""}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real_user(self.real_user, self.profile, "persona" if self.persona else "")
        if self.load_in_4bit is None:
            self.load_in_4bit = get_profile(self.profile).user_in_4bit
        if self.finetune not in ("lora", "full"):
            raise ValueError(f"finetune must be 'lora' or 'full', got {self.finetune!r}")
        if self.finetune == "full" and (self.load_in_4bit or get_profile(self.profile).needs_cuda):
            raise ValueError("finetune 'full' trains every weight of the simulator: the tiny and smol profiles only, without 4-bit")
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; methods: {', '.join(CALIBRATION_METHODS)}")
        if self.method == "sft+realism" and self.task not in TASKS:
            raise ValueError(f"method 'sft+realism' reads user turns with the toy world's tasks ({', '.join(TASKS)}), not {self.task!r}")
        get_task(self.task)
        if self.persona:
            if self.task not in TASKS:
                raise ValueError(f"persona {self.persona!r}: scripted users with errors exist in the toy world only, not for task {self.task!r}")
            persona_from_spec(self.persona)


# ----------------------------------------------------------------------------- phase 2: GRPO training


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
    max_new_tokens: int = 0
    """tokens a model writes per turn at most, the policy's and the simulator's (0: the profile's)"""
    reward: str = "task"
    """where the reward comes from: task, task-efficiency or verdict (see REWARDS)"""
    token_penalty: float = 0.0
    """reward task-efficiency: subtracted from the task score per assistant token (CollabLLM's efficiency term)"""
    user: str = ""
    """scripted users with errors instead of the real users — single errors (sycophantic, over-forthcoming:0.5, …) or
    behaviours set (p_accept_wrong=0.8), comma-separated ('' = the real users): method oracle trains against them,
    method calibrated against the LM calibrated on their traces (`calirl calibrate --persona`)"""
    corrected: str = ""
    """method calibrated only: contexts where the calibrated simulator's reply is replaced by the one its real users
    would give after the same history, comma-separated (of opening, right answer, wrong answer, question, other; see
    `calirl diagnose`) — '' = none"""
    static_turns: str = "first"
    """method static only: which of the policy's turns after a logged context are trained — 'first' (the one written
    at the logged context, as Static Context RL does; the later turns only complete the dialogue for its reward) or
    'all' (every turn it writes, as the interactive methods train: the same signal per dialogue)"""
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
    real_user: str = ""
    """who the real users are — method oracle trains against them, every method is evaluated with them, and the
    calibration used learned their traces: '' (the profile's oracle: the world's scripted users for every profile the
    kit ships), 'scripted', an LLM behind an OpenAI-compatible endpoint, 'endpoint:BASE_URL#MODEL' (a vLLM or TGI
    server; API key from $CALIRL_REAL_USER_API_KEY), or a chat model loaded here, 'local:MODEL' (a folder or hub id) —
    not with profile tiny"""
    vllm: bool = False
    """sample the policy's turns with TRL's colocated vLLM engine (GRPOConfig's use_vllm, vllm_mode='colocate'; needs
    `pip install vllm` and a CUDA GPU): much less overhead per token than the kit's own engine, which still samples
    the simulator's turns; the before/after evaluation uses the engine too"""
    vllm_memory: float = 0.2
    """with vllm: the share of the GPU's memory the engine takes for its copy of the policy and the policy's KV cache
    (GRPOConfig's vllm_gpu_memory_utilization)"""
    out_dir: str = ""
    """run folder (default: runs/train-<method>-<profile>-<task>-seed<seed>-<hash of the settings and of the world it used>)"""

    SMOKE = {"steps": 4, "prompts_per_step": 2, "group_size": 4, "n_eval": 8, "n_eval_simulator": 8, "save_steps": 2}
    CLASS = {"steps": 20, "n_eval": 100, "n_eval_simulator": 20}
    BOUNDS = {"steps": (1, None), "prompts_per_step": (1, None), "group_size": (2, None), "n_eval": (1, None), "n_eval_simulator": (1, None),
              "save_steps": (1, None), "lora_r": (1, None), "learning_rate": (0, None), "kl_beta": (0, None), "token_penalty": (0, None),
              "real_every": (0, None), "vllm_memory": (0.05, 0.95)}

    LATER = {"static_turns": "first", "real_user": "", "vllm": False, "vllm_memory": 0.2}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real_user(self.real_user, self.profile, "user" if self.user else "corrected" if self.corrected else "")
        if self.static_turns not in ("first", "all"):
            raise ValueError(f"static_turns must be 'first' or 'all', got {self.static_turns!r}")
        if self.static_turns != "first" and self.method != "static":
            raise ValueError(f"static_turns applies to method static only (this run's method is {self.method!r})")
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
            if self.method not in ("oracle", "calibrated"):
                raise ValueError(f"user {self.user!r} replaces the real users an interactive run trains against (oracle) or its simulator "
                                 f"learned (calibrated): it goes with method 'oracle' or 'calibrated', not {self.method!r}")
            persona_from_spec(self.user)
        if self.corrected:
            if self.method != "calibrated":
                raise ValueError(f"corrected {self.corrected!r} corrects a calibrated simulator: it goes with method 'calibrated', not {self.method!r}")
            unknown = [c for c in self.corrected_contexts() if c not in CONTEXTS]
            if unknown:
                raise ValueError(f"corrected: {', '.join(map(repr, unknown))} is no context of a user turn; contexts: {', '.join(CONTEXTS)}")
        if self.report_to not in ("none", "tensorboard"):
            raise ValueError(f"report_to must be 'none' or 'tensorboard', got {self.report_to!r}")
        if self.vllm and not get_profile(self.profile).needs_cuda:
            raise ValueError(f"vllm samples on a CUDA GPU: it goes with a GPU profile (colab-t4, paper), not {self.profile!r}")

    def simulator(self) -> str:
        """Who the run trains against: 'real', 'naive', 'calibrated', the spec of a scripted simulator (``user``, method
        oracle) or 'lm <spec>' (the LM calibrated on that scripted simulator's traces, method calibrated)."""
        if self.user:
            return self.user if self.method == "oracle" else f"lm {self.user}"
        if self.corrected:
            return f"calibrated, corrected at: {', '.join(self.corrected_contexts())}"
        return SIMULATOR[self.method]

    def corrected_contexts(self) -> tuple[str, ...]:
        """``corrected`` as a tuple of context names."""
        return tuple(c.strip() for c in self.corrected.split(",") if c.strip())



# ----------------------------------------------------------------------------- stages and the contract


@dataclass(frozen=True)
class Stage:
    """One stage's settings with every name resolved, once, at its entry: what the stage's functions take."""

    cfg: Any
    """the stage's settings (:class:`CalibrationConfig`, :class:`TrainConfig` …): the record, written as config.json"""
    ctx: Context
    """where it runs: the run mode, the toy world, the folders"""
    models: Models
    """the profile's models, and where they come from"""
    task: Task
    """the task family"""
    world_config: WorldConfig | None
    """the toy world whose goals, traces or LM the stage uses (None where it uses none): its key names the folder"""
    budget: int
    """the message budget of every dialogue (user and assistant messages together)"""
    folder: Path | None
    """the run folder (:func:`run_folder`); None for a stage that keeps none (an evaluation)"""

    @property
    def profile(self) -> Profile:
        return self.models.profile

    @functools.cached_property
    def world(self) -> World | None:
        """The toy world the stage uses, loaded (or built) the first time it is asked for; None where it uses none."""
        return build_world(self.world_config, verbose=False) if self.world_config is not None else None

    @functools.cached_property
    def real_user_spec(self) -> RealUserSpec:
        """Who the stage's real users are: its settings' ``real_user``, else its profile's ``oracle`` (:func:`real_user_spec`)."""
        return real_user_spec(getattr(self.cfg, "real_user", ""), self.profile)

    def real_user(self) -> User:
        """The stage's real users, made anew: the world's scripted users, or an LLM behind an endpoint, its replies
        kept under the context's cache (:func:`~calirl_lite.users.make_real_user`) and its calls counted from 0."""
        return make_real_user(self.real_user_spec, self.profile, self.ctx.cache, self.ctx.real_user_key)


@dataclass(frozen=True)
class TrainStage(Stage):
    """A training run's stage, with the calibration it uses (:func:`calibration_of`)."""

    calibration: Stage | None = None
    """the calibration run whose simulator (and, for Static Context, logged dialogues) the run uses; None for the
    methods that use none (naive, oracle)"""
    lora: bool = False
    """train a LoRA adapter (``finetune``: lora, or auto on a GPU profile) instead of every weight"""


def uses_world(profile: Profile, task: Task) -> bool:
    """Whether a stage with this profile and task uses the toy world: for the toy tasks' goals and traces, or for the
    tiny profile's LM."""
    return task.name in TASKS or "world" in (profile.policy_model, profile.user_model)


def run_folder(ctx: Context, prefix: str, name: str, settings: Settings, world: WorldConfig | None, out_dir: str = "",
               exclude: tuple[str, ...] = ("out_dir",), real_user: RealUserSpec | None = None, calibration: Path | None = None) -> Path:
    """``out_dir`` if given, else ``<ctx.runs>/<prefix>-<name>-<hash>``: the hash covers every setting but those in
    ``exclude``, the key of ``world`` — the toy world the run draws goals, traces or models from —, the real users
    where they are an LLM (``real_user``: from the settings or the profile) and the folder of the calibration the run
    reads (``calibration``: its name hashes the calibration's settings and world), so neither a changed setting nor
    another or rebuilt world nor other real users nor another calibration ever resume or reuse an old run."""
    if out_dir:
        return Path(out_dir)
    extra = {"world": world.key()} if world is not None else {}
    if real_user is not None and real_user.kind != "scripted":
        extra["real_user"] = str(real_user)
    if calibration is not None:
        extra["calibration"] = calibration.name
    return ctx.runs / f"{prefix}-{name}-{settings.digest(exclude=exclude, extra=extra)}"


def kept_result(ctx: Context, kind: str, name: str, key: dict[str, Any], world: WorldConfig | None, suffix: str = ".json") -> Path:
    """Where a result that later runs reuse is kept (a base policy's evaluation, a gap-study point):
    ``<ctx.runs>/<kind>/<name>-<hash of key and of the world used>``."""
    return ctx.runs / kind / f"{name}-{short_hash({**key, 'world': world.key() if world is not None else ''})}{suffix}"


def resolve(ctx: Context, profile: str, task: str, max_messages: int = 0, cfg: Any = None) -> Stage:
    """The names of a stage resolved, once: the profile's models, the task, the toy world it uses and the message
    budget (``max_messages``, or the world's); no run folder (the stages that keep one add it). Settings ``cfg`` with a
    ``max_new_tokens`` > 0 give the profile that many tokens a turn."""
    prof, family = get_profile(profile), get_task(task)
    if getattr(cfg, "max_new_tokens", 0):
        prof = dataclasses.replace(prof, max_new_tokens=cfg.max_new_tokens)
    world = ctx.world if uses_world(prof, family) else None
    models = Models(prof, ctx.world if "world" in (prof.policy_model, prof.user_model) else None, ctx.cache)
    return Stage(cfg, ctx, models, family, world, max_messages or ctx.world.max_messages, None)


def calibration_stage(cfg: CalibrationConfig, ctx: Context) -> Stage:
    """The calibration run of ``cfg`` in ``ctx``, its names resolved."""
    stage = resolve(ctx, cfg.profile, cfg.task, cfg.max_messages, cfg)
    folder = run_folder(ctx, "calibrate", f"{cfg.profile}-{cfg.task}-seed{cfg.seed}", cfg, stage.world_config, cfg.out_dir, real_user=stage.real_user_spec)
    return dataclasses.replace(stage, folder=folder)


def evaluation_stage(cfg: Any, ctx: Context) -> Stage:
    """A stage that keeps no run folder (``calirl evaluate``): the names of ``cfg`` (its profile, task and
    max_messages) resolved."""
    return resolve(ctx, cfg.profile, cfg.task, cfg.max_messages, cfg)


def calibration_for(ctx: Context, profile: str, task: str, seed: int = 0, persona: str = "", max_new_tokens: int = 0, real_user: str = "") -> Stage:
    """The contract: the calibration run whose simulator a stage of ``profile`` and ``task`` uses — calibration seed
    ``seed`` (0 unless a training run says otherwise), at the job's run mode with the context's calibration settings
    (:attr:`~calirl_lite.context.Context.calibration`: the defaults but in the registered study), of the real users (those ``real_user``
    names, as the stage's own setting does) or (``persona``) of a scripted simulator's; ``max_new_tokens`` as the
    stage's own (0: the profile's). Training, evaluation with the calibrated user, the gap study and the lab all ask here."""
    named = {"profile": profile, "task": task, "seed": seed, "persona": persona, "max_new_tokens": max_new_tokens, "real_user": real_user}
    return calibration_stage(ctx.make(CalibrationConfig, **{**dict(ctx.calibration), **named}), ctx)


def calibration_of(cfg: TrainConfig, ctx: Context) -> Stage:
    """The calibration run a training run of ``cfg`` uses: seed ``calibration_seed``, on the traces of the run's real
    users; for method calibrated with a ``user`` spec, the LM calibrated on that scripted simulator's traces."""
    return calibration_for(ctx, cfg.profile, cfg.task, cfg.calibration_seed, cfg.user if cfg.method == "calibrated" else "", cfg.max_new_tokens,
                           cfg.real_user)


def train_stage(cfg: TrainConfig, ctx: Context) -> TrainStage:
    """The training run of ``cfg`` in ``ctx``, its names resolved, with the calibration it uses."""
    s = resolve(ctx, cfg.profile, cfg.task, cfg.max_messages, cfg)
    calibration = calibration_of(cfg, ctx) if SIMULATOR[cfg.method] == "calibrated" else None
    folder = run_folder(ctx, "train", f"{cfg.method}-{cfg.profile}-{cfg.task}-seed{cfg.seed}", cfg, s.world_config, cfg.out_dir,
                        exclude=("out_dir", "report_to"), real_user=s.real_user_spec, calibration=calibration.folder if calibration else None)
    lora = cfg.finetune == "lora" or (cfg.finetune == "auto" and s.profile.needs_cuda)
    return TrainStage(cfg, ctx, s.models, s.task, s.world_config, s.budget, folder, calibration, lora)
