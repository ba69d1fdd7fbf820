"""The notebook 01 sliders redraw from the package."""

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
