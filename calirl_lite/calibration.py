"""Phase 1 of the paper: calibrate a user simulator on real interaction traces, and measure the gap.

1. **Traces** — dialogues of the base policy with the real users (the oracle): a train set on
   train goals and a held-out set on test goals, kept apart (:func:`collect_traces`).
2. **SFT** — TRL's ``SFTTrainer`` with a PEFT LoRA adapter on the simulator's base model. Each
   example is the *user's* view: the hidden goal and the history as prompt, the next real-user
   turn as completion; the loss is on the completion (the user's tokens) only. On CUDA,
   ``load_in_4bit`` gives QLoRA (bitsandbytes nf4, double quantisation); on CPU plain LoRA with
   bf16 off. Checkpoints let an interrupted run resume; the adapter is saved with its config.
3. **Gap metrics** on the held-out real-user dialogues, for any simulator: the per-token NLL of the
   real users' turns under the simulator (teacher forcing at the same contexts), the behaviour
   statistics of the simulator's own dialogues with the base policy and their TV to the real
   users', and the base policy's outcome with the simulator vs with the real users.

``calirl calibrate --profile tiny --task arith-chat`` runs all three; the same code calibrates
SmolLM2 toward *real human* turns (``--profile smol --task chitchat``, the chitchat-dataset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .chat import encode, next_segment_ids, opening, turn_end_id, user_prompt_ids
from .checkpoints import train_or_resume
from .dialogue import Dialogue, Message, write_jsonl
from .io import atomic_dir, atomic_write_json, folder_lock, json_safe
from .prompts import user_messages
from .settings import HELDOUT_SEED_OFFSET, SIMULATOR_SEED_OFFSET, Settings
from .tasks import get_task
from .world import WorldConfig, message_budget


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
    """training dialogues of the base policy with the real users (paper: 1,860 MATH-Chat, 16,028 MediumDocEdit)"""
    n_heldout: int = 100
    """held-out real-user dialogues (on test goals) for the gap metrics"""
    n_sim_dialogues: int = 100
    """dialogues of the base policy with each simulator for its behaviour statistics"""
    max_messages: int = 0
    """message budget of every dialogue collected or sampled here (0: the world's, as in `calirl train`)"""
    seed: int = 0
    """seed of trace collection, training and evaluation rollouts"""
    steps: int = 300
    """SFT optimiser steps"""
    batch_size: int = 16
    """examples (user turns) per SFT step"""
    learning_rate: float = 2e-3
    """peak learning rate of the LoRA parameters"""
    lora_r: int = 16
    """LoRA rank"""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)"""
    load_in_4bit: bool | None = None
    """QLoRA: load the base model in 4-bit nf4 (CUDA only); unset: the profile's ``user_in_4bit``, which is also how
    ``calirl train`` loads the simulator and finds this run's adapter"""
    save_steps: int = 50
    """checkpoint every this many steps (an interrupted run resumes from the last one)"""
    max_length: int = 512
    """longest SFT example in tokens (longer ones are cut at the end)"""
    out_dir: str = ""
    """run folder (default: runs/calibrate-<profile>-<task>-seed<seed>-<hash of the settings and the world>, under $CALIRL_RUNS if set)"""

    SMOKE = {"n_traces": 40, "n_heldout": 12, "n_sim_dialogues": 12, "steps": 8, "batch_size": 8, "save_steps": 4}
    CLASS = {"n_traces": 300, "n_heldout": 50, "n_sim_dialogues": 50, "steps": 150}
    BOUNDS = {"n_traces": (4, None), "n_heldout": (2, None), "n_sim_dialogues": (1, None), "steps": (1, None), "batch_size": (1, None),
              "lora_r": (1, None), "save_steps": (1, None), "max_length": (1, None), "learning_rate": (0, None),
              "max_messages": (0, None)}

    def __post_init__(self) -> None:
        from .profiles import get_profile

        super().__post_init__()
        if self.load_in_4bit is None:
            self.load_in_4bit = get_profile(self.profile).user_in_4bit
        get_task(self.task)
        if self.persona:
            from .tasks import TASKS
            from .users import persona_from_spec

            if self.task not in TASKS:
                raise ValueError(f"persona {self.persona!r}: scripted users with errors exist in the toy world only, not for task {self.task!r}")
            persona_from_spec(self.persona)

    def budget(self) -> int:
        """The message budget of a dialogue: ``max_messages``, or the world's when it is 0."""
        return message_budget(self.max_messages)

    def folder(self) -> Path:
        """The run folder; its name carries a hash of the settings, so a changed setting never resumes an old run."""
        toy = self.task != "chitchat" or self.profile == "tiny"  # the toy tasks' traces (and the tiny profile's model) come from the world
        return self.run_folder("calibrate", f"{self.profile}-{self.task}-seed{self.seed}", self.out_dir,
                               world_key=WorldConfig.make().key() if toy else "")


def calibrate_hint(cfg: CalibrationConfig) -> str:
    """What to run to make the calibration run ``cfg``."""
    persona = f" --persona {cfg.persona}" if cfg.persona else ""
    return f"run `calirl calibrate --profile {cfg.profile} --task {cfg.task} --seed {cfg.seed}{persona}` first"


def calibrated_adapter(cfg: CalibrationConfig, adapter: str = "", why: str = "this needs the calibrated simulator") -> Path:
    """The LoRA adapter of the calibrated simulator: ``adapter`` if given, else the one calibration run ``cfg`` saved.

    Clear errors for a missing adapter and for one calibrated for another task, profile or persona (read from the
    ``config.json`` beside it).
    """
    path = Path(adapter) if adapter else cfg.folder() / "adapter"
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{why}, but there is no LoRA adapter at {path} (adapter_config.json missing); "
                                f"{calibrate_hint(cfg)}, or pass --adapter")
    made_by = path.parent / "config.json"
    if made_by.is_file():
        settings = json.loads(made_by.read_text())
        for key in ("task", "profile", "persona"):
            if settings.get(key, "") != getattr(cfg, key):
                raise ValueError(f"the adapter at {path} was calibrated for {key} {settings.get(key)!r}, "
                                 f"not {getattr(cfg, key)!r} ({made_by}); {calibrate_hint(cfg)}")
    return path


# ----------------------------------------------------------------------------- traces


def collect_traces(policy: Any, task: str, goals: Sequence[dict[str, Any]], max_messages: int, seed: int, batch_size: int = 64,
                   persona: str = "") -> list[Dialogue]:
    """Dialogues of ``policy`` with the real users (or the scripted users of ``persona``, a user spec) on ``goals``
    (the oracle's interaction traces), ``batch_size`` at a time (a profile's ``eval_batch``: batches keep memory flat)."""
    from .rollout import rollout_in_batches
    from .users import ScriptedUsers, persona_from_spec

    return rollout_in_batches(policy, ScriptedUsers(persona_from_spec(persona)), task, goals, max_messages, seed, batch_size, "trace",
                              f"{task} traces", unit=f"batch of {batch_size}")


def chitchat_dialogues(n: int, seed: int = 0, offset: int = 0) -> list[Dialogue]:
    """``n`` real human conversations from the chitchat-dataset package, after skipping ``offset``; the first speaker is the 'user'."""
    from .profiles import require

    require("chitchat_dataset", "pip install chitchat-dataset")
    import chitchat_dataset

    convs = list(chitchat_dataset.Dataset().items())
    out = []
    for i in np.random.default_rng(seed).permutation(len(convs)):  # the usable conversations, in a seeded order
        key, conv = convs[int(i)]
        turns = [" ".join(m["text"].strip() for m in turn if m["text"].strip()) for turn in conv["messages"]]
        turns = [t for t in turns if t][:8]
        if len(turns) >= 2:
            msgs = [Message("user" if k % 2 == 0 else "assistant", t) for k, t in enumerate(turns)]
            out.append(Dialogue("chitchat", key, {"topic": conv.get("prompt") or "anything"}, msgs, user="human", policy="human"))
        if len(out) == offset + n:
            break
    return out[offset:]


# ----------------------------------------------------------------------------- SFT examples and NLL


def user_turn_examples(dialogues: Sequence[Dialogue], tokenizer: Any, style: str) -> list[dict[str, str]]:
    """One prompt/completion pair per user turn: the user's view up to the turn, then the turn."""
    examples = []
    for d in dialogues:
        task = get_task(d.task)
        for k, m in enumerate(d.messages):
            if m.role == "user":
                prompt = opening(tokenizer, user_messages(task, d.goal, d.messages[:k], style), "user")
                examples.append({"prompt": prompt, "completion": m.text})
    return examples


def user_view_sequence(d: Dialogue, tokenizer: Any, style: str) -> tuple[list[int], list[int]]:
    """The whole dialogue as the user sees it, as token ids, with a mask of 1 on the user's own tokens."""
    task = get_task(d.task)
    end = turn_end_id(tokenizer)
    ids = user_prompt_ids(tokenizer, user_messages(task, d.goal, [], style))
    mask = [0] * len(ids)
    for k, m in enumerate(d.messages):
        if m.role == "user":
            content = encode(tokenizer, m.text) + [end]
            ids, mask = ids + content, mask + [1] * len(content)
        if k + 1 < len(d.messages) and d.messages[k + 1].role == "assistant":
            nxt = d.messages[k + 1]
            seg = next_segment_ids(tokenizer, user_messages(task, d.goal, d.messages[: k + 1], style), {"role": "assistant", "content": nxt.text}, "user")
            ids, mask = ids + seg, mask + [0] * len(seg)
    return ids, mask


def user_nll(model: Any, tokenizer: Any, dialogues: Sequence[Dialogue], style: str, max_tokens: int = 4096) -> float:
    """Mean per-token negative log-likelihood of the users' turns under ``model`` (teacher forcing, user's view).

    Dialogues go in batches of at most ``max_tokens`` tokens with padding, shortest first, so one long conversation
    pads no other (a real human chat can be ten times longer than the rest); log-probabilities are taken only at
    the users' tokens."""
    import torch

    seqs = sorted((user_view_sequence(d, tokenizer, style) for d in dialogues), key=lambda s: len(s[0]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count, start = 0.0, 0, 0
    model.eval()
    while start < len(seqs):
        end = start + 1
        while end < len(seqs) and (end + 1 - start) * len(seqs[end][0]) <= max_tokens:
            end += 1
        part, start = seqs[start:end], end
        width = len(part[-1][0])
        ids = torch.full((len(part), width), pad, dtype=torch.long)
        att = torch.zeros((len(part), width), dtype=torch.long)
        tgt = torch.zeros((len(part), width), dtype=torch.bool)
        for i, (s, m) in enumerate(part):
            ids[i, : len(s)] = torch.tensor(s)
            att[i, : len(s)] = 1
            tgt[i, : len(m)] = torch.tensor(m, dtype=torch.bool)
        ids, sel = ids.to(device), tgt[:, 1:].to(device)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=att.to(device)).logits[:, :-1][sel].float()
        total += float(-torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:][sel][:, None]).sum())
        count += int(sel.sum())
    if count == 0:
        raise ValueError("no user tokens to score")
    return total / count


# ----------------------------------------------------------------------------- training


def lora_config(cfg: CalibrationConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def train_simulator(cfg: CalibrationConfig, model: Any, tokenizer: Any, traces: Sequence[Dialogue], style: str,
                    callbacks: list[Any] | None = None) -> tuple[Path, list[dict[str, float]]]:
    """LoRA (or QLoRA) SFT of ``model`` on the users' turns of ``traces``; returns (adapter folder, loss log).

    Resumes from the newest complete checkpoint in the run folder, if there is one.
    """
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .memory import micro_batches
    from .profiles import uses_cuda
    from .quiet import tidy_trainer

    run = cfg.folder()
    examples = user_turn_examples(traces, tokenizer, style)
    cuda = uses_cuda(cfg.profile) or cfg.load_in_4bit  # a 4-bit model lives on the GPU whatever the profile
    micro, accumulate = micro_batches(cfg.profile, "calibration", calibration_batch=cfg.batch_size, calibration_length=cfg.max_length, lora_r=cfg.lora_r)
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = SFTConfig(
        output_dir=str(run / "checkpoints"), max_steps=cfg.steps, per_device_train_batch_size=micro, gradient_accumulation_steps=accumulate,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, cfg.steps // 20),
        logging_steps=max(1, cfg.steps // 30), save_steps=cfg.save_steps, save_total_limit=2, report_to=[],
        seed=cfg.seed, data_seed=cfg.seed, bf16=bf16, fp16=cuda and not bf16, use_cpu=not cuda,
        completion_only_loss=True, eos_token=tokenizer.convert_ids_to_tokens(turn_end_id(tokenizer)),
        max_length=cfg.max_length, dataloader_num_workers=0, disable_tqdm=False,
        activation_checkpointing=cuda, gradient_checkpointing=None,  # TRL's default is on: GPU memory for a second forward pass
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
                         peft_config=lora_config(cfg), callbacks=callbacks)
    tidy_trainer(trainer)
    train_or_resume(trainer, run / "checkpoints", cfg.steps)
    adapter = run / "adapter"
    with atomic_dir(adapter, ".saving") as tmp:
        trainer.model.save_pretrained(tmp)
    # TRL's running token count restarts with the process, so a resumed run's would differ: the log keeps what training did
    log = [{k: v for k, v in h.items() if k != "num_tokens"} for h in trainer.state.log_history if "loss" in h]
    atomic_write_json(run / "sft_log.json", log)
    return adapter, log


# ----------------------------------------------------------------------------- the whole stage


def load_base(cfg: CalibrationConfig) -> tuple[Any, Any]:
    """The simulator's base model and tokenizer for the profile (4-bit if asked; a clear error without CUDA)."""
    from .profiles import get_profile, load_model, uses_cuda

    profile = get_profile(cfg.profile)
    device = "cuda" if uses_cuda(cfg.profile) or cfg.load_in_4bit else "cpu"
    model, tok = load_model(cfg.user_model or profile.user_model, load_in_4bit=cfg.load_in_4bit, device=device)
    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return model, tok


def check_calibration_inputs(cfg: CalibrationConfig) -> tuple[list[Dialogue], list[Dialogue]] | None:
    """What can be checked before a folder is made or a model loaded: 4-bit where it can run, enough goals in the
    world for the traces asked for, and traces a run folder already holds (read as any user's file is; returned,
    so that they are read once)."""
    if cfg.load_in_4bit:
        from .profiles import quantization_config

        quantization_config(True)  # a clear error before any work where 4-bit cannot run
    if cfg.task != "chitchat":
        world_goals(cfg)
    return kept_traces(cfg)


def world_goals(cfg: CalibrationConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The task's first ``n_traces`` train goals and ``n_heldout`` test goals (:func:`calirl_lite.sources.task_goals`);
    an error if it has fewer."""
    from .sources import task_goals

    train, test = ([t["goal"] for t in task_goals(cfg.task, split)] for split in ("train", "test"))
    if cfg.n_traces > len(train) or cfg.n_heldout > len(test):
        raise ValueError(f"{cfg.task}: asked for {cfg.n_traces} train / {cfg.n_heldout} held-out traces, "
                         f"the world has {len(train)} train and {len(test)} test goals")
    return train[: cfg.n_traces], test[: cfg.n_heldout]


def kept_traces(cfg: CalibrationConfig) -> tuple[list[Dialogue], list[Dialogue]] | None:
    """The train and held-out traces the run folder holds from an earlier run (or put there by hand), read and
    checked; None when it holds none."""
    from .inputs import read_dialogues
    from .profiles import text_limits

    run = cfg.folder()
    train_path, held_path = run / "traces.jsonl", run / "heldout.jsonl"
    if not (train_path.is_file() and held_path.is_file()):
        return None
    limits = text_limits(cfg.profile)
    return read_dialogues(train_path, cfg.task, limits), read_dialogues(held_path, cfg.task, limits)


def traces_for(cfg: CalibrationConfig, kept: tuple[list[Dialogue], list[Dialogue]] | None = None) -> tuple[list[Dialogue], list[Dialogue]]:
    """Train and held-out traces, collected once and kept in the run folder (reused on a re-run; ``kept``: those
    traces, already read by :func:`check_calibration_inputs`)."""
    from .inputs import check_dialogues
    from .profiles import text_limits

    run = cfg.folder()
    kept = kept or kept_traces(cfg)
    if kept is not None:
        return kept
    if cfg.task == "chitchat":
        train = chitchat_dialogues(cfg.n_traces, cfg.seed)
        held = chitchat_dialogues(cfg.n_heldout, cfg.seed, offset=cfg.n_traces)
    else:
        from .profiles import get_profile
        from .rollout import base_policy
        train_goals, test_goals = world_goals(cfg)
        policy, batch = base_policy(cfg.profile), get_profile(cfg.profile).eval_batch
        train = collect_traces(policy, cfg.task, train_goals, cfg.budget(), cfg.seed, batch, cfg.persona)
        held = collect_traces(policy, cfg.task, test_goals, cfg.budget(), cfg.seed + HELDOUT_SEED_OFFSET, batch, cfg.persona)
    limits = text_limits(cfg.profile)
    for dialogues, path in ((train, run / "traces.jsonl"), (held, run / "heldout.jsonl")):
        check_dialogues(dialogues, str(path), cfg.task, limits)
        write_jsonl(path, dialogues)
    return train, held


def gap_metrics(cfg: CalibrationConfig, simulators: dict[str, Any], heldout: Sequence[Dialogue], style: str) -> dict[str, Any]:
    """NLL of held-out real-user turns, behaviour statistics and outcome, per simulator ``{name: (model, tokenizer)}``."""
    from .profiles import get_profile
    from .rollout import base_policy, mean_scores, rollout
    from .stats import behaviour_stats, behaviour_tv
    from .users import LMUser

    report: dict[str, Any] = {"real": {"stats": behaviour_stats(heldout), "scores": mean_scores(heldout)}}
    policy = None if cfg.task == "chitchat" else base_policy(cfg.profile)
    goals = [d.goal for d in heldout][: cfg.n_sim_dialogues]
    for name, (model, tok) in simulators.items():
        entry: dict[str, Any] = {"nll": user_nll(model, tok, heldout, style)}
        if policy is not None:
            sim = LMUser(model, tok, name=name, temperature=get_profile(cfg.profile).user_temperature, prompt_style=style)
            ds = rollout(policy, sim, cfg.task, goals, max_messages=cfg.budget(), seed=cfg.seed + SIMULATOR_SEED_OFFSET).dialogues
            entry.update(stats=behaviour_stats(ds), tv_to_real=behaviour_tv(ds, heldout), scores=mean_scores(ds))
        report[name] = entry
    return report


def calibrate(cfg: CalibrationConfig) -> dict[str, Any]:
    """Collect traces, train the calibrated simulator (resuming if interrupted), measure naive vs calibrated.

    Writes under the run folder: ``config.json``, ``traces.jsonl``, ``heldout.jsonl``, ``checkpoints/``,
    ``adapter/`` (the LoRA adapter with its config), ``sft_log.json`` and ``gap.json``.
    """
    from .profiles import get_profile
    from .settings import set_seed

    kept = check_calibration_inputs(cfg)  # before any folder is made
    run = cfg.folder()
    with folder_lock(run):  # a second calibration of the same run waits for the first
        run.mkdir(parents=True, exist_ok=True)
        cfg.save(run)
        set_seed(cfg.seed)
        style = get_profile(cfg.profile).user_prompt_style
        train, held = traces_for(cfg, kept)
        naive = load_base(cfg)
        base_model, tok = load_base(cfg)
        adapter, log = train_simulator(cfg, base_model, tok, train, style)
        calibrated = load_calibrated(cfg, adapter)
        report = gap_metrics(cfg, {"naive": naive, "calibrated": calibrated}, held, style)
        report["sft_log"] = log
        report["adapter"] = str(adapter)
        atomic_write_json(run / "gap.json", json_safe(report))
    return report


def calibrate_once(cfg: CalibrationConfig) -> dict[str, Any]:
    """:func:`calibrate`, or the finished run's gap.json (with its adapter) without measuring the gap again."""
    done = cfg.folder() / "gap.json"
    if done.is_file() and (cfg.folder() / "adapter" / "adapter_config.json").is_file():
        return json.loads(done.read_text())
    return calibrate(cfg)


def load_calibrated(cfg: CalibrationConfig, adapter: Path) -> tuple[Any, Any]:
    """A fresh copy of the simulator's base model with the saved LoRA adapter on top."""
    from peft import PeftModel

    model, tok = load_base(cfg)
    model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tok


def format_gap(report: dict[str, Any]) -> str:
    """Naive vs calibrated on every gap metric, one line each (lower is closer to the real users)."""
    lines = [f"{'metric':>28} {'naive':>9} {'calibrated':>11}"]
    lines.append(f"{'NLL of real-user turns':>28} {report['naive']['nll']:9.3f} {report['calibrated']['nll']:11.3f}")
    for key in report["naive"].get("tv_to_real", {}):
        lines.append(f"{'TV ' + key:>28} {report['naive']['tv_to_real'][key]:9.3f} {report['calibrated']['tv_to_real'][key]:11.3f}")
    real = report["real"].get("scores", {})
    for metric in ("accuracy", "bleu"):
        if metric in real and metric in report["naive"].get("scores", {}):
            lines.append(f"base policy's {metric}: {real[metric]:.3f} with the real users, {report['naive']['scores'][metric]:.3f} with the naive "
                         f"simulator, {report['calibrated']['scores'][metric]:.3f} with the calibrated one")
    return "\n".join(lines)


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(json_safe({k: v for k, v in report.items() if k != "sft_log"}), indent=2)


def sample_user_turn(model: Any, tokenizer: Any, dialogue: Dialogue, k: int, style: str, seed: int = 0) -> str:
    """What a model playing the user says at message ``k`` of ``dialogue`` (same context the real user had)."""
    import torch

    from .users import LMUser

    if not 0 <= k < len(dialogue.messages) or dialogue.messages[k].role != "user":
        raise ValueError(f"message {k} of dialogue {dialogue.task_id} is not a user turn")
    torch.manual_seed(seed)
    user = LMUser(model, tokenizer, prompt_style=style)
    state = user.open(get_task(dialogue.task), dialogue.goal, np.random.default_rng(seed))
    return user.replies([state], [dialogue.messages[:k]])[0]
