"""The memory plan: how much GPU memory each stage of a profile needs, from the models' layouts and the lengths.

Four stages, each a sum of a few terms a reader can check by hand (all in bytes):

* **weights** — bf16: 2 bytes a parameter; 4-bit nf4 with double quantisation (bitsandbytes): about 0.52 bytes a
  parameter of the linear layers, the embeddings staying bf16;
* **KV cache** while sampling — 2 (K and V) × layers × KV heads × head size × 2 bytes, per token of every dialogue
  sampled together;
* **LoRA training** — the adapter's parameters in fp32 with their gradients and Adam's two moments (16 bytes each);
  with gradient checkpointing, each layer's input kept (hidden × 2 bytes a token) plus one layer recomputed at a
  time; and the **logits** of every trained token over the whole vocabulary, which dominate for a 150 k vocabulary
  (bf16 logits, their fp32 log-softmax and its gradient: :data:`LOGIT_BYTES` a token and word);
* where a training run samples the policy's turns with TRL's colocated vLLM engine, the engine's share of the GPU
  (its copy of the policy and the policy's KV cache);
* and :data:`OVERHEAD_GIB` for the CUDA context, cuBLAS workspace and the allocator's slack.

:func:`plan` picks for training and calibration the largest micro-batch (a power of two dividing the batch) whose
peak fits ``budget_gib``, the rest of the batch going to gradient accumulation. ``calirl bench memory`` prints it and,
where CUDA is, measures the same stages (see :mod:`calirl_lite.bench`); :mod:`calirl_lite.timeplan` sets minutes
beside these GiB. Estimates, not guarantees: the measured peak is the one to trust, and the plan's job is to pick
micro-batches that keep it under the budget.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .profiles import Profile, uses_cuda

GIB = 2**30
OVERHEAD_GIB = 0.75
"""CUDA context, cuBLAS workspace and the caching allocator's slack"""
LOGIT_BYTES = 10
"""bytes per trained token and vocabulary word: bf16 logits (2), fp32 log-probabilities (4) and their gradient (4)"""
PROMPT_TOKENS = 256
"""the system prompt and chat-template tokens before a dialogue's first message (generous)"""
TURN_OVERHEAD = 8
"""chat-template tokens around each message"""


@dataclass(frozen=True)
class Layout:
    """The shapes of a decoder-only transformer that memory depends on."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    """input and output embeddings shared"""

    def linear_params(self) -> int:
        """Parameters of the attention and MLP projections (what 4-bit quantises and LoRA adapts)."""
        attn = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        return self.layers * (attn + 3 * self.hidden * self.intermediate)

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def lora_params(self, r: int) -> int:
        """LoRA's A and B matrices on every linear layer (``target_modules="all-linear"``)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        per_layer = (self.hidden + q) * 2 + (self.hidden + kv) * 2 + (self.hidden + self.intermediate) * 3
        return self.layers * per_layer * r

    def config(self) -> dict[str, Any]:
        """The matching ``transformers`` config arguments (Qwen2/Llama names)."""
        return {"hidden_size": self.hidden, "num_hidden_layers": self.layers, "num_attention_heads": self.heads, "num_key_value_heads": self.kv_heads,
                "head_dim": self.head_dim, "intermediate_size": self.intermediate, "vocab_size": self.vocab, "tie_word_embeddings": self.tied}


LAYOUTS = {
    "Qwen/Qwen2.5-0.5B-Instruct": Layout(896, 24, 14, 2, 64, 4864, 151936, True),
    "Qwen/Qwen2.5-1.5B-Instruct": Layout(1536, 28, 12, 2, 128, 8960, 151936, True),
    "Qwen/Qwen2.5-3B-Instruct": Layout(2048, 36, 16, 2, 128, 11008, 151936, True),
    "Qwen/Qwen2.5-7B-Instruct": Layout(3584, 28, 28, 4, 128, 18944, 152064, False),
    "google/gemma-3-4b-it": Layout(2560, 34, 8, 4, 256, 10240, 262208, True),
}
"""The published configs of the GPU profiles' models (each one's ``config.json`` on the hub: hidden_size,
num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size,
tie_word_embeddings; Gemma-3's under ``text_config``), so the plan needs no download. Gemma-3-4B-IT, the paper's
policy, is gated; the others are not."""


def weights_bytes(layout: Layout, four_bit: bool) -> float:
    per_linear = 0.516 if four_bit else 2.0  # nf4 (4 bits) + double-quantised block scales
    return layout.linear_params() * per_linear + layout.embedding_params() * 2.0


def kv_bytes(layout: Layout, batch: int, tokens: int) -> float:
    return 2 * layout.layers * layout.kv_heads * layout.head_dim * 2.0 * batch * tokens


def lora_train_bytes(layout: Layout, r: int, micro: int, tokens: int, trained_tokens: int) -> float:
    """A LoRA step's memory beyond the frozen weights: adapter + optimiser, checkpointed activations, logits."""
    adapter = layout.lora_params(r) * 16.0
    kept = layout.layers * micro * tokens * layout.hidden * 2.0
    recomputed = micro * tokens * (6 * layout.hidden + 3 * layout.intermediate) * 2.0 * 2
    logits = micro * trained_tokens * layout.vocab * float(LOGIT_BYTES)
    return adapter + kept + recomputed + logits


def turns(max_messages: int) -> tuple[int, int]:
    """``(assistant turns, user turns)`` of a dialogue of ``max_messages`` messages: the user writes the first."""
    return max_messages // 2, (max_messages + 1) // 2


def dialogue_tokens(max_messages: int, max_new_tokens: int, user_tokens: int = 0) -> int:
    """The longest dialogue in tokens: the prompt and every message at its longest (a user's turn at ``user_tokens``
    where given, else at ``max_new_tokens`` like the assistant's)."""
    assistant, user = turns(max_messages)
    return PROMPT_TOKENS + assistant * (max_new_tokens + TURN_OVERHEAD) + user * ((user_tokens or max_new_tokens) + TURN_OVERHEAD)


def _micro_batch(batch: int, peak: Any, budget: float) -> int:
    """The largest power of two dividing ``batch`` whose ``peak(micro)`` fits ``budget`` (1 if none does)."""
    micro = 1
    while micro * 2 <= batch and batch % (micro * 2) == 0 and peak(micro * 2) <= budget:
        micro *= 2
    return micro


def plan(prof: Profile, budget_gib: float = 14.0, max_messages: int = 14, prompts_per_step: int = 4, group_size: int = 8,
         calibration_batch: int = 16, calibration_length: int = 512, lora_r: int = 16, vllm_gib: float = 0.0) -> dict[str, Any]:
    """Per stage: the planned peak in GiB, its parts, and (training, calibration) the micro-batch and accumulation.

    ``vllm_gib``: what TRL's colocated vLLM engine holds while training (``TrainConfig.vllm``: its copy of the policy
    and the policy's KV cache, a fixed share of the GPU), 0 where the kit's own engine samples the policy's turns."""
    pol, usr = layout_of(prof.policy_model), layout_of(prof.user_model)
    w_pol, w_usr = weights_bytes(pol, False), weights_bytes(usr, prof.user_in_4bit)
    tokens = dialogue_tokens(max_messages, prof.max_new_tokens, prof.user_tokens)
    batch = prompts_per_step * group_size
    overhead, vllm = OVERHEAD_GIB * GIB, vllm_gib * GIB

    def gib(parts: dict[str, float]) -> dict[str, Any]:
        return {"peak_gib": round(sum(parts.values()) / GIB, 2), "parts_gib": {k: round(v / GIB, 2) for k, v in parts.items() if v}}

    stages: dict[str, Any] = {}
    stages["traces"] = gib({"policy weights": w_pol, "policy KV cache": kv_bytes(pol, prof.eval_batch, tokens), "overhead": overhead})
    cal_peak = lambda m: w_usr + lora_train_bytes(usr, lora_r, m, calibration_length, calibration_length) + overhead  # noqa: E731
    m_cal = _micro_batch(calibration_batch, cal_peak, budget_gib * GIB)
    stages["calibration"] = gib({"simulator weights": w_usr, "LoRA step": lora_train_bytes(usr, lora_r, m_cal, calibration_length, calibration_length),
                                 "overhead": overhead}) | {"micro_batch": m_cal, "accumulation": calibration_batch // m_cal}
    sampling = (0 if vllm else kv_bytes(pol, batch, tokens)) + kv_bytes(usr, batch, tokens)  # under vLLM the policy's cache is in its share
    train_peak = lambda m: w_pol + w_usr + vllm + max(sampling, lora_train_bytes(pol, lora_r, m, tokens, tokens)) + overhead  # noqa: E731
    m_train = _micro_batch(batch, train_peak, budget_gib * GIB)
    step = lora_train_bytes(pol, lora_r, m_train, tokens, tokens)
    stages["training"] = gib({"policy weights": w_pol, "simulator weights": w_usr, "vLLM engine": vllm,
                              "sampling (KV caches)" if sampling >= step else "LoRA step": max(sampling, step),
                              "overhead": overhead}) | {"micro_batch": m_train, "accumulation": batch // m_train}
    stages["evaluation"] = gib({"policy weights": w_pol, "simulator weights": w_usr, "vLLM engine": vllm,
                                "KV caches": (0 if vllm else kv_bytes(pol, prof.eval_batch, tokens)) + kv_bytes(usr, prof.eval_batch, tokens),
                                "overhead": overhead})
    return {"profile": prof.name, "budget_gib": budget_gib, "dialogue_tokens": tokens, "policy": prof.policy_model, "simulator": prof.user_model,
            "simulator_4bit": prof.user_in_4bit, "vllm_gib": vllm_gib, "stages": stages, "layouts": {prof.policy_model: asdict(pol), prof.user_model: asdict(usr)}}


def layout_of(model: str) -> Layout:
    """The layout of a model name of a profile: a hub id of :data:`LAYOUTS`, or a saved folder (its ``config.json``)."""
    if model in LAYOUTS:
        return LAYOUTS[model]
    config = Path(model) / "config.json"
    if not config.is_file():
        raise ValueError(f"no layout known for {model!r}: the memory plan covers {', '.join(LAYOUTS)} and saved model folders")
    c = json.loads(config.read_text())
    c = c.get("text_config", c)
    heads = c["num_attention_heads"]
    return Layout(c["hidden_size"], c["num_hidden_layers"], heads, c.get("num_key_value_heads", heads), c.get("head_dim") or c["hidden_size"] // heads,
                  c["intermediate_size"], c["vocab_size"], bool(c.get("tie_word_embeddings", True)))


def micro_batches(prof: Profile, stage: str, **sizes: Any) -> tuple[int, int]:
    """``(micro-batch, accumulation steps)`` of ``stage`` ('training' or 'calibration') where the profile runs on a
    GPU with a memory budget; elsewhere the whole batch at once (``sizes``: :func:`plan`'s keyword arguments)."""
    batch = sizes["prompts_per_step"] * sizes["group_size"] if stage == "training" else sizes["calibration_batch"]
    if not prof.gpu_memory_gib or not uses_cuda(prof):
        return batch, 1
    s = plan(prof, prof.gpu_memory_gib, **sizes)["stages"][stage]
    return s["micro_batch"], s["accumulation"]


def format_plan(p: dict[str, Any]) -> str:
    vllm = f"; TRL's colocated vLLM samples the policy's turns in {p['vllm_gib']:.2f} GiB" if p.get("vllm_gib") else ""
    lines = [f"memory plan for profile {p['profile']} (budget {p['budget_gib']} GiB; dialogues up to {p['dialogue_tokens']:,} tokens; "
             f"policy {p['policy']}, simulator {p['simulator']}{' in 4-bit' if p['simulator_4bit'] else ''}{vllm})"]
    for name, s in p["stages"].items():
        extra = f"  micro-batch {s['micro_batch']} × {s['accumulation']} accumulated" if "micro_batch" in s else ""
        measured = f"  measured {s['measured_gib']:.2f} GiB" if "measured_gib" in s else ""
        parts = ", ".join(f"{k} {v:.2f}" for k, v in s["parts_gib"].items())
        lines.append(f"  {name:<11} {s['peak_gib']:6.2f} GiB planned{measured}{extra}   ({parts})")
    return "\n".join(lines)


class Measure:
    """Wall time and peak memory of a block: ``with Measure("calibration") as m: …`` then ``print(m)``.

    On CUDA the peak is the GPU memory PyTorch allocated (and reserved) inside the block — the figure to compare with
    the plan and with a 16 GB card; on a CPU it is the process's peak resident memory so far (the operating system
    keeps one peak per process, so it can only grow from block to block).
    """

    def __init__(self, label: str = "") -> None:
        self.label, self.seconds = label, 0.0
        self.peaks: dict[str, float] = {}

    def __enter__(self) -> Measure:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        import sys

        import torch

        self.seconds = round(time.perf_counter() - self._start, 1)
        if torch.cuda.is_available():
            self.peaks = {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 2),
                          "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 2)}
            return
        try:
            import resource
        except ImportError:  # Windows: no peak to read
            return
        unit = 1 if sys.platform == "darwin" else 1024  # macOS counts bytes, Linux KiB
        self.peaks = {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / GIB, 2)}

    def as_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds, **self.peaks}

    def __str__(self) -> str:
        minutes, seconds = divmod(round(self.seconds), 60)
        took = f"{minutes} min {seconds} s" if minutes else f"{self.seconds:.1f} s"
        if "peak_allocated_gib" in self.peaks:
            memory = f"peak GPU memory {self.peaks['peak_allocated_gib']:.2f} GiB allocated ({self.peaks['peak_reserved_gib']:.2f} reserved)"
        else:
            memory = f"peak resident memory of this process so far {self.peaks['peak_rss_gib']:.2f} GiB (no GPU)" if self.peaks else "no GPU"
        return f"{self.label + ': ' if self.label else ''}{took}, {memory}"
