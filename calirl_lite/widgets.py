"""Interactive widgets of the notebooks (ipywidgets). Each redraws from package functions only."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .shift import ShiftConfig, run_shift


class ShiftExplorer:
    """Sliders for ε, δ and the largest horizon H that redraw notebook 01's gap-vs-H curves.

    ``explorer.result`` holds the sweep behind the current picture, so the sliders can be
    driven from code (and tests) as well as by hand.
    """

    def __init__(self, cfg: ShiftConfig | None = None) -> None:
        import ipywidgets as w

        self.cfg = cfg or ShiftConfig.make()
        self.eps = w.FloatLogSlider(value=self.cfg.eps, base=10, min=-4, max=-1, step=0.1, description="ε", readout_format=".4f")
        self.delta = w.FloatLogSlider(value=self.cfg.delta, base=10, min=-4, max=-1, step=0.1, description="δ", readout_format=".4f")
        self.horizon = w.IntSlider(value=max(self.cfg.horizons), min=4, max=200, step=1, description="max H")
        self.out = w.Output()
        self.result: dict[str, Any] = {}
        for slider in (self.eps, self.delta, self.horizon):
            slider.observe(lambda _change: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.eps, self.delta, self.horizon]), self.out])
        self.redraw()

    def horizons(self) -> tuple[int, ...]:
        """Eight horizons spread evenly on a log scale from 2 to the slider's max H."""
        return tuple(sorted({int(h) for h in np.geomspace(2, self.horizon.value, 8).round()}))

    def redraw(self) -> None:
        """Recompute the sweep for the current slider values and redraw the figure."""
        import matplotlib.pyplot as plt

        from .plots import plot_shift

        cfg = dataclasses.replace(self.cfg, eps=float(self.eps.value), delta=float(self.delta.value), horizons=self.horizons())
        self.result = run_shift(cfg)
        with self.out:
            self.out.clear_output(wait=True)
            fig = plot_shift(self.result)
            plt.show()
        plt.close(fig)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def shift_explorer(cfg: ShiftConfig | None = None) -> ShiftExplorer:
    """Show sliders for ε, δ and H that redraw the compounding-shift curves (notebook 01)."""
    return ShiftExplorer(cfg)
