"""TRL's ``GRPOTrainer`` wired for multi-turn dialogue: where training dialogues start, who answers, the reward, the
trainer's arguments and its callbacks — the same for every method.

The dialogues come from the rollout engine (:mod:`calirl_lite.rollout`), plugged into the trainer as its
``rollout_func`` (with ``cfg.vllm`` the policy's turns are sampled by TRL's colocated vLLM engine:
:mod:`calirl_lite.vllm_turns`): it returns the token ids the policy saw and wrote, and ``env_mask`` (TRL's
``tool_mask``) is 0 on the user's tokens, so they carry no gradient. The reward is sparse, on the final turn, from
the source the settings name (:data:`~calirl_lite.stages.REWARDS`): the task score; that minus ``token_penalty`` ×
the assistant's tokens (CollabLLM's efficiency term); or the training user's own verdict. The run's lifecycle — its
folder, resuming, evaluation, saving — is :mod:`calirl_lite.train`'s.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .dialogue import Dialogue, Message
from .evaluate import evaluate_policy
from .memory import dialogue_tokens, micro_batches
from .profiles import uses_cuda
from .quiet import no_bars, tidy_trainer
from .rollout import Policy, rollout
from .settings import RUN_SEED_STRIDE, STEP_SEED_STRIDE
from .sources import task_goals
from .stages import SIMULATOR, TrainStage
from .users import HybridUser, ScriptedUsers, User, make_user, persona_from_spec
from .vllm_turns import colocated_engine, require_vllm

# ----------------------------------------------------------------------------- starts, users, rewards


@dataclass
class Start:
    """Where a training dialogue starts: a hidden goal, and for Static Context a logged history."""

    goal: dict[str, Any]
    context: list[Message] | None = None


def static_contexts(dialogues: Sequence[Dialogue], max_messages: int) -> list[Start]:
    """Every point in the logged dialogues where the assistant spoke next: the history up to that turn."""
    starts = []
    for d in dialogues:  # of the run's task, with goals it can read: checked where they were read (train.check_inputs)
        for k, m in enumerate(d.messages):
            if m.role == "assistant" and k < max_messages:
                starts.append(Start(d.goal, d.messages[:k]))
    if not starts:
        raise ValueError("the logged dialogues hold no assistant turn to train at")
    return starts


def training_starts(stage: TrainStage, logged: Sequence[Dialogue] | None) -> list[Start]:
    """Interactive methods start from the task's train goals; Static Context from the ``logged`` contexts."""
    if stage.cfg.method == "static":
        return static_contexts(logged or [], stage.budget)
    return [Start(t["goal"]) for t in task_goals(stage.task, "train", stage.world)]


def training_user(stage: TrainStage, adapter: Any) -> User:
    """The user a run trains against: its method's (:data:`~calirl_lite.stages.SIMULATOR`) — for method oracle the
    stage's real users (:meth:`~calirl_lite.stages.Stage.real_user`: scripted, or an LLM), or the scripted simulator
    of ``cfg.user`` (for method calibrated, ``cfg.user`` picked the calibration whose ``adapter`` this is). With
    ``cfg.corrected``, the calibrated simulator's replies in those contexts are the real users' (a
    :class:`~calirl_lite.users.HybridUser`)."""
    cfg = stage.cfg
    if cfg.user and cfg.method == "oracle":
        return ScriptedUsers(persona_from_spec(cfg.user))
    if SIMULATOR[cfg.method] == "real":
        return stage.real_user()
    user = make_user(SIMULATOR[cfg.method], stage.models, adapter)
    if cfg.corrected:
        return HybridUser(user, cfg.corrected_contexts(), persona_from_spec(cfg.user), name="calibrated, corrected")
    return user


def task_reward(metric: str, token_penalty: float = 0.0, source: str = "task") -> Callable[..., list[float]]:
    """TRL reward function of a source of :data:`~calirl_lite.stages.REWARDS`: each dialogue's final-turn task score
    (minus the token penalty for task-efficiency), or the training user's verdict."""
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


# ----------------------------------------------------------------------------- callbacks


@dataclass
class RolloutStats:
    """What the rollout_func did, per call (for benchmarks and logs)."""

    seconds: list[float] = field(default_factory=list)
    policy_tokens: list[int] = field(default_factory=list)
    all_tokens: list[int] = field(default_factory=list)


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


def real_reward_curve(stage: TrainStage, real_user: User, goals: Sequence[dict[str, Any]], seed: int) -> Any:
    """A trainer callback: every ``real_every`` steps (and before the first) the policy plays ``goals`` (a few test
    goals) with the real users, and their task score and verdict go into the log beside the training reward
    (``real_<metric>``, ``real_verdict``). The random state is put back afterwards, so training goes on exactly as
    it would have without the curve."""
    import torch
    from transformers import TrainerCallback

    prof, metric, every = stage.profile, stage.task.metric, stage.cfg.real_every

    def score(state: Any, model: Any, tokenizer: Any) -> None:
        if any(h.get("step") == state.global_step and "real_verdict" in h for h in state.log_history):
            return  # this point was logged before an interruption
        saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
        policy = Policy(model, tokenizer, "policy", prof.policy_temperature, prof.max_new_tokens)
        scores, _ = evaluate_policy(policy, real_user, stage.task, goals, stage.budget, seed, False, prof.eval_batch)
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
        state.log_history.append({"step": state.global_step, f"real_{metric}": scores[metric], "real_verdict": scores["verdict"]})

    class RealRewardCurve(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 0:
                score(state, kw["model"], kw["processing_class"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                score(state, kw["model"], kw["processing_class"])

    return RealRewardCurve()


# ----------------------------------------------------------------------------- the trainer


def grpo_args(stage: TrainStage) -> Any:
    """TRL's ``GRPOConfig`` for the run: the same for every method."""
    import torch
    from trl import GRPOConfig

    cfg, prof, run, ctx = stage.cfg, stage.profile, stage.folder, stage.ctx
    cuda = uses_cuda(prof)
    # every step samples prompts_per_step × group_size dialogues at once; on a GPU the loss runs over them in
    # micro-batches that the memory plan fits to the profile's GPU, with gradient accumulation (the same update)
    micro, _ = micro_batches(prof, "training", max_messages=stage.budget, prompts_per_step=cfg.prompts_per_step,
                             group_size=cfg.group_size, lora_r=cfg.lora_r, vllm_gib=vllm_gib(stage) if cuda else 0.0)
    # under `accelerate launch` the step's dialogues are shared out among the processes: the same budget per step
    batch = cfg.prompts_per_step * cfg.group_size
    if batch % ctx.processes:
        raise ValueError(f"{batch} dialogues a step (prompts_per_step × group_size) do not share out among {ctx.processes} processes")
    micro = math.gcd(micro, batch // ctx.processes)
    accumulate = batch // ctx.processes // micro
    bf16 = cuda and torch.cuda.is_bf16_supported()
    if cfg.report_to == "tensorboard":  # transformers' TensorBoard callback reads its folder from this variable (written, never read here)
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run / "tb")
    return GRPOConfig(
        output_dir=str(run / "checkpoints"), max_steps=cfg.steps, per_device_train_batch_size=micro, gradient_accumulation_steps=accumulate,
        num_generations=cfg.group_size, learning_rate=cfg.learning_rate, lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, cfg.steps // 20), beta=cfg.kl_beta, loss_type="bnpo", temperature=prof.policy_temperature,
        max_completion_length=stage.budget * prof.max_new_tokens * 2, logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to], seed=cfg.seed, data_seed=cfg.seed,
        bf16=bf16, fp16=cuda and not bf16, use_cpu=not cuda, dataloader_num_workers=0, disable_tqdm=True,  # RewardBar instead
        # TRL turns checkpointing on by default (under its deprecated name): it saves GPU memory, and on a CPU only
        # costs a second forward pass
        activation_checkpointing=cuda, gradient_checkpointing=None, **vllm_args(stage),
    )


def vllm_args(stage: TrainStage) -> dict[str, Any]:
    """GRPOConfig's arguments for TRL's colocated vLLM engine where the run asks for it (``cfg.vllm``; a clear error
    where vLLM is not installed), else none. The rollout reaches the engine through the trainer
    (:func:`~calirl_lite.vllm_turns.colocated_engine`) and samples the policy's turns with it; TRL pushes the
    policy's weights into it before each step's rollouts, and corrects the loss for the small differences between
    vLLM's and the training model's probabilities (its importance sampling, on by default; the user's tokens are
    masked out of it as out of the loss)."""
    cfg, prof = stage.cfg, stage.profile
    if not cfg.vllm:
        return {}
    require_vllm()
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": cfg.vllm_memory,
            # room for the longest dialogue twice over (long first messages); the engine sizes its KV cache to its share
            "vllm_max_model_length": 2 * dialogue_tokens(stage.budget, prof.max_new_tokens, prof.user_tokens),
            "vllm_enable_sleep_mode": False}  # the rollout calls the engine directly: it must stay awake


def vllm_gib(stage: TrainStage) -> float:
    """GiB of the GPU that the run's vLLM engine takes (0 without vLLM): its share of this GPU's memory."""
    import torch

    if not stage.cfg.vllm:
        return 0.0
    return stage.cfg.vllm_memory * torch.cuda.get_device_properties(0).total_memory / 2**30


def make_trainer(stage: TrainStage, starts: Sequence[Start], user: User, callbacks: Sequence[Any] = ()) -> tuple[Any, RolloutStats]:
    """TRL's GRPOTrainer with the rollout engine as its ``rollout_func``; nothing is trained yet."""
    from datasets import Dataset
    from trl import GRPOTrainer

    cfg, prof, task = stage.cfg, stage.profile, stage.task
    model, tok = stage.models.policy()
    args = grpo_args(stage)
    stats = RolloutStats()
    learn_turns = 1 if cfg.method == "static" and cfg.static_turns == "first" else None

    def rollout_func(prompts: list[str], trainer: Any) -> dict[str, Any]:
        # TRL hands each start already repeated group_size times and wants one dialogue back per entry.
        picked = [starts[int(p)] for p in prompts]
        # TRL has just pushed the policy's weights into its colocated vLLM engine, where there is one
        policy = Policy(trainer.model, tok, f"{cfg.method}-policy", prof.policy_temperature, prof.max_new_tokens, colocated_engine(trainer))
        training = trainer.model.training
        trainer.model.eval()
        batch = rollout(policy, user, task, [s.goal for s in picked], stage.budget, seed=rollout_seed(cfg.seed, trainer.state.global_step, stage.ctx.rank),
                        contexts=[s.context for s in picked] if cfg.method == "static" else None, learn_turns=learn_turns)
        trainer.model.train(training)
        stats.seconds.append(batch.seconds)
        stats.policy_tokens.append(int(sum(sum(m) for m in batch.env_mask)))
        stats.all_tokens.append(batch.generated_tokens)
        return batch.as_trl()

    trainer = GRPOTrainer(
        model=model, reward_funcs=task_reward(task.metric, cfg.token_penalty, cfg.reward), args=args,
        train_dataset=Dataset.from_list([{"prompt": str(i)} for i in range(len(starts))]), processing_class=tok,
        rollout_func=rollout_func, peft_config=lora_config(stage) if stage.lora else None, callbacks=list(callbacks),
    )
    tidy_trainer(trainer)  # no dict printed per step; the logs go to log.json and the reward bar
    return trainer, stats


def lora_config(stage: TrainStage) -> Any:
    """PEFT's LoRA settings of a run that trains an adapter (``stage.lora``)."""
    from peft import LoraConfig

    return LoraConfig(r=stage.cfg.lora_r, lora_alpha=stage.cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
