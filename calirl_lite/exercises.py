"""Checkable exercises for the notebooks: you write a function, ``check_*`` tells you if it is right.

A check never raises: an unfinished exercise (``raise NotImplementedError``) prints a hint,
so *Run All* still runs the notebook to the end.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .shift import compounding_bound


def check_compounding_bound(fn: Callable[[Sequence[float], float], float], n_cases: int = 50, seed: int = 0) -> bool:
    """Check ``fn(errors, r_max)`` against R_max · Σ_i (H − i) · ε_i on random per-step errors."""
    rng = np.random.default_rng(seed)
    try:
        for _ in range(n_cases):
            H = int(rng.integers(1, 30))
            errors = rng.uniform(0, 0.2, size=H).tolist()
            r_max = float(rng.uniform(0, 5))
            want, got = compounding_bound(errors, r_max=r_max), fn(errors, r_max)
            if not np.isclose(got, want, rtol=1e-9, atol=1e-12):
                print(f"✗ Not yet: for H = {H}, r_max = {r_max:.3f} and errors starting {np.round(errors[:3], 3).tolist()} "
                      f"the bound is {want:.6f}, your function gave {got!r}. Hint: the error at step i (from 0) spoils H − i steps.")
                return False
    except NotImplementedError:
        print("Not implemented yet: write the function body, then run this cell again.")
        return False
    print(f"✓ Correct on {n_cases} random cases.")
    return True
