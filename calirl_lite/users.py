"""One user-simulator interface, five kinds of user.

Every user is opened once per dialogue (``open``) and then asked, for a whole batch of live
dialogues at once, for first messages (``first_messages``) and replies (``replies``):

* :class:`ScriptedUsers` — the toy world's real users (scripted, :mod:`calirl_lite.task_family`);
  with ``REAL_USER`` they are also the oracle simulator;
* :class:`LMUser` — a language model prompted to play the user from the hidden goal with a
  CollabLLM-style user prompt (the *naive* simulator); with a LoRA adapter it is the
  *calibrated* simulator;
* :class:`EndpointUser` — any OpenAI-compatible chat endpoint, for large oracles: the real user of a run whose
  ``real_user`` (or profile's ``oracle``) is ``endpoint:BASE_URL#MODEL`` (:func:`parse_real_user`,
  :func:`make_real_user`), its replies kept by request (:mod:`calirl_lite.reply_cache`); :class:`LocalUser` the
  same with a chat model loaded here (``local:MODEL``);
* :class:`HybridUser` — an LM simulator whose replies in chosen contexts are the real users' (the diagnosis of what
  a calibrated simulator gets wrong).

The chat templates decide how a model sees the conversation; :mod:`calirl_lite.chat` holds the
small helpers that turn messages into token ids for any template.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chat import next_segment_ids, user_prompt_ids
from .collabllm_tasks import CollabLLMTask, collabllm_user_prompt, collabllm_user_reply
from .decode import TokenStream
from .dialogue import TERMINATE, Dialogue, Message
from .endpoints import Completion, chat_reply, require_http
from .profiles import Models, Profile, device_for, load_model
from .prompts import user_messages
from .reply_cache import CallCounts, ReplyCache, fields_key, request_fields
from .task_family import REAL_USER, SINGLE_ERRORS, ScriptedUser, Task, UserPersona, single_error_persona


@dataclass
class UserState:
    """What a user keeps about one dialogue: the task, the hidden goal, its own random stream."""

    task: Task
    goal: dict[str, Any]
    rng: np.random.Generator
    scripted: ScriptedUser | None = None
    key: int = field(default_factory=itertools.count().__next__)
    """unique for the life of the process (``id()`` is not: a freed state's id is reused by a new one)"""


def says(task: Task, kind: str, text: str) -> bool:
    """Whether a user message holds one of the task's phrases of ``kind`` (accept, reject, give_up …)."""
    return any(phrase in text for phrase in task.phrases[kind])


def verdict(task: Task, dialogue: Dialogue) -> float:
    """The user's own verdict on a dialogue: 1.0 when the user ended the chat content — its last message ends it
    with ``[[TERMINATE CHAT]]`` and neither rejects nor gives up — else 0.0 (rejected, left, or the budget ran out).

    It is what a simulator says of the policy, the only reward there is where no ground truth exists; read off the
    text, so it means the same for scripted, LM and endpoint users."""
    last = dialogue.messages[-1] if dialogue.messages else None
    if last is None or last.role != "user" or TERMINATE not in last.text:
        return 0.0
    return float(not says(task, "reject", last.text) and not says(task, "give_up", last.text))


PERSONA_NUMBERS = tuple(f.name for f in dataclasses.fields(UserPersona) if f.name != "name")
"""The behaviours a persona spec may set (:func:`persona_from_spec`)."""


def persona_from_spec(spec: str) -> UserPersona:
    """A scripted simulator from a short spec: the real users with changes, separated by commas. Each change is a
    single error at full strength or at a chosen one (``sycophantic``, ``sycophantic:0.5``; :data:`SINGLE_ERRORS`)
    or one behaviour set to a value (``p_accept_wrong=0.8``, ``patience=2``). ``""`` is the real users.

    >>> persona_from_spec("sycophantic,p_unprompted_reveal=0.5").p_accept_wrong
    1.0
    """
    persona = REAL_USER
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "=" in part:
            name, _, value = (x.strip() for x in part.partition("="))
            if name not in PERSONA_NUMBERS:
                raise ValueError(f"user spec {spec!r}: {name!r} is no behaviour of a user; behaviours: {', '.join(PERSONA_NUMBERS)}")
            kind = type(getattr(REAL_USER, name))
            try:
                number = kind(value) if kind is float else int(value)
            except ValueError:
                raise ValueError(f"user spec {spec!r}: {name} must be {'a whole number' if kind is int else 'a number'}, got {value!r}") from None
            low = 1 if name in ("patience", "corrections") else 0
            if not (low <= number <= (1 if kind is float else 10**6)) or number != number:
                raise ValueError(f"user spec {spec!r}: {name} must be {'a chance in [0, 1]' if kind is float else f'≥ {low}'}, got {value}")
            persona = dataclasses.replace(persona, **{name: number})
        else:
            error, _, strength = part.partition(":")
            if error not in SINGLE_ERRORS:
                raise ValueError(f"user spec {spec!r}: unknown simulator error {error!r}; errors: {', '.join(SINGLE_ERRORS)}, "
                                 f"or behaviour=value with a behaviour of {', '.join(PERSONA_NUMBERS)}")
            try:
                level = float(strength) if strength else 1.0
            except ValueError:
                raise ValueError(f"user spec {spec!r}: the strength of {error} must be a number in [0, 1], got {strength!r}") from None
            moved = single_error_persona(error, level, persona)
            persona = dataclasses.replace(persona, **{f: getattr(moved, f) for f in SINGLE_ERRORS[error][1]})
    return dataclasses.replace(persona, name=spec.strip() or REAL_USER.name)


class User:
    """Base class: a user simulator that answers batches of dialogues."""

    name = "user"
    generated_tokens = 0
    """tokens sampled by a model playing this user (0 for scripted users)"""

    def open(self, task: Task, goal: dict[str, Any], rng: np.random.Generator) -> UserState:
        return UserState(task, goal, rng)

    def first_messages(self, states: list[UserState]) -> list[str]:
        return self.replies(states, [[] for _ in states])

    def resume(self, state: UserState, history: list[Message]) -> None:
        """Take over a dialogue at a logged ``history`` (Static Context RL). Model-played users read the
        history anew at every turn, so there is nothing to do; scripted users recall what they said."""

    def replies(self, states: list[UserState], histories: list[list[Message]]) -> list[str]:
        raise NotImplementedError


class ScriptedUsers(User):
    """Scripted stochastic users with one persona (default: the world's real users)."""

    def __init__(self, persona: UserPersona = REAL_USER, name: str | None = None) -> None:
        self.persona = persona
        self.name = name or persona.name

    def open(self, task: Task, goal: dict[str, Any], rng: np.random.Generator) -> UserState:
        return UserState(task, goal, rng, ScriptedUser(task, goal, self.persona, rng))

    def first_messages(self, states: list[UserState]) -> list[str]:
        return [s.scripted.first_message() for s in states]  # type: ignore[union-attr]

    def resume(self, state: UserState, history: list[Message]) -> None:
        for m in history:  # the details this user has stated so far, as stated (mistakes included)
            if m.role == "user":
                state.scripted.told.update(state.task.parse_user(m.text))  # type: ignore[union-attr]

    def replies(self, states: list[UserState], histories: list[list[Message]]) -> list[str]:
        return [s.scripted.reply(h[-1].text) for s, h in zip(states, histories)]  # type: ignore[union-attr]


class LMUser(User):
    """A causal LM playing the user: the hidden goal and CollabLLM's user rules in its system prompt.

    With ``adapter`` (a folder saved by PEFT) the LoRA adapter is loaded on top of ``model``:
    that is the calibrated simulator. Give it its own copy of the base model, since PEFT
    changes the model it wraps.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "naive", adapter: str | None = None,
                 temperature: float = 1.0, max_new_tokens: int = 40, prompt_style: str = "tiny") -> None:
        if adapter is not None:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").is_file():
                raise FileNotFoundError(f"no LoRA adapter at {adapter} (adapter_config.json missing); run `calirl calibrate` first")
            model = PeftModel.from_pretrained(model, adapter)
            if not getattr(model, "is_loaded_in_4bit", False):
                model = model.merge_and_unload()  # the simulator is never trained here: one plain model is ~15% faster
            model.eval()
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.temperature, self.max_new_tokens, self.prompt_style = temperature, max_new_tokens, prompt_style
        self.generated_tokens = 0
        """tokens this user has sampled so far (the engine's throughput counts them)"""
        self._stream: TokenStream | None = None
        self._keys: list[int] = []
        self._seen: list[int] = []

    def _view(self, state: UserState, history: list[Message]) -> list[dict[str, str]]:
        return user_messages(state.task, state.goal, history, self.prompt_style)

    def replies(self, states: list[UserState], histories: list[list[Message]]) -> list[str]:
        """Sample the next user message of each dialogue.

        While the engine drives the same dialogues turn by turn (each history one assistant message
        longer than last time) the user's view stays in a :class:`~calirl_lite.decode.TokenStream` and
        only the new tokens are encoded; anything else starts a fresh stream.
        """
        keys = [s.key for s in states]
        rows = {k: r for r, k in enumerate(self._keys)}
        continuing = self._stream is not None and all(k in rows and self._seen[rows[k]] == len(h) - 1 for k, h in zip(keys, histories))
        if continuing:
            self._stream.keep([rows[k] for k in keys])
            self._stream.extend([next_segment_ids(self.tokenizer, self._view(s, h[:-1]), {"role": h[-1].role, "content": h[-1].text}, "user")
                                 for s, h in zip(states, histories)])
        else:
            self._stream = TokenStream(self.model, self.tokenizer, [user_prompt_ids(self.tokenizer, self._view(s, h)) for s, h in zip(states, histories)])
        outs = self._stream.sample(self.max_new_tokens, self.temperature, with_logprobs=False)
        self._keys, self._seen = keys, [len(h) + 1 for h in histories]
        self.generated_tokens += sum(len(o.ids) - int(o.forced_end) for o in outs)
        return [o.text for o in outs]


# ----------------------------------------------------------------------------- a simulator corrected where it errs

CONTEXTS = ("opening", "right answer", "wrong answer", "question", "other")
"""Where a user turn stands, by what the assistant's turn before it did (:func:`reply_context`)."""


def reply_context(task: Task, goal: dict[str, Any], history: list[Message]) -> str:
    """What a user is replying to: its ``opening`` message, a ``right answer`` or a ``wrong answer`` (a draft, in
    docedit), a ``question``, or ``other`` assistant text."""
    if not history:
        return "opening"
    prev = task.parse_assistant(history[-1].text)
    if prev.kind == "answer":
        return "right answer" if task.answer_is_right(goal, prev) else "wrong answer"
    return "question" if prev.kind == "ask" else "other"


def replay(task: Task, goal: dict[str, Any], persona: UserPersona, history: list[Message], rng: Any = None) -> ScriptedUser:
    """A scripted user of ``persona`` in the state it would be in after ``history`` — the details stated so far (as
    stated, mistakes included) and the wrong answers rejected — drawing from ``rng`` (default: a fixed stream)."""
    user = ScriptedUser(task, goal, persona, rng if rng is not None else np.random.default_rng(0))
    for m in history:
        if m.role == "user":
            user.told.update(task.parse_user(m.text))
            user.rejected += says(task, "reject", m.text)
    return user


class HybridUser(User):
    """An LM simulator corrected where ``correct`` says: in those contexts (:data:`CONTEXTS`) the reply is the one a
    scripted user of ``persona`` (the real users) would give after the same history; elsewhere the LM's own. It is
    how the kit asks which of a calibrated simulator's errors matter: correct one context, train, and compare."""

    def __init__(self, lm: User, correct: tuple[str, ...] | list[str], persona: UserPersona = REAL_USER, name: str = "hybrid") -> None:
        unknown = sorted(set(correct) - set(CONTEXTS))
        if unknown or not correct:
            raise ValueError(f"contexts to correct must be some of {', '.join(CONTEXTS)}; got {', '.join(unknown) or 'none'}")
        self.lm, self.correct, self.persona, self.name = lm, tuple(correct), persona, name

    @property
    def generated_tokens(self) -> int:  # type: ignore[override]
        return self.lm.generated_tokens

    def replies(self, states: list[UserState], histories: list[list[Message]]) -> list[str]:
        fixed = [reply_context(s.task, s.goal, h) in self.correct for s, h in zip(states, histories)]
        out: list[str] = [""] * len(states)
        rows = [i for i, f in enumerate(fixed) if not f]
        if rows:
            for i, text in zip(rows, self.lm.replies([states[i] for i in rows], [histories[i] for i in rows])):
                out[i] = text
        for i in (i for i, f in enumerate(fixed) if f):
            s, h = states[i], histories[i]
            user = replay(s.task, s.goal, self.persona, h, s.rng)
            out[i] = user.reply(h[-1].text) if h else user.first_message()
        return out


class ChatModelUser(User):
    """A user played by a large chat model from the hidden goal — what an :class:`EndpointUser` and a
    :class:`LocalUser` share: the prompt, the reply cache and the counts; each says how one reply is got
    (:meth:`_complete`) and where from (:attr:`where`, part of every cache key).

    What the model reads is CollabLLM's user-simulator prompt. For CollabLLM's own tasks (``collabllm-math``,
    ``collabllm-docedit``) that is :func:`~calirl_lite.collabllm_tasks.collabllm_user_prompt`, one user message with
    the hidden request and the chat, and the reply is read by
    :func:`~calirl_lite.collabllm_tasks.collabllm_user_reply` (the ``response`` of its JSON); for every other task it
    is the collabllm-style system prompt of :func:`~calirl_lite.prompts.user_messages` with the conversation so far
    as one user message, and the reply is the user's message.

    Each request carries a *sample* drawn from the dialogue's own random stream (an endpoint gets it as the request's
    ``seed``; a local model samples with it). With a ``cache`` (:class:`~calirl_lite.reply_cache.ReplyCache`) a
    request made before is answered from it, so a re-run with the same seeds makes no request and gets the same
    replies; :attr:`calls` counts what was asked.
    """

    where = ""
    """where the replies come from (an endpoint's base URL, or ``local``): part of each request's cache key"""
    model = ""
    workers = 1
    """requests in flight at once"""

    def __init__(self, name: str, temperature: float, max_tokens: int, cache: ReplyCache | None) -> None:
        self.name, self.temperature, self.max_tokens, self.cache = name, temperature, max_tokens, cache
        self.calls = CallCounts()
        """requests sent, replies from the cache, tokens and seconds, since this user was made"""

    @staticmethod
    def messages(state: UserState, history: list[Message]) -> list[dict[str, str]]:
        """What the model reads to write the user's next message (see the class)."""
        if isinstance(state.task, CollabLLMTask):
            return [{"role": "user", "content": collabllm_user_prompt(state.task, state.goal, history)}]
        system = user_messages(state.task, state.goal, [], "collabllm")[0]["content"]
        convo = "\n".join(f"{m.role}: {m.text}" for m in history) or "(no messages yet)"
        return [{"role": "system", "content": system},
                {"role": "user", "content": f"The conversation so far:\n{convo}\n\nWrite the user's next message only."}]

    def _complete(self, messages: list[dict[str, str]], sample: int) -> Completion:
        """The model's reply to ``messages``, sampled with ``sample`` (no cache)."""
        raise NotImplementedError

    def _ask(self, messages: list[dict[str, str]], sample: int) -> tuple[Completion, bool]:
        """The reply to ``messages`` for ``sample``, and whether it came from the cache."""
        request = request_fields(self.where, self.model, messages, self.temperature, self.max_tokens, sample)
        key = fields_key(request)
        kept = self.cache.get(key) if self.cache is not None else None
        if kept is not None:
            return Completion(kept["text"], int(kept.get("prompt_tokens", 0)), int(kept.get("completion_tokens", 0))), True
        reply = self._complete(messages, sample)
        if self.cache is not None:
            self.cache.put(key, request, dataclasses.asdict(reply))
        return reply, False

    def replies(self, states: list[UserState], histories: list[list[Message]]) -> list[str]:
        """Every dialogue's next user message, ``workers`` requests at a time; the samples are drawn here, in order,
        so that they are the same whatever order the replies come back in."""
        asks = [self.messages(s, h) for s, h in zip(states, histories)]
        samples = [int(s.rng.integers(2**31)) for s in states]
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            got = list(pool.map(self._ask, asks, samples))
        sent = [r for r, cached in got if not cached]
        self.calls.requests += len(sent)
        self.calls.cached += len(got) - len(sent)
        self.calls.prompt_tokens += sum(r.prompt_tokens for r in sent)
        self.calls.completion_tokens += sum(r.completion_tokens for r in sent)
        self.calls.seconds += time.perf_counter() - start if sent else 0.0
        return [collabllm_user_reply(r.text) if isinstance(s.task, CollabLLMTask) else r.text for s, (r, _) in zip(states, got)]


class EndpointUser(ChatModelUser):
    """A user played by an OpenAI-compatible chat endpoint (``POST {base_url}/chat/completions``): the real user of
    a GPU profile (``real_user``: ``endpoint:BASE_URL#MODEL``; :func:`make_real_user`), or any oracle. Its prompt,
    cache and counts: :class:`ChatModelUser`."""

    def __init__(self, base_url: str, model: str, api_key: str = "", name: str = "endpoint", temperature: float = 1.0, max_tokens: int = 256,
                 timeout: float = 60.0, workers: int = 8, cache: ReplyCache | None = None) -> None:
        require_http(base_url, "base_url")
        super().__init__(name, temperature, max_tokens, cache)
        self.base_url, self.model, self.api_key, self.timeout, self.workers = base_url.rstrip("/"), model, api_key, timeout, workers

    @property
    def where(self) -> str:  # type: ignore[override]
        return self.base_url

    @property
    def spec(self) -> str:
        """This user as a ``real_user`` spec names it: ``endpoint:BASE_URL#MODEL``."""
        return f"endpoint:{self.base_url}#{self.model}"

    def _complete(self, messages: list[dict[str, str]], sample: int) -> Completion:
        return chat_reply(self.base_url, self.model, messages, self.temperature, self.max_tokens, self.api_key, self.timeout, seed=sample)


class LocalUser(ChatModelUser):
    """A user played by a chat model loaded here with transformers (``real_user``: ``local:MODEL``, a saved folder or
    a hub id; :func:`make_real_user`) — a large oracle on the machine's own GPU, without a server. The model is
    loaded at its first uncached request; each reply is sampled on its own, seeded by the request's sample (torch's
    random state is put back afterwards, so the policy's sampling does not depend on which replies were cached).
    Its prompt, cache and counts: :class:`ChatModelUser`."""

    where = "local"

    def __init__(self, model: str, name: str = "local", temperature: float = 1.0, max_tokens: int = 256, cache: ReplyCache | None = None,
                 load: Any = None) -> None:
        super().__init__(name, temperature, max_tokens, cache)
        self.model = model
        self._load = load
        """``() -> (model, tokenizer)``: how the model is loaded (:func:`make_real_user` gives the profile's device)"""
        self._loaded: tuple[Any, Any] | None = None

    @property
    def spec(self) -> str:
        """This user as a ``real_user`` spec names it: ``local:MODEL``."""
        return f"local:{self.model}"

    def _model(self) -> tuple[Any, Any]:
        """The model and its tokenizer, loaded (and checked for a chat template) at the first call."""
        if self._loaded is None:
            model, tokenizer = self._load() if self._load is not None else load_model(self.model)
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError(f"real_user 'local:{self.model}': its tokenizer has no chat template, so it cannot read the user prompt; "
                                 "use a chat (instruct) model")
            self._loaded = model, tokenizer
        return self._loaded

    def _complete(self, messages: list[dict[str, str]], sample: int) -> Completion:
        import torch

        model, tokenizer = self._model()
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"].to(model.device)
        with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []), torch.inference_mode():
            torch.manual_seed(sample)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=self.temperature > 0, max_new_tokens=self.max_tokens,
                                 pad_token_id=tokenizer.pad_token_id, **({"temperature": self.temperature} if self.temperature > 0 else {}))
        new = out[0, ids.shape[1]:]
        return Completion(tokenizer.decode(new, skip_special_tokens=True).strip(), int(ids.shape[1]), int(new.shape[0]))


# ----------------------------------------------------------------------------- the real user, by spec

REAL_USER_MAX_TOKENS = 1024
"""the most tokens an LLM real user writes a turn: room for CollabLLM's JSON (its thought comes before its response)"""
REAL_USER_REPLIES = "real-user-replies"
"""the folder under the context's cache where an LLM real user's replies are kept (:mod:`calirl_lite.reply_cache`)"""


@dataclass(frozen=True)
class RealUserSpec:
    """Who the real user is: ``scripted`` (the world's scripted users), an ``endpoint`` serving ``model`` at
    ``base_url``, or a ``local`` chat model (a folder or hub id) loaded here (:func:`parse_real_user` reads it from a
    spec string)."""

    kind: str = "scripted"
    base_url: str = ""
    model: str = ""

    def __str__(self) -> str:
        return {"scripted": "scripted", "local": f"local:{self.model}"}.get(self.kind, f"endpoint:{self.base_url}#{self.model}")


REAL_USER_SPECS = ("'scripted' (the world's scripted users), 'endpoint:BASE_URL#MODEL' (e.g. endpoint:http://127.0.0.1:8000/v1#Qwen/Qwen3-235B-A22B) "
                   "or 'local:MODEL' (a chat model loaded here: a saved folder or a hub id, e.g. local:Qwen/Qwen2.5-7B-Instruct)")
"""what a real-user spec may be, for error messages"""


def parse_real_user(spec: str, what: str = "real_user") -> RealUserSpec:
    """The real user a spec names: ``''`` or ``scripted``; ``endpoint:BASE_URL#MODEL`` — an OpenAI-compatible
    endpoint (vLLM, TGI …) and the model it serves, split at the last ``#``; or ``local:MODEL`` — a chat model loaded
    here (a saved folder or a hub id). A bad spec is an error naming ``what`` (the settings field, or the profile
    whose ``oracle`` it is).

    >>> parse_real_user("endpoint:http://127.0.0.1:8000/v1/#Qwen/Qwen3-235B-A22B")
    RealUserSpec(kind='endpoint', base_url='http://127.0.0.1:8000/v1', model='Qwen/Qwen3-235B-A22B')
    >>> parse_real_user("local:Qwen/Qwen2.5-7B-Instruct")
    RealUserSpec(kind='local', base_url='', model='Qwen/Qwen2.5-7B-Instruct')
    """
    text = spec.strip()
    if text in ("", "scripted"):
        return RealUserSpec()
    kind, colon, rest = text.partition(":")
    if kind == "local" and colon:
        if not rest.strip():
            raise ValueError(f"{what} {spec!r}: name the chat model after 'local:' (a saved folder or a hub id)")
        return RealUserSpec("local", "", rest.strip())
    if kind != "endpoint" or not colon:
        raise ValueError(f"{what} {spec!r} names no real user; use {REAL_USER_SPECS}")
    url, hash_mark, model = rest.rpartition("#")
    if not hash_mark or not model.strip():
        raise ValueError(f"{what} {spec!r}: name the model the endpoint serves after a '#': endpoint:BASE_URL#MODEL")
    if not url.startswith(("http://", "https://")) or len(url.rstrip("/")) <= len("https://"):
        raise ValueError(f"{what} {spec!r}: the endpoint's base URL must start with http:// or https://, got {url!r}")
    return RealUserSpec("endpoint", url.rstrip("/"), model.strip())


def make_real_user(spec: RealUserSpec, profile: Profile, cache: Path, api_key: str = "") -> User:
    """The real user ``spec`` names: the world's scripted users, or an :class:`EndpointUser` or a :class:`LocalUser`
    (on the profile's device; called ``real``, so its dialogues are the real users' wherever they are read) sampling
    at the profile's user temperature, its replies kept under ``<cache>/real-user-replies``."""
    if spec.kind == "scripted":
        return ScriptedUsers()
    if spec.kind == "local":
        return LocalUser(spec.model, name=REAL_USER.name, temperature=profile.user_temperature, max_tokens=REAL_USER_MAX_TOKENS,
                         cache=ReplyCache(Path(cache) / REAL_USER_REPLIES), load=lambda: load_model(spec.model, device=device_for(profile), cache=cache))
    return EndpointUser(spec.base_url, spec.model, api_key, name=REAL_USER.name, temperature=profile.user_temperature,
                        max_tokens=REAL_USER_MAX_TOKENS, cache=ReplyCache(Path(cache) / REAL_USER_REPLIES))


def real_user_calls(user: User) -> dict[str, Any]:
    """What a real user's replies cost, for a run's results: its spec (``user``) and its :class:`CallCounts` — all
    0 for the scripted users."""
    if isinstance(user, ChatModelUser):
        return {"user": user.spec, **user.calls.as_dict()}
    return {"user": "scripted", **CallCounts().as_dict()}


def make_user(kind: str, models: Models, adapter: str | Path | None = None) -> User:
    """The user of a role: 'real' (the world's scripted users: a stage's own real user, which its settings may make an
    LLM, is :meth:`calirl_lite.stages.Stage.real_user`), 'naive' (the prompted LM) or 'calibrated' (LM + LoRA
    adapter, or the whole calibrated model when ``adapter`` is a model's folder), with the models and sampling
    settings of ``models``' profile."""
    if kind == "real":
        return ScriptedUsers()
    if kind not in ("naive", "calibrated"):
        raise ValueError(f"unknown user {kind!r}; use real, naive or calibrated")
    if kind == "calibrated" and adapter is None:
        raise ValueError("the calibrated user needs its adapter folder")
    prof = models.profile
    if kind == "calibrated" and not (Path(adapter) / "adapter_config.json").is_file() and (Path(adapter) / "config.json").is_file():
        model, tok = models.load(str(adapter))  # a whole calibrated model (full fine-tuning, SFT + realism)
        return LMUser(model, tok, kind, None, prof.user_temperature, prof.user_tokens, prof.user_prompt_style)
    model, tok = models.user()
    return LMUser(model, tok, kind, str(adapter) if kind == "calibrated" else None, prof.user_temperature, prof.user_tokens, prof.user_prompt_style)
