"""A readable site of the notebooks: each executed notebook as one HTML page with its outputs, and an index.

    make site        # the notebooks run in class mode (`calirl notebooks`), then `calirl site`: results/site/index.html

Why nbconvert's HTML and not Jupyter Book: the notebooks are the whole site — no chapters, cross-references or
search to add — and nbconvert is already installed wherever JupyterLab is, so the site needs nothing new, builds in
seconds from notebooks already executed, and its pages are single files with their figures inside (base64 images:
a page can be opened, mailed or hosted alone). The committed notebooks stay output-free; the site is built from
executed copies.

:func:`site_problems` is the check ``make site`` ends with (and a test runs on a built site): every page holds an
image for each cell of its notebook that draws a figure.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Sequence

from .io import atomic_write_text

PLOTTING = re.compile(r"\bplots\.plot_\w+\(|\bplt\.show\(|\bplot_\w+\(|\bImage\(")
"""a code cell that draws a figure calls one of the kit's ``plots.plot_*``, ``plt.show()`` or shows a saved one
(IPython's ``Image``)"""

SKIPPED = "Skipped in class mode"
"""what a real-model section prints where it does not run (its figure is then absent on purpose)"""


def page(notebook: Any) -> str:
    """One executed notebook as a standalone HTML page (nbconvert's lab template; images inline)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return body


def figure_cells(notebook: Any) -> int:
    """How many of the notebook's code cells draw a figure and ran it (not skipped): what its page must show."""
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or not PLOTTING.search(cell.source):
            continue
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        count += SKIPPED not in text
    return count


def build_site(executed: str | Path, out: str | Path) -> dict[str, dict[str, int]]:
    """Write a page per executed notebook in ``executed`` (``NN_name.ipynb``, as ``calirl notebooks`` leaves them) and
    ``index.html`` into ``out``; returns, per page, its images and the figure cells its notebook ran."""
    import nbformat

    paths = sorted(Path(executed).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no executed notebooks (NN_name.ipynb) in {executed}: run `calirl notebooks --out …` first")
    out = Path(out)
    counts, links = {}, []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        text = page(nb)
        atomic_write_text(out / f"{path.stem}.html", text)
        # an output's figure is written inline; the Colab badge, a link to an image, is not counted
        counts[path.stem] = {"images": len(re.findall(r'<img [^>]*src="data:image/', text)), "figure_cells": figure_cells(nb)}
        title = next((line[2:] for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("# ")), path.stem)
        links.append(f'<li><a href="{path.stem}.html">{html.escape(title)}</a></li>')
    atomic_write_text(out / "index.html", "<!doctype html><meta charset='utf-8'><title>calirl_lite notebooks</title>"
                      "<h1>calirl_lite: the notebooks, executed in class mode</h1><ol>" + "".join(links) + "</ol>")
    return counts


def site_problems(counts: dict[str, dict[str, int]]) -> Sequence[str]:
    """The pages that show fewer images than the figure cells their notebook ran."""
    return [f"{name}: {c['images']} images for {c['figure_cells']} figure cells" for name, c in counts.items() if c["images"] < c["figure_cells"]]
