"""The simulation lemma's gap, exactly: how far a simulator's *whole reply* is from the real users', turn by turn.

The lemma bounds the drop |J_sim − J_real| of a policy's score by R_max · Σ_t ε_t, where ε_t is the expected total
variation between the simulator's and the real user's distribution of their reply at user turn t, over the histories
h the real users reach with that policy:

    ε_t = E_{h ~ real users × policy, turn t} TV(P_sim(· | h), P_real(· | h)),   TV(P, Q) = ½ Σ_y |P(y) − Q(y)|

(a dialogue that has ended before turn t counts 0). The toy world's real users are programs, so both sides are known:

* the scripted users' reply distribution is **enumerated**: their state at h is replayed from the history, and their
  reply is run once for every outcome of every random draw it makes (:func:`reply_distribution`; branches below
  ``MIN_BRANCH`` in probability are left out, and their mass is reported as the error bound it is);
* a language model's probability of a reply is **scored**: teacher forcing of the reply's tokens and the end-of-turn
  token after the user's view of h, with the sampling rules of the kit's decoder (temperature, no special token but the
  turn end, at most ``max_new_tokens``) — the mass it puts on replies the real users never give counts in full
  (:class:`LMReplies`).

ε_t is a mean over the sampled dialogues, so it carries sampling error (reported as a 95 % interval); the TV at each
history is exact. :func:`exact_gap` also splits the TV mass by what the reply does (:func:`reply_category`: accepts a
wrong answer, answers a question with a wrong value, volunteers a detail …), so the gap says *what* differs.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from .chat import encode, turn_end_id, user_prompt_ids
from .decode import TokenStream
from .dialogue import TERMINATE, Dialogue, Message
from .prompts import user_messages
from .task_family import Task, UserPersona
from .tasks import TASKS, get_task
from .users import HybridUser, LMUser, ScriptedUsers, replay, reply_context, says

MIN_BRANCH = 1e-6
"""Outcomes of a scripted user's reply less likely than this are not enumerated (their mass is reported)."""
OTHER = "replies the real users never give"
"""The category of a simulator's mass outside the real users' support."""


# ----------------------------------------------------------------------------- the scripted users, enumerated


class _Draws:
    """A stand-in for a NumPy generator that follows one path of choices through a scripted user's reply and records
    the probabilities of the branches it passes (``random() < p`` branches with p and 1 − p; ``choice`` and
    ``integers`` uniformly)."""

    def __init__(self, path: Sequence[int]) -> None:
        self.path, self.depth, self.p, self.branches = list(path), 0, 1.0, []

    def pick(self, probs: list[float]) -> int:
        if self.depth == len(self.path):
            self.path.append(next(k for k, q in enumerate(probs) if q > 0))
        k = self.path[self.depth]
        self.branches.append(probs)
        self.p *= probs[k]
        self.depth += 1
        return k

    def random(self) -> _Uniform:
        return _Uniform(self)

    def choice(self, options: Any) -> Any:
        options = list(options)
        return options[self.pick([1 / len(options)] * len(options))]

    def integers(self, low: int, high: int | None = None) -> int:
        low, high = (0, low) if high is None else (low, high)
        return low + self.pick([1 / (high - low)] * (high - low))


class _Uniform:
    """A uniform draw that is only ever compared with a probability: ``u < p`` is the branch of probability p."""

    def __init__(self, draws: _Draws) -> None:
        self.draws = draws

    def __lt__(self, p: float) -> bool:
        return self.draws.pick([float(p), 1.0 - float(p)]) == 0


def enumerate_outcomes(run: Callable[[_Draws], str], min_branch: float = MIN_BRANCH) -> tuple[dict[str, float], float]:
    """Every text ``run`` can return with its probability, ``run`` called once per path through its random draws
    (depth first); returns ``(distribution, mass left out)`` — paths below ``min_branch`` are not followed."""
    out: dict[str, float] = defaultdict(float)
    left_out, stack = 0.0, [([], 1.0)]
    while stack:
        path, p_path = stack.pop()
        if p_path < min_branch:
            left_out += p_path
            continue
        draws = _Draws(path)
        out[run(draws)] += draws.p
        p = 1.0
        for depth, probs in enumerate(draws.branches):
            if depth >= len(path):
                for k in range(draws.path[depth] + 1, len(probs)):
                    if probs[k] > 0:
                        stack.append((draws.path[:depth] + [k], p * probs[k]))
            p *= probs[draws.path[depth]]
    return dict(out), left_out


def reply_distribution(task: Task, goal: dict[str, Any], persona: UserPersona, history: Sequence[Message],
                       min_branch: float = MIN_BRANCH) -> tuple[dict[str, float], float]:
    """The scripted user's distribution of its next message after ``history`` (ending with the assistant's turn; empty:
    its first message): ``({text: probability}, mass left out)``."""
    if history and history[-1].role != "assistant":
        raise ValueError("a user replies to the assistant: the history must end with an assistant turn")
    state = replay(task, goal, persona, history)

    def run(draws: _Draws) -> str:
        user = dataclasses.replace(state, rng=draws, told=dict(state.told))
        return user.reply(history[-1].text) if history else user.first_message()

    return enumerate_outcomes(run, min_branch)


# ----------------------------------------------------------------------------- a language model, scored


class Replies(Protocol):
    """A simulator's probabilities of given replies, many histories at once."""

    name: str

    def probabilities(self, task: Task, items: Sequence[tuple[dict[str, Any], Sequence[Message], Sequence[str]]]) -> list[list[float]]: ...


@dataclass
class ScriptedReplies:
    """A scripted simulator's probabilities: its enumerated distribution, looked up."""

    persona: UserPersona
    name: str = "scripted"

    def distribution(self, task: Task, goal: dict[str, Any], history: Sequence[Message]) -> dict[str, float]:
        return reply_distribution(task, goal, self.persona, history)[0]

    def probabilities(self, task: Task, items: Sequence[tuple[dict[str, Any], Sequence[Message], Sequence[str]]]) -> list[list[float]]:
        out = []
        for goal, history, replies in items:
            dist = self.distribution(task, goal, history)
            out.append([dist.get(y, 0.0) for y in replies])
        return out


@dataclass
class LMReplies:
    """A causal LM playing the user (as :class:`~calirl_lite.users.LMUser` does): the probability that it writes
    exactly a reply — the reply's tokens, then the turn end — after the user's view of a history, under the decoder's
    rules: ``temperature``, no special token but the turn end, at most ``max_new_tokens`` (a reply that long is cut
    there, with no end token to score)."""

    model: Any
    tokenizer: Any
    style: str = "tiny"
    temperature: float = 1.0
    max_new_tokens: int = 40
    name: str = "lm"
    max_tokens: int = 8192
    """tokens a batch of scored sequences may hold (padding included)"""
    max_rows: int = 512
    """replies one sampling batch holds (histories times the replies sampled at each)"""

    def sequences(self, task: Task, goal: dict[str, Any], history: Sequence[Message], replies: Sequence[str]) -> list[tuple[list[int], int, bool]]:
        """Per reply: ``(token ids, where the reply starts, whether its end token is scored)``; None-like (empty) for a
        reply the decoder cannot write (longer than ``max_new_tokens``)."""
        prompt = self.prompt(task, goal, history)
        end = turn_end_id(self.tokenizer)
        out = []
        for y in replies:
            ids = encode(self.tokenizer, y)
            if len(ids) > self.max_new_tokens:
                out.append(([], 0, False))
            elif len(ids) == self.max_new_tokens:
                out.append((prompt + ids, len(prompt), False))
            else:
                out.append((prompt + ids + [end], len(prompt), True))
        return out

    def probabilities(self, task: Task, items: Sequence[tuple[dict[str, Any], Sequence[Message], Sequence[str]]]) -> list[list[float]]:
        seqs = [self.sequences(task, g, h, ys) for g, h, ys in items]
        flat = [(i, j, s) for i, row in enumerate(seqs) for j, s in enumerate(row) if s[0]]
        logps = self._score([s for _, _, s in flat])
        out = [[0.0] * len(row) for row in seqs]
        for (i, j, _), lp in zip(flat, logps):
            out[i][j] = math.exp(lp)
        return out

    def _score(self, seqs: list[tuple[list[int], int, bool]]) -> list[float]:
        """log P of each sequence's reply part, in batches of at most ``max_tokens`` tokens, shortest first."""
        import torch

        order = sorted(range(len(seqs)), key=lambda k: len(seqs[k][0]))
        device = next(self.model.parameters()).device
        end = turn_end_id(self.tokenizer)
        suppress = sorted(set(self.tokenizer.all_special_ids) - {end})
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = [0.0] * len(seqs)
        start = 0
        self.model.eval()
        while start < len(order):
            stop = start + 1
            while stop < len(order) and (stop + 1 - start) * len(seqs[order[stop]][0]) <= self.max_tokens:
                stop += 1
            part = [seqs[k] for k in order[start:stop]]
            width = max(len(s[0]) for s in part)
            ids = torch.full((len(part), width), pad, dtype=torch.long)
            att = torch.zeros((len(part), width), dtype=torch.long)
            for r, (s, _, _) in enumerate(part):
                ids[r, : len(s)] = torch.tensor(s)
                att[r, : len(s)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
                if suppress:
                    logits[..., suppress] = float("-inf")
                logp = torch.log_softmax(logits / self.temperature, -1)
            for r, (s, at, _) in enumerate(part):  # the reply's tokens, and its end token where it is scored
                targets = torch.tensor(s[at:], device=device)
                out[order[start + r]] = float(logp[r, at - 1 : len(s) - 1].gather(1, targets[:, None]).sum())
            start = stop
        return out

    def prompt(self, task: Task, goal: dict[str, Any], history: Sequence[Message]) -> list[int]:
        """The user's view of ``history``, as the token ids the LM continues."""
        return user_prompt_ids(self.tokenizer, user_messages(task, goal, list(history), self.style))

    def sample(self, task: Task, items: Sequence[tuple[dict[str, Any], Sequence[Message]]], k: int, seed: int = 0) -> list[list[str]]:
        """``k`` replies the LM writes after each history (the decoder's own sampling; each prompt run once)."""
        import torch

        torch.manual_seed(seed)
        texts: list[list[str]] = []
        for group in self._groups([k] * len(items)):
            stream = TokenStream(self.model, self.tokenizer, [self.prompt(task, *items[i]) for i in group])
            stream.keep([r for r in range(len(group)) for _ in range(k)])
            drawn = [g.text for g in stream.sample(self.max_new_tokens, self.temperature, with_logprobs=False)]
            texts += [drawn[r * k : (r + 1) * k] for r in range(len(group))]
        return texts

    def _groups(self, rows: Sequence[int]) -> list[list[int]]:
        """Consecutive histories in batches of at most ``max_rows`` rows (a history with more rows alone)."""
        groups: list[list[int]] = [[]]
        used = 0
        for i, n in enumerate(rows):
            if groups[-1] and used + n > self.max_rows:
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += n
        return [g for g in groups if g]


@dataclass
class HybridReplies:
    """A :class:`~calirl_lite.users.HybridUser`'s probabilities: the scripted users' (``persona``) in the contexts it
    corrects, the LM's elsewhere."""

    lm: Replies
    correct: tuple[str, ...]
    persona: UserPersona
    name: str = "hybrid"

    def probabilities(self, task: Task, items: Sequence[tuple[dict[str, Any], Sequence[Message], Sequence[str]]]) -> list[list[float]]:
        fixed = [reply_context(task, goal, list(history)) in self.correct for goal, history, _ in items]
        lm = iter(self.lm.probabilities(task, [it for it, f in zip(items, fixed) if not f]))
        script = ScriptedReplies(self.persona)
        return [script.probabilities(task, [it])[0] if f else next(lm) for it, f in zip(items, fixed)]


def replies_of(user: Any) -> Replies:
    """The reply probabilities of a user the rollout engine plays: a scripted one's enumerated, an LM's scored with its
    own sampling settings, a corrected LM's from both."""
    if isinstance(user, ScriptedUsers):
        return ScriptedReplies(user.persona, user.name)
    if isinstance(user, LMUser):
        return LMReplies(user.model, user.tokenizer, user.prompt_style, user.temperature, user.max_new_tokens, user.name)
    if isinstance(user, HybridUser):
        return HybridReplies(replies_of(user.lm), user.correct, user.persona, user.name)
    raise TypeError(f"no reply probabilities for a {type(user).__name__}: the exact gap takes scripted users, LM users and corrected LM users")


# ----------------------------------------------------------------------------- what a reply does


def reply_category(task: Task, goal: dict[str, Any], history: Sequence[Message], reply: str) -> str:
    """What a user's reply does, read as the task reads it: its answer to the assistant's turn (accepts or rejects a
    right or a wrong answer, answers or declines a question, leaves at a question …), with ``· wrong value`` where a
    detail it states is not the goal's and ``· volunteers`` where it states one nobody asked for."""
    prev = task.parse_assistant(history[-1].text) if history else None
    said = task.parse_user(reply)
    wrong = any(goal.get(s) != v for s, v in said.items())
    asked = set(prev.slots) if prev is not None and prev.kind == "ask" else set()
    if prev is None:
        base = "opening: states details" if said else "opening: states none"
    elif prev.kind == "answer":
        right = task.answer_is_right(goal, prev)
        if says(task, "give_up", reply) and TERMINATE in reply:
            base = "rejects and gives up"
        elif says(task, "reject", reply):
            base = f"rejects a {'right' if right else 'wrong'} answer" + (" · names a detail" if said else "")
        elif TERMINATE in reply:
            base = f"accepts a {'right' if right else 'wrong'} answer"
        else:
            base = "after an answer: other"
    elif prev.kind == "ask":
        if says(task, "give_up", reply) and TERMINATE in reply:
            base = "leaves at a question"
        elif asked & set(said):
            base = "answers the question"
        elif says(task, "not_sure", reply):
            base = "declines the question"
        else:
            base = "after a question: other"
    else:
        base = "after other text"
    if said and prev is not None and prev.kind != "answer" and set(said) - asked:
        base += " · volunteers"
    return base + (" · wrong value" if wrong else "")


# ----------------------------------------------------------------------------- ε_t


def user_turns(d: Dialogue) -> list[tuple[int, list[Message], str]]:
    """``(turn index t, the history before the user's t-th message, that message)`` for each user message."""
    return [(t, d.messages[:k], m.text) for t, (k, m) in enumerate((k, m) for k, m in enumerate(d.messages) if m.role == "user")]


def exact_gap(sim: Replies, real: UserPersona, dialogues: Sequence[Dialogue], max_turns: int | None = None, samples: int = 0,
              seed: int = 0) -> dict[str, Any]:
    """ε_t of simulator ``sim`` against the scripted users of persona ``real``, over the user turns of ``dialogues``
    (dialogues of the real users with a policy: the histories the lemma asks for). Per turn index t: ``eps`` (the
    mean TV, an ended dialogue counting 0), its 95 % interval half-width ``eps_error`` (sampling of histories),
    ``alive`` (the share of dialogues with a t-th user turn) and ``by_category`` (ε_t split by what the replies do);
    ``total`` Σ_t ε_t with its error and ``per_dialogue`` each dialogue's own sum (two simulators measured on the same
    dialogues compare paired); ``by_context`` Σ_t ε_t split by what the user replies to
    (:func:`~calirl_lite.users.reply_context`: its opening, a right or a wrong answer, a question …); ``left_out`` the
    most the TV at any one history can be off by because of branches not enumerated (half the real users' mass left
    out, plus a scripted simulator's own; in practice ~1e-5).

    A scripted simulator's mass outside the real users' replies is split by category exactly; a language model's is
    one category (:data:`OTHER`), unless ``samples`` > 0: then that many replies sampled from it at each history split
    that mass by the categories of the sampled replies outside the real users' (an estimate)."""
    return exact_gaps(sim, real, {"": dialogues}, max_turns, samples, seed)[""]


def exact_gaps(sim: Replies, real: UserPersona, sets: dict[Any, Sequence[Dialogue]], max_turns: int | None = None, samples: int = 0,
               seed: int = 0) -> dict[Any, dict[str, Any]]:
    """:func:`exact_gap` of several sets of dialogues at once (``{key: dialogues}`` → ``{key: gap}``), each history
    measured once however many sets hold it — the same dialogues cut at several horizons cost what the longest does."""
    if not sets or not all(sets.values()):
        raise ValueError("no dialogues to measure the gap on")
    task = get_task(next(iter(sets.values()))[0].task)
    if task.name not in TASKS:
        raise ValueError(f"the exact gap needs the toy world's scripted users; task {task.name!r} is not one of {', '.join(TASKS)}")
    turns = {key: max_turns if max_turns is not None else max(len(user_turns(d)) for d in ds) for key, ds in sets.items()}
    items, reals, where, worst = _histories(task, real, sets, turns)
    if isinstance(sim, ScriptedReplies):
        probs, outside, sim_left = _scripted_side(sim, task, items, reals)
    else:
        probs = sim.probabilities(task, items)
        outside = [(max(0.0, 1.0 - sum(ps)), split) for ps, split in zip(probs, _lm_outside(sim, task, items, reals, samples, seed))]
        sim_left = 0.0
    per_history = []  # (TV, {category: its TV mass}, context) at each distinct history
    for (goal, history, ys), dist, ps, (mass, split) in zip(items, reals, probs, outside):
        cats: dict[str, float] = defaultdict(float)
        for y, p in zip(ys, ps):
            cats[reply_category(task, goal, history, y)] += 0.5 * abs(p - dist[y])
        for c, share in split.items():
            cats[c] += 0.5 * mass * share
        per_history.append((sum(0.5 * abs(p - dist[y]) for y, p in zip(ys, ps)) + 0.5 * mass, cats, reply_context(task, goal, list(history))))
    out = {}
    for key, dialogues in sets.items():
        tv = np.zeros((len(dialogues), turns[key]))
        by_cat: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(tv.shape))
        by_ctx: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(tv.shape))
        for i, t, row in where[key]:
            tv[i, t], cats, context = per_history[row]
            by_ctx[context][i, t] += tv[i, t]
            for c, v in cats.items():
                by_cat[c][i, t] += v
        out[key] = {**_summary(sim.name, dialogues, tv, by_cat, 0.5 * worst + sim_left),
                    "by_context": {c: float(v.sum(1).mean()) for c, v in sorted(by_ctx.items(), key=lambda kv: -kv[1].sum())}}
    return out


def _histories(task: Task, real: UserPersona, sets: dict[Any, Sequence[Dialogue]], turns: dict[Any, int]) -> tuple[list, list, dict, float]:
    """The distinct (goal, history) pairs of the sets' user turns, with the real users' enumerated reply distribution at
    each: ``(items: [(goal, history, the real replies)], their distributions, where: {key: [(dialogue, turn, item)]},
    the largest real mass left out)``."""
    index: dict[str, int] = {}
    items, reals, worst = [], [], 0.0
    where: dict[Any, list[tuple[int, int, int]]] = {}
    for key, dialogues in sets.items():
        where[key] = []
        for i, d in enumerate(dialogues):
            for t, history, _ in user_turns(d)[: turns[key]]:
                h = repr((sorted(d.goal.items()), [(m.role, m.text) for m in history]))
                if h not in index:
                    dist, left = reply_distribution(task, d.goal, real, history)
                    worst = max(worst, left)
                    index[h] = len(items)
                    items.append((d.goal, history, sorted(dist)))
                    reals.append(dist)
                where[key].append((i, t, index[h]))
    return items, reals, where, worst


def _scripted_side(sim: ScriptedReplies, task: Task, items: list[tuple[dict[str, Any], Sequence[Message], list[str]]],
                   reals: list[dict[str, float]]) -> tuple[list[list[float]], list[tuple[float, dict[str, float]]], float]:
    """A scripted simulator's side, enumerated once per history: its probability of each real reply, its (enumerated)
    mass outside them split exactly by category, and the largest mass its enumeration left out."""
    probs, outside, left_out = [], [], 0.0
    for (goal, history, ys), real in zip(items, reals):
        dist, left = reply_distribution(task, goal, sim.persona, history)
        left_out = max(left_out, left)
        probs.append([dist.get(y, 0.0) for y in ys])
        split: dict[str, float] = defaultdict(float)
        for y, p in dist.items():
            if y not in real:
                split[reply_category(task, goal, history, y)] += p
        mass = sum(split.values())
        outside.append((mass, {c: v / mass for c, v in split.items()} if mass > 0 else {}))
    return probs, outside, left_out


def _lm_outside(sim: Replies, task: Task, items: list[tuple[dict[str, Any], Sequence[Message], list[str]]], reals: list[dict[str, float]],
                samples: int, seed: int) -> list[dict[str, float]]:
    """Per history: how a language model's mass outside the real users' replies splits by category (shares summing to
    1), estimated from ``samples`` replies sampled there; all :data:`OTHER` without samples."""
    if not (samples and isinstance(sim, LMReplies)):
        return [{OTHER: 1.0} for _ in items]
    out = []
    drawn = sim.sample(task, [(g, h) for g, h, _ in items], samples, seed)
    for (goal, history, _), real, ys in zip(items, reals, drawn):
        off = [reply_category(task, goal, history, y) for y in ys if y not in real]
        out.append({c: off.count(c) / len(off) for c in set(off)} if off else {OTHER: 1.0})
    return out


def _summary(name: str, dialogues: Sequence[Dialogue], tv: np.ndarray, cats: dict[str, np.ndarray], left_out: float) -> dict[str, Any]:
    turns = tv.shape[1]
    alive = np.array([[t < len(user_turns(d)) for t in range(turns)] for d in dialogues], float)
    n = len(dialogues)
    error = 1.96 * tv.std(0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(turns)
    totals = tv.sum(1)
    return {"simulator": name, "dialogues": n, "eps": tv.mean(0).tolist(), "eps_error": error.tolist(), "alive": alive.mean(0).tolist(),
            "by_category": {c: v.mean(0).tolist() for c, v in sorted(cats.items(), key=lambda kv: -kv[1].sum())},
            "total": float(totals.mean()), "total_error": float(1.96 * totals.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0, "left_out": left_out,
            "per_dialogue": totals.tolist()}


def format_exact_gap(gap: dict[str, Any], top: int = 5) -> str:
    """ε_t per turn with its interval, Σ_t ε_t, and the categories that carry most of it."""
    eps = ", ".join(f"{e:.3f}±{err:.3f}" for e, err in zip(gap["eps"], gap["eps_error"]))
    total = sum(gap["eps"]) or 1.0
    cats = sorted(((sum(v), c) for c, v in gap["by_category"].items()), reverse=True)[:top]
    parts = "; ".join(f"{c} {s:.3f} ({100 * s / total:.0f}%)" for s, c in cats if s > 0)
    return f"{gap['simulator']}: Σε {gap['total']:.3f} ± {gap['total_error']:.3f}; per turn {eps}\n  where it differs: {parts}"
