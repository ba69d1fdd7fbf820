"""Benchmarks that print their figures (speed goals live here, not in timed tests).

``calirl bench rollout``: tokens per second, all on the same model, of

* the batched rollout engine (whole dialogues, all in lock step; :mod:`calirl_lite.decode`);
* plain batched transformers ``generate`` of single turns on the same first prompts, each row stopping
  at its turn end as a dialogue turn does, repeated until it has sampled as many tokens as the engine
  (``generate_tok_s``); and, as an upper bound no dialogue reaches, one ``generate`` call in which every
  row runs the full length without stopping (``generate_fixed_length_tok_s``);
* the kit's own sampling loop on exactly those single turns (``stream_tok_s``: the lean forward where the
  model is a plain Llama, else the transformers forward) — the decode path alone, without users;
* a naive loop that runs one dialogue at a time through the same engine.

``calirl bench memory``: the memory and time plans of a GPU profile's effect budget, the commands that run it, and
with ``--measure`` on a GPU the peaks of its QLoRA calibration and of a GRPO step at full lengths, on random-weight
models of the exact layouts.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import memory
from .calibration import load_base, train_simulator
from .chat import turn_end_id
from .colab import EFFECT_BUDGETS
from .context import Context
from .decode import generate, make_forward
from .dialogue import Dialogue, Message
from .io import atomic_write_text
from .memory import Measure, micro_batches
from .profiles import Models, Profile, get_profile
from .rollout import Policy, base_policy, rollout, rollout_in_batches, rollout_one_at_a_time
from .settings import Settings
from .sources import task_goals
from .stages import SIMULATOR, CalibrationConfig, Stage, TrainConfig, TrainStage, resolve, train_stage
from .task_family import UserPersona
from .tasks import get_task
from .timeplan import GPUS, plan_time
from .tiny_models import build_tiny_model
from .train import check_inputs
from .trainer import Start, make_trainer, training_starts
from .users import LMUser, ScriptedUsers, make_user, parse_real_user
from .world import World, build_world


@dataclass
class UserBench(Settings):
    """Settings every benchmark of dialogues with a user has."""

    profile: str = "tiny"
    """model profile"""
    task: str = "arith-chat"
    """task family"""
    user: str = "naive"
    """who plays the user: naive (the LM) or real (scripted)"""
    seed: int = 0
    """seed"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.user not in ("naive", "real"):
            raise ValueError(f"user must be 'naive' (the LM plays the user) or 'real' (scripted), got {self.user!r}")


@dataclass
class RolloutBench(UserBench):
    """Settings of ``calirl bench rollout``."""

    dialogues: int = 32
    """dialogues run together by the engine"""
    naive_dialogues: int = 8
    """dialogues run one at a time by the naive loop"""
    max_messages: int = 8
    """message budget per dialogue"""
    max_new_tokens: int = 24
    """tokens per turn at most"""
    repeats: int = 3
    """runs of the engine and of generate (the median is reported)"""

    BOUNDS = {"dialogues": (1, None), "naive_dialogues": (1, None), "max_messages": (2, None), "max_new_tokens": (1, None), "repeats": (1, None)}


@dataclass
class TrainBench(UserBench):
    """Settings of ``calirl bench train``."""

    user: str = "real"
    """who plays the user: real (scripted; trains the oracle) or naive (the LM; trains the naive method)"""
    steps: int = 6
    """GRPO steps per setting (the first is a warm-up)"""
    prompts_per_step: int = 4
    """distinct goals per step"""
    group_size: int = 8
    """dialogues per goal"""

    BOUNDS = {"steps": (2, None), "prompts_per_step": (1, None), "group_size": (2, None)}


@dataclass
class WorldBench(Settings):
    """Settings of ``calirl bench world``."""

    seed: int = 0
    """world seed"""
    goals: int = 200
    """test goals per task for the copy rates"""

    BOUNDS = {"goals": (1, None)}


@dataclass
class MemoryBench(Settings):
    """Settings of ``calirl bench memory``."""

    profile: str = "colab-t4"
    """a GPU profile: its memory and time are planned for its effect budget (colab.EFFECT_BUDGETS) where it has one,
    else for the settings' defaults"""
    budget: float = 0.0
    """GiB each stage must fit (0: the profile's gpu_memory_gib)"""
    max_messages: int = 0
    """message budget of a dialogue (0: the effect budget's, else 14)"""
    gpu: str = ""
    """the GPU of the time plan: t4, l4, a100 or h100 (default: the profile's)"""
    task: str = ""
    """the task of the planned runs (default: the effect budget's; the plan counts tokens, so it is the same for any)"""
    real_user: str = ""
    """the real users of the planned runs, as the commands take it: '' (scripted) or 'endpoint:BASE_URL#MODEL' (its
    server's time is not on this GPU and not in the plan); not 'local:MODEL', whose model the plan does not count"""
    measure: bool = False
    """also measure calibration and a GRPO step on random-weight models of the layouts (CUDA)"""

    BOUNDS = {"budget": (0, None), "max_messages": (0, None)}

    def __post_init__(self) -> None:
        super().__post_init__()
        if parse_real_user(self.real_user).kind == "local":
            raise ValueError(f"real_user {self.real_user!r}: the plan does not count a local real user's model, which would share the GPU with "
                             "the policy and the simulator; plan with an endpoint (a server elsewhere, 'endpoint:BASE_URL#MODEL') or the scripted users")


@dataclass
class ParsingBench(Settings):
    """Settings of ``calirl bench parsing``."""

    profile: str = "smol"
    """model profile of the policy whose turns are read"""
    task: str = "math-chat"
    """task family whose scripted real users read them"""
    dialogues: int = 200
    """dialogues of the base policy with the real users, on the first held-out goals"""
    sample: int = 30
    """assistant turns drawn at random for checking by hand"""
    seed: int = 0
    """seed of the dialogues and of the sample"""
    out: str = ""
    """JSON Lines file for the sample (default: results/parsing-<profile>-<task>.jsonl)"""

    SMOKE = {"dialogues": 4, "sample": 4}
    BOUNDS = {"dialogues": (1, None), "sample": (0, None)}


def hf_generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int, temperature: float, fixed_length: bool = False) -> int:
    """Sample one turn per prompt with transformers' ``generate`` (left-padded batch); returns the tokens sampled,
    each row counted up to its turn-end token (all of them with ``fixed_length``, where no row stops)."""
    end, pad = turn_end_id(tokenizer), tokenizer.pad_token_id
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 else {"do_sample": False}
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens if fixed_length else 0,
                             eos_token_id=None if fixed_length else end, pad_token_id=pad, **sampling)
    rows = out[:, width:].tolist()
    return sum(len(r) if fixed_length or end not in r else r.index(end) for r in rows)


def _rate(sample: Any, tokens: int) -> float:
    """Tokens per second of calling ``sample()`` (which returns the tokens it sampled) until ``tokens`` are sampled."""
    start, n = time.perf_counter(), 0
    while n < tokens:
        n += sample()
    return n / (time.perf_counter() - start)


def bench_rollout(cfg: RolloutBench, ctx: Context) -> dict[str, Any]:
    """Measure the rates (engine, generate and stream: median of ``repeats`` runs); returns ``engine_tok_s``,
    ``generate_tok_s``, ``stream_tok_s``, ``naive_tok_s``, the upper bound and the ratios, on the test goals of the
    context's toy world."""
    user, seed, repeats, max_messages, max_new_tokens = cfg.user, cfg.seed, cfg.repeats, cfg.max_messages, cfg.max_new_tokens
    n_dialogues, n_naive = cfg.dialogues, cfg.naive_dialogues
    stage = resolve(ctx, cfg.profile, cfg.task)
    prof, task = stage.profile, stage.task
    goals = [t["goal"] for t in task_goals(task, "test", stage.world)]
    goals = (goals * (n_dialogues // max(1, len(goals)) + 1))[:n_dialogues]
    policy = base_policy(stage.models, max_new_tokens)
    model, tok = policy.model, policy.tokenizer
    sim = LMUser(model, tok, max_new_tokens=max_new_tokens, prompt_style=prof.user_prompt_style) if user == "naive" else ScriptedUsers()
    rollout(policy, sim, task, goals[:2], max_messages, seed=seed)  # warm-ups
    hf_generate(model, tok, [[tok.pad_token_id]], 2, prof.policy_temperature)
    rates: dict[str, list[float]] = {"engine": [], "generate": [], "generate_fixed_length": [], "stream": []}
    engine_tokens = []
    for r in range(repeats):
        torch.manual_seed(seed + r)
        engine = rollout(policy, sim, task, goals, max_messages, seed=seed + r)
        rates["engine"].append(engine.generated_tokens / engine.seconds)
        engine_tokens.append(engine.generated_tokens)
        # Single turns on the same prompts (stopping at the turn end, as a dialogue turn does), repeated until
        # as many tokens as the engine sampled: by transformers' generate, then by the kit's own sampling loop.
        rates["generate"].append(_rate(lambda: hf_generate(model, tok, engine.prompt_ids, max_new_tokens, prof.policy_temperature), engine.generated_tokens))
        rates["stream"].append(_rate(lambda: sum(len(o.ids) - int(o.forced_end) for o in generate(model, tok, engine.prompt_ids, max_new_tokens,
                                                                                             prof.policy_temperature)), engine.generated_tokens))
        # The same, with no turn ends at all (every row runs the full length): an upper bound no dialogue reaches.
        per_seq = max(1, round(engine.generated_tokens / len(goals)))
        rates["generate_fixed_length"].append(_rate(lambda: hf_generate(model, tok, engine.prompt_ids, per_seq, prof.policy_temperature, True), 1))
    naive = rollout_one_at_a_time(policy, sim, task, goals[:n_naive], max_messages, seed=seed)
    result = {
        "profile": cfg.profile, "task": cfg.task, "user": user, "n_dialogues": len(goals), "n_naive": n_naive, "max_messages": max_messages,
        "max_new_tokens": max_new_tokens, "repeats": repeats, "threads": torch.get_num_threads(),
        "forward": type(make_forward(model, 1)).__name__,
        "engine_tokens": int(statistics.median(engine_tokens)), **{f"{k}_tok_s": statistics.median(v) for k, v in rates.items()},
        "naive_tok_s": naive.generated_tokens / naive.seconds,
        "engine_vs_generate_each_run": [e / g for e, g in zip(rates["engine"], rates["generate"])],
    }
    result["engine_vs_generate"] = result["engine_tok_s"] / result["generate_tok_s"]
    result["stream_vs_generate"] = result["stream_tok_s"] / result["generate_tok_s"]
    result["engine_vs_naive"] = result["engine_tok_s"] / result["naive_tok_s"]
    return result


def bench_train(bench: TrainBench, ctx: Context) -> dict[str, Any]:
    """GRPO steps/s and tokens/s of ``calirl train``'s code path, single-turn and multi-turn.

    *single-turn*: a message budget of 2 (the user's first message, one policy turn) — plain GRPO;
    *multi-turn*: the world's budget (14 messages), user turns masked out of the loss.
    Each is timed from the end of its first step (warm-up) to the end of its last; ``policy_tok_s``
    counts the tokens the policy wrote and trained on (env_mask 1), ``all_tok_s`` every token of the
    training sequences (prompt, policy and user), ``rollout_share`` the part of the time spent in rollouts.
    """
    from transformers import TrainerCallback

    method = {"real": "oracle", "naive": "naive"}[bench.user]
    result: dict[str, Any] = {"profile": bench.profile, "task": bench.task, "user": bench.user, "steps": bench.steps,
                              "prompts_per_step": bench.prompts_per_step, "group_size": bench.group_size, "threads": torch.get_num_threads()}

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.tokens: list[int] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())
            self.tokens.append(int(state.num_input_tokens_seen))

    for name, budget in (("single_turn", 2), ("multi_turn", ctx.world.max_messages)):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(method=method, profile=bench.profile, task=bench.task, seed=bench.seed, steps=bench.steps, prompts_per_step=bench.prompts_per_step,
                              group_size=bench.group_size, max_messages=budget, save_steps=bench.steps + 1, out_dir=tmp)
            stage = train_stage(cfg, ctx)
            inputs = check_inputs(stage)
            clock = Clock()
            trainer, stats = make_trainer(stage, training_starts(stage, inputs.logged), make_user(SIMULATOR[method], stage.models), [clock])
            trainer.train()
        seconds = clock.ends[-1] - clock.ends[0]
        timed = slice(1, None)  # the steps after the warm-up
        result[name] = {
            "max_messages": budget, "steps_per_s": (len(clock.ends) - 1) / seconds,
            "policy_tok_s": sum(stats.policy_tokens[timed]) / seconds, "all_tok_s": (clock.tokens[-1] - clock.tokens[0]) / seconds,
            "rollout_share": sum(stats.seconds[timed]) / seconds,
            "policy_tokens_per_dialogue": sum(stats.policy_tokens[timed]) / ((bench.steps - 1) * bench.prompts_per_step * bench.group_size),
        }
    return result


TOLD_ALL = UserPersona("told-all", reveal_first=1.0, p_answer_when_asked=1.0, p_unprompted_reveal=0.0, p_mistake=0.0, p_accept_wrong=0.0)
"""A user whose first message states every detail, correctly: what the base policy then answers shows what it can copy."""


def copy_rates(world: Any, n_goals: int = 200, seed: int = 0) -> dict[str, float]:
    """How well the world's base policy uses details it has been told: every detail in the first message, one turn.

    Among first turns that answer (arith-chat) or draft (docedit-chat): the share with the right number
    (``arith_right``) and with each slot of the note right (``name``, ``place``, ``day``, ``tone``); and how
    often the first turn answers at all (``arith_answers``, ``docedit_drafts``).
    """
    tiny = get_profile("tiny")
    policy = Policy(*world.load_model(), "base", tiny.policy_temperature, tiny.max_new_tokens)
    out: dict[str, float] = {}
    for name in ("arith-chat", "docedit-chat"):
        task = get_task(name)
        goals = [t["goal"] for t in world.tasks(name, "test")][:n_goals]
        turns = [d.messages[1].text for d in rollout(policy, ScriptedUsers(TOLD_ALL), task, goals, 2, seed=seed).dialogues]
        intents = [task.parse_assistant(t) for t in turns]
        answered = [(g, i) for g, i in zip(goals, intents) if i.kind == "answer"]
        if name == "arith-chat":
            out["arith_answers"] = len(answered) / len(goals)
            out["arith_right"] = float(np.mean([task.answer_is_right(g, i) for g, i in answered])) if answered else 0.0
        else:
            out["docedit_drafts"] = len(answered) / len(goals)
            drafts = [(g, task.parse_draft(i.value)) for g, i in answered]
            for slot in ("name", "tone", "place", "day"):
                out[slot] = float(np.mean([d.get(slot) == g[slot] for g, d in drafts])) if drafts else 0.0
    return out


def bench_world(cfg: WorldBench, ctx: Context, **overrides: Any) -> dict[str, Any]:
    """Build the toy world afresh (the context's world sizes, the bench's seed, in a temporary cache; ``overrides``
    are WorldConfig fields) and time it, then measure what its LM can copy (:func:`copy_rates`)."""
    seed, n_goals = cfg.seed, cfg.goals
    with tempfile.TemporaryDirectory() as tmp:
        world_cfg = dataclasses.replace(ctx.world, seed=seed, cache_dir=tmp, **overrides)
        start = time.perf_counter()
        world = build_world(world_cfg, force=True)
        seconds = time.perf_counter() - start
        return world_figures(world, seconds, n_goals)


def world_figures(world: World, seconds: float, n_goals: int) -> dict[str, Any]:
    """A built world's build time, final pre-training loss and copy rates (:func:`copy_rates`)."""
    loss = world.manifest["train_loss"]
    return {"seed": world.config.seed, "build_seconds": seconds, "pretrain_steps": world.config.train_steps, "final_loss": loss[-1]["loss"] if loss else None,
            "threads": torch.get_num_threads(), "n_goals": n_goals, **copy_rates(world, n_goals, world.config.seed)}


def planned_sizes(cfg: MemoryBench) -> tuple[CalibrationConfig, TrainConfig, tuple[str, ...], list[str]]:
    """The calibration and training settings, methods and commands whose memory and time ``calirl bench memory`` plans:
    the profile's effect budget (:data:`calirl_lite.colab.EFFECT_BUDGETS`), else the settings' defaults, at full size;
    with the bench's task, real users and message budget where it names them."""
    b = EFFECT_BUDGETS.get(cfg.profile)
    calibration, training = (dict(b.calibration), dict(b.training)) if b else ({}, {})
    if cfg.max_messages:
        calibration["max_messages"] = training["max_messages"] = cfg.max_messages
    if cfg.real_user:
        calibration["real_user"] = training["real_user"] = cfg.real_user
    task = cfg.task or (b.task if b else "math-chat")
    cal = CalibrationConfig.for_mode("full", profile=cfg.profile, task=task, **calibration)
    train = TrainConfig.for_mode("full", profile=cfg.profile, task=task, **training)
    if b is None:
        return cal, train, ("static", "naive", "calibrated", "oracle"), []
    return cal, train, b.methods, dataclasses.replace(b, task=task, calibration=calibration, training=training).commands()


def bench_memory(cfg: MemoryBench, ctx: Context, layout: Any = None, folder: str = "") -> dict[str, Any]:
    """The memory plan of a GPU profile (:func:`calirl_lite.memory.plan`) and its time plan
    (:func:`calirl_lite.timeplan.plan_time`), for the sizes of :func:`planned_sizes`; with ``measure``, the peaks
    measured on this machine's GPU for QLoRA calibration (the profile's settings, examples at full length) and one
    GRPO step (a naive LM simulator, every dialogue at its longest: random weights never end a turn early) — on
    models of the exact layouts with random weights, built in ``folder``, so nothing is downloaded. ``layout``
    replaces both layouts (a small one lets the same code run on a CPU, where no peak is measured)."""
    prof = get_profile(cfg.profile)
    budget, gpu = cfg.budget or prof.gpu_memory_gib or 14.0, cfg.gpu or prof.gpu or "t4"
    cal, train, methods, commands = planned_sizes(cfg)
    messages = train.max_messages or ctx.world.max_messages
    vllm_gib = train.vllm_memory * GPUS[gpu].memory_gib if train.vllm and gpu in GPUS else 0.0
    result: dict[str, Any] = {"plan": memory.plan(prof, budget, messages, train.prompts_per_step, train.group_size, cal.batch_size, cal.max_length,
                                                  train.lora_r, vllm_gib),
                              "time": plan_time(prof, gpu, cal, train, methods), "commands": commands, "measured": {}}
    if not cfg.measure:
        return result
    if layout is None and not torch.cuda.is_available():
        raise ValueError("measuring needs a CUDA GPU and none is here; without --measure the plan is printed")
    base = Path(folder or tempfile.mkdtemp(prefix="calirl-memory-"))
    models = {}
    for role, name, seed in (("policy", prof.policy_model, 0), ("simulator", prof.user_model, 1)):
        models[role] = str(build_tiny_model("qwen2", base / role, seed=seed, layout=layout or memory.layout_of(name)))
    checked = dataclasses.replace(prof, name=f"{cfg.profile}-random", policy_model=models["policy"], user_model=models["simulator"],
                                  user_in_4bit=prof.user_in_4bit and torch.cuda.is_available())
    result["measured"]["calibration"] = _peak(lambda: _calibration_step(ctx, checked, base))
    result["measured"]["training"] = _peak(lambda: _grpo_step(ctx, checked, base, messages))
    return result


def _peak(run: Any) -> dict[str, Any]:
    """``run()``'s seconds and (on CUDA) its peak of allocated and reserved GPU memory, in GiB."""
    with Measure() as m:
        extra = run()
    return {**m.as_dict(), **extra}


def _long_text(rng: np.random.Generator, words: int) -> str:
    vocab = "tom has some apples and then he buys more at the market how many does she have now".split()
    return " ".join(rng.choice(vocab, words))


def _calibration_step(ctx: Context, prof: Profile, base: Path) -> dict[str, Any]:
    """Two SFT steps of the simulator with the profile's calibration settings on 16 traces long enough to fill max_length."""
    rng = np.random.default_rng(0)
    task = get_task("arith-chat")
    goal = task.sample_goal(rng)
    cfg = CalibrationConfig(profile=prof.name.removesuffix("-random"), task="arith-chat", steps=2, save_steps=1000, out_dir=str(base / "calibrate"), load_in_4bit=prof.user_in_4bit)
    stage = Stage(cfg, ctx, Models(prof, None, ctx.cache), task, None, ctx.world.max_messages, base / "calibrate")
    traces = [Dialogue("arith-chat", str(i), goal, [Message(("user", "assistant")[k % 2], _long_text(rng, 180)) for k in range(8)]) for i in range(cfg.batch_size)]
    model, tok = load_base(stage)
    train_simulator(stage, model, tok, traces)
    micro, accumulate = micro_batches(prof, "calibration", calibration_batch=cfg.batch_size, calibration_length=cfg.max_length, lora_r=cfg.lora_r)
    return {"load_in_4bit": bool(cfg.load_in_4bit), "micro_batch": micro, "accumulation": accumulate}


def _grpo_step(ctx: Context, prof: Profile, base: Path, max_messages: int) -> dict[str, Any]:
    """One GRPO step of the policy (LoRA on a GPU profile) against the naive LM simulator."""
    rng = np.random.default_rng(1)
    task = get_task("arith-chat")
    cfg = TrainConfig(method="naive", profile=prof.name.removesuffix("-random"), task="arith-chat", steps=1, save_steps=1000, max_messages=max_messages, out_dir=str(base / "train"))
    models = Models(prof, None, ctx.cache)
    stage = TrainStage(cfg, ctx, models, task, None, max_messages, base / "train", None, prof.needs_cuda)
    starts = [Start(task.sample_goal(rng)) for _ in range(cfg.prompts_per_step)]
    trainer, stats = make_trainer(stage, starts, make_user("naive", models))
    trainer.train()
    return {"micro_batch": trainer.args.per_device_train_batch_size, "accumulation": trainer.args.gradient_accumulation_steps,
            "rollout_seconds": round(stats.seconds[0], 1), "tokens_sampled": stats.all_tokens[0], "lora": stage.lora}


def bench_parsing(cfg: ParsingBench, ctx: Context) -> dict[str, Any]:
    """How the scripted real users read a real model's turns: the profile's base policy talks with them on held-out
    goals, and every assistant turn is tallied by what the user took it for (an answer — and whether judged right —,
    a question, or neither). A random sample of turns, each with the user's reading and reply, goes to a JSON Lines
    file with an empty ``check`` field, for a person to mark where the reading is wrong: that the reward a model gets
    is the reward it earned is checked by reading, not assumed."""
    stage = resolve(ctx, cfg.profile, cfg.task)
    task = stage.task
    goals = [t["goal"] for t in task_goals(task, "test", stage.world)][: cfg.dialogues]
    dialogues = rollout_in_batches(base_policy(stage.models), ScriptedUsers(), task, goals, stage.budget, cfg.seed,
                                   stage.profile.eval_batch, "parsing", f"{cfg.profile} with {cfg.task}'s real users")
    turns = []
    for d in dialogues:
        for k, m in enumerate(d.messages):
            if m.role == "assistant":
                intent = task.parse_assistant(m.text)
                reply = d.messages[k + 1].text if k + 1 < len(d.messages) else ""
                turns.append({"dialogue": d.task_id, "turn": k, "assistant": m.text, "read_as": intent.kind, "read_value": intent.value,
                              "asked_about": list(intent.slots), "judged_right": task.answer_is_right(d.goal, intent) if intent.kind == "answer" else None,
                              "user_reply": reply, "gold": d.goal.get("answer", d.goal.get("target")), "check": ""})
    kinds = {kind: sum(t["read_as"] == kind for t in turns) for kind in ("answer", "ask", "other")}
    answered = {t["dialogue"] for t in turns if t["read_as"] == "answer"}
    rng = np.random.default_rng(cfg.seed)
    sample = [turns[i] for i in sorted(rng.choice(len(turns), min(cfg.sample, len(turns)), replace=False))] if turns else []
    out = Path(cfg.out) if cfg.out else ctx.results_dir() / f"parsing-{cfg.profile}-{cfg.task}.jsonl"
    atomic_write_text(out, "".join(json.dumps(t) + "\n" for t in sample))
    return {"profile": cfg.profile, "task": cfg.task, "dialogues": len(dialogues), "turns": len(turns), "read_as": kinds,
            "dialogues_with_an_answer": len(answered), "answers_judged_right": sum(bool(t["judged_right"]) for t in turns),
            "accuracy": float(np.mean([task.score(d)[task.metric] for d in dialogues])) if dialogues else 0.0,
            "sample": str(out), "sample_size": len(sample)}
