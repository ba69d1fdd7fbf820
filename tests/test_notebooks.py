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


def section_problems(nb) -> list[str]:
    """Numbered sections (``## 3 · …``, a sub-section ``## 3b · …``) out of order, skipped or repeated."""
    import re

    found, last = [], (0, "")
    for cell in nb.cells:
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else ():
            m = re.match(r"^## (\d+)([a-z]?) · ", line)
            if m:
                here = (int(m.group(1)), m.group(2))
                expected = {(last[0] + 1, ""), (last[0], chr(ord(last[1] or "a") + 1))}
                if here not in expected:
                    found.append(f"section {here[0]}{here[1]} after {last[0]}{last[1]}")
                last = here
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_sections_are_numbered_in_order(path):
    assert section_problems(nbformat.read(path, as_version=4)) == []


def test_the_section_check_catches_a_repeated_or_skipped_number():
    def nb(*headings):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"## {h} · x") for h in headings])

    assert section_problems(nb("1", "2", "2b", "3")) == []
    assert section_problems(nb("1", "2", "2")) == ["section 2 after 2"]
    assert section_problems(nb("1", "3")) == ["section 3 after 1"]
