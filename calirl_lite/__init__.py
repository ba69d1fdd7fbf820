"""calirl_lite: understand and reproduce Calibrated Interactive RL on a laptop.

The package backs the numbered notebooks in ``notebooks/``; each notebook cell calls one
or two of its public functions. Modules, one per idea of the paper:

* :mod:`calirl_lite.shift` — compounding distribution shift in tabular MDPs, the O(H²) bound (notebook 01)
* :mod:`calirl_lite.plots`, :mod:`calirl_lite.widgets` — figures and sliders the notebooks show
* :mod:`calirl_lite.settings` — ``set_seed``, the ``CALIRL_SMOKE`` switch, settings dataclasses
* :mod:`calirl_lite.io`, :mod:`calirl_lite.paths` — atomic writes, where results go
* :mod:`calirl_lite.cli` — the ``calirl`` command
"""

from .settings import Settings, field_docs, set_seed, smoke_mode
from .paths import results_dir

__version__ = "0.1.0"

__all__ = ["Settings", "field_docs", "set_seed", "smoke_mode", "results_dir", "__version__"]
