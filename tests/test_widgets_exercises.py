"""The notebook 01 sliders redraw from the package."""

import numpy as np
import pytest

from calirl_lite import shift
from calirl_lite.widgets import shift_explorer


def test_sliders_recompute_the_curves():
    explorer = shift_explorer(shift.ShiftConfig(horizons=(5, 10, 20)))
    first = explorer.result["per_horizon"][-1]["gap_static"]
    explorer.eps.value = 0.01
    assert explorer.result["per_horizon"][-1]["eps"] == pytest.approx(0.01)
    assert explorer.result["per_horizon"][-1]["gap_static"] > first
    explorer.horizon.value = 40
    assert max(r["H"] for r in explorer.result["per_horizon"]) == 40
    before = explorer.result["per_horizon"][-1]["gap_simulator"]
    explorer.delta.value = 0.02
    assert explorer.result["per_horizon"][-1]["gap_simulator"] > before
    assert not any(s.continuous_update for s in (explorer.eps, explorer.delta, explorer.horizon))  # recomputed on release, not mid-drag


def test_shift_step_by_step_static_drifts_linearly_interactive_stays_and_sliders_redraw():
    from calirl_lite.widgets import ShiftOverTime

    r = shift.shift_over_time(shift.ShiftConfig.make(), 20)
    static, inter = np.asarray(r["tv"]["static"]), np.asarray(r["tv"]["interactive"])
    assert static[0] == 0 and np.all(np.diff(static[1:]) > 0) and static[-1] > 10 * inter[-1]  # the static learner drifts further every step
    assert np.all(inter[1:] <= inter[1] + 1e-12) and inter[-1] > 0.99 * inter[1]  # the interactive one is off by ε where it goes, no further
    assert r["tv"]["naive-trained"][-1] > r["tv"]["calibrated-trained"][-1] > 0
    assert np.allclose(np.asarray(r["d"]["expert"]).sum(axis=1), 1) and len(r["states"]) == np.asarray(r["d"]["static"]).shape[1]
    explorer = ShiftOverTime(shift.ShiftConfig.make(), horizon=12)
    before = explorer.result["tv"]["static"][-1]
    explorer.eps.value = 0.02
    assert explorer.result["tv"]["static"][-1] > before and explorer.result["eps"] == pytest.approx(0.02)
    explorer.horizon.value = 30
    assert len(explorer.result["tv"]["static"]) == 30


def test_turn_by_turn_profiles_tell_a_careful_assistant_from_a_hasty_one():
    from calirl_lite.exercises import scripted_dialogues
    from calirl_lite.stats import turn_profile
    from calirl_lite.toy_tasks import CORPUS_ASSISTANTS
    from calirl_lite.widgets import TurnByTurn

    careful, hasty = (scripted_dialogues("", CORPUS_ASSISTANTS[name], 60, 0, ("docedit-chat",)) for name in ("careful", "hasty"))
    c, h = turn_profile(careful), turn_profile(hasty)
    assert c["turns"][0]["policy"]["ask"] == 1.0 and h["turns"][0]["policy"]["answer"] == 1.0
    assert c["turns"][1]["knows"]["name"] > h["turns"][1]["knows"]["name"]  # the careful one's context already holds what it asked
    assert h["turns"][0]["user"]["rejects"] > c["turns"][0]["user"]["rejects"] and c["turns"][0]["alive"] == 1.0
    assert sum(c["turns"][0]["user"].values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one task's dialogues"):
        turn_profile(careful + scripted_dialogues("", CORPUS_ASSISTANTS["careful"], 2, 0, ("arith-chat",)))
    widget = TurnByTurn({"careful": careful, "hasty": hasty})
    widget.turn.value = 3
    assert set(widget.profiles) == {"careful", "hasty"} and widget.turn.max == 6
