"""The notebook 01 sliders redraw from the package; the exercise check tells right from wrong."""

import pytest

from calirl_lite import shift
from calirl_lite.exercises import check_compounding_bound
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


def test_exercise_check(capsys):
    def right(errors, r_max):
        H = len(errors)
        return r_max * sum((H - i) * e for i, e in enumerate(errors))

    def off_by_one(errors, r_max):
        H = len(errors)
        return r_max * sum((H - i - 1) * e for i, e in enumerate(errors))

    def unfinished(errors, r_max):
        raise NotImplementedError

    assert check_compounding_bound(right) is True
    assert check_compounding_bound(off_by_one) is False
    assert "Hint" in capsys.readouterr().out
    assert check_compounding_bound(unfinished) is False
    assert "Not implemented yet" in capsys.readouterr().out
