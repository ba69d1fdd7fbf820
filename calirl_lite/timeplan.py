"""The time plan: how many minutes each stage of a budget takes on one GPU, from the tokens it samples and trains and
the GPU's published figures — the memory plan's companion (:mod:`calirl_lite.memory`).

Three kinds of work, each one line of arithmetic to redo by hand:

* **decoding** — sampling turns, a batch of dialogues at a time. A decode step writes one token in every row of the
  batch, and to do so reads the sampling model's weights and its KV cache once: (weights + KV bytes) / (bandwidth ×
  :data:`BANDWIDTH_EFFICIENCY`) seconds. Each step also costs its engine's own overhead (Python, kernel launches, the
  sampler): :data:`PLAIN_STEP_SECONDS` for the kit's sampling loop over the transformers forward — calibrated on
  the one GRPO step the kit has measured, :data:`MEASURED_STEP` — and :data:`VLLM_STEP_SECONDS` for TRL's colocated
  vLLM engine (an assumption: vLLM could not be run here). A batch samples until its longest row ends, so every turn
  is counted at its cap: the plan is an upper bound, which a trained model's shorter turns stay under.
* **prefill** — the tokens a model reads before it samples (the prompt, the other side's turns): 2 · params FLOPs a
  token, at :data:`MFU` of the GPU's tensor-core peak.
* **training** — SFT and GRPO: 6 · params FLOPs a trained token, the usual count of a forward and a backward pass
  (with LoRA and gradient checkpointing it holds as well: forward 2, the forward again 2, the activations' gradients
  2, no gradients of the frozen weights), at :data:`MFU`. With vLLM, TRL scores the sampled tokens once more with the
  training model (its importance-sampling correction): 2 · params a token.

Plus fixed costs: loading a model (:data:`LOAD_SECONDS`), starting vLLM (:data:`VLLM_START_SECONDS`) and pushing
the policy's new weights into it before each step's rollouts (:data:`VLLM_SYNC_SECONDS`). Scripted real users cost no
GPU time; an LLM real user behind an endpoint costs its server's time, which is not on this GPU and not in the plan.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

from .memory import dialogue_tokens, kv_bytes, layout_of, turns, weights_bytes
from .profiles import Profile
from .stages import SIMULATOR, CalibrationConfig, TrainConfig
from .world import WorldConfig


@dataclass(frozen=True)
class GPU:
    """A GPU's published figures, the two that bound a training step: arithmetic and memory bandwidth."""

    name: str
    tflops: float
    """dense fp16/bf16 tensor-core peak, TFLOP/s (without the 2:4 sparsity that datasheets often quote doubled)"""
    bandwidth_gbs: float
    """memory bandwidth, GB/s"""
    memory_gib: float
    """memory a program sees (torch's total_memory): what vLLM's share is a share of"""


GPUS = {
    "t4": GPU("NVIDIA T4", 65.0, 320.0, 14.7),
    "l4": GPU("NVIDIA L4", 121.0, 300.0, 22.0),
    "a100": GPU("NVIDIA A100 80GB SXM", 312.0, 2039.0, 79.0),
    "h100": GPU("NVIDIA H100 80GB SXM", 989.0, 3350.0, 79.0),
}
"""From NVIDIA's datasheets: T4 — 65 TFLOPS mixed precision (FP16/FP32), 320 GB/s GDDR6, 16 GB; L4 — 242 TFLOPS
FP16 tensor with sparsity (121 dense), 300 GB/s, 24 GB; A100 80GB SXM — 312 TFLOPS BF16/FP16 tensor (dense),
2,039 GB/s; H100 SXM — 1,979 TFLOPS BF16 tensor with sparsity (989 dense), 3.35 TB/s. Memory as torch reports it
(Colab's T4: 14.7 GiB)."""

BANDWIDTH_EFFICIENCY = 0.6
"""share of the peak bandwidth a decode step's reads reach (assumed)"""
MFU = 0.3
"""share of the tensor-core peak that prefill, SFT and GRPO's forward and backward passes reach (assumed: a usual
figure for LoRA training of small models in eager PyTorch; 4-bit layers' dequantisation is folded in)"""

MEASURED_STEP = {"gpu": "h100", "step_seconds": 393.0, "sampling_seconds": 378.0, "dialogues": 32, "messages": 14, "tokens_per_turn": 256}
"""The kit's one measured GRPO step (docs/reference.md, ``calirl bench memory --profile colab-t4 --measure``): the
colab-t4 layouts with random weights on an H100 80GB — the 0.5B policy (LoRA) against the 4-bit 1.5B simulator, 32
dialogues of 14 messages, every turn its full 256 tokens: 114,688 tokens sampled in 378 s of the step's 393 s."""
PLAIN_STEP_SECONDS = 0.104
"""overhead of one decode step of the kit's own sampling loop over the transformers forward, at any batch size,
calibrated on :data:`MEASURED_STEP`: 378 s over 14 turns × 256 tokens = 3,584 decode steps is 105 ms a step, of which
reading the weights and KV caches takes about 1 ms on an H100; the rest is overhead. One number for both models of that
step (the LoRA-wrapped 0.5B policy and the 4-bit 1.5B simulator), taken as the same on every GPU — it is mostly host
work, so a slower host (Colab's two vCPUs) likely makes it larger."""
VLLM_STEP_SECONDS = 0.005
"""overhead of one decode step of TRL's colocated vLLM engine (an assumption, not measured here: vLLM replays each
step as a CUDA graph, and its scheduler and sampler cost a few milliseconds between replays — about 20× less than
the plain path's measured overhead)"""
VLLM_START_SECONDS = 90.0
"""starting the colocated engine in a training run: loading the policy, profiling memory, capturing CUDA graphs (assumed)"""
VLLM_SYNC_SECONDS = 2.0
"""pushing the policy's weights into the engine before each step's rollouts (LoRA merged first; assumed)"""
LOAD_SECONDS = 20.0
"""loading one model from the local cache onto the GPU (assumed; the first download from the hub is not counted)"""


@dataclass(frozen=True)
class Sampler:
    """A model as the time plan sees it: what a decode step reads, and its engine's overhead per step."""

    params: float
    weights_bytes: float
    kv_bytes_per_token: float
    step_seconds: float


def sampler(model: str, four_bit: bool, step_seconds: float) -> Sampler:
    """A model of the memory plan's layouts as the time plan sees it."""
    layout = layout_of(model)
    return Sampler(layout.linear_params() + layout.embedding_params(), weights_bytes(layout, four_bit), kv_bytes(layout, 1, 1), step_seconds)


def samplers(prof: Profile, vllm: bool = False) -> tuple[Sampler, Sampler]:
    """The profile's policy (sampled by TRL's colocated vLLM where ``vllm``, else by the kit's own engine) and its
    user simulator (always the kit's own engine), as the time plan sees them."""
    return (sampler(prof.policy_model, False, VLLM_STEP_SECONDS if vllm else PLAIN_STEP_SECONDS),
            sampler(prof.user_model, prof.user_in_4bit, PLAIN_STEP_SECONDS))


def decode_seconds(gpu: GPU, s: Sampler, batch: int, steps: int, mean_tokens: float) -> float:
    """``steps`` decode steps of ``batch`` rows whose KV caches hold ``mean_tokens`` tokens on average."""
    read = s.weights_bytes + s.kv_bytes_per_token * batch * mean_tokens
    return steps * (read / (gpu.bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY) + s.step_seconds)


def flop_seconds(gpu: GPU, flops: float) -> float:
    """Seconds of ``flops`` floating-point operations at :data:`MFU` of the GPU's tensor-core peak."""
    return flops / (gpu.tflops * 1e12 * MFU)


def dialogues_seconds(gpu: GPU, policy: Sampler, user: Sampler | None, batch: int, messages: int, policy_tokens: int, user_tokens: int) -> float:
    """One batch of dialogues sampled in lock step: every assistant turn at its cap, and every user turn too where a
    model plays the user (``user`` None: scripted users, or an LLM behind an endpoint — no time on this GPU). Each
    model also prefills the whole dialogue once. The KV caches hold half the longest dialogue on average."""
    length = dialogue_tokens(messages, policy_tokens, user_tokens)
    assistant_turns, user_turns = turns(messages)
    seconds = decode_seconds(gpu, policy, batch, assistant_turns * policy_tokens, length / 2) + flop_seconds(gpu, 2 * policy.params * batch * length)
    if user is not None:
        seconds += decode_seconds(gpu, user, batch, user_turns * user_tokens, length / 2) + flop_seconds(gpu, 2 * user.params * batch * length)
    return seconds


def evaluation_seconds(gpu: GPU, prof: Profile, policy: Sampler, user: Sampler | None, n: int, messages: int) -> float:
    """``n`` dialogues of the policy with ``user`` (None: scripted users or an endpoint), in batches of the profile's
    ``eval_batch`` (no batch larger than ``n``)."""
    return batches(n, prof.eval_batch) * dialogues_seconds(gpu, policy, user, min(n, prof.eval_batch), messages, prof.max_new_tokens, prof.user_tokens)


def grpo_step_seconds(gpu: GPU, policy: Sampler, user: Sampler | None, batch: int, messages: int, policy_tokens: int, user_tokens: int,
                      vllm: bool) -> dict[str, float]:
    """One GRPO step: its rollouts, the forward and backward passes over every dialogue, and (vLLM) the weight sync."""
    length = dialogue_tokens(messages, policy_tokens, user_tokens)
    flops = (6 + 2 * vllm) * policy.params * batch * length
    parts = {"sampling": dialogues_seconds(gpu, policy, user, batch, messages, policy_tokens, user_tokens), "learning": flop_seconds(gpu, flops)}
    if vllm:
        parts["weight sync"] = VLLM_SYNC_SECONDS
    return parts


def measured_step_model() -> dict[str, float]:
    """What the model says of :data:`MEASURED_STEP` (plain path, the colab-t4 layouts on an H100): to set beside the
    measured 378 s of sampling and 393 s in all."""
    m, gpu = MEASURED_STEP, GPUS[str(MEASURED_STEP["gpu"])]
    policy = sampler("Qwen/Qwen2.5-0.5B-Instruct", False, PLAIN_STEP_SECONDS)
    user = sampler("Qwen/Qwen2.5-1.5B-Instruct", True, PLAIN_STEP_SECONDS)
    step = grpo_step_seconds(gpu, policy, user, int(m["dialogues"]), int(m["messages"]), int(m["tokens_per_turn"]), int(m["tokens_per_turn"]), False)
    return {"sampling_seconds": step["sampling"], "step_seconds": sum(step.values())}


def batches(n: int, size: int) -> int:
    """How many batches of at most ``size`` dialogues ``n`` dialogues take."""
    return math.ceil(n / size)


def calibration_minutes(gpu: GPU, prof: Profile, cal: CalibrationConfig, messages: int) -> dict[str, dict[str, float]]:
    """``calirl calibrate``: the base policy's traces with the real users, then SFT of the simulator, then the gap —
    the base policy's dialogues with the naive and with the calibrated simulator (``n_sim_dialogues``, one batch each)."""
    policy, user = samplers(prof)
    p_tok, u_tok = prof.max_new_tokens, prof.user_tokens
    traces = {"loading": LOAD_SECONDS, "sampling": sum(evaluation_seconds(gpu, prof, policy, None, n, messages) for n in (cal.n_traces, cal.n_heldout))}
    sft_tokens = cal.steps * cal.batch_size * cal.max_length
    # loading: the simulator twice (naive, and the base to train), the calibrated one, and the policy again
    calibration = {"loading": 4 * LOAD_SECONDS, "SFT": flop_seconds(gpu, 6 * user.params * sft_tokens),
                   "gap dialogues": 2 * dialogues_seconds(gpu, policy, user, cal.n_sim_dialogues, messages, p_tok, u_tok)}
    return {"traces": _minutes(traces), "calibration": _minutes(calibration)}


def training_minutes(gpu: GPU, prof: Profile, train: TrainConfig, method: str, messages: int) -> dict[str, float]:
    """One ``calirl train`` run: its GRPO steps, then the trained policy's evaluation with the real users and (where
    they differ) with its training simulator — sampled by vLLM where the run uses it."""
    policy, lm_user = samplers(prof, train.vllm)
    user = None if SIMULATOR[method] == "real" else lm_user
    batch = train.prompts_per_step * train.group_size
    step = grpo_step_seconds(gpu, policy, user, batch, messages, prof.max_new_tokens, prof.user_tokens, train.vllm)
    parts = {"loading": 2 * LOAD_SECONDS + (VLLM_START_SECONDS if train.vllm else 0.0)}
    parts |= {f"{k} ({train.steps} steps)": train.steps * v for k, v in step.items()}
    simulated = 0.0 if user is None else evaluation_seconds(gpu, prof, policy, user, train.n_eval_simulator, messages)
    parts["evaluation"] = evaluation_seconds(gpu, prof, policy, None, train.n_eval, messages) + simulated
    return _minutes(parts)


def base_evaluation_minutes(gpu: GPU, prof: Profile, train: TrainConfig, methods: Sequence[str], messages: int) -> dict[str, float]:
    """The base policy's scores, computed once and shared by every run (``runs/base-eval/``): with the real users, and
    with each training simulator the methods use."""
    policy, user = samplers(prof, train.vllm)
    parts = {"with the real users": evaluation_seconds(gpu, prof, policy, None, train.n_eval, messages)}
    for sim in sorted({SIMULATOR[m] for m in methods} - {"real"}):
        parts[f"with the {sim} simulator"] = evaluation_seconds(gpu, prof, policy, user, train.n_eval_simulator, messages)
    return _minutes(parts)


def _minutes(parts: dict[str, float]) -> dict[str, Any]:
    return {"minutes": round(sum(parts.values()) / 60, 1), "parts_minutes": {k: round(v / 60, 2) for k, v in parts.items()}}


def with_tokens(prof: Profile, cfg: CalibrationConfig | TrainConfig) -> Profile:
    """The profile with the settings' ``max_new_tokens`` where they give one (as the stages resolve it)."""
    return dataclasses.replace(prof, max_new_tokens=cfg.max_new_tokens) if cfg.max_new_tokens else prof


def plan_time(prof: Profile, gpu: str, cal: CalibrationConfig, train: TrainConfig, methods: Sequence[str]) -> dict[str, Any]:
    """Minutes per stage of calibrating once and training (and evaluating) every method of ``methods`` with the sizes
    of ``cal`` and ``train``, on the GPU ``gpu`` names (a key of :data:`GPUS`), and their total."""
    if gpu not in GPUS:
        raise ValueError(f"unknown GPU {gpu!r}; the time plan knows {', '.join(GPUS)}")
    g = GPUS[gpu]
    stages: dict[str, Any] = calibration_minutes(g, with_tokens(prof, cal), cal, cal.max_messages or WorldConfig.max_messages)
    messages = train.max_messages or WorldConfig.max_messages
    stages["base evaluation"] = base_evaluation_minutes(g, with_tokens(prof, train), train, methods, messages)
    for method in methods:
        stages[f"training: {method}"] = training_minutes(g, with_tokens(prof, train), train, method, messages)
    total = round(sum(s["minutes"] for s in stages.values()), 1)
    plan = {"profile": prof.name, "gpu": g.name, "vllm": train.vllm, "methods": list(methods), "stages": stages, "total_minutes": total}
    if train.vllm:  # the same budget with the kit's own engine for the policy too: what vLLM saves
        plan["total_minutes_without_vllm"] = plan_time(prof, gpu, cal, dataclasses.replace(train, vllm=False), methods)["total_minutes"]
    return plan


def format_time_plan(p: dict[str, Any]) -> str:
    engine = "TRL's colocated vLLM for the policy's turns, the kit's engine for the simulator's" if p["vllm"] else "the kit's own engine"
    lines = [f"time plan on an {p['gpu']} (every turn at its cap: an upper bound; sampling with {engine})"]
    for name, s in p["stages"].items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in s["parts_minutes"].items())
        lines.append(f"  {name:<20} {s['minutes']:6.1f} min   ({parts})")
    without = f" (without vLLM: {p['total_minutes_without_vllm']:.1f} min)" if "total_minutes_without_vllm" in p else ""
    lines.append(f"  {'total':<20} {p['total_minutes']:6.1f} min{without}")
    return "\n".join(lines)
