"""Compounding context distribution shift in finite-horizon tabular MDPs (notebook 01).

A dialogue is a finite-horizon MDP: the state is the history, the policy writes the
assistant's turns, the user's reply is the transition. This module makes the paper's
theory exact on small tabular MDPs, where every quantity is a sum we can compute:

* :func:`state_distributions` pushes the start distribution forward through a
  time-indexed policy (d_{t+1}(s') = Σ_{s,a} d_t(s) π_t(a|s) P(s'|s,a));
  :func:`value` is then J(π) = Σ_t Σ_{s,a} d_t(s) π_t(a|s) R(s,a), exactly.
* :func:`optimal_policy` is backward induction.
* :func:`compounding_bound` is the paper's bound R_max · Σ_i (H − i) · ε_i.
* Learners: a policy is only as good as the contexts it was trained on. At a state
  it saw in training it copies its target with probability 1 − ε; at a state it never
  saw it falls back on a default action. :func:`static_learner` is trained on the
  expert's (logged) state distribution, :func:`interactive_learner` on its own
  (DAgger-style, on-policy), and a learner trained interactively inside a simulator
  is :func:`interactive_learner` run on the simulator's MDP.
* :func:`dialogue_chain` is the dialogue MDP the notebook studies; :func:`random_mdp`
  and :func:`random_simulator` give the random MDPs on which the bounds are checked.

Monte Carlo (:func:`monte_carlo_value`) is only here to show how noisy sampling is
next to the exact sums.

Policies are arrays of shape (H, S, A): ``pi[t, s, a]`` = π_t(a | s).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .io import atomic_write_json, json_safe
from .plots import close_figure, plot_bound_scatter, plot_shift
from .settings import Settings

ATOL = 1e-9
"""Tolerance for 'sums to one' and for comparing exact values."""


# --------------------------------------------------------------------------- validation


def check_horizon(H: Any, name: str = "H") -> int:
    """Return ``H`` as an int, or raise naming ``name`` if it is not an integer ≥ 1."""
    if isinstance(H, bool) or not isinstance(H, (int, np.integer)) or H < 1:
        raise ValueError(f"{name} must be an integer ≥ 1 (a horizon counts steps), got {H!r}")
    return int(H)


def check_probability(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a float array, or raise naming ``name`` if any entry is outside [0, 1]."""
    arr = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        bad = arr[~(np.isfinite(arr) & (arr >= 0) & (arr <= 1))].ravel()[0]
        raise ValueError(f"{name} must lie in [0, 1] (it is a probability / total-variation distance), got {float(bad)!r}")
    return arr


def check_r_max(r_max: Any, name: str = "r_max") -> float:
    """Return the reward bound as a float, or raise naming ``name`` if it is negative or not finite."""
    value = float(r_max)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} is the largest reward and must be a finite number ≥ 0, got {r_max!r}")
    return value


# --------------------------------------------------------------------------- the MDP


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with stationary transitions; the horizon comes with the policy.

    Rewards lie in [0, ``r_max``]: the bound below is in units of that range.
    """

    P: np.ndarray
    """transitions, shape (S, A, S): ``P[s, a, s2]`` = P(s2 | s, a); every row sums to 1"""
    R: np.ndarray
    """rewards, shape (S, A), each in [0, r_max]"""
    mu: np.ndarray
    """start-state distribution, shape (S,)"""
    r_max: float | None = None
    """largest possible reward (default: the largest entry of R)"""
    state_names: tuple[str, ...] = ()
    """optional names of the states, for printing"""
    action_names: tuple[str, ...] = ()
    """optional names of the actions, for printing"""

    def __post_init__(self) -> None:
        P = np.asarray(self.P, dtype=float)
        R = np.asarray(self.R, dtype=float)
        mu = np.asarray(self.mu, dtype=float)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
        S, A, _ = P.shape
        if R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)}, got {R.shape}")
        if mu.shape != (S,):
            raise ValueError(f"mu must have shape (S,) = {(S,)}, got {mu.shape}")
        if not np.all(np.isfinite(P)) or np.any(P < 0):
            s, a, s2 = np.argwhere(~np.isfinite(P) | (P < 0))[0]
            raise ValueError(f"P[{s}, {a}, {s2}] = {P[s, a, s2]!r}: transition probabilities must be ≥ 0")
        sums = P.sum(axis=2)
        if np.any(np.abs(sums - 1) > 1e-8):
            s, a = np.argwhere(np.abs(sums - 1) > 1e-8)[0]
            raise ValueError(f"P[{s}, {a}, :] sums to {sums[s, a]:.6g}, not 1: each row of the transition matrix must sum to 1")
        if not np.all(np.isfinite(mu)) or np.any(mu < 0) or abs(mu.sum() - 1) > 1e-8:
            raise ValueError(f"mu must be a probability vector (entries ≥ 0 summing to 1), sums to {mu.sum():.6g}")
        r_max = float(R.max()) if self.r_max is None else check_r_max(self.r_max)
        if not np.all(np.isfinite(R)) or np.any(R < 0) or np.any(R > r_max + ATOL):
            s, a = np.argwhere(~np.isfinite(R) | (R < 0) | (R > r_max + ATOL))[0]
            raise ValueError(f"R[{s}, {a}] = {R[s, a]!r} is outside [0, r_max={r_max}]")
        for name, names, n in (("state_names", self.state_names, S), ("action_names", self.action_names, A)):
            if names and len(names) != n:
                raise ValueError(f"{name} has {len(names)} names for {n} entries")
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "r_max", max(r_max, 0.0))

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    def describe(self) -> str:
        """A readable table of the non-zero transitions and rewards."""
        sn = self.state_names or tuple(f"s{i}" for i in range(self.n_states))
        an = self.action_names or tuple(f"a{i}" for i in range(self.n_actions))
        lines = []
        for s in range(self.n_states):
            for a in range(self.n_actions):
                nxt = ", ".join(f"{sn[s2]} {p:.3g}" for s2, p in enumerate(self.P[s, a]) if p > 0)
                lines.append(f"{sn[s]:>28} | {an[a]:<12} | r={self.R[s, a]:.3g} | → {nxt}")
        return "\n".join(lines)


def check_policy(mdp: TabularMDP, pi: np.ndarray, name: str = "pi") -> np.ndarray:
    """Validate a time-indexed policy of shape (H, S, A) for ``mdp``."""
    pi = np.asarray(pi, dtype=float)
    if pi.ndim != 3 or pi.shape[1:] != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"{name} must have shape (H, S, A) with S={mdp.n_states}, A={mdp.n_actions}; got {pi.shape}")
    check_horizon(pi.shape[0], f"{name}.shape[0] (the horizon H)")
    if np.any(pi < -ATOL) or np.any(np.abs(pi.sum(axis=2) - 1) > 1e-8):
        t, s = np.argwhere((np.abs(pi.sum(axis=2) - 1) > 1e-8) | np.any(pi < -ATOL, axis=2))[0]
        raise ValueError(f"{name}[{t}, {s}, :] is not a probability vector over actions")
    return pi


# --------------------------------------------------------------------------- exact evaluation


def state_distributions(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """d_t(s) for t = 0..H−1: the probability of being in s at step t under π. Shape (H, S)."""
    pi = check_policy(mdp, pi)
    H = pi.shape[0]
    d = np.zeros((H, mdp.n_states))
    d[0] = mdp.mu
    for t in range(H - 1):
        rho = d[t][:, None] * pi[t]  # ρ_t(s, a) = d_t(s) π_t(a|s)
        d[t + 1] = np.einsum("sa,sat->t", rho, mdp.P)
    return d


def value(mdp: TabularMDP, pi: np.ndarray) -> float:
    """J(π) = Σ_t Σ_{s,a} d_t(s) π_t(a|s) R(s, a): the exact expected return over H steps."""
    d = state_distributions(mdp, pi)
    return float(np.einsum("ts,tsa,sa->", d, pi, mdp.R))


def optimal_policy(mdp: TabularMDP, H: int) -> np.ndarray:
    """Backward induction: a deterministic optimal policy for horizon H (ties → lowest action)."""
    H = check_horizon(H)
    pi = np.zeros((H, mdp.n_states, mdp.n_actions))
    v_next = np.zeros(mdp.n_states)
    for t in reversed(range(H)):
        q = mdp.R + mdp.P @ v_next  # Q_t(s, a) = R(s, a) + Σ_s' P(s'|s,a) V_{t+1}(s')
        best = np.argmax(q > q.max(axis=1, keepdims=True) - 1e-12, axis=1)
        pi[t, np.arange(mdp.n_states), best] = 1.0
        v_next = q[np.arange(mdp.n_states), best]
    return pi


def monte_carlo_value(mdp: TabularMDP, pi: np.ndarray, n_episodes: int, rng: np.random.Generator) -> tuple[float, float]:
    """Estimate J(π) from ``n_episodes`` sampled episodes: (mean return, its standard error).

    Only here to show sampling noise next to the exact :func:`value`.
    """
    pi = check_policy(mdp, pi)
    if n_episodes < 2:
        raise ValueError(f"n_episodes must be ≥ 2 to estimate a standard error, got {n_episodes}")
    H, S, A = pi.shape
    states = rng.choice(S, size=n_episodes, p=mdp.mu)
    returns = np.zeros(n_episodes)
    for t in range(H):
        u = rng.random(n_episodes)
        actions = (u[:, None] > np.cumsum(pi[t, states], axis=1)).sum(axis=1).clip(max=A - 1)
        returns += mdp.R[states, actions]
        u = rng.random(n_episodes)
        states = (u[:, None] > np.cumsum(mdp.P[states, actions], axis=1)).sum(axis=1).clip(max=S - 1)
    return float(returns.mean()), float(returns.std(ddof=1) / np.sqrt(n_episodes))


# --------------------------------------------------------------------------- the bound


def _per_step(errors: float | Sequence[float], H: int | None, name: str) -> np.ndarray:
    """ε_0..ε_{H−1} from one ε and ``H``, or from the list itself (checked: probabilities, a horizon ≥ 1)."""
    errs = check_probability(errors, name)
    if errs.ndim == 0:
        if H is None:
            raise ValueError(f"H is required when {name} is a single number")
        errs = np.full(check_horizon(H), float(errs))
    elif H is not None and check_horizon(H) != errs.shape[0]:
        raise ValueError(f"{name} has {errs.shape[0]} per-step values but H = {H}")
    check_horizon(errs.shape[0], f"len({name})")
    return errs


def compounding_bound(errors: float | Sequence[float], H: int | None = None, r_max: float = 1.0, name: str = "eps") -> float:
    """The paper's bound R_max · Σ_{i=0}^{H−1} (H − i) · ε_i — for a reward at every step.

    ``errors`` is either one ε used at every step (then ``H`` is required) or the list
    ε_0..ε_{H−1}. An error made at step i can spoil the reward of step i and of every
    step after it, H − i steps in all; with a constant ε the sum is ε·H(H+1)/2 = O(H²ε).
    ``name`` is used in error messages (``eps`` for the policy, ``delta`` for a simulator).
    """
    errs = _per_step(errors, H, name)
    steps_left = errs.shape[0] - np.arange(errs.shape[0])  # H − i for i = 0..H−1
    return float(check_r_max(r_max) * np.sum(steps_left * errs))


def final_reward_bound(errors: float | Sequence[float], H: int | None = None, r_max: float = 1.0, name: str = "eps") -> float:
    """The bound for one reward in [0, R_max] at the end (the toy world's tasks): R_max · min(1, Σ_i ε_i).

    The simulation lemma: |J − J′| ≤ R_max · TV(final-turn distributions), and an error at step i moves the final
    distribution by at most ε_i — once, not once per later step — so the TV is at most Σ_i ε_i (and never above 1).
    It grows like H, not H²: the O(H²) of :func:`compounding_bound` needs a reward at every step (or per-step costs
    that a policy's own mistakes keep paying). Same arguments as :func:`compounding_bound`.
    """
    return float(check_r_max(r_max) * min(1.0, float(np.sum(_per_step(errors, H, name)))))


def tv(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ½‖p − q‖₁ along the last axis."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


def policy_errors(mdp: TabularMDP, reference: np.ndarray, other: np.ndarray, on: np.ndarray) -> np.ndarray:
    """ε_i = E_{s ~ d_i^on} TV(reference_i(·|s), other_i(·|s)): per-step disagreement measured where ``on`` goes."""
    d = state_distributions(mdp, on)
    return np.clip(np.einsum("ts,ts->t", d, tv(reference, other)), 0.0, 1.0)


def model_errors(real: TabularMDP, sim: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """δ_i = E_{(s,a) ~ ρ_i^{π, real}} TV(P_real(·|s,a), P_sim(·|s,a)) for i = 0..H−1."""
    if real.P.shape != sim.P.shape:
        raise ValueError(f"simulator has shape {sim.P.shape}, the real MDP {real.P.shape}: they must share states and actions")
    d = state_distributions(real, pi)
    return np.clip(np.einsum("ts,tsa,sa->t", d, pi, tv(real.P, sim.P)), 0.0, 1.0)


# --------------------------------------------------------------------------- learners


def _imitate(target: np.ndarray, seen: np.ndarray, eps: float, default_action: int) -> np.ndarray:
    """Policy of a learner that copied ``target`` where ``seen`` [t, s] and knows nothing elsewhere.

    At a seen state it takes the target's action with probability 1 − ε and one of the
    other actions (uniformly) with probability ε; at an unseen state it plays ``default_action``.
    """
    H, S, A = target.shape
    if A == 1:
        wrong = np.zeros_like(target)
        eps = 0.0
    else:
        wrong = (1.0 - target) / (A - 1)  # uniform over the actions the target does not take
    learned = (1.0 - eps) * target + eps * wrong
    default = np.zeros((H, S, A))
    default[:, :, default_action] = 1.0
    return np.where(seen[:, :, None], learned, default)


def _check_learner_args(mdp: TabularMDP, target: np.ndarray, eps: float, default_action: int) -> tuple[np.ndarray, float]:
    target = check_policy(mdp, target, "target")
    if np.any((target > ATOL) & (target < 1 - ATOL)):
        raise ValueError("target must be a deterministic policy (one action with probability 1 at each state)")
    eps = float(check_probability(eps, "eps"))
    if not 0 <= default_action < mdp.n_actions:
        raise ValueError(f"default_action must be an action index in [0, {mdp.n_actions}), got {default_action}")
    return target, eps


def static_learner(mdp: TabularMDP, expert: np.ndarray, eps: float, default_action: int = 0) -> np.ndarray:
    """Static context training (behaviour cloning on logged dialogues).

    Trained on the expert's own state distribution d^{π*}: it errs with probability ε where
    the expert goes, and has never seen any state the expert does not reach.
    """
    expert, eps = _check_learner_args(mdp, expert, eps, default_action)
    seen = state_distributions(mdp, expert) > 0
    return _imitate(expert, seen, eps, default_action)


def interactive_learner(mdp: TabularMDP, target: np.ndarray, eps: float, default_action: int = 0) -> np.ndarray:
    """Interactive (on-policy, DAgger-style) training on the learner's *own* state distribution.

    The learner is trained wherever it goes itself in ``mdp``, so it errs with probability ε
    there too, but is never off its training distribution. Run on a simulator's MDP with the
    simulator's optimal policy as ``target``, this is a policy trained against the simulator.
    """
    target, eps = _check_learner_args(mdp, target, eps, default_action)
    H = target.shape[0]
    seen = np.zeros((H, mdp.n_states), dtype=bool)
    d = mdp.mu.copy()
    pi = np.zeros_like(target)
    for t in range(H):  # the states reached at step t depend only on the policy before t
        seen[t] = d > 0
        pi[t] = _imitate(target[t : t + 1], seen[t : t + 1], eps, default_action)[0]
        d = np.einsum("s,sa,sat->t", d, pi[t], mdp.P)
    return pi


# --------------------------------------------------------------------------- the three gaps


@dataclass
class GapResult:
    """A measured performance gap next to the paper's bound for it."""

    gap: float
    """measured J(reference) − J(learner), exact"""
    bound: float
    """R_max · Σ_i (H − i) · error_i with the per-step errors measured exactly"""
    errors: list[float] = field(default_factory=list)
    """the per-step errors ε_i (or δ_i) that went into the bound"""


def policy_shift_gaps(mdp: TabularMDP, H: int, eps: float, default_action: int = 0) -> dict[str, GapResult]:
    """Policy-induced shift: static vs interactive learners of the optimal policy, both with per-step error ε.

    The static learner's errors are measured on the expert's distribution (where it was
    trained), the interactive learner's on its own; each gap is bounded by the paper's bound
    with those errors (the telescoping argument works from either side).
    """
    expert = optimal_policy(mdp, H)
    j_expert = value(mdp, expert)
    static = static_learner(mdp, expert, eps, default_action)
    inter = interactive_learner(mdp, expert, eps, default_action)
    e_static = policy_errors(mdp, expert, static, on=expert)
    e_inter = policy_errors(mdp, expert, inter, on=inter)
    return {
        "static": GapResult(j_expert - value(mdp, static), compounding_bound(e_static, r_max=mdp.r_max), e_static.tolist()),
        "interactive": GapResult(j_expert - value(mdp, inter), compounding_bound(e_inter, r_max=mdp.r_max), e_inter.tolist()),
    }


def simulator_shift_gap(real: TabularMDP, sim: TabularMDP, H: int, default_action: int = 0) -> GapResult:
    """Simulator-induced shift: what a policy trained against ``sim`` loses against the real users.

    Two learners trained the same way (interactively, perfectly on what they see, ε = 0),
    one against the real MDP (the oracle) and one against the simulator; the gap is
    J_real(oracle-trained) − J_real(sim-trained). Because the sim-trained policy is optimal
    in the simulator, the gap is at most the simulation-lemma bound applied to each policy:
    R_max Σ_i (H − i)(δ_i^oracle + δ_i^sim), δ_i^π the per-step TV between the real and
    simulated user measured along π's real trajectories (reported as one list of sums).
    """
    if real.r_max != sim.r_max or not np.array_equal(real.R, sim.R):
        raise ValueError("the simulator must share the real MDP's rewards: only the user (transitions) may differ")
    oracle_pi = interactive_learner(real, optimal_policy(real, H), 0.0, default_action)
    sim_pi = interactive_learner(sim, optimal_policy(sim, H), 0.0, default_action)
    d_oracle, d_sim = model_errors(real, sim, oracle_pi), model_errors(real, sim, sim_pi)
    bound = compounding_bound(d_oracle, r_max=real.r_max, name="delta") + compounding_bound(d_sim, r_max=real.r_max, name="delta")
    gap = value(real, oracle_pi) - value(real, sim_pi)
    return GapResult(gap, bound, (d_oracle + d_sim).tolist())


# --------------------------------------------------------------------------- the dialogue chain


def dialogue_chain(offscript_rates: Sequence[float] = (), reward: float = 1.0) -> TabularMDP:
    """The dialogue MDP of notebook 01.

    In a dialogue the state is the whole history. What matters for the future here is only
    whether the history is still on the usual script, and if not, how it left it; so the
    histories of each turn are lumped into these classes (an exact lumping: histories in
    one class have the same future):

    * ``on script`` — the conversation goes as the logged dialogues go;
    * ``derailed by assistant`` — the assistant's own mistake confused the user; a good
      assistant never does this, so logged dialogues of a good assistant never contain it;
    * ``user off-script k`` — the *user* went off the script in way k (withheld a detail,
      corrected a slip, changed their mind …), with probability ``offscript_rates[k]`` per turn.

    Actions: ``script`` (the usual next turn, reward ``reward`` when on script), ``recover``
    (undo the assistant's own mistake) and ``repair k`` (the right reply to off-script
    behaviour k). Any other action on script derails the dialogue; off the script, only the
    right reply brings it back, anything else leaves it there. A repair is a good turn and
    earns ``reward``; recovering from one's own mistake earns nothing (the mistake cost a turn).
    A learner that knows nothing about a state falls back on ``script`` (action 0).
    """
    rates = check_probability(list(offscript_rates), "offscript_rates").reshape(-1)
    if rates.sum() > 1 + ATOL:
        raise ValueError(f"offscript_rates sum to {rates.sum():.6g} > 1")
    reward = check_r_max(reward, "reward")
    K = len(rates)
    S = A = 2 + K
    ON, DERAILED = 0, 1
    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    P[ON, 0, ON] = 1.0 - rates.sum()
    P[ON, 0, 2:] = rates
    R[ON, 0] = reward
    P[ON, 1:, DERAILED] = 1.0
    for s in range(1, S):  # off the script: action s (recover / repair) brings it back
        P[s, :, s] = 1.0
        P[s, s, s] = 0.0
        P[s, s, ON] = 1.0
        R[s, s] = reward if s >= 2 else 0.0  # a repair is a good turn; recovering only undoes a mistake
    states = ("on script", "derailed by assistant", *(f"user off-script {k + 1}" for k in range(K)))
    actions = ("script", "recover", *(f"repair {k + 1}" for k in range(K)))
    return TabularMDP(P, R, np.eye(S)[ON], r_max=reward, state_names=states, action_names=actions)


def chain_simulator(offscript_rates: Sequence[float], covered: int, reward: float = 1.0) -> TabularMDP:
    """A user simulator for :func:`dialogue_chain` that reproduces only the first ``covered`` off-script behaviours.

    The behaviours it lacks are replaced by going along with the script (the sycophantic
    simulator). Its per-turn total variation from the real user on script is
    δ = sum of the rates it misses; calibration covers more behaviours and so shrinks δ.
    """
    rates = np.asarray(offscript_rates, dtype=float).reshape(-1)
    if isinstance(covered, bool) or not isinstance(covered, (int, np.integer)) or not 0 <= covered <= len(rates):
        raise ValueError(f"covered must be an integer in [0, {len(rates)}], got {covered!r}")
    sim_rates = np.where(np.arange(len(rates)) < covered, rates, 0.0)
    return dialogue_chain(sim_rates, reward)


# --------------------------------------------------------------------------- random MDPs


def random_mdp(rng: np.random.Generator, n_states: int = 5, n_actions: int = 3, sparsity: float = 0.5) -> TabularMDP:
    """A random MDP: sparse Dirichlet transitions (so some states are unreachable under some policies), rewards U[0, 1]."""
    if n_states < 1 or n_actions < 1:
        raise ValueError(f"n_states and n_actions must be ≥ 1, got {n_states}, {n_actions}")
    sparsity = float(check_probability(sparsity, "sparsity"))
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    P = np.where(rng.random(P.shape) < sparsity, 0.0, P)
    empty = P.sum(axis=2) == 0
    P[empty, rng.integers(n_states, size=int(empty.sum()))] = 1.0
    P /= P.sum(axis=2, keepdims=True)
    R = rng.random((n_states, n_actions))
    mu = np.zeros(n_states)
    mu[rng.integers(n_states)] = 1.0
    return TabularMDP(P, R, mu, r_max=1.0)


def random_simulator(rng: np.random.Generator, real: TabularMDP, delta: float) -> TabularMDP:
    """A simulator whose transitions are P_sim = (1 − δ) P_real + δ Q for a random sparse Q, so TV ≤ δ at every (s, a)."""
    delta = float(check_probability(delta, "delta"))
    Q = random_mdp(rng, real.n_states, real.n_actions).P
    return dataclasses.replace(real, P=(1 - delta) * real.P + delta * Q)


def random_bound_cases(n: int, rng: np.random.Generator) -> list[dict[str, float]]:
    """Measured gaps and their bounds on ``n`` random MDPs with random H, ε and δ (for the notebook's scatter plot)."""
    cases = []
    for _ in range(n):
        mdp = random_mdp(rng, int(rng.integers(2, 7)), int(rng.integers(2, 5)), float(rng.uniform(0, 0.8)))
        H, eps, delta = int(rng.integers(1, 30)), float(rng.uniform(0, 0.3)), float(rng.uniform(0, 0.3))
        gaps = policy_shift_gaps(mdp, H, eps)
        sim = simulator_shift_gap(mdp, random_simulator(rng, mdp, delta), H)
        cases.append(
            {
                "H": H, "eps": eps, "delta": delta,
                "gap_static": gaps["static"].gap, "bound_static": gaps["static"].bound,
                "gap_interactive": gaps["interactive"].gap, "bound_interactive": gaps["interactive"].bound,
                "gap_simulator": sim.gap, "bound_simulator": sim.bound,
            }
        )
    return cases


# --------------------------------------------------------------------------- the sweep over horizons


@dataclass
class ShiftConfig(Settings):
    """Settings of the horizon sweep of notebook 01 and ``calirl shift``."""

    horizons: tuple[int, ...] = (5, 10, 20, 40, 80)
    """horizons H (number of assistant turns) to sweep"""
    eps: float = 0.002
    """learner's per-step error ε where it was trained (probability of a wrong action)"""
    delta: float = 0.004
    """per-turn probability that the real user goes off-script in a way the naive simulator never does (its TV δ)"""
    n_offscript_kinds: int = 4
    """number of kinds of off-script user behaviour; the real user's rate δ is split evenly between them"""
    calibrated_covers: int = 3
    """how many of those kinds the calibrated simulator reproduces (the naive one reproduces none)"""
    r_max: float = 1.0
    """reward of an on-script assistant turn, the largest reward (R_max in the bound)"""
    seed: int = 0
    """seed of the random MDPs and Monte Carlo samples in the notebook"""
    n_random_mdps: int = 200
    """random MDPs on which the notebook checks that every gap is below its bound"""

    SMOKE = {"n_random_mdps": 20}
    CLASS = {"n_random_mdps": 100}
    BOUNDS = {"n_offscript_kinds": (1, None)}

    def __post_init__(self) -> None:
        super().__post_init__()
        self.horizons = tuple(check_horizon(h, "horizons") for h in self.horizons)
        if not self.horizons:
            raise ValueError("horizons must list at least one horizon")
        check_probability(self.eps, "eps")
        check_probability(self.delta, "delta")
        check_r_max(self.r_max)
        if not 0 <= self.calibrated_covers <= self.n_offscript_kinds:
            raise ValueError(f"calibrated_covers must be in [0, n_offscript_kinds={self.n_offscript_kinds}], got {self.calibrated_covers}")

    @property
    def offscript_rates(self) -> tuple[float, ...]:
        """The real user's per-turn rate of each kind of off-script behaviour."""
        return (self.delta / self.n_offscript_kinds,) * self.n_offscript_kinds

    @property
    def delta_calibrated(self) -> float:
        """The calibrated simulator's TV from the real user: the rates of the kinds it misses."""
        return float(sum(self.offscript_rates[self.calibrated_covers :]))


def loglog_slope(horizons: Sequence[int], gaps: Sequence[float]) -> float:
    """Least-squares slope of log(gap) against log(H): 2 for gaps that grow as H², 1 for linear growth."""
    h, g = np.asarray(horizons, dtype=float), np.asarray(gaps, dtype=float)
    if len(h) < 2 or len(set(h.tolist())) < 2:
        raise ValueError("a slope needs at least two different horizons")
    if np.any(g <= 0):
        return float("nan")
    return float(np.polyfit(np.log(h), np.log(g), 1)[0])


def run_shift(cfg: ShiftConfig, out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Sweep the horizons on the dialogue chain: the three gaps, their bounds, fitted slopes.

    With ``out`` set, writes ``shift.json``, ``shift.png`` and ``config.json`` there (atomically).
    """
    real = dialogue_chain(cfg.offscript_rates, cfg.r_max)
    naive = chain_simulator(cfg.offscript_rates, 0, cfg.r_max)
    calibrated = chain_simulator(cfg.offscript_rates, cfg.calibrated_covers, cfg.r_max)
    rows = []
    for H in cfg.horizons:
        gaps = policy_shift_gaps(real, H, cfg.eps)
        sim = simulator_shift_gap(real, naive, H)
        cal = simulator_shift_gap(real, calibrated, H)
        rows.append(
            {
                "H": H,
                "eps": cfg.eps,
                "delta": cfg.delta,
                "delta_calibrated": cfg.delta_calibrated,
                "gap_static": gaps["static"].gap,
                "gap_interactive": gaps["interactive"].gap,
                "gap_simulator": sim.gap,
                "gap_simulator_calibrated": cal.gap,
                "bound_static": gaps["static"].bound,
                "bound_interactive": gaps["interactive"].bound,
                "bound_simulator": sim.bound,
                "bound_simulator_calibrated": cal.bound,
            }
        )
    result: dict[str, Any] = {"config": cfg.to_dict(), "per_horizon": rows, "slopes": {}}
    if len(set(cfg.horizons)) >= 2:
        for key in ("static", "interactive", "simulator", "simulator_calibrated"):
            result["slopes"][key] = loglog_slope(cfg.horizons, [r[f"gap_{key}"] for r in rows])
    if out is not None:
        save_shift(result, cfg, out)
    return result


def save_shift(result: dict[str, Any], cfg: ShiftConfig, out: str | os.PathLike) -> Path:
    """Write ``shift.json``, ``shift.png`` and ``config.json`` under ``out``; return the folder."""

    out = Path(out)
    cfg.save(out)
    atomic_write_json(out / "shift.json", json_safe(result))
    close_figure(plot_shift(result, path=out / "shift.png"))
    return out


def format_slopes(result: dict[str, Any]) -> str:
    """One line per kind of shift: the fitted log–log slope of the gap against H."""
    names = {
        "static": "static context (policy-induced)",
        "interactive": "interactive / on-policy",
        "simulator": "naive simulator (simulator-induced)",
        "simulator_calibrated": "calibrated simulator",
    }
    return "\n".join(f"{names[k]:>38}: gap ∝ H^{v:.2f}" for k, v in result["slopes"].items())


def monte_carlo_gap_study(cfg: ShiftConfig, H: int, n_episodes: Sequence[int]) -> dict[str, Any]:
    """The static-context gap at horizon H, exact and estimated by sampling ``n`` episodes of each policy.

    Sampling needs thousands of episodes before it even sees the sign of a gap that the
    exact sums give at once — which is why this module computes exactly.
    """
    rng = np.random.default_rng(cfg.seed)
    real = dialogue_chain(cfg.offscript_rates, cfg.r_max)
    expert = optimal_policy(real, H)
    learner = static_learner(real, expert, cfg.eps)
    study: dict[str, Any] = {"H": H, "exact": value(real, expert) - value(real, learner), "n_episodes": [], "estimate": [], "stderr": []}
    study["label"] = f"static-context gap at H = {H}"
    for n in n_episodes:
        m1, s1 = monte_carlo_value(real, expert, int(n), rng)
        m2, s2 = monte_carlo_value(real, learner, int(n), rng)
        study["n_episodes"].append(int(n))
        study["estimate"].append(m1 - m2)
        study["stderr"].append(float(np.hypot(s1, s2)))
    return study


def format_table(result: dict[str, Any]) -> str:
    """The sweep as a text table: each gap beside its bound, per horizon."""
    keys = {"static": "static", "interactive": "interactive", "simulator": "naive sim", "simulator_calibrated": "calibr. sim"}
    head = f"{'H':>4} " + " ".join(f"{name + ' gap':>15} {'bound':>9}" for name in keys.values())
    lines = [head]
    for r in result["per_horizon"]:
        lines.append(f"{r['H']:>4} " + " ".join(f"{r['gap_' + k]:>15.4f} {r['bound_' + k]:>9.4f}" for k in keys))
    return "\n".join(lines)


def run_random_mdps(cfg: ShiftConfig, out: str | os.PathLike | None = None) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Check every gap against its bound on ``cfg.n_random_mdps`` random MDPs (seeded by ``cfg.seed``).

    Returns the cases and a summary (cases, violations, largest gap/bound ratio per kind);
    with ``out`` set, writes ``random_mdps.json`` and ``random_mdps.png`` there.
    """
    cases = random_bound_cases(cfg.n_random_mdps, np.random.default_rng(cfg.seed))
    summary: dict[str, Any] = {"n_cases": len(cases), "seed": cfg.seed}
    for key in ("static", "interactive", "simulator"):
        gaps = np.array([c[f"gap_{key}"] for c in cases])
        bounds = np.array([c[f"bound_{key}"] for c in cases])
        ratios = np.divide(gaps, bounds, out=np.zeros_like(gaps), where=bounds > 0)
        summary[key] = {
            "violations": int(np.sum(gaps > bounds + 1e-9)),
            "max_gap_over_bound": float(ratios.max()) if len(cases) else 0.0,
        }
    if out is not None:

        atomic_write_json(Path(out) / "random_mdps.json", {"summary": summary, "cases": cases})
        close_figure(plot_bound_scatter(cases, path=Path(out) / "random_mdps.png"))
    return cases, summary


# --------------------------------------------------------------------------- distribution shift, step by step


def shift_over_time(cfg: ShiftConfig, H: int) -> dict[str, Any]:
    """Where each policy's dialogues are at every step, on the dialogue chain with the real user, over ``H`` steps.

    ``d``: the state distribution d_t (H × S) of the expert, the static and the interactive learner (policy-induced
    shift, error ε), and of the policies trained against the real user (the oracle), the naive and the calibrated
    simulator (simulator-induced shift, δ). ``tv``: TV(d_t, d̂_t) per step of each learner against its reference
    (static and interactive against the expert; naive- and calibrated-trained against the oracle-trained). The
    gaps of :func:`run_shift` are sums over these steps, weighted by what each step still has to earn.
    """
    H = check_horizon(H)
    real = dialogue_chain(cfg.offscript_rates, cfg.r_max)
    expert = optimal_policy(real, H)
    policies = {
        "expert": expert,
        "static": static_learner(real, expert, cfg.eps),
        "interactive": interactive_learner(real, expert, cfg.eps),
        "oracle-trained": interactive_learner(real, expert, 0.0),
    }
    for name, covered in (("naive-trained", 0), ("calibrated-trained", cfg.calibrated_covers)):
        sim = chain_simulator(cfg.offscript_rates, covered, cfg.r_max)
        policies[name] = interactive_learner(sim, optimal_policy(sim, H), 0.0)
    d = {name: state_distributions(real, pi) for name, pi in policies.items()}
    pairs = {"static": "expert", "interactive": "expert", "naive-trained": "oracle-trained", "calibrated-trained": "oracle-trained"}
    return {"H": H, "states": list(real.state_names), "d": {k: v.tolist() for k, v in d.items()},
            "tv": {k: tv(d[k], d[ref]).tolist() for k, ref in pairs.items()}, "reference": pairs,
            "eps": cfg.eps, "delta": cfg.delta, "delta_calibrated": cfg.delta_calibrated}
