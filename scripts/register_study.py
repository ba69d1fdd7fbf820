"""Write the confirmatory study's record (calirl_lite/registered/confirmatory.json), or amend it.

    python scripts/register_study.py                  # the first registration (refuses to overwrite a record)
    python scripts/register_study.py --amend REASON   # the design changed on purpose: new hashes, the reason kept

An amendment also writes the record's ``secondary`` analyses as this script has them (registered before they run).

The record is committed before the study runs (`calirl reproduce --confirm`), and every amendment is a commit of its
own: the git history shows what was registered when. docs/preregistration.md is the record's text.
"""

import argparse
import datetime
import json
import sys

from calirl_lite.confirm import RECORD, design, design_hashes, registered_claims
from calirl_lite.io import atomic_write_text
from calirl_lite.stages import METHODS

STUDY = {
    "study": "confirmatory-1",
    "tasks": ["arith-chat", "docedit-chat"],
    "methods": ["base", *METHODS],
    "seeds": {"training": [100, 101, 102, 103, 104, 105], "calibration": [0, 1, 2],
              "pairing": "training seeds taken in turn: 100 and 103 use calibration seed 0, 101 and 104 seed 1, 102 and 105 seed 2"},
    "worlds": [3, 4, 5],
    "goals": "each world's test split, the first n_eval = 200 goals (train.n_eval); worlds 3-5 were never used by any study the kit reports, "
             "so no goal, corpus dialogue or LM of theirs was ever seen",
    "analysis": {"alpha": 0.05,
                 "interval": "nested bootstrap (calirl_lite.results.hierarchical_difference, 10,000 draws): pooled, worlds then the runs "
                             "within them; per world, calibration seeds then the training seeds paired with them (Static and Calibrated), "
                             "training seeds alone (Base, Naive, Oracle); goals resampled once per draw for both sides",
                 "family": "Holm across the 9 claims of each table (pooled; each world)",
                 "verdict": "a claim holds when its pooled nested 95 % interval excludes 0 in the claimed direction, its one-sided "
                            "bootstrap p-value Holm-adjusted is <= alpha and at least two thirds of the (world, training seed) pairs "
                            "agree; the per-world tables are reported beside it, not judged as the study's result"},
    "budget": "3 worlds x (world build + 6 calibrations + 48 training runs) in one pool of 2 workers: planned at about 90 min on 2 cores "
              "from make reproduce's measured times (a run ~37 worker-s, a calibration ~2-4 worker-min, a world build ~3 min)",
}

SECONDARY = {
    "registered": "2026-12-03, before the study's results were read and before any of these runs existed",
    "static_all_turns": {
        "question": "does Static Context RL lose only because it trains one turn per dialogue? The same Static runs with every turn "
                    "the policy writes after the logged context trained (TrainConfig.static_turns = all), as the interactive methods train",
        "worlds": [3, 4, 5], "seeds": [100, 101, 102], "tasks": ["arith-chat", "docedit-chat"], "settings": {"static_turns": "all"},
        "claims": [{"task": t, "left": left, "op": ">", "right": right}
                   for t in ("arith-chat", "docedit-chat") for left, right in (("static-all", "static"), ("calibrated", "static-all"))],
        "analysis": "as the study's claims: pooled nested bootstrap (worlds, then the runs within them; goals paired), one-sided p "
                    "Holm-adjusted across these four claims, two thirds of the (world, seed) pairs agreeing; compared with the study's "
                    "own Static and Calibrated runs of the same worlds and seeds",
    },
    "curves": {
        "question": "where does each method's real-user score peak, and is the collapse seen at twice the budget method-specific?",
        "world": 3, "seeds": [100, 101, 102], "methods": ["static", "naive", "calibrated", "oracle"], "tasks": ["arith-chat", "docedit-chat"],
        "settings": {"steps": 60, "real_every": 5}, "budget": 30, "collapse": 0.1,
        "goals": "the first REAL_CURVE_GOALS = 32 test goals of the world at each point, with the same evaluation seed",
        "reported": "descriptive, not judged: each method's mean curve over the seeds, the step where it peaks, and the seeds whose last "
                    "point lies more than `collapse` below their own best",
    },
    "budget": "18 Static-at-every-turn runs and 24 curve runs of 60 steps in one pool of 2 workers: planned at about 35 min on 2 cores",
}
"""The secondary analyses, registered by amendment before they run (``calirl reproduce --confirm --secondary``)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amend", metavar="REASON", help="the design changed on purpose: record the new hashes and why")
    args = parser.parse_args()
    today = datetime.date.today().isoformat()
    if args.amend is None:
        if RECORD.exists():
            print(f"{RECORD} exists: amend it (--amend REASON) instead of registering anew", file=sys.stderr)
            return 1
        record = {**STUDY, "registered": today, "claims": registered_claims(), "design": design(), "hashes": design_hashes(), "amendments": [],
                  "secondary": SECONDARY}
    else:
        record = json.loads(RECORD.read_text(encoding="utf-8"))
        record["amendments"].append({"date": today, "reason": args.amend, "hashes_before": record["hashes"]})
        record.update(design=design(), hashes=design_hashes(), secondary=SECONDARY)
    atomic_write_text(RECORD, json.dumps(record, indent=2) + "\n")
    print(f"wrote {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
