"""Write the cells every notebook shares: the "Open in Colab" badge, the install cell, the PROFILE cell.

    python scripts/notebook_cells.py          # rewrite the notebooks in place (make notebook-cells)
    python scripts/notebook_cells.py --check  # exit 1 and name the notebooks that differ

The README's Colab links and git URL follow the same address. The badge goes on the first line of the first Markdown cell, the install cell is the first code cell, and the
notebooks that load models get the PROFILE cell right after it. Their text comes from calirl_lite.colab (the
version from calirl_lite.__version__, the address from pyproject.toml's [project.urls]). Running it twice changes
nothing the second time. tests/test_colab.py checks the same.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from calirl_lite.colab import colab_badge, install_cell, repository_url

ROOT = Path(__file__).resolve().parents[1]
NO_MODELS = {"01_compounding_shift.ipynb"}
"""notebooks that load no model (no PROFILE cell)"""
PROFILE_CELL = (
    "# Where the models run: 'tiny' (any CPU, minutes; the numbers in docs/results.md) is the profile of every result here\n"
    'PROFILE = "tiny"\n'
    "\n"
    "from calirl_lite.colab import describe_runtime\n"
    "\n"
    "describe_runtime(PROFILE);"
)


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def with_shared_cells(nb: nbformat.NotebookNode, name: str, repository: str) -> nbformat.NotebookNode:
    """``nb`` with the badge, the install cell and (where models are loaded) the PROFILE cell in place."""
    markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    lines = [line for line in markdown.source.split("\n") if not line.startswith("[![Open In Colab]")]
    while lines and not lines[0].strip():
        lines.pop(0)
    markdown.source = "\n".join([colab_badge(name, repository), "", *lines])
    def is_shared(cell: nbformat.NotebookNode) -> bool:  # by id, or by the first words (the text may have changed)
        return cell.get("id") in ("install", "profile") or cell.source.startswith((first_line(install_cell())[:40], PROFILE_CELL[:24]))

    cells = [c for c in nb.cells if not (c.cell_type == "code" and is_shared(c))]
    at = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    new = [nbformat.v4.new_code_cell(install_cell(), id="install")]
    if name not in NO_MODELS:
        new.append(nbformat.v4.new_code_cell(PROFILE_CELL, id="profile"))
    nb.cells = cells[:at] + new + cells[at:]
    return nb


def readme_with_address(text: str, repository: str) -> str:
    """The README with every Colab link and git URL pointing at ``repository`` (for when the address changes)."""
    owner_repo = repository.removeprefix("https://github.com/")
    text = re.sub(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/", f"colab.research.google.com/github/{owner_repo}/", text)
    return re.sub(r"git\+https://github\.com/[\w.-]+/[\w.-]+", f"git+{repository}", text)


def main(argv: list[str]) -> int:
    repository, differ = repository_url(), []
    readme = ROOT / "README.md"
    if readme_with_address(readme.read_text(), repository) != readme.read_text():
        differ.append(readme.name)
        if "--check" not in argv:
            readme.write_text(readme_with_address(readme.read_text(), repository))
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        before = path.read_text()
        nb = with_shared_cells(nbformat.reads(before, as_version=4), path.name, repository)
        after = nbformat.writes(nb) + "\n"
        if after != before:
            differ.append(path.name)
            if "--check" not in argv:
                path.write_text(after)
    if differ:
        print(("differ: " if "--check" in argv else "rewrote: ") + ", ".join(differ))
    return 1 if differ and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
