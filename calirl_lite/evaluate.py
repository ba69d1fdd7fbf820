"""Scoring a policy: whole dialogues with a user on held-out goals, and the mean of each score.

:func:`evaluate_policy` is the one evaluation loop of the kit — the before/after rewards of
``calirl train``, the reward against each training simulator and against the real users in
notebook 04, and the table of notebook 05 all come from it. With the same seed, policy, user and
goals it gives the same dialogues and scores on CPU.
"""

from __future__ import annotations

from typing import Any, Sequence

from .dialogue import Dialogue
from .rollout import Policy, mean_scores, rollout_in_batches
from .settings import EVAL_SEED_OFFSET, SEED_MAX, check_number
from .users import User


def evaluate_policy(policy: Policy, user: User, task: str, goals: Sequence[dict[str, Any]], max_messages: int, seed: int,
                    progress: bool = False, batch_size: int = 32) -> tuple[dict[str, float], list[Dialogue]]:
    """(mean scores, dialogues) of ``policy`` with ``user`` on ``goals``, ``batch_size`` dialogues at a time (a
    profile's ``eval_batch``); scores are the task metric, ``assistant_tokens`` and ``turns`` (see
    :func:`calirl_lite.rollout.rollout`)."""
    if not goals:
        raise ValueError("no goals to evaluate on")
    check_number("batch_size", batch_size, int, 1)
    was_training = getattr(policy.model, "training", False)
    policy.model.eval()
    dialogues = rollout_in_batches(policy, user, task, goals, max_messages, seed, batch_size, "eval", f"eval {policy.name} with {user.name}", progress)
    if was_training:
        policy.model.train()
    return mean_scores(dialogues), dialogues


def load_policy(profile: str, policy: str) -> Policy:
    """``'base'`` (the profile's base policy), a trained run folder of ``calirl train``, or its ``policy/`` folder
    (full weights, or a LoRA adapter that is put on the profile's policy model)."""
    from pathlib import Path

    from .profiles import device_for, get_profile, load_model
    from .rollout import base_policy

    prof = get_profile(profile)
    if policy == "base":
        return base_policy(profile)
    folder = Path(policy)
    if (folder / "policy").is_dir():
        folder = folder / "policy"
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        model, tok = load_model(prof.policy_model, device=device_for(profile))
        model = PeftModel.from_pretrained(model, str(folder))
        model.eval()
    elif (folder / "config.json").is_file():
        model, tok = load_model(str(folder), device=device_for(profile))
    else:
        raise FileNotFoundError(f"policy {policy!r} is neither 'base' nor a folder with a trained policy (config.json or adapter_config.json, "
                                f"or a `calirl train` run folder holding policy/)")
    return Policy(model, tok, folder.parent.name if folder.name == "policy" else folder.name, prof.policy_temperature, prof.max_new_tokens)


def evaluate_seeds(profile: str, task: str, policy: str = "base", user: str = "real", seeds: Sequence[int] = (0, 1, 2),
                   n_eval: int = 200, max_messages: int = 0, progress: bool = True, judge: Any = None) -> dict[str, Any]:
    """``policy`` with ``user`` on the first ``n_eval`` held-out goals, once per seed: scores per seed, mean and std.

    ``user`` is 'real' (the world's real users), 'naive' or 'calibrated' (the simulator of `calirl calibrate`
    with seed 0 for this profile and task). With a ``judge`` (:func:`calirl_lite.judge.make_judge`) every
    dialogue is also rated for interactivity, reported as ``interactivity`` in [0, 1].
    """
    import numpy as np

    from .calibration import CalibrationConfig, calibrated_adapter
    from .profiles import get_profile
    from .tasks import TASKS
    from .users import make_user
    from .world import WorldConfig, build_world

    if task not in TASKS:
        raise ValueError(f"task {task!r} has no score to evaluate; tasks: {', '.join(TASKS)}")
    if not seeds:
        raise ValueError("give at least one seed")
    check_number("n_eval", n_eval, int, 1)
    for seed in seeds:
        check_number("seeds", seed, int, 0, SEED_MAX)
    adapter = None
    if user == "calibrated":
        adapter = calibrated_adapter(CalibrationConfig.make(profile=profile, task=task), why="the calibrated user")
    elif user not in ("real", "naive"):
        raise ValueError(f"unknown user {user!r}; use real, naive or calibrated")
    pol = load_policy(profile, policy)
    world = build_world(WorldConfig.make())
    goals = [t["goal"] for t in world.tasks(task, "test")][:n_eval]
    who = make_user(user, profile, adapter)
    per_seed = {}
    for s in seeds:
        scores, dialogues = evaluate_policy(pol, who, task, goals, max_messages or world.config.max_messages, EVAL_SEED_OFFSET + int(s), progress,
                                            get_profile(profile).eval_batch)
        if judge is not None:
            from .judge import interactivity

            scores["interactivity"] = interactivity(judge, dialogues)
        per_seed[int(s)] = scores
    keys = sorted(next(iter(per_seed.values())))
    return {
        "profile": profile, "task": task, "policy": policy, "user": user, "n_eval": len(goals), "seeds": [int(s) for s in seeds],
        "per_seed": per_seed,
        "mean": {k: float(np.mean([v[k] for v in per_seed.values()])) for k in keys},
        "std": {k: float(np.std([v[k] for v in per_seed.values()])) for k in keys},
    }
