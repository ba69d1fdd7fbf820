"""How calibration is chosen: the study's rule on made-up numbers, and the realism reward's discriminator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_exact_gap import dialogues

from calirl_lite.calibration_study import POINTS, REFERENCE, CalibrationStudyConfig, choose, study_markdown
from calirl_lite.exact_gap import user_turns
from calirl_lite.realism import Discriminator, features
from calirl_lite.task_family import REAL_USER
from calirl_lite.tasks import get_task
from calirl_lite.users import replay


def _point(gap, minutes, low):
    return {"gap": gap, "gap_error": 0.01, "minutes": minutes, "nll": 1.0, "within_noise": low <= 1e-6,
            "vs_best": {"mean": gap, "low": low, "high": low + 0.1}}


def test_the_rule_takes_the_cheapest_point_within_noise_of_the_best_on_every_task():
    tasks = {"arith-chat": {"points": {"reference": _point(0.5, 2.0, -0.01), "traces 150": _point(0.6, 0.5, 0.05),
                                       "steps 600": _point(0.4, 4.0, 0.0), "full fine-tuning": _point(0.45, 1.0, -0.02)}, "best": "steps 600"},
             "docedit-chat": {"points": {"reference": _point(0.7, 3.0, -0.01), "traces 150": _point(0.7, 0.7, -0.01),
                                         "steps 600": _point(0.6, 6.0, 0.0), "full fine-tuning": _point(0.9, 1.5, 0.2)}, "best": "steps 600"}}
    c = choose(tasks)
    # traces 150 is cheapest but not within noise on arith-chat; full fine-tuning is not on docedit-chat
    assert c["within_noise_everywhere"] == ["reference", "steps 600"]
    assert c["point"] == "reference" and c["minutes"] == pytest.approx(5.0) and c["settings"] == REFERENCE
    result = {"tasks": {t: {**v, "naive_gap": 2.0, "naive_nll": 3.0, "reference_seed_again": {"seed": 1, "gap": 0.55, "gap_error": 0.02}}
                        for t, v in tasks.items()}, "choice": c, "rule": "r", "reference": REFERENCE}
    md = study_markdown(result)
    assert "Chosen: **reference** (the reference itself" in md and "| traces 150 | 0.600 ± 0.010 | +0.600 [+0.050, +0.150] | no |" in md


def test_where_no_point_is_within_noise_everywhere_the_fallback_is_said_so():
    tasks = {"arith-chat": {"points": {"reference": _point(0.5, 2.0, 0.03), "steps 600": _point(0.45, 4.0, 0.01),
                                       "steps 1200": _point(0.4, 6.0, 0.0)}, "best": "steps 1200"},
             "docedit-chat": {"points": {"reference": _point(0.7, 3.0, 0.05), "steps 600": _point(0.6, 6.0, 0.0),
                                         "steps 1200": _point(0.65, 9.0, 0.02)}, "best": "steps 600"}}
    c = choose(tasks)
    assert c["point"] == "steps 600" and c["within_noise_everywhere"] == []  # worst lower end 0.01, against 0.02 and 0.05
    result = {"tasks": {t: {**v, "naive_gap": 2.0, "naive_nll": 3.0, "reference_seed_again": {"seed": 1, "gap": 0.55, "gap_error": 0.02}}
                        for t, v in tasks.items()}, "choice": c, "rule": "r", "reference": REFERENCE}
    md = study_markdown(result)
    assert "No point is within noise of the best on every task; the rule's fallback" in md and "Chosen: **steps 600** (steps = 600" in md


def test_the_study_names_its_points_and_keeps_its_reference():
    with pytest.raises(ValueError, match="points must name"):
        CalibrationStudyConfig(points=("reference", "steps 9999"))
    with pytest.raises(ValueError, match="reference"):
        CalibrationStudyConfig(points=("traces 150",))
    assert all(set(change) <= set(REFERENCE) for change in POINTS.values())


def test_the_realism_discriminator_tells_real_turns_from_a_simulators_that_differ():
    """Fitted on the real users' turns against a sycophantic simulator's in the same contexts, the discriminator
    separates them where they differ (after a wrong answer) and rewards the real users' turn there more."""
    task, ds = get_task("arith-chat"), dialogues("arith-chat", 150)
    sycophant = dataclasses.replace(REAL_USER, p_accept_wrong=1.0)
    real, sim, where = [], [], []
    for i, d in enumerate(ds):
        for t, history, reply in user_turns(d)[1:]:
            other = replay(task, d.goal, sycophant, history, np.random.default_rng([i, t])).reply(history[-1].text)
            real.append(features(task, d.goal, history, reply))
            sim.append(features(task, d.goal, history, other))
            where.append(reply != other)
    disc = Discriminator()
    fit = disc.fit(real, sim)
    assert fit["accuracy"] > 0.5 and fit["log_loss"] < np.log(2)
    differ = np.asarray(where)
    assert differ.sum() > 5
    gain = disc.log_odds([r for r, w in zip(real, where) if w]) - disc.log_odds([s for s, w in zip(sim, where) if w])
    assert gain.mean() > 1.0
