"""Notebook 05: judging a claim, and reading which policy its simulator overrates."""


def claim_verdict(op, low, high, per_seed):
    """Holds when the 95 % interval excludes 0 in the claimed direction and at least 2/3 of the seeds agree."""
    sign = 1 if op == ">" else -1
    excludes = low > 0 if sign > 0 else high < 0
    agree = sum(sign * d > 0 for d in per_seed)
    return bool(excludes and 3 * agree >= 2 * len(per_seed))


def most_overrated(rows):
    """The method whose training simulator scores it furthest above the real users."""
    return max(rows, key=lambda r: r["simulator"] - r["real"])["method"]
