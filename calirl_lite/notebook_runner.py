"""``calirl notebooks``: the numbered notebooks run top to bottom in fresh kernels, executed copies kept apart.

Each kernel gets its environment as an argument (the command's own, with ``CALIRL_RESULTS`` pointing at the results
folder), so the notebooks' own entry (:func:`calirl_lite.env.context`) reads the same settings as the command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

from .io import atomic_write_text
from .paths import PLACE_VARIABLES, project_root
from .profiles import require
from .quiet import no_bars


def notebook_paths(root: Path | None = None) -> list[Path]:
    """The numbered notebooks under ``notebooks/``, in order."""
    folder = (root or project_root()) / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    return paths


def run_notebook(path: Path, out_dir: Path, environ: Mapping[str, str], timeout: int = 3600) -> Path:
    """Execute one notebook in a fresh kernel whose environment is ``environ``, in the notebook's own folder; write
    the executed copy to ``out_dir``."""

    require("nbclient", 'pip install "calirl-lite[notebooks]"')
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=dict(environ))
    return atomic_write_text(out_dir / path.name, nbformat.writes(nb))


def run_notebooks(results: Path, environ: Mapping[str, str], notebooks: Sequence[str] | None = None) -> Path:
    """Run the given notebooks (default: all, in order) in kernels with ``environ`` and their results going to
    ``results``; the executed copies (with outputs) go to ``results/notebooks/`` and the copies in ``notebooks/``
    stay clean."""
    from tqdm.auto import tqdm

    results = results.resolve()
    (results / "notebooks").mkdir(parents=True, exist_ok=True)  # a bad folder is named before any notebook runs
    # the kernels run in notebooks/: every folder is handed over absolute (a relative one would move), results here
    environ = {**environ, **{var: str(Path(environ[var]).resolve()) for var in PLACE_VARIABLES.values() if environ.get(var)},
               PLACE_VARIABLES["results"]: str(results)}
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"notebook {p} does not exist")
    bar = tqdm(paths, desc="notebooks", unit="nb", disable=no_bars())
    for p in bar:
        bar.set_postfix_str(p.name)
        start = time.perf_counter()
        written = run_notebook(p.resolve(), results / "notebooks", environ)
        tqdm.write(f"{p.name}: {time.perf_counter() - start:.1f} s → {written}")
    return results
