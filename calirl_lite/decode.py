"""Sampling many turns at once, fast: one batched sampling loop over two forwards.

A rollout samples turn after turn for dozens of dialogues. For the toy world's 364 k-parameter LM
the arithmetic of one decode step is microseconds; what costs is the Python around it. So:

* :class:`TokenStream` keeps every dialogue's tokens in one left-padded batch with a KV cache and
  runs only *new* tokens through the model: :meth:`~TokenStream.extend` appends per-row segments
  (a user turn and the opening of the next assistant turn), :meth:`~TokenStream.sample` samples one
  turn for every row — all rows in one batch, each stopping at its own turn-end token — and
  :meth:`~TokenStream.keep` drops the rows of finished dialogues.
* Underneath, one of two forwards, same interface (``forward(ids, valid) -> logits of the last
  column``, ``select(rows)``):

  - :class:`LeanLlama` — a minimal forward of a transformers ``LlamaForCausalLM`` (the toy LM,
    SmolLM2), nanoGPT / llama2.c style, ~40 lines, that reads the model's *own* weights (so a model
    being trained is sampled as it is now) and keeps a preallocated KV cache. It gives the same
    logits as transformers (a test checks it to 1e-5) with a fraction of the per-token overhead;
  - :class:`HFForward` — the transformers forward with a ``DynamicCache``, for every other family
    (Qwen2, Gemma-3), LoRA-wrapped or 4-bit models.

Padding inside a row (after a turn that ended early, before a shorter segment) is masked out and
position ids count only real tokens, so each row sees exactly the positions it would see alone.
Log-probs are those of the distribution sampled from (chat-structure tokens removed, then the
temperature), the same as ``generate``'s normalised scores and as a fresh forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .chat import turn_end_id


@dataclass
class Generation:
    """One sampled turn: ids (ending with the turn-end token), their log-probs, and the text."""

    ids: list[int]
    logprobs: list[float]
    text: str
    forced_end: bool  # True when the turn-end token was appended because max_new_tokens ran out


# ----------------------------------------------------------------------------- the two forwards


class LeanLlama:
    """A minimal Llama forward with a KV cache, over the weights of a transformers ``LlamaForCausalLM``.

    Per layer: RMSNorm → q, k, v (one matrix product) → rotary positions → attention over the cache → o;
    RMSNorm → SwiGLU MLP (gate and up in one product). Nothing else: no hooks, no cache classes, no mask
    factories — that is where the speed comes from. The fused matrices are taken from the model when the
    stream starts, so the model must not change while it samples (the rollout engine samples in eval mode).
    """

    def __init__(self, model: Any, batch: int) -> None:
        cfg, m = model.config, model.model
        self.model = model
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim**-0.5
        with torch.no_grad():
            self.qkv = [torch.cat([b.self_attn.q_proj.weight, b.self_attn.k_proj.weight, b.self_attn.v_proj.weight]) for b in m.layers]
            self.gate_up = [torch.cat([b.mlp.gate_proj.weight, b.mlp.up_proj.weight]) for b in m.layers]
        rotary = m.rotary_emb
        self.inv_freq, self.rope_scale = rotary.inv_freq.float(), float(rotary.attention_scaling)
        p = next(model.parameters())
        self.dtype, self.device = p.dtype, p.device
        self.cos = self.sin = torch.empty(0, self.head_dim)
        self.k = [torch.zeros(batch, self.kv_heads, 64, self.head_dim, dtype=self.dtype, device=self.device) for _ in m.layers]
        self.v = [torch.zeros_like(k) for k in self.k]
        self.bias = torch.zeros(batch, 1, 1, 64, dtype=self.dtype, device=self.device)  # 0 where a cache column holds a real token, else -inf
        self.pos = torch.zeros(batch, dtype=torch.long, device=self.device)  # real tokens per row so far
        self.t = 0  # columns used

    @staticmethod
    def supports(model: Any) -> bool:
        """True for a plain (not LoRA-wrapped, not quantised) Llama with the standard blocks."""
        cfg = getattr(model, "config", None)
        if type(model).__name__ != "LlamaForCausalLM" or cfg is None:
            return False
        layer = model.model.layers[0]
        plain = all(type(m) is torch.nn.Linear for m in (layer.self_attn.q_proj, layer.mlp.down_proj, model.lm_head))
        rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
        return plain and cfg.hidden_act == "silu" and not cfg.attention_bias and not cfg.mlp_bias and rope != "dynamic"

    def _grow(self, need: int) -> None:
        """Room for ``need`` cache columns (doubling), and rotary tables for as many positions."""
        cap = self.bias.shape[-1]
        if need > cap:
            more = max(need, 2 * cap) - cap
            self.k = [torch.cat([k, k.new_zeros(*k.shape[:2], more, k.shape[3])], 2) for k in self.k]
            self.v = [torch.cat([v, v.new_zeros(*v.shape[:2], more, v.shape[3])], 2) for v in self.v]
            self.bias = torch.cat([self.bias, self.bias.new_zeros(*self.bias.shape[:3], more)], 3)
        if need > len(self.cos):
            freqs = torch.arange(2 * need, device=self.device).float()[:, None] * self.inv_freq
            emb = torch.cat([freqs, freqs], -1)
            self.cos, self.sin = (emb.cos() * self.rope_scale).to(self.dtype), (emb.sin() * self.rope_scale).to(self.dtype)

    def select(self, rows: torch.Tensor) -> None:
        self.k = [k[rows] for k in self.k]
        self.v = [v[rows] for v in self.v]
        self.bias, self.pos = self.bias[rows], self.pos[rows]

    def compact(self) -> None:
        """Squeeze out the padding columns: each row's real tokens move to the right end, in order.

        Lock-step sampling leaves a padding column for every step a row waits for the others, and attention
        reads every column, so the cache is compacted at each new chunk (a new turn). Keys keep their rotary
        positions, so nothing a row sees changes.
        """
        real = (self.bias[:, 0, 0, : self.t] == 0).long()
        width = int(real.sum(1).max())
        if width == self.t:
            return
        order = torch.argsort(real, dim=1, stable=True)[:, self.t - width :]  # padding first, then the real columns in order
        index = order[:, None, :, None].expand(-1, self.kv_heads, -1, self.head_dim)
        self.k = [torch.gather(k, 2, index) for k in self.k]
        self.v = [torch.gather(v, 2, index) for v in self.v]
        self.bias = torch.gather(self.bias[..., : self.t], 3, order[:, None, None, :])
        self.t = width

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Run ``ids`` ([B, T], ``valid`` marks real tokens) after the cached ones; logits of the last column [B, V]."""
        if ids.shape[1] > 1:
            self.compact()
        m, (B, T), t = self.model.model, ids.shape, self.t
        H, K, D = self.heads, self.kv_heads, self.head_dim
        self._grow(t + T)
        self.bias[:, 0, 0, t : t + T] = torch.where(valid, 0.0, float("-inf"))
        if T == 1:  # one new token per row: its position is the row's count of real tokens so far
            positions, mask = self.pos[:, None], self.bias[..., : t + 1]
        else:  # query i sees the real keys up to its own column, and itself (so a padding query never sees nothing)
            positions = self.pos[:, None] + valid.long().cumsum(1) - 1
            cols, query_cols = torch.arange(t + T, device=self.device), torch.arange(t, t + T, device=self.device)[:, None]
            mask = torch.where(cols == query_cols, 0.0, self.bias[..., : t + T].masked_fill(cols > query_cols, float("-inf")))
        self.pos = self.pos + valid.sum(1)
        cos, sin = self.cos[positions.clamp(min=0)][:, None], self.sin[positions.clamp(min=0)][:, None]  # [B, 1, T, D]
        x = m.embed_tokens(ids)
        for i, layer in enumerate(m.layers):
            a = layer.self_attn
            h = F.rms_norm(x, (x.shape[-1],), layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon)
            qkv = F.linear(h, self.qkv[i]).view(B, T, H + 2 * K, D).transpose(1, 2)
            qk = qkv[:, : H + K] * cos + _rotate_half(qkv[:, : H + K]) * sin  # rotary positions of q and k at once
            self.k[i][:, :, t : t + T], self.v[i][:, :, t : t + T] = qk[:, H:], qkv[:, H + K :]
            keys, values = self.k[i][:, :, : t + T], self.v[i][:, :, : t + T]
            if K != H:  # grouped-query attention: each key head serves H / K query heads
                keys, values = keys.repeat_interleave(H // K, 1), values.repeat_interleave(H // K, 1)
            scores = torch.matmul(qk[:, :H], keys.transpose(-1, -2)) * self.scale + mask
            o = torch.matmul(torch.softmax(scores, -1), values)
            x = x + a.o_proj(o.transpose(1, 2).reshape(B, T, H * D))
            h = F.rms_norm(x, (x.shape[-1],), layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon)
            gate, up = F.linear(h, self.gate_up[i]).chunk(2, -1)
            x = x + layer.mlp.down_proj(F.silu(gate) * up)
        self.t = t + T
        last = F.rms_norm(x[:, -1], (x.shape[-1],), m.norm.weight, m.norm.variance_epsilon)
        return self.model.lm_head(last)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], -1)


class HFForward:
    """The transformers forward with a ``DynamicCache``: any causal LM of any family, wrapped or quantised."""

    def __init__(self, model: Any, batch: int) -> None:
        from transformers import DynamicCache

        self.model, self.cache = model, DynamicCache()
        self.mask = torch.zeros(batch, 0, dtype=torch.long, device=next(model.parameters()).device)

    def select(self, rows: torch.Tensor) -> None:
        self.mask = self.mask[rows]
        self.cache.batch_select_indices(rows)

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, valid.long()], 1)
        positions = (self.mask.cumsum(1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions, cache=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.cache
        return out.logits[:, -1]


def make_forward(model: Any, batch: int) -> LeanLlama | HFForward:
    """The lean forward where it applies (plain Llama), else the transformers one."""
    return LeanLlama(model, batch) if LeanLlama.supports(model) else HFForward(model, batch)


# ----------------------------------------------------------------------------- the stream


class TokenStream:
    """Many token sequences in one left-padded batch with a KV cache, extended turn by turn (see the module docstring)."""

    def __init__(self, model: Any, tokenizer: Any, prompts: list[list[int]]) -> None:
        if not prompts:
            raise ValueError("a token stream needs at least one prompt")
        self.model, self.tokenizer = model, tokenizer
        self.end_id = turn_end_id(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_id
        # A turn may not contain chat-structure tokens (turn starts, padding …): only its end token.
        self.suppress = torch.tensor(sorted(set(tokenizer.all_special_ids) - {self.end_id}), dtype=torch.long)
        self.device = next(model.parameters()).device
        self.rows = len(prompts)
        self.forward = make_forward(model, self.rows)
        self.logits: torch.Tensor | None = None  # next-token logits of every row
        self.pending: list[list[int]] = [[] for _ in prompts]  # sampled (or forced end) tokens not yet run through the model
        self.extend(prompts)

    def __len__(self) -> int:
        return self.rows

    def extend(self, segments: list[list[int]]) -> None:
        """Append ``segments[i]`` to row i (left-padded to a common length inside the new chunk)."""
        if len(segments) != len(self):
            raise ValueError(f"{len(segments)} segments for {len(self)} rows")
        segments = [p + seg for p, seg in zip(self.pending, segments)]
        if not all(segments):
            raise ValueError("every row needs at least one new token")
        self.pending = [[] for _ in segments]
        width = max(len(seg) for seg in segments)
        chunk = torch.full((len(self), width), self.pad_id, dtype=torch.long)
        valid = torch.zeros((len(self), width), dtype=torch.bool)
        for i, seg in enumerate(segments):
            chunk[i, width - len(seg) :] = torch.tensor(seg, dtype=torch.long)
            valid[i, width - len(seg) :] = True
        with torch.inference_mode():
            self.logits = self.forward.forward(chunk.to(self.device), valid.to(self.device))

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (in this order); the cache follows."""
        if rows == list(range(len(self))):
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            self.forward.select(index)
        self.logits = self.logits[index] if self.logits is not None else None
        self.pending = [self.pending[r] for r in rows]
        self.rows = len(rows)

    def sample(self, max_new_tokens: int, temperature: float = 1.0, min_new_tokens: int = 0, with_logprobs: bool = True) -> list[Generation]:
        """Sample one turn per row, each stopping at the turn-end token (or after ``max_new_tokens``).

        ``min_new_tokens`` > 0 disables stopping (every row gets exactly that many tokens; benchmark only).
        Without ``with_logprobs`` the log-probs are zeros (cheaper, for model-played users).
        """
        if self.logits is None or any(self.pending):
            raise ValueError("sample() needs new tokens first: extend() the rows after the previous turn")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
        B, stop = len(self), not min_new_tokens
        alive = torch.ones(B, dtype=torch.bool, device=self.device)
        tokens, logps, alive_at = [], [], []
        logits = self.logits
        with torch.inference_mode():
            for step in range(max_new_tokens):
                scores = logits.float().index_fill_(1, self.suppress.to(self.device), float("-inf")) if len(self.suppress) else logits.float()
                logp = torch.log_softmax(scores / temperature if temperature > 0 else scores, -1)
                # argmax of p / E with E ~ Exp(1) draws from p (an exponential race; far cheaper than multinomial here)
                tok = (logp.exp() / torch.empty_like(logp).exponential_()).argmax(-1) if temperature > 0 else logp.argmax(-1)
                tok = torch.where(alive, tok, self.pad_id)
                tokens.append(tok)
                alive_at.append(alive)
                if with_logprobs:
                    logps.append(logp.gather(1, tok[:, None])[:, 0])
                still = alive & (tok != self.end_id) if stop else alive
                if step + 1 == max_new_tokens or not bool(still.any()):
                    break
                logits = self.forward.forward(tok[:, None], alive[:, None])
                alive = still
        ids = torch.stack(tokens, 1).tolist()
        was_alive = torch.stack(alive_at, 1).tolist()
        lps = torch.stack(logps, 1).tolist() if with_logprobs else None
        last_fed = len(tokens) - 1  # the last step's tokens have not been run through the model
        results = []
        for i in range(B):
            n = sum(was_alive[i])
            row, lp = ids[i][:n], (lps[i][:n] if lps is not None else [0.0] * n)
            forced = stop and row[-1] != self.end_id
            self.pending[i] = [row[-1]] if was_alive[i][last_fed] else []
            if forced:
                row, lp = row + [self.end_id], lp + [0.0]
                self.pending[i].append(self.end_id)
            text = self.tokenizer.decode(row, skip_special_tokens=True).strip()
            results.append(Generation(row, [float(x) for x in lp], text, forced))
        return results


def generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int, temperature: float = 1.0,
             min_new_tokens: int = 0, with_logprobs: bool = True) -> list[Generation]:
    """Sample one turn for each prompt in a single left-padded batch (a one-turn :class:`TokenStream`).

    Seed torch (``calirl_lite.set_seed``) beforehand for repeatable samples.
    """
    if not prompts:
        return []
    return TokenStream(model, tokenizer, prompts).sample(max_new_tokens, temperature, min_new_tokens, with_logprobs)
