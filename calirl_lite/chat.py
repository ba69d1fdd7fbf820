"""Messages ↔ token ids for any chat template, and batched sampling.

Multi-turn RL must train on exactly the tokens the policy saw and wrote. So the rollout engine
never re-tokenises a whole conversation: it keeps each dialogue's token ids and appends the
policy's sampled ids as they are, and for each user turn only the template's *segment* for
that turn (end of the assistant turn, the user message, the start of the next assistant turn).
:func:`next_segment_ids` finds that segment from the template itself, so any template works
(ChatML for the toy world and Qwen2.5, Gemma-3's, Llama's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MARK = "\u2063CALIRL\u2063"  # a string no template changes, used to cut renderings

TURN_END_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>")


def turn_end_id(tokenizer: Any) -> int:
    """Id of the token that ends an assistant turn in this tokenizer's chat template (looked up once per tokenizer)."""
    cached = getattr(tokenizer, "_calirl_turn_end_id", None)
    if cached is not None:
        return cached
    vocab = tokenizer.get_vocab()
    found = next((int(vocab[tok]) for tok in TURN_END_TOKENS if tok in vocab), tokenizer.eos_token_id)
    if found is None:
        raise ValueError("tokenizer has no end-of-turn token and no eos_token")
    tokenizer._calirl_turn_end_id = int(found)
    return int(found)


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("tokenizer has no chat_template; give the model's tokenizer a chat template (see calirl_lite.profiles)")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of ``messages`` followed by the start of an assistant turn."""
    return encode(tokenizer, render(tokenizer, messages, add_generation_prompt=True))


def user_prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of ``messages`` followed by the start of a *user* turn (for a model playing the user)."""
    return encode(tokenizer, opening(tokenizer, messages, "user"))


def opening(tokenizer: Any, messages: list[dict[str, str]], role: str) -> str:
    """``messages`` rendered, followed by the opening of a ``role`` turn (its header, no content)."""
    if role == "assistant":
        return render(tokenizer, messages, add_generation_prompt=True)
    full = render(tokenizer, messages + [{"role": role, "content": MARK}])
    return full[: full.index(MARK)]


def _segment_text(tokenizer: Any, messages: list[dict[str, str]], new: dict[str, str], next_role: str) -> str:
    before = render(tokenizer, messages)
    after = opening(tokenizer, messages + [new], next_role)
    if not after.startswith(before):
        raise ValueError("this chat template renders earlier turns differently once a turn is added; the engine cannot append turns to it")
    end = tokenizer.convert_ids_to_tokens(turn_end_id(tokenizer))
    cut = before.rfind(end)
    if cut < 0:
        raise ValueError(f"the chat template does not end turns with {end!r}")
    return after[cut + len(end) :]


_SEGMENT_PARTS: dict[tuple, tuple[str, str] | None] = {}


def next_segment_ids(tokenizer: Any, messages: list[dict[str, str]], new: dict[str, str], next_role: str) -> list[int]:
    """Ids that follow the turn-end token of ``messages``' last turn: the ``new`` message, then the opening of ``next_role``'s turn.

    The segment is cut from the template's own rendering, so it is right for any template whose
    rendering of a conversation starts with its rendering of every shorter conversation. Most
    templates wrap a message the same way wherever it stands; that wrapping is learned once per
    template and position kind and reused (rendering every turn of every dialogue costs time).
    """
    content = new["content"]
    key = (tokenizer.chat_template, turn_end_id(tokenizer), messages[-1]["role"], new["role"], next_role, min(len(messages), 3))
    if key not in _SEGMENT_PARTS:
        marked = _segment_text(tokenizer, messages, {**new, "content": MARK}, next_role)
        head, _, tail = marked.partition(MARK)
        probe = "probe words ."
        regular = MARK in marked and _segment_text(tokenizer, messages, {**new, "content": probe}, next_role) == head + probe + tail
        _SEGMENT_PARTS[key] = (head, tail) if regular else None
    parts = _SEGMENT_PARTS[key]
    if parts is None or content != content.strip() or MARK in content:
        return encode(tokenizer, _segment_text(tokenizer, messages, new, next_role))
    return encode(tokenizer, parts[0] + content + parts[1])


@dataclass
class Generation:
    """One sampled turn: ids (ending with the turn-end token), their log-probs, and the text."""

    ids: list[int]
    logprobs: list[float]
    text: str
    forced_end: bool  # True when the turn-end token was appended because max_new_tokens ran out


class TokenStream:
    """Many token sequences in one left-padded batch with a KV cache, extended turn by turn.

    A multi-turn rollout would otherwise re-encode every dialogue's whole history at every turn.
    Here each turn only runs the new tokens through the model: :meth:`extend` appends per-row
    segments (a user turn and the opening of the next assistant turn), :meth:`sample` samples a
    turn for every row, and :meth:`keep` drops the rows of finished dialogues. Padding inside a
    row (after a turn that ended early, before a shorter segment) is masked out, and position
    ids come from the attention mask, so each row sees exactly the positions it would see alone.
    """

    def __init__(self, model: Any, tokenizer: Any, prompts: list[list[int]]) -> None:
        import torch

        if not prompts:
            raise ValueError("a token stream needs at least one prompt")
        self.model, self.tokenizer = model, tokenizer
        self.end_id = turn_end_id(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_id
        # A turn may not contain chat-structure tokens (turn starts, padding …): only its end token.
        self.suppress = sorted(set(tokenizer.all_special_ids) - {self.end_id}) or None
        self.device = next(model.parameters()).device
        self.ids = torch.empty((len(prompts), 0), dtype=torch.long, device=self.device)
        self.mask = torch.empty((len(prompts), 0), dtype=torch.long, device=self.device)
        self.cache: Any = None
        self.pending: list[list[int]] = [[] for _ in prompts]  # forced end tokens not yet in the batch
        self.extend(prompts)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def extend(self, segments: list[list[int]]) -> None:
        """Append ``segments[i]`` to row i (left-padded to a common length inside the new chunk)."""
        import torch

        if len(segments) != len(self):
            raise ValueError(f"{len(segments)} segments for {len(self)} rows")
        segments = [p + seg for p, seg in zip(self.pending, segments)]
        self.pending = [[] for _ in segments]
        width = max(len(seg) for seg in segments)
        chunk = torch.full((len(self), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(self), width), dtype=torch.long)
        for i, seg in enumerate(segments):
            if seg:
                chunk[i, width - len(seg) :] = torch.tensor(seg, dtype=torch.long)
                mask[i, width - len(seg) :] = 1
        self.ids = torch.cat([self.ids, chunk.to(self.device)], dim=1)
        self.mask = torch.cat([self.mask, mask.to(self.device)], dim=1)

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (in this order); the cache follows."""
        import torch

        if rows == list(range(len(self))):
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.ids, self.mask = self.ids[index], self.mask[index]
        self.pending = [self.pending[r] for r in rows]
        if self.cache is not None:
            self.cache.batch_select_indices(index)

    def sample(self, max_new_tokens: int, temperature: float = 1.0, min_new_tokens: int = 0, with_logprobs: bool = True) -> list[Generation]:
        """Sample one turn per row, each stopping at the turn-end token (or after ``max_new_tokens``).

        ``min_new_tokens`` > 0 disables stopping (every row gets exactly that many tokens; benchmark only).
        Without ``with_logprobs`` the log-probs are zeros (cheaper, for model-played users).
        """
        import torch
        from transformers import DynamicCache

        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 else {"do_sample": False}
        width = self.ids.shape[1]
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=self.ids, attention_mask=self.mask, cache=self.cache if self.cache is not None else DynamicCache(),
                use_cache=True, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                eos_token_id=None if min_new_tokens else self.end_id, pad_token_id=self.pad_id,
                return_dict_in_generate=True, output_scores=with_logprobs, suppress_tokens=self.suppress, **sampling,
            )
        new = out.sequences[:, width:]
        if with_logprobs:
            scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        else:
            scores = torch.zeros(new.shape)
        results, new_mask = [], torch.zeros(new.shape, dtype=torch.long)
        for i, (row, lp) in enumerate(zip(new.tolist(), scores.tolist())):
            n = row.index(self.end_id) + 1 if self.end_id in row and not min_new_tokens else len(row)
            new_mask[i, :n] = 1
            ids, lps = row[:n], lp[:n]
            forced = not ids or ids[-1] != self.end_id
            if forced and not min_new_tokens:
                ids, lps = ids + [self.end_id], lps + [0.0]
            text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            results.append(Generation(ids, [float(x) for x in lps], text, forced and not min_new_tokens))
        self.ids, self.cache = out.sequences, out.cache
        self.mask = torch.cat([self.mask, new_mask.to(self.device)], dim=1)
        # a forced end token joins the context in front of the row's next segment
        self.pending = [[self.end_id] if g.forced_end else [] for g in results]
        return results


def generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int, temperature: float = 1.0,
             min_new_tokens: int = 0, with_logprobs: bool = True) -> list[Generation]:
    """Sample one turn for each prompt in a single left-padded batch (a one-turn :class:`TokenStream`).

    Seed torch (``calirl_lite.set_seed``) beforehand for repeatable samples.
    """
    if not prompts:
        return []
    return TokenStream(model, tokenizer, prompts).sample(max_new_tokens, temperature, min_new_tokens, with_logprobs)
