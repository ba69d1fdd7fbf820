"""Messages ↔ token ids for any chat template.

Multi-turn RL must train on exactly the tokens the policy saw and wrote. So the rollout engine
never re-tokenises a whole conversation: it keeps each dialogue's token ids and appends the
policy's sampled ids as they are, and for each user turn only the template's *segment* for
that turn (end of the assistant turn, the user message, the start of the next assistant turn).
:func:`next_segment_ids` finds that segment from the template itself, so any template works
(ChatML for the toy world and Qwen2.5, Gemma-3's, Llama's).
"""

from __future__ import annotations

from typing import Any

MARK = "\u2063CALIRL\u2063"  # a string no template changes, used to cut renderings
SLOT = "\u2064CONTENT\u2064"  # another one, standing for a message's content while its wrapping is learned

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
        marked = _segment_text(tokenizer, messages, {**new, "content": SLOT}, next_role)
        head, _, tail = marked.partition(SLOT)
        probe = "probe words ."
        regular = SLOT in marked and _segment_text(tokenizer, messages, {**new, "content": probe}, next_role) == head + probe + tail
        _SEGMENT_PARTS[key] = (head, tail) if regular else None
    parts = _SEGMENT_PARTS[key]
    if parts is None or content != content.strip() or MARK in content or SLOT in content:
        return encode(tokenizer, _segment_text(tokenizer, messages, new, next_role))
    return encode(tokenizer, parts[0] + content + parts[1])
