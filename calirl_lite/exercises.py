"""Checked exercises for the notebooks: you write a small function, ``check(name, your_function)`` says whether it
is right.

Every exercise makes you *do* one of the paper's ideas — the simulation lemma's two bounds, a TV distance between
user models, a behaviour statistic read off dialogues, what a simulator's SFT learns from, GRPO's group-relative
advantage and why the user's tokens get no gradient, how a claim is judged, reading a reward curve for hacking,
designing a simulator that teaches a policy to fail. The checker tries your function on cases it generates (or on
the kit's own dialogues) and compares it with the kit's answer.

A check never raises: an unfinished exercise (``raise NotImplementedError``) reports "not done yet" and a wrong one
a hint, so *Run All* still runs the notebook to the end. A right one reports your progress in that notebook.
Solutions live in the repository's ``solutions/`` folder, which the notebooks never import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .grpo import group_advantages
from .lab import hacking
from .results import Claim, judge
from .shift import compounding_bound, final_reward_bound
from .stats import PER_TURN_STATS, behaviour_stats
from .task_family import AssistantPersona, ScriptedAssistant, ScriptedUser
from .toy_tasks import CORPUS_ASSISTANTS, TASKS
from .users import persona_from_spec
from .world import scripted_dialogue


@dataclass(frozen=True)
class Exercise:
    """One checked exercise: where it is, what it asks, how it is checked."""

    name: str
    notebook: str
    """the notebook's number ('01' … '06')"""
    title: str
    hint: str
    """the second level of help: the formula or the procedure (shown only when asked for: :func:`hint`)"""
    run: Callable[[Any], str | None]
    """tries the student's answer: None when right, else what went wrong (it may raise; :func:`check` catches it)"""
    nudge: str = ""
    """the first level of help, printed with every "not yet": which idea to use, not how"""
    reference: tuple[str, ...] = ()
    """the kit's functions that compute the answer: no notebook calls them before the exercise (tests/test_exercises.py)"""


def _close(got: Any, want: Any, tol: float = 1e-6) -> bool:
    try:
        return bool(np.allclose(np.asarray(got, float), np.asarray(want, float), rtol=tol, atol=tol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _same_list(got: Any, want: list) -> bool:
    return np.size(got) == len(want) and list(np.asarray(got).ravel()) == want


def _cases(fn: Callable, seed: int, n: int, case: Callable, tol: float = 1e-9, same: Callable | None = None) -> str | None:
    """``fn`` on ``n`` random cases: ``case(rng)`` gives (arguments, the right answer, the case in words); answers are
    compared as numbers within ``tol``, or by ``same(got, want)``."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        args, want, what = case(rng)
        got = fn(*args)
        if not (same(got, want) if same else _close(got, want, tol)):
            shown = want if same else np.round(np.asarray(want, float), 6).tolist()
            return f"{what}: the answer is {shown!r}, yours {got!r}."
    return None


# ----------------------------------------------------------------------------- 01 · compounding shift


def _bound(fn: Callable, reference: Callable, seed: int, largest_error: float) -> str | None:
    """``fn(errors, r_max)`` against one of :mod:`calirl_lite.shift`'s bounds on random per-step errors."""
    def case(rng: np.random.Generator) -> tuple:
        errors, r_max = rng.uniform(0, largest_error, size=int(rng.integers(1, 40))).tolist(), float(rng.uniform(0, 5))
        return (errors, r_max), reference(errors, r_max=r_max), f"H = {len(errors)}, r_max = {r_max:.3f}, Σ ε = {sum(errors):.4f}"
    return _cases(fn, seed, 50, case)


def _compounding_bound(fn: Callable) -> str | None:
    return _bound(fn, compounding_bound, 0, 0.2)


def _final_reward_bound(fn: Callable) -> str | None:
    return _bound(fn, final_reward_bound, 1, 0.08)


def _tv_distance(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        n = int(rng.integers(2, 8))
        p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
        return (p.tolist(), q.tolist()), 0.5 * float(np.abs(p - q).sum()), f"p = {np.round(p, 3).tolist()}, q = {np.round(q, 3).tolist()}"
    return _cases(fn, 2, 60, case)


# ----------------------------------------------------------------------------- 02 · users and simulators


def _per_turn_gap(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        sim, real = ({s: float(rng.uniform()) for s in PER_TURN_STATS} for _ in range(2))
        if rng.random() < 0.3:
            sim[PER_TURN_STATS[int(rng.integers(len(PER_TURN_STATS)))]] = float("nan")  # a behaviour the dialogues never met
        want = float(np.mean([np.nan_to_num(abs(sim[s] - real[s])) for s in PER_TURN_STATS]))
        return (dict(sim), dict(real)), want, f"simulator {({s: round(v, 3) for s, v in sim.items()})}, real {({s: round(v, 3) for s, v in real.items()})}"
    return _cases(fn, 3, 30, case)


def scripted_dialogues(spec: str, assistant: Any, n: int, seed: int, tasks: tuple[str, ...] = ("arith-chat", "docedit-chat")) -> list:
    """``n`` dialogues of two scripted people, no model: the users of ``spec`` (a user spec) and a scripted
    ``assistant`` (an :class:`~calirl_lite.task_family.AssistantPersona`), taking turns over ``tasks``."""

    rng, persona, out = np.random.default_rng(seed), persona_from_spec(spec), []
    for i in range(n):
        task = TASKS[tasks[i % len(tasks)]]
        goal = task.sample_goal(rng)
        out.append(scripted_dialogue(task, goal, ScriptedUser(task, goal, persona, rng), ScriptedAssistant(task, assistant, rng), 14, f"ex-{i}"))
    return out


def _accept_wrong_rate(fn: Callable) -> str | None:
    dialogues = scripted_dialogues("sycophantic:0.5,over-forthcoming:0.3", CORPUS_ASSISTANTS["sloppy"], 120, 4)
    want, got = behaviour_stats(dialogues)["accept_wrong_rate"], fn(dialogues)
    if not _close(got, want, 1e-9):
        return f"on the {len(dialogues)} checking dialogues the rate is {want:.4f}, yours {got!r}."
    return None


# ----------------------------------------------------------------------------- 03 · calibration


def _simulator_loss_mask(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        turns = [("user" if k % 2 == 0 else "assistant", int(rng.integers(1, 6))) for k in range(int(rng.integers(1, 8)))]
        segments = [("system", int(rng.integers(1, 6))), *turns]
        return (list(segments),), [int(role == "user") for role, count in segments for _ in range(count)], f"segments {segments}"
    return _cases(fn, 5, 30, case, same=_same_list)


def _heldout_nll(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        n = int(rng.integers(3, 30))
        logps, mask = (-rng.exponential(2.0, size=n)).tolist(), rng.integers(0, 2, size=n).tolist()
        mask[int(rng.integers(n))] = 1
        return (list(logps), list(mask)), -sum(lp for lp, m in zip(logps, mask) if m) / sum(mask), f"log-probs {np.round(logps, 2).tolist()}, mask {mask}"
    return _cases(fn, 6, 30, case)


# ----------------------------------------------------------------------------- 04 · GRPO


def _group_advantages(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        g = int(rng.integers(2, 9))
        rewards = rng.choice([0.0, 0.5, 1.0], size=g * int(rng.integers(1, 5))).tolist()
        return (list(rewards), g), group_advantages(rewards, g).numpy(), f"rewards {rewards} in groups of {g}"
    return _cases(fn, 7, 30, case, tol=1e-5)


def _masked_loss(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        b, t = int(rng.integers(1, 5)), int(rng.integers(2, 10))
        losses, mask = rng.normal(size=(b, t)), rng.integers(0, 2, size=(b, t))
        mask[0, 0] = 1
        return (losses.tolist(), mask.tolist()), float((losses * mask).sum() / mask.sum()), f"per-token losses {b}×{t}, env_mask {mask.tolist()}"
    return _cases(fn, 8, 30, case)


# ----------------------------------------------------------------------------- 05 · evaluation


def _claim_verdict(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        op, low = str(rng.choice([">", "<"])), float(rng.uniform(-0.2, 0.15))
        high, per_seed = low + float(rng.uniform(0.01, 0.2)), rng.uniform(-0.1, 0.1, size=int(rng.integers(1, 6))).tolist()
        holds = judge(Claim("a", op, "b"), {"mean": (low + high) / 2, "low": low, "high": high, "per_seed": dict(enumerate(per_seed))})["holds"]
        return (op, low, high, list(per_seed)), holds, f"'left {op} right', interval [{low:+.3f}, {high:+.3f}], seed differences {np.round(per_seed, 3).tolist()}"
    return _cases(fn, 9, 60, case, same=lambda got, want: isinstance(got, (bool, np.bool_)) and bool(got) == want)


def _most_overrated(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        rows = [{"method": m, "simulator": round(float(rng.uniform()), 3), "real": round(float(rng.uniform()), 3)} for m in ("static", "naive", "calibrated", "oracle")]
        return ([dict(r) for r in rows],), max(rows, key=lambda r: r["simulator"] - r["real"])["method"], f"rows {rows}"
    return _cases(fn, 10, 30, case, same=lambda got, want: got == want)


# ----------------------------------------------------------------------------- 06 · the mismatch lab


def _reward_hacked(fn: Callable) -> str | None:
    def case(rng: np.random.Generator) -> tuple:
        steps = int(rng.integers(6, 31))
        train = np.clip(0.5 + rng.uniform(-0.02, 0.02) * np.arange(steps) + rng.normal(0, 0.05, size=steps), 0, 1).round(3).tolist()
        real = np.clip(0.5 + rng.uniform(-0.3, 0.3) * np.linspace(0, 1, 4) + rng.normal(0, 0.02, size=4), 0, 1).round(3).tolist()
        hacked = hacking({0: {"train": [[s + 1, r] for s, r in enumerate(train)], "real": [[s, r] for s, r in enumerate(real)]}})["hacked"]
        return (list(train), list(real)), hacked, f"training rewards {train}, real scores {real}"
    return _cases(fn, 11, 40, case, same=lambda got, want: bool(got) == want)


def scripted_scores(spec: str, n_goals: int = 300, seed: int = 12) -> dict[str, float]:
    """Mean arith-chat accuracy of a careful scripted assistant (always asks first) and a hasty one (always answers
    at once) with the scripted users of ``spec`` (:func:`calirl_lite.users.persona_from_spec`) — no model, so it is
    exact and fast: which way of talking pays with these users."""

    return {style: float(np.mean([d.scores["accuracy"] for d in scripted_dialogues(spec, AssistantPersona(style, p_ask=p_ask, p_error=0.0), n_goals, seed,
                                                                                       ("arith-chat",))]))
            for style, p_ask in (("careful", 1.0), ("hasty", 0.0))}


def _failing_simulator(answer: Any) -> str | None:
    spec = answer() if callable(answer) else answer
    if not isinstance(spec, str):
        return f"the answer is a user spec, a string like 'p_accept_wrong=0.8', not {spec!r}."
    sim, real = scripted_scores(spec), scripted_scores("")
    if not sim["hasty"] > sim["careful"]:
        return (f"with your simulator a careful assistant (asks first) scores {sim['careful']:.3f} and a hasty one {sim['hasty']:.3f}: "
                "asking still pays, so a policy trained against it keeps asking (with the real users: "
                f"{real['careful']:.3f} and {real['hasty']:.3f}).")
    return None


# ----------------------------------------------------------------------------- the registry

EXERCISES: dict[str, Exercise] = {e.name: e for e in (
    Exercise("compounding-bound", "01", "the compounding bound", "the error at step i (counting from 0) spoils the H − i steps from there on: "
             "R_max · Σ_i (H − i) · ε_i.", _compounding_bound,
             nudge="an error early in the dialogue is paid again at every step after it: weigh each ε_i by the steps it spoils.", reference=('compounding_bound',)),
    Exercise("final-reward-bound", "01", "the bound for one final reward", "with one reward at the end, an error at step i moves the final "
             "distribution once: R_max · Σ_i ε_i, and a TV is never above 1.", _final_reward_bound,
             nudge="with one reward, at the end, each step's error can move that reward only once.", reference=('final_reward_bound',)),
    Exercise("tv-distance", "01", "total-variation distance", "TV(p, q) = ½ Σ_x |p(x) − q(x)|.", _tv_distance,
             nudge="compare the two distributions outcome by outcome; every difference is counted twice (once as too much, once as too little).", reference=('behaviour_tv',)),
    Exercise("per-turn-gap", "02", "the four-rate summary of a gap between two users", "the mean over the four per-turn behaviours of |sim − real|; a "
             "behaviour never met (NaN) counts as 0 (np.nan_to_num).", _per_turn_gap,
             nudge="compare the two users behaviour by behaviour, then summarise; decide what a behaviour never met should count.", reference=('proxy_gap', 'behaviour_tv')),
    Exercise("accept-wrong-rate", "02", "a behaviour statistic read off dialogues", "for each user message whose previous assistant turn is a "
             "wrong answer (task.parse_assistant, task.answer_is_right(d.goal, intent)), count it accepted when it holds [[TERMINATE CHAT]] "
             "and no rejection (any of task.phrases['reject']); the rate is accepted / all such messages.", _accept_wrong_rate,
             nudge="only the user messages that reply to a wrong answer count: find those first, then which of them accept it.", reference=('behaviour_stats',)),
    Exercise("simulator-loss-mask", "03", "what a simulator's SFT learns from", "the simulator learns to write the user's turns, so the loss "
             "mask is 1 on every token of a 'user' segment and 0 on the system prompt and the assistant's turns — the policy's env_mask "
             "turned around.", _simulator_loss_mask,
             nudge="which tokens should the simulator learn to write? The policy's env_mask answers the opposite question."),
    Exercise("heldout-nll", "03", "the NLL of held-out user turns", "the mean of −log p over the tokens the mask marks (the user's), "
             "not over all tokens.", _heldout_nll,
             nudge="average over the tokens the simulator is meant to predict, and only over those.", reference=('user_nll',)),
    Exercise("group-advantages", "04", "GRPO's group-relative advantage", "split the rewards into consecutive groups of group_size; "
             "A = (r − group mean) / (group std + 1e-4), with the unbiased std (ddof = 1), as TRL.", _group_advantages,
             nudge="each reward is compared with the other samples of its own prompt (its group), and scaled by how much they spread.", reference=('group_advantages',)),
    Exercise("masked-loss", "04", "why the user's tokens get no gradient", "multiply each token's loss by env_mask (0 on the user's "
             "tokens) and divide by the number of policy tokens in the whole batch (TRL's 'bnpo').", _masked_loss,
             nudge="tokens the policy did not write must not move it; then decide what the loss is averaged over.", reference=('grpo_loss',)),
    Exercise("claim-verdict", "05", "judging a claim", "'>' holds when the interval's low end is above 0 and at least two thirds of the "
             "seeds' differences are positive ('<': high end below 0, negative differences).", _claim_verdict,
             nudge="a claim needs two things: an interval on the claimed side of 0, and most seeds pointing the same way.", reference=('judge',)),
    Exercise("most-overrated", "05", "which policy its simulator overrates", "the method with the largest simulator score minus real "
             "score.", _most_overrated,
             nudge="overrated: its training simulator says more than the real users do."),
    Exercise("reward-hacked", "06", "reading a reward curve for hacking", "hacked when the training reward's last third averages above "
             "its first third while the real score's last point is below its first.", _reward_hacked,
             nudge="hacking: what the simulator pays goes up while what the real users get goes down — compare early with late.", reference=('hacking',)),
    Exercise("failing-simulator", "06", "a simulator that teaches a policy to fail", "make guessing pay more than asking with your "
             "simulator (calirl_lite.exercises.scripted_scores tells you both); the real users reward asking.", _failing_simulator,
             nudge="a policy learns whatever pays with its training user: make guessing pay more than asking."),
)}
"""Every checked exercise, by name, in notebook order."""

_DONE: set[str] = set()


def check(name: str, answer: Any) -> bool:
    """Check your ``answer`` (usually a function) to exercise ``name``; prints the verdict and returns True when
    right. Never raises. A "not yet" comes with a nudge — which idea to use; the formula itself only when you ask
    for it (:func:`hint`)."""
    exercise = EXERCISES.get(name)
    if exercise is None:
        print(f"There is no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}.")
        return False
    more = f" Nudge: {exercise.nudge} (Stuck? hint({name!r}) shows the formula.)"
    try:
        problem = exercise.run(answer)
    except NotImplementedError:
        print(f"◻ {exercise.title}: not done yet — write your answer, then run this cell again.{more}")
        return False
    except Exception as e:  # noqa: BLE001 - a student's error becomes a nudge, and Run All goes on
        print(f"✗ {exercise.title}: your answer raised {type(e).__name__}: {e}.{more}")
        return False
    if problem is not None:
        print(f"✗ {exercise.title}: not yet — {problem}{more}")
        return False
    _DONE.add(name)
    mine = [n for n, e in EXERCISES.items() if e.notebook == exercise.notebook]
    print(f"✓ {exercise.title}: right. Notebook {exercise.notebook}: {sum(n in _DONE for n in mine)} of {len(mine)} exercises done.")
    return True


def hint(name: str) -> str:
    """The second level of help for exercise ``name``: the formula or procedure (printed, and returned)."""
    exercise = EXERCISES.get(name)
    text = f"There is no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}." if exercise is None else f"{exercise.title}: {exercise.hint}"
    print(text)
    return text
