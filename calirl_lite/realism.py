"""The realism reward the paper names: after SFT, train the simulator to write turns a discriminator cannot tell from
the real users'.

The paper calibrates its simulators by SFT on real interaction traces and mentions, without building it, "a
discriminator-derived realism reward". Here it is, small enough to read:

1. **The discriminator** — a logistic regression on a few features of a user turn in its context
   (:func:`features`: what the turn does — the task's reading of it, :func:`~calirl_lite.exact_gap.reply_category` —,
   its first word, its length, whether it ends the chat). It is fitted to tell the real users' turns in the training
   traces (label 1) from the simulator's own turns sampled in the same contexts (label 0), and fitted again every
   :data:`REFIT_EVERY` steps as the simulator moves.
2. **The reward** — the discriminator's log-odds that a sampled turn is a real user's: a turn it cannot tell apart
   scores high, one no real user writes scores low.
3. **The update** — TRL's ``GRPOTrainer`` on the SFT simulator, one user turn per sample (the contexts are the traces'
   histories), with a KL term (``realism_kl``) to the SFT simulator so that the simulator moves toward what the
   discriminator rewards and no further than it needs to. The SFT simulator is merged into the base weights first, so
   a fresh LoRA adapter is what GRPO trains and the model without it is the KL's reference; at the end the adapter is
   merged too and the whole model saved (``simulator/``, safetensors).

``calirl calibrate --method sft+realism`` runs it after SFT; the calibration's report measures it like any simulator
(the exact gap on the validation goals).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .chat import user_prompt_ids
from .checkpoints import train_or_resume
from .decode import generate
from .dialogue import TERMINATE, Dialogue, Message
from .exact_gap import reply_category, user_turns
from .io import atomic_dir, atomic_write_json
from .profiles import uses_cuda
from .prompts import user_messages
from .quiet import tidy_trainer
from .stages import Stage
from .tasks import TASKS

REFIT_EVERY = 10
"""GRPO steps between two fits of the discriminator (it is fitted before the first step too)."""
FIT_CONTEXTS = 256
"""Contexts whose simulator turns are sampled for each fit (against the real turns in the same contexts)."""
PROMPTS_PER_STEP, GROUP = 8, 8
"""Contexts per GRPO step, and turns sampled in each (the group whose rewards are compared)."""
L2 = 1e-2
"""The discriminator's weight decay: it should say what differs, not memorise the sample."""


# ----------------------------------------------------------------------------- the discriminator


def features(task: Any, goal: dict[str, Any], history: Sequence[Message], reply: str) -> dict[str, float]:
    """What the discriminator sees of a user turn: what it does (its category, one-hot), its first word (one-hot), its
    length in words (/10) and whether it ends the chat."""
    words = reply.replace(TERMINATE, " ").split()
    return {f"does={reply_category(task, goal, history, reply)}": 1.0, f"first={words[0] if words else ''}": 1.0,
            "words/10": len(words) / 10, "ends the chat": float(TERMINATE in reply)}


class Discriminator:
    """Logistic regression on :func:`features`: P(real | turn, context) = σ(w · f + b), fitted by gradient descent on the
    log-loss with weight decay :data:`L2`; features never seen in fitting weigh 0."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.w = np.zeros(0)
        self.b = 0.0

    def _matrix(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        x = np.zeros((len(rows), len(self.names)))
        for i, f in enumerate(rows):
            for k, v in f.items():
                if k in self.names:
                    x[i, self.names[k]] = v
        return x

    def fit(self, real: Sequence[dict[str, float]], sim: Sequence[dict[str, float]], steps: int = 300, lr: float = 0.5) -> dict[str, float]:
        """Fit on real turns (label 1) against simulator turns (label 0); returns the fit's log-loss and accuracy."""
        self.names = {k: i for i, k in enumerate(sorted({k for f in [*real, *sim] for k in f}))}
        x, y = self._matrix([*real, *sim]), np.r_[np.ones(len(real)), np.zeros(len(sim))]
        self.w, self.b = np.zeros(x.shape[1]), 0.0
        for _ in range(steps):
            p = 1 / (1 + np.exp(-(x @ self.w + self.b)))
            self.w -= lr * (x.T @ (p - y) / len(y) + L2 * self.w)
            self.b -= lr * float(np.mean(p - y))
        p = np.clip(1 / (1 + np.exp(-(x @ self.w + self.b))), 1e-9, 1 - 1e-9)
        return {"log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), "accuracy": float(np.mean((p > 0.5) == y))}

    def log_odds(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """log P(real) − log P(simulator) of each turn: the realism reward."""
        return self._matrix(rows) @ self.w + self.b


# ----------------------------------------------------------------------------- GRPO on the log-odds


def contexts_of(traces: Sequence[Dialogue]) -> list[tuple[dict[str, Any], list[Message], str]]:
    """Every user turn of the traces after the opening: (goal, history, the real user's turn)."""
    return [(d.goal, h, y) for d in traces for t, h, y in user_turns(d) if t > 0]


def sample_turns(model: Any, tok: Any, task: Any, style: str, picked: Sequence[tuple[dict[str, Any], list[Message], str]], temperature: float,
                 max_new_tokens: int) -> list[Any]:
    """One simulator turn (a :class:`~calirl_lite.decode.Generation`) per context."""
    prompts = [user_prompt_ids(tok, user_messages(task, g, list(h), style)) for g, h, _ in picked]
    return generate(model, tok, prompts, max_new_tokens, temperature)


class RealismReward:
    """The realism reward during one GRPO run: the contexts, the discriminator (refitted by :meth:`refit`), the
    ``rollout_func`` that samples the simulator's turns (:meth:`rollout`) and the reward function (:meth:`reward`)."""

    def __init__(self, stage: Stage, tokenizer: Any, traces: Sequence[Dialogue]) -> None:
        prof = stage.profile
        self.task, self.tok, self.style = stage.task, tokenizer, prof.user_prompt_style
        self.temperature, self.limit = prof.user_temperature, prof.max_new_tokens
        self.contexts = contexts_of(traces)
        self.rng = np.random.default_rng(stage.cfg.seed)
        self.disc, self.fits = Discriminator(), []

    def _sample(self, model: Any, picked: Sequence[tuple[dict[str, Any], list[Message], str]]) -> list[Any]:
        import torch

        training = model.training
        model.eval()
        with torch.no_grad():
            sims = sample_turns(model, self.tok, self.task, self.style, picked, self.temperature, self.limit)
        model.train(training)
        return sims

    def refit(self, model: Any, step: int) -> None:
        """Fit the discriminator again: the real turns of :data:`FIT_CONTEXTS` contexts against ``model``'s turns there."""
        n = min(FIT_CONTEXTS, len(self.contexts))
        picked = [self.contexts[int(i)] for i in self.rng.choice(len(self.contexts), n, replace=False)]
        sims = self._sample(model, picked)
        real = [features(self.task, g, h, y) for g, h, y in picked]
        fake = [features(self.task, g, h, s.text) for (g, h, _), s in zip(picked, sims)]
        self.fits.append({"step": step, **self.disc.fit(real, fake)})

    def rollout(self, prompts: list[str], trainer: Any) -> dict[str, Any]:
        """TRL's ``rollout_func``: each prompt is a context's index; one sampled turn each, with what the reward reads."""
        picked = [self.contexts[int(p)] for p in prompts]
        sims = self._sample(trainer.model, picked)
        return {"prompt_ids": [user_prompt_ids(self.tok, user_messages(self.task, g, list(h), self.style)) for g, h, _ in picked],
                "completion_ids": [s.ids for s in sims], "logprobs": [s.logprobs for s in sims],
                "turns": [features(self.task, g, h, s.text) for (g, h, _), s in zip(picked, sims)]}

    def reward(self, completions: list[Any], turns: list[dict[str, float]], **_: Any) -> list[float]:
        """The discriminator's log-odds that each sampled turn is a real user's."""
        return self.disc.log_odds(turns).tolist()

    def callback(self) -> Any:
        """A trainer callback that refits the discriminator before the first step and every :data:`REFIT_EVERY` steps."""
        from transformers import TrainerCallback

        outer = self

        class Refit(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                outer.refit(kw["model"], state.global_step)

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if state.global_step % REFIT_EVERY == 0 and state.global_step < state.max_steps:
                    outer.refit(kw["model"], state.global_step)

        return Refit()


def realism_args(stage: Stage) -> Any:
    """TRL's ``GRPOConfig`` of the realism step: :data:`PROMPTS_PER_STEP` contexts × :data:`GROUP` turns a step,
    one user turn long, the KL weight ``realism_kl``."""
    from trl import GRPOConfig

    cfg, prof = stage.cfg, stage.profile
    return GRPOConfig(
        output_dir=str(stage.folder / "realism-checkpoints"), max_steps=cfg.realism_steps, per_device_train_batch_size=PROMPTS_PER_STEP * GROUP,
        gradient_accumulation_steps=1, num_generations=GROUP, learning_rate=cfg.learning_rate, lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, cfg.realism_steps // 20), beta=cfg.realism_kl, loss_type="bnpo", temperature=prof.user_temperature,
        max_completion_length=prof.max_new_tokens + 1, logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2, report_to=[], seed=cfg.seed,
        data_seed=cfg.seed, bf16=False, use_cpu=not uses_cuda(prof), dataloader_num_workers=0,
        disable_tqdm=False, activation_checkpointing=False, gradient_checkpointing=None)


def realism_tune(stage: Stage, simulator: tuple[Any, Any], traces: Sequence[Dialogue]) -> tuple[Path, list[dict[str, float]]]:
    """GRPO of the SFT ``simulator`` (model, tokenizer) on the discriminator's log-odds, with a KL to itself; saves the
    whole tuned model to ``simulator/`` in the run folder and returns (that folder, the log: per step the mean reward
    and the KL, then each fit's log-loss and accuracy)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOTrainer

    cfg, run = stage.cfg, stage.folder
    if stage.task.name not in TASKS:
        raise ValueError(f"the realism reward reads turns with the toy world's tasks; task {stage.task.name!r} is not one of {', '.join(TASKS)}")
    model, tok = simulator
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # the SFT simulator becomes the base: the KL's reference is the model without GRPO's adapter
    realism = RealismReward(stage, tok, traces)
    order = realism.rng.permutation(len(realism.contexts))
    trainer = GRPOTrainer(model=model, reward_funcs=realism.reward, args=realism_args(stage),
                          train_dataset=Dataset.from_list([{"prompt": str(int(i))} for i in order]), processing_class=tok,
                          rollout_func=realism.rollout, callbacks=[realism.callback()],
                          peft_config=LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    tidy_trainer(trainer)
    train_or_resume(trainer, run / "realism-checkpoints", cfg.realism_steps)
    folder = run / "simulator"
    with atomic_dir(folder, ".saving") as tmp:
        trainer.model.merge_and_unload().save_pretrained(tmp)  # safetensors
        tok.save_pretrained(tmp)
    log = [{"step": h["step"], "reward": h.get("reward", math.nan), "kl": h.get("kl", math.nan)} for h in trainer.state.log_history if "reward" in h]
    atomic_write_json(run / "realism_log.json", {"steps": log, "fits": realism.fits})
    return folder, [*log, *({"fit": f} for f in realism.fits)]
