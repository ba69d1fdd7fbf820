"""Phase 1 of the paper: calibrate a user simulator on real interaction traces, and measure the gap.

1. **Traces** — dialogues of the base policy with the real users (the oracle): a train set on
   train goals and a held-out set on validation goals — train goals kept apart from every trace and every
   evaluation (:func:`world_goals`) — so that calibration is measured, and chosen, where nothing is evaluated.
2. **SFT** — TRL's ``SFTTrainer`` with a PEFT LoRA adapter on the simulator's base model. Each
   example is the *user's* view: the hidden goal and the history as prompt, the next real-user
   turn as completion; the loss is on the completion (the user's tokens) only. On CUDA,
   ``load_in_4bit`` gives QLoRA (bitsandbytes nf4, double quantisation); on CPU plain LoRA with
   bf16 off. Checkpoints let an interrupted run resume; the adapter is saved with its config.
3. **Gap metrics** on the held-out real-user dialogues, for any simulator: the exact per-turn gap ε_t of the
   simulation lemma (:mod:`calirl_lite.exact_gap`: the TV of the simulator's whole reply against the real users' at
   every held-out history, split by what the replies do), the per-token NLL of the real users' turns under the
   simulator (teacher forcing at the same contexts), the behaviour statistics of the simulator's own dialogues with
   the base policy and their TV to the real users', and the base policy's outcome with the simulator vs with the
   real users.

``calirl calibrate --profile tiny --task arith-chat`` runs all three; the same code calibrates
SmolLM2 toward *real human* turns (``--profile smol --task chitchat``, the chitchat-dataset). The settings are
:class:`~calirl_lite.stages.CalibrationConfig`; :func:`calibrate` resolves them once into a
:class:`~calirl_lite.stages.Stage` (models, task, world, budget, run folder) that every function here takes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .chat import encode, next_segment_ids, opening, turn_end_id, user_prompt_ids
from .checkpoints import train_or_resume
from .context import Context
from .dialogue import TERMINATE, Dialogue, Message, write_jsonl
from .exact_gap import LMReplies, exact_gap, format_exact_gap
from .inputs import check_dialogues, read_dialogues
from .io import atomic_dir, atomic_write_json, folder_lock, json_safe
from .memory import micro_batches
from .profiles import quantization_config, require, uses_cuda
from .prompts import user_messages
from .quiet import tidy_trainer
from .realism import realism_tune
from .rollout import Policy, base_policy, mean_scores, rollout, rollout_in_batches
from .settings import HELDOUT_SEED_OFFSET, SIMULATOR_SEED_OFFSET, set_seed
from .sources import task_goals
from .stages import VALIDATION_GOALS, CalibrationConfig, Stage, calibration_stage
from .stats import behaviour_stats, behaviour_tv
from .task_family import Task
from .tasks import TASKS, get_task
from .users import LMUser, ScriptedUsers, User, persona_from_spec, real_user_calls


def calibrate_hint(cfg: CalibrationConfig) -> str:
    """What to run to make the calibration run ``cfg``."""
    extra = (f" --persona {cfg.persona}" if cfg.persona else "") + (f" --max-new-tokens {cfg.max_new_tokens}" if cfg.max_new_tokens else "")
    extra += f" --real-user '{cfg.real_user}'" if cfg.real_user else ""
    return f"run `calirl calibrate --profile {cfg.profile} --task {cfg.task} --seed {cfg.seed}{extra}` first"


def simulator_folder(run: Path) -> Path | None:
    """Where a calibration run keeps its simulator: ``adapter/`` (a LoRA adapter on the profile's user model) or
    ``simulator/`` (the whole model: full fine-tuning, or the SFT + realism simulator); None before it has one."""
    if (run / "simulator" / "config.json").is_file():  # the last step's, where there is one (SFT + realism keeps SFT's adapter too)
        return run / "simulator"
    if (run / "adapter" / "adapter_config.json").is_file():
        return run / "adapter"
    return None


def calibrated_adapter(stage: Stage, adapter: str = "", why: str = "this needs the calibrated simulator") -> Path:
    """The calibrated simulator's weights: ``adapter`` if given, else what the calibration run ``stage`` saved — a LoRA
    adapter folder, or a whole model's (:func:`simulator_folder`).

    Clear errors for a missing simulator and for one calibrated for another task, profile, persona or real users (read from the
    ``config.json`` of the run beside it).
    """
    cfg = stage.cfg
    path = Path(adapter) if adapter else (simulator_folder(stage.folder) or stage.folder / "adapter")
    if not ((path / "adapter_config.json").is_file() or (path / "config.json").is_file() and (path / "model.safetensors").is_file()):
        raise FileNotFoundError(f"{why}, but there is no calibrated simulator at {path} (no adapter_config.json, nor a model's config.json "
                                f"and model.safetensors); {calibrate_hint(cfg)}, or pass --adapter")
    made_by = path.parent / "config.json"
    if made_by.is_file():
        settings = json.loads(made_by.read_text())
        for key in ("task", "profile", "persona", "real_user"):
            if settings.get(key, "") != getattr(cfg, key):
                raise ValueError(f"the adapter at {path} was calibrated for {key} {settings.get(key)!r}, "
                                 f"not {getattr(cfg, key)!r} ({made_by}); {calibrate_hint(cfg)}")
    return path


# ----------------------------------------------------------------------------- traces


def collect_traces(policy: Policy, task: Task, goals: Sequence[dict[str, Any]], max_messages: int, seed: int, batch_size: int = 64,
                   persona: str = "", user: User | None = None) -> list[Dialogue]:
    """Dialogues of ``policy`` with the real users — the world's scripted users, or ``user`` (a stage's real users:
    :meth:`~calirl_lite.stages.Stage.real_user`, an LLM among them) — or the scripted users of ``persona`` (a user
    spec) on ``goals`` (the oracle's interaction traces), ``batch_size`` at a time (a profile's ``eval_batch``:
    batches keep memory flat)."""
    who = user if user is not None and not persona else ScriptedUsers(persona_from_spec(persona))
    return rollout_in_batches(policy, who, task, goals, max_messages, seed, batch_size, "trace", f"{task.name} traces", unit=f"batch of {batch_size}")


def chitchat_dialogues(n: int, seed: int = 0, offset: int = 0) -> list[Dialogue]:
    """``n`` real human conversations from the chitchat-dataset package, after skipping ``offset``; the first speaker is the 'user'."""
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


def on_cuda(stage: Stage) -> bool:
    """Whether the simulator trains on the GPU: the profile's device, or 4-bit (which lives on the GPU whatever the profile)."""
    return uses_cuda(stage.profile) or bool(stage.cfg.load_in_4bit)


def decision_tokens(tokenizer: Any) -> list[int]:
    """The tokens that carry a user turn's decision besides its first: the first token of the end-of-chat marker."""
    return encode(tokenizer, TERMINATE)[:1]


def decision_weighted_loss(weight: float, marker: Sequence[int]) -> Callable[..., Any]:
    """A causal-LM loss (``Trainer``'s ``compute_loss_func``) that weighs a completion's decision tokens ``weight``
    times the others: its first token — where a user turn accepts, rejects, answers, declines or leaves — and the
    end-of-chat marker (``marker``). The mean over the completion's tokens, each counted by its weight."""
    import torch
    import torch.nn.functional as F

    def loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        logits, target = outputs.logits[:, :-1].float(), labels[:, 1:]
        scored = target != -100
        first = scored & (scored.long().cumsum(1) == 1)  # the first scored token of each row: the turn's first
        decision = first | (scored & torch.isin(target, torch.tensor(list(marker), device=target.device)))
        w = scored.float() + (weight - 1.0) * decision.float()
        ce = F.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
        return (ce * w).sum() / w.sum().clamp(min=1e-8)

    return loss


def train_simulator(stage: Stage, model: Any, tokenizer: Any, traces: Sequence[Dialogue], callbacks: list[Any] | None = None) -> tuple[Path, list[dict[str, float]]]:
    """SFT of ``model`` on the users' turns of ``traces`` — a LoRA (or QLoRA) adapter, or every weight
    (``finetune='full'``), the decision tokens weighed ``decision_weight`` times the rest; returns (the simulator's
    folder: ``adapter/`` or ``simulator/``, loss log).

    Resumes from the newest complete checkpoint in the run folder, if there is one.
    """
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg, run = stage.cfg, stage.folder
    examples = user_turn_examples(traces, tokenizer, stage.profile.user_prompt_style)
    cuda = on_cuda(stage)
    micro, accumulate = micro_batches(stage.profile, "calibration", calibration_batch=cfg.batch_size, calibration_length=cfg.max_length, lora_r=cfg.lora_r)
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
    weighted = decision_weighted_loss(cfg.decision_weight, decision_tokens(tokenizer)) if cfg.decision_weight != 1.0 else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer,
                         peft_config=lora_config(cfg) if cfg.finetune == "lora" else None, callbacks=callbacks, compute_loss_func=weighted)
    tidy_trainer(trainer)
    train_or_resume(trainer, run / "checkpoints", cfg.steps)
    adapter = run / ("adapter" if cfg.finetune == "lora" else "simulator")
    with atomic_dir(adapter, ".saving") as tmp:
        trainer.model.save_pretrained(tmp)  # safetensors
        if cfg.finetune == "full":
            tokenizer.save_pretrained(tmp)
    # TRL's running token count restarts with the process, so a resumed run's would differ: the log keeps what training did
    log = [{k: v for k, v in h.items() if k != "num_tokens"} for h in trainer.state.log_history if "loss" in h]
    atomic_write_json(run / "sft_log.json", log)
    return adapter, log


# ----------------------------------------------------------------------------- the whole stage


def load_base(stage: Stage) -> tuple[Any, Any]:
    """The simulator's base model and tokenizer for the profile (4-bit if asked; a clear error without CUDA)."""
    cfg = stage.cfg
    model, tok = stage.models.load(cfg.user_model or stage.profile.user_model, cfg.load_in_4bit, "cuda" if on_cuda(stage) else "cpu")
    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return model, tok


def load_calibrated(stage: Stage, adapter: Path) -> tuple[Any, Any]:
    """The calibrated simulator: a fresh copy of the simulator's base model with the saved LoRA adapter merged into it
    (on top of it, unmerged, where the base is 4-bit), or the whole model saved in ``adapter`` (a folder with a model's
    ``config.json``). It is only sampled and scored from here on, and one plain model runs faster than a wrapped one."""
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").is_file():
        model, tok = stage.models.load(str(adapter), False, "cuda" if on_cuda(stage) else "cpu")
        model.eval()
        return model, tok
    model, tok = load_base(stage)
    model = PeftModel.from_pretrained(model, str(adapter))
    if not stage.cfg.load_in_4bit:
        model = model.merge_and_unload()
    model.eval()
    return model, tok


def check_calibration_inputs(stage: Stage) -> tuple[list[Dialogue], list[Dialogue]] | None:
    """What can be checked before a folder is made or a model loaded: 4-bit where it can run, enough goals in the
    world for the traces asked for, and traces a run folder already holds (read as any user's file is; returned,
    so that they are read once)."""
    if stage.cfg.load_in_4bit:
        quantization_config(True)  # a clear error before any work where 4-bit cannot run
    if stage.task.name != "chitchat":
        world_goals(stage)
    return kept_traces(stage)


def split_goals(stage: Stage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The task's train goals less its validation goals, and its validation goals (the last
    :data:`~calirl_lite.stages.VALIDATION_GOALS` train goals; :func:`calirl_lite.sources.task_goals`)."""
    train = [t["goal"] for t in task_goals(stage.task, "train", stage.world)]
    if len(train) <= 2 * VALIDATION_GOALS:  # a small (smoke) world: a fifth of its train goals
        cut = max(1, len(train) // 5)
        return train[:-cut], train[-cut:]
    return train[:-VALIDATION_GOALS], train[-VALIDATION_GOALS:]


def world_goals(stage: Stage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The goals of the ``n_traces`` training traces (the train goals outside the validation goals, in order, again from
    the first where more traces than goals are asked for) and of the ``n_heldout`` held-out traces (validation goals);
    an error if there are fewer validation goals than that."""
    cfg = stage.cfg
    train, validation = split_goals(stage)
    if cfg.n_heldout > len(validation):
        raise ValueError(f"{cfg.task}: asked for {cfg.n_heldout} held-out traces, the world has {len(validation)} validation goals")
    return [train[i % len(train)] for i in range(cfg.n_traces)], validation[: cfg.n_heldout]


def kept_traces(stage: Stage) -> tuple[list[Dialogue], list[Dialogue]] | None:
    """The train and held-out traces the run folder holds from an earlier run (or put there by hand), read and
    checked; None when it holds none."""
    train_path, held_path = stage.folder / "traces.jsonl", stage.folder / "heldout.jsonl"
    if not (train_path.is_file() and held_path.is_file()):
        return None
    limits = stage.models.text_limits()
    return read_dialogues(train_path, stage.task.name, limits), read_dialogues(held_path, stage.task.name, limits)


def collect_stage_traces(stage: Stage, kept: tuple[list[Dialogue], list[Dialogue]] | None = None,
                         real: User | None = None) -> tuple[list[Dialogue], list[Dialogue]]:
    """Train and held-out traces, collected once and kept in the run folder (reused on a re-run; ``kept``: those
    traces, already read by :func:`check_calibration_inputs`), with the stage's real users (``real``, else made here:
    :meth:`~calirl_lite.stages.Stage.real_user`) or its ``persona``."""
    cfg, task = stage.cfg, stage.task
    kept = kept or kept_traces(stage)
    if kept is not None:
        return kept
    if task.name == "chitchat":
        train = chitchat_dialogues(cfg.n_traces, cfg.seed)
        held = chitchat_dialogues(cfg.n_heldout, cfg.seed, offset=cfg.n_traces)
    else:
        train_goals, test_goals = world_goals(stage)
        policy, batch, real = base_policy(stage.models), stage.profile.eval_batch, real or stage.real_user()
        train = collect_traces(policy, task, train_goals, stage.budget, cfg.seed, batch, cfg.persona, real)
        held = collect_traces(policy, task, test_goals, stage.budget, cfg.seed + HELDOUT_SEED_OFFSET, batch, cfg.persona, real)
    limits = stage.models.text_limits()
    for dialogues, path in ((train, stage.folder / "traces.jsonl"), (held, stage.folder / "heldout.jsonl")):
        check_dialogues(dialogues, str(path), task.name, limits)
        write_jsonl(path, dialogues)
    return train, held


def traces_for(cfg: CalibrationConfig, ctx: Context) -> tuple[list[Dialogue], list[Dialogue]]:
    """The train and held-out traces of the calibration run ``cfg``: collected once, kept in its run folder."""
    return collect_stage_traces(calibration_stage(cfg, ctx))


def gap_metrics(stage: Stage, simulators: dict[str, Any], heldout: Sequence[Dialogue]) -> dict[str, Any]:
    """Per simulator ``{name: (model, tokenizer)}``: the exact per-turn gap on the held-out histories (toy tasks:
    :func:`simulator_gap`), the NLL of held-out real-user turns, and its own dialogues' behaviour statistics and
    outcome."""
    style = stage.profile.user_prompt_style
    report: dict[str, Any] = {"real": {"stats": behaviour_stats(heldout), "scores": mean_scores(heldout)}}
    policy = None if stage.task.name == "chitchat" else base_policy(stage.models)
    goals = [d.goal for d in heldout][: stage.cfg.n_sim_dialogues]
    for name, (model, tok) in simulators.items():
        entry: dict[str, Any] = {"nll": user_nll(model, tok, heldout, style)}
        if stage.task.name in TASKS and stage.real_user_spec.kind == "scripted":  # against scripted users, whose replies have exact chances
            entry["exact"] = simulator_gap(stage, model, tok, name, heldout, stage.cfg.gap_samples)
        if policy is not None:
            sim = LMUser(model, tok, name=name, temperature=stage.profile.user_temperature, max_new_tokens=stage.profile.user_tokens, prompt_style=style)
            ds = rollout(policy, sim, stage.task, goals, max_messages=stage.budget, seed=stage.cfg.seed + SIMULATOR_SEED_OFFSET).dialogues
            write_jsonl(stage.folder / f"simulated-{name}.jsonl", ds)
            entry.update(stats=behaviour_stats(ds), tv_to_real=behaviour_tv(ds, heldout), scores=mean_scores(ds))
        report[name] = entry
    return report


def simulator_gap(stage: Stage, model: Any, tokenizer: Any, name: str, heldout: Sequence[Dialogue], samples: int = 8) -> dict[str, Any]:
    """The exact per-turn gap (:func:`calirl_lite.exact_gap.exact_gap`) of an LM simulator against the scripted users
    whose traces it learns (the real users, or the calibration's persona), on the held-out histories; ``samples``
    replies sampled at each history split its mass outside the real users' replies by what they do."""
    prof = stage.profile
    sim = LMReplies(model, tokenizer, prof.user_prompt_style, prof.user_temperature, prof.user_tokens, name)
    return exact_gap(sim, persona_from_spec(stage.cfg.persona), heldout, samples=samples, seed=stage.cfg.seed + SIMULATOR_SEED_OFFSET)


def calibrate(cfg: CalibrationConfig, ctx: Context) -> dict[str, Any]:
    """Collect traces, train the calibrated simulator (resuming if interrupted), measure naive vs calibrated.

    Writes under the run folder: ``config.json``, ``traces.jsonl``, ``heldout.jsonl``, ``checkpoints/``,
    ``adapter/`` (the LoRA adapter with its config) or ``simulator/`` (a whole model), ``sft_log.json``, ``gap.json``
    and ``simulated-<naive|calibrated>.jsonl`` (each simulator's dialogues with the base policy on the held-out goals).
    """
    return calibrate_stage(calibration_stage(cfg, ctx))


def calibrate_stage(stage: Stage) -> dict[str, Any]:
    """:func:`calibrate` of a resolved stage."""
    kept = check_calibration_inputs(stage)  # before any folder is made
    run = stage.folder
    with folder_lock(run):  # a second calibration of the same run waits for the first
        run.mkdir(parents=True, exist_ok=True)
        stage.cfg.save(run)
        set_seed(stage.cfg.seed)
        clock, real = time.perf_counter(), stage.real_user()
        train, held = collect_stage_traces(stage, kept, real)
        seconds = {"traces": time.perf_counter() - clock}
        naive = load_base(stage)
        base_model, tok = load_base(stage)
        clock = time.perf_counter()
        adapter, log = train_simulator(stage, base_model, tok, train)
        if stage.cfg.method == "sft+realism":
            adapter, realism_log = realism_tune(stage, load_calibrated(stage, adapter), train)
        seconds["simulator"] = time.perf_counter() - clock
        clock = time.perf_counter()
        calibrated = load_calibrated(stage, adapter)
        report = gap_metrics(stage, {"naive": naive, "calibrated": calibrated}, held)
        seconds["measure"] = time.perf_counter() - clock
        report["sft_log"] = log
        if stage.cfg.method == "sft+realism":
            report["realism_log"] = realism_log
        report["adapter"] = str(adapter)
        report["seconds"] = seconds  # on this machine, with whatever else ran beside it
        report["real_user_calls"] = real_user_calls(real)  # what the traces cost (nothing where they were kept)
        atomic_write_json(run / "gap.json", json_safe(report))
    return report


def calibrate_once(cfg: CalibrationConfig, ctx: Context) -> dict[str, Any]:
    """:func:`calibrate`, or the finished run's gap.json (with its adapter) without measuring the gap again."""
    return calibrate_stage_once(calibration_stage(cfg, ctx))


def calibrate_stage_once(stage: Stage) -> dict[str, Any]:
    """:func:`calibrate_once` of a resolved stage."""
    if is_calibrated(stage):
        return json.loads((stage.folder / "gap.json").read_text())
    return calibrate_stage(stage)


def is_calibrated(stage: Stage) -> bool:
    """Whether the stage's calibration is finished: its gap report and its simulator are in its folder."""
    return (stage.folder / "gap.json").is_file() and simulator_folder(stage.folder) is not None


def calibrate_or_reuse(cfg: CalibrationConfig, ctx: Context, made_by: str) -> dict[str, Any]:
    """:func:`calibrate_once`, saying in one line whether the calibration was there (made by ``made_by``, e.g. an
    earlier notebook, and reused) or is made now — at the run mode's size, so that a notebook opened alone, in a fresh
    runtime, makes what it needs."""
    stage = calibration_stage(cfg, ctx)
    if is_calibrated(stage):
        print(f"{cfg.task}: the calibration {made_by} makes is here ({stage.folder.name}): reused", flush=True)
    else:
        print(f"{cfg.task}: no calibration here yet ({made_by} makes it): calibrating now, at {ctx.mode} size", flush=True)
    return calibrate_stage_once(stage)


def format_gap(report: dict[str, Any]) -> str:
    """Naive vs calibrated on every gap metric, one line each (lower is closer to the real users), then the exact
    per-turn gap of each with what carries it."""
    lines = [f"{'metric':>28} {'naive':>9} {'calibrated':>11}"]
    if "exact" in report["naive"]:
        lines.append(f"{'exact gap Σ_t ε_t':>28} {report['naive']['exact']['total']:9.3f} {report['calibrated']['exact']['total']:11.3f}")
    lines.append(f"{'NLL of real-user turns':>28} {report['naive']['nll']:9.3f} {report['calibrated']['nll']:11.3f}")
    for key in report["naive"].get("tv_to_real", {}):
        lines.append(f"{'TV ' + key:>28} {report['naive']['tv_to_real'][key]:9.3f} {report['calibrated']['tv_to_real'][key]:11.3f}")
    real = report["real"].get("scores", {})
    for metric in ("accuracy", "bleu"):
        if metric in real and metric in report["naive"].get("scores", {}):
            lines.append(f"base policy's {metric}: {real[metric]:.3f} with the real users, {report['naive']['scores'][metric]:.3f} with the naive "
                         f"simulator, {report['calibrated']['scores'][metric]:.3f} with the calibrated one")
    lines += [format_exact_gap(report[name]["exact"]) for name in ("naive", "calibrated") if "exact" in report[name]]
    return "\n".join(lines)


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(json_safe({k: v for k, v in report.items() if k != "sft_log"}), indent=2)


def sample_user_turn(model: Any, tokenizer: Any, dialogue: Dialogue, k: int, style: str, seed: int = 0) -> str:
    """What a model playing the user says at message ``k`` of ``dialogue`` (same context the real user had)."""
    import torch

    if not 0 <= k < len(dialogue.messages) or dialogue.messages[k].role != "user":
        raise ValueError(f"message {k} of dialogue {dialogue.task_id} is not a user turn")
    torch.manual_seed(seed)
    user = LMUser(model, tokenizer, prompt_style=style)
    state = user.open(get_task(dialogue.task), dialogue.goal, np.random.default_rng(seed))
    return user.replies([state], [dialogue.messages[:k]])[0]
