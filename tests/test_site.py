"""The readable site: a page per executed notebook with its figures inline, an index, and the check that no page
misses a figure its notebook drew."""

import nbformat
import pytest

from calirl_lite.cli import main
from calirl_lite.notebook_runner import run_notebook
from calirl_lite.site import build_site, figure_cells, site_problems


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("[![badge](https://example.org/badge.svg)](x)\n\n# 07 · A tiny notebook"),
        nbformat.v4.new_code_cell("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n%matplotlib inline"),
        nbformat.v4.new_code_cell("plt.plot([0, 1], [1, 0]); plt.show()"),
        nbformat.v4.new_code_cell("print('Skipped in class mode on a CPU: …')  # plt.show() would draw here")])
    (folder / "src").mkdir()
    nbformat.write(nb, folder / "src" / "07_tiny.ipynb")
    run_notebook(folder / "src" / "07_tiny.ipynb", folder / "run", {"MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    return folder / "run"


def test_each_page_holds_its_notebooks_figures_and_the_index_links_every_page(executed, tmp_path):
    counts = build_site(executed, tmp_path / "site")
    assert counts == {"07_tiny": {"images": 1, "figure_cells": 1}}  # the skipped section's figure is not expected
    assert "data:image/png;base64," in (tmp_path / "site" / "07_tiny.html").read_text()
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="07_tiny.html"' in index and "07 · A tiny notebook" in index
    assert site_problems(counts) == []


def test_a_page_without_its_figure_is_named(executed, tmp_path):
    nb = nbformat.read(executed / "07_tiny.ipynb", as_version=4)
    assert figure_cells(nb) == 1
    nb.cells[2].outputs = []  # the figure lost
    nbformat.write(nb, tmp_path / "07_tiny.ipynb")
    assert main(["site", "--executed", str(tmp_path), "--out", str(tmp_path / "site")]) == 1
    assert site_problems(build_site(tmp_path, tmp_path / "site")) == ["07_tiny: 0 images for 1 figure cells"]
    assert main(["site", "--executed", str(tmp_path / "none"), "--out", str(tmp_path / "site")]) == 2  # nothing executed: said
