"""The policy's turns sampled by TRL's colocated vLLM engine, through the interface of the kit's own
:class:`~calirl_lite.decode.TokenStream`.

With ``TrainConfig.vllm`` the trainer's ``GRPOConfig`` asks TRL for vLLM in colocate mode (``use_vllm=True,
vllm_mode="colocate"``): ``GRPOTrainer`` then starts a vLLM engine inside the training process, holding a copy of the
policy, and pushes the policy's new weights into it before each step's rollouts — also where a ``rollout_func``
samples instead of TRL ("keep vLLM weights in sync for custom rollouts"). The engine is the trainer's
``vllm_generation.llm`` (TRL 1.x; :func:`colocated_engine`), a ``vllm.LLM``; the rollout engine
(:mod:`calirl_lite.rollout`) samples the policy's turns with it through :class:`VllmStream`, which keeps each
dialogue's token ids and asks ``llm.generate`` for one turn of every dialogue at a time, with the kit's rules: stop
at the turn-end token (appended where ``max_new_tokens`` ran out), no other chat-structure token, the log-probs of
the distribution sampled from (TRL starts the engine with ``logprobs_mode="processed_logprobs"``). vLLM keeps the
dialogues' shared beginnings in its prefix cache, so a turn reads only its new tokens. The simulator's turns stay
with the kit's own engine: TRL's engine holds the policy only.

vLLM cannot be installed on the machines this kit is developed on: what runs here is tested (the arguments, the
error where vLLM is missing, :class:`VllmStream` against a stand-in with ``llm.generate``'s output shape); sampling
with a real engine has not been run.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import torch

from .chat import turn_end_id
from .decode import Generation

INSTALL = "pip install vllm"
"""how to get vLLM (on a CUDA machine; TRL's extra ``pip install "trl[vllm]"`` pins a version TRL supports)"""
LOGIT_BIAS = -100.0
"""added to the logit of every chat-structure token but the turn end: a probability of e⁻¹⁰⁰ relative, i.e. never
sampled (the kit's own engine sets those logits to −∞)"""


def require_vllm() -> None:
    """Raise a clear ImportError where vLLM is asked for and cannot be imported."""
    if importlib.util.find_spec("vllm") is None:
        raise ImportError(f"TrainConfig.vllm samples the policy's turns with TRL's colocated vLLM engine, and vLLM is not installed: {INSTALL} "
                          "(on a CUDA machine), or train without --vllm")


def colocated_engine(trainer: Any) -> Any | None:
    """The ``vllm.LLM`` that TRL's ``GRPOTrainer`` runs in its own process (``vllm_mode="colocate"``), or None where
    the trainer samples without one (no vLLM, or vLLM in server mode)."""
    if not getattr(trainer, "use_vllm", False) or getattr(trainer, "vllm_mode", "") != "colocate":
        return None
    return trainer.vllm_generation.llm


def synced_engine(trainer: Any) -> Any | None:
    """:func:`colocated_engine` with the policy's current weights pushed into it first: for sampling outside a
    training step (the evaluations before and after training), where TRL has not just synced them."""
    engine = colocated_engine(trainer)
    if engine is not None:
        trainer.vllm_generation.sync_weights()
    return engine


def sampling_params_class() -> Callable[..., Any]:
    """vLLM's ``SamplingParams`` (imported only where vLLM samples)."""
    require_vllm()
    from vllm import SamplingParams

    return SamplingParams


class VllmStream:
    """Many dialogues' token ids, extended turn by turn and sampled by a vLLM engine: :meth:`extend`, :meth:`keep`
    and :meth:`sample` as :class:`~calirl_lite.decode.TokenStream` has them. ``params`` makes one request's sampling
    parameters (default: vLLM's ``SamplingParams``)."""

    def __init__(self, llm: Any, tokenizer: Any, prompts: list[list[int]], params: Callable[..., Any] | None = None) -> None:
        if not prompts:
            raise ValueError("a token stream needs at least one prompt")
        self.llm, self.tokenizer = llm, tokenizer
        self.end_id = turn_end_id(tokenizer)
        self.bias = {i: LOGIT_BIAS for i in sorted(set(tokenizer.all_special_ids) - {self.end_id})}
        self.rows = [list(p) for p in prompts]
        self.params = params or sampling_params_class()

    def __len__(self) -> int:
        return len(self.rows)

    def extend(self, segments: list[list[int]]) -> None:
        """Append ``segments[i]`` to row i."""
        if len(segments) != len(self):
            raise ValueError(f"{len(segments)} segments for {len(self)} rows")
        for row, seg in zip(self.rows, segments):
            row.extend(seg)

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (in this order)."""
        self.rows = [self.rows[r] for r in rows]

    def sample(self, max_new_tokens: int, temperature: float = 1.0) -> list[Generation]:
        """One turn per row, each stopping at the turn-end token or after ``max_new_tokens``. Each request gets its own
        seed, drawn from torch's generator (which the rollout seeds), so a rollout's seed fixes its turns."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
        seeds = torch.randint(0, 2**31 - 1, (len(self.rows),)).tolist()
        params = [self.params(max_tokens=max_new_tokens, temperature=temperature, stop_token_ids=[self.end_id], logprobs=0,
                              logit_bias=self.bias, seed=seed) for seed in seeds]
        outputs = self.llm.generate([{"prompt_token_ids": row} for row in self.rows], sampling_params=params, use_tqdm=False)
        turns = [self.generation(out.outputs[0]) for out in outputs]
        for row, turn in zip(self.rows, turns):
            row.extend(turn.ids)
        return turns

    def generation(self, out: Any) -> Generation:
        """A vLLM ``CompletionOutput`` (``token_ids``; ``logprobs``: per token a dict from token id to an object with a
        ``logprob``) as the kit's :class:`~calirl_lite.decode.Generation`, ending with the turn-end token."""
        ids = [int(t) for t in out.token_ids]
        logprobs = [float(lp[t].logprob) for t, lp in zip(ids, out.logprobs)] if out.logprobs is not None else [0.0] * len(ids)
        forced = not ids or ids[-1] != self.end_id
        if forced:
            ids, logprobs = ids + [self.end_id], logprobs + [0.0]
        return Generation(ids, logprobs, self.tokenizer.decode(ids, skip_special_tokens=True).strip(), forced)
