"""Notebook 01: the two bounds of the simulation lemma and the TV distance."""


def compounding_bound(errors, r_max):
    """R_max · Σ_i (H − i) · ε_i: an error at step i (from 0) spoils the H − i steps that are left, each worth up to R_max."""
    H = len(errors)
    return r_max * sum((H - i) * e for i, e in enumerate(errors))


def final_reward_bound(errors, r_max):
    """One reward at the end: each step's error moves the final distribution once, and a TV is never above 1."""
    return r_max * min(1.0, sum(errors))


def tv_distance(p, q):
    """½ Σ |p(x) − q(x)|: the largest difference in probability the two give any event."""
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q))
