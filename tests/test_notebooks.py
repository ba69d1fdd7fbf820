"""Committed notebooks are clean (no outputs, counts or widget state) and thin."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def problems(nb) -> list[str]:
    """What keeps a notebook from being clean, one string per problem."""
    found = []
    if "widgets" in nb.metadata:
        found.append("widget state in metadata.widgets")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                found.append(f"cell {i} has outputs")
            if cell.get("execution_count") is not None:
                found.append(f"cell {i} has an execution count")
    return found


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS and all(p.name[:2].isdigit() for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    assert problems(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_are_thin(path):
    """Logic lives in the package: no code cell defines loops or long functions of its own."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            assert len(lines) <= 12, cell.source


def test_the_check_catches_a_dirty_notebook():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    assert problems(nb) == []
    nb.cells[0].execution_count = 3
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    assert len(problems(nb)) == 3
