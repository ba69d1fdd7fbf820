"""Scoring a policy: whole dialogues with a user on held-out goals, and the mean of each score.

:func:`evaluate_policy` is the one evaluation loop of the kit — the before/after rewards of
``calirl train``, the reward against each training simulator and against the real users in
notebook 04, and the table of notebook 05 all come from it. With the same seed, policy, user and
goals it gives the same dialogues and scores on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .calibration import calibrated_adapter
from .context import Context
from .dialogue import Dialogue, read_jsonl
from .judge import interactivity, make_judge
from .profiles import Models
from .results import EvalResult
from .rollout import Policy, base_policy, mean_scores, rollout_in_batches
from .settings import EVAL_SEED_OFFSET, Settings, check_number
from .sources import task_goals
from .stages import calibration_for, check_real_user, evaluation_stage
from .task_family import Task
from .tasks import get_task, scored_tasks
from .users import User, make_user, real_user_calls


def evaluate_policy(policy: Policy, user: User, task: Task, goals: Sequence[dict[str, Any]], max_messages: int, seed: int,
                    progress: bool = False, batch_size: int = 32) -> tuple[dict[str, float], list[Dialogue]]:
    """(mean scores, dialogues) of ``policy`` with ``user`` on ``goals``, ``batch_size`` dialogues at a time (a
    profile's ``eval_batch``); scores are the task metric, ``assistant_tokens``, ``turns`` and the user's
    ``verdict`` (see :func:`calirl_lite.rollout.rollout`)."""
    if not goals:
        raise ValueError("no goals to evaluate on")
    check_number("batch_size", batch_size, int, 1)
    was_training = getattr(policy.model, "training", False)
    policy.model.eval()
    dialogues = rollout_in_batches(policy, user, task, goals, max_messages, seed, batch_size, "eval", f"eval {policy.name} with {user.name}", progress)
    if was_training:
        policy.model.train()
    return mean_scores(dialogues), dialogues


def run_dialogues(run: str | os.PathLike, user: str = "real") -> list[Dialogue]:
    """The held-out dialogues a finished training run was evaluated on (its ``eval_dialogues.jsonl``) with one user:
    'real' (the real users) or the name of its training simulator ('naive', 'calibrated', a scripted spec)."""
    path = Path(run) / "eval_dialogues.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the run has not finished (train it first)")
    dialogues = [d for d in read_jsonl(path) if d.user == user]
    if not dialogues:
        raise ValueError(f"{path} holds no dialogues with user {user!r}; users there: {sorted({d.user for d in read_jsonl(path)})}")
    return dialogues


def load_policy(models: Models, policy: str) -> Policy:
    """``'base'`` (the profile's base policy), a trained run folder of ``calirl train``, or its ``policy/`` folder
    (full weights, or a LoRA adapter that is put on the profile's policy model)."""
    prof = models.profile
    if policy == "base":
        return base_policy(models)
    folder = Path(policy)
    if (folder / "policy").is_dir():
        folder = folder / "policy"
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        model, tok = models.policy()
        model = PeftModel.from_pretrained(model, str(folder))
        model.eval()
    elif (folder / "config.json").is_file():
        model, tok = models.load(str(folder))
    else:
        raise FileNotFoundError(f"policy {policy!r} is neither 'base' nor a folder with a trained policy (config.json or adapter_config.json, "
                                f"or a `calirl train` run folder holding policy/)")
    return Policy(model, tok, folder.parent.name if folder.name == "policy" else folder.name, prof.policy_temperature, prof.max_new_tokens)


@dataclass
class EvaluateConfig(Settings):
    """Settings of ``calirl evaluate``: one policy with one kind of user on held-out goals, once per seed."""

    profile: str = "tiny"
    """model profile"""
    task: str = "arith-chat"
    """task family"""
    policy: str = "base"
    """'base', a `calirl train` run folder, or its policy/ folder"""
    user: str = "real"
    """who plays the user: real (the real users: see real_user), naive or calibrated (the simulator of `calirl calibrate`, seed 0)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """evaluation seeds"""
    n_eval: int = 200
    """held-out goals"""
    max_messages: int = 0
    """message budget (0: the world's)"""
    max_new_tokens: int = 0
    """new tokens per model turn, policy and simulator (0: the profile's; a run trained with another keeps it in its config.json)"""
    judge_endpoint: str = ""
    """optional LLM judge of interactivity: an OpenAI-compatible base URL such as http://127.0.0.1:8000/v1 (API key, if any, from $CALIRL_JUDGE_API_KEY)"""
    judge_model: str = ""
    """the model name the judge endpoint serves"""
    judge_timeout: float = 60.0
    """seconds the judge endpoint has for one reply, retries included"""
    judge_local: str = ""
    """optional LLM judge as a local transformers model (folder or hub id)"""
    real_user: str = ""
    """who the real users are (user real; the calibrated user is the one calibrated on their traces): '' (the profile's
    oracle), 'scripted', 'endpoint:BASE_URL#MODEL', an LLM behind an OpenAI-compatible endpoint (API key from
    $CALIRL_REAL_USER_API_KEY), or 'local:MODEL', a chat model loaded here — not with profile tiny"""

    BOUNDS = {"n_eval": (1, None), "judge_timeout": (0.1, None)}
    LATER = {"real_user": ""}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real_user(self.real_user, self.profile)
        if not get_task(self.task).metric:
            raise ValueError(f"task {self.task!r} has no score to evaluate; tasks: {', '.join(scored_tasks())}")
        if self.user not in ("real", "naive", "calibrated"):
            raise ValueError(f"unknown user {self.user!r}; use real, naive or calibrated")
        if not self.seeds:
            raise ValueError("give at least one seed")

    def judge(self, api_key: str = "") -> Any:
        """The judge these settings name (:func:`calirl_lite.judge.make_judge`; ``api_key``: its endpoint's key,
        which the command line reads from ``$CALIRL_JUDGE_API_KEY``), or None."""
        return make_judge(self.judge_endpoint, self.judge_model, self.judge_local, api_key, self.judge_timeout)


def evaluate_seeds(cfg: EvaluateConfig, ctx: Context, progress: bool = True, judge: Any = None) -> EvalResult:
    """``cfg.policy`` with ``cfg.user`` on the first ``cfg.n_eval`` held-out goals, once per seed: scores per seed,
    mean and std. With a ``judge`` every dialogue is also rated for interactivity, reported as ``interactivity`` in
    [0, 1]. The goals are those of the context's toy world (toy tasks)."""
    stage = evaluation_stage(cfg, ctx)
    adapter = None
    if cfg.user == "calibrated":
        adapter = calibrated_adapter(calibration_for(ctx, cfg.profile, cfg.task, max_new_tokens=cfg.max_new_tokens, real_user=cfg.real_user),
                                     why="the calibrated user")
    pol = load_policy(stage.models, cfg.policy)
    goals = [t["goal"] for t in task_goals(stage.task, "test", stage.world)][: cfg.n_eval]
    who = stage.real_user() if cfg.user == "real" else make_user(cfg.user, stage.models, adapter)
    per_seed = {}
    for s in cfg.seeds:
        scores, dialogues = evaluate_policy(pol, who, stage.task, goals, stage.budget, EVAL_SEED_OFFSET + int(s), progress, stage.profile.eval_batch)
        if judge is not None:
            scores["interactivity"] = interactivity(judge, dialogues)
        per_seed[int(s)] = scores
    result = EvalResult.of(cfg.profile, cfg.task, cfg.policy, cfg.user, len(goals), per_seed)
    result.real_user_calls = real_user_calls(who) if cfg.user == "real" else {}
    return result
