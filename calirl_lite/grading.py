"""Grading the notebooks' exercises with otter-grader: a student version and an autograder from one command, and a
filled notebook scored to one JSON file of per-exercise marks.

    calirl class export OUT                     # every notebook with exercises (--notebooks 01 04: some)
    calirl class grade OUT/04_…/dist/autograder/04_…-autograder_*.zip submitted.ipynb    # scores.json

Why otter-grader (and not nbgrader): it needs no course database or Jupyter server extension, runs where the
students are (Colab included: they hand in the ``.ipynb``), grades on the teacher's machine with ``otter run`` (or in
Docker with ``otter grade``, or on Gradescope, from the same zip), and its "master notebook" is an ordinary notebook
with solution and test blocks — which this module writes from the kit's own notebooks:

* every exercise cell (the one that calls ``check("name", …)``) becomes an otter question worth one mark: the
  solution from the checkout's ``solutions/`` folder between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (otter
  replaces it with ``...`` in the student version), and a hidden test that runs the kit's own checker
  (:data:`calirl_lite.exercises.EXERCISES`) on the student's function;
* every other code cell is tagged ``otter_ignore``: the student runs the whole notebook, the grader only the
  exercises (seconds, not the minutes of the notebook's training runs);
* ``otter assign`` then writes ``student/`` (the notebook to hand out: no solution in it) and ``autograder/`` (the
  zip that grades, and the solved notebook).

Export needs a checkout (the solutions are not in the wheel) and the ``class`` extra (``pip install
"calirl-lite[class]"``); grading needs the extra and the kit.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .io import atomic_write_json
from .paths import checkout_root

STUB = "    raise NotImplementedError  # your code here"
"""the line of an exercise cell that the student replaces (the solution goes there in the master notebook)"""


def require_otter() -> None:
    """Refuse (ImportError) where otter-grader is not installed, saying how to install it."""
    from .profiles import require

    require("otter", 'pip install "calirl-lite[class]" (or pip install otter-grader)')


def solution_body(name: str, root: Path) -> str:
    """The solution of exercise ``name`` from ``root/solutions/ex<NN>_*.py``: its function's body (less the
    docstring) with the module's imports and constants in front, indented as a function body."""
    from .exercises import EXERCISES

    exercise = EXERCISES[name]
    files = sorted((root / "solutions").glob(f"ex{exercise.notebook}_*.py"))
    if not files:
        raise FileNotFoundError(f"no solutions/ex{exercise.notebook}_*.py under {root}: export needs a checkout of the kit")
    source = files[0].read_text(encoding="utf-8")
    module = ast.parse(source)
    preamble = [ast.get_source_segment(source, n) for n in module.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign))]
    function = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == name.replace("-", "_")), None)
    if function is None:
        raise ValueError(f"{files[0]} has no function {name.replace('-', '_')} (exercise {name!r})")
    body = function.body[1:] if isinstance(function.body[0], ast.Expr) and isinstance(function.body[0].value, ast.Constant) else function.body
    lines = source.splitlines()[body[0].lineno - 1 : function.end_lineno]
    return textwrap.indent("\n".join([*filter(None, preamble), textwrap.dedent("\n".join(lines))]), "    ")


def question_cells(name: str, cell_source: str, root: Path) -> list[Any]:
    """The otter question for the exercise cell ``cell_source``: its solution filled in, and the hidden test."""
    import nbformat.v4 as v4

    if STUB not in cell_source:
        raise ValueError(f"the cell of exercise {name!r} has no line {STUB.strip()!r} to put the solution in")
    solved = cell_source.replace(STUB, f"    # BEGIN SOLUTION\n{solution_body(name, root)}\n    # END SOLUTION")
    function = re.search(r"^def (\w+)\(", cell_source, re.MULTILINE)
    if function is None:
        raise ValueError(f"the cell of exercise {name!r} defines no function")
    test = f"from calirl_lite.exercises import EXERCISES\n\nassert EXERCISES[{name!r}].run({function.group(1)}) is None"
    raw = v4.new_raw_cell
    return [raw(f"# BEGIN QUESTION\nname: {name}\npoints: 1\ncheck_cell: false"), raw("# BEGIN SOLUTION"), v4.new_code_cell(solved),
            raw("# END SOLUTION"), raw("# BEGIN TESTS"), v4.new_code_cell(test), raw("# END TESTS"), raw("# END QUESTION")]


def master_notebook(path: Path, root: Path) -> Any:
    """The otter master notebook of the kit's notebook ``path``: an assignment config, each exercise as a question,
    every other code cell tagged ``otter_ignore``."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    config = (f"# ASSIGNMENT CONFIG\nname: {path.stem}\nrequirements: requirements.txt\nrun_tests: false\ninit_cell: false\n"
              "check_all_cell: false\nexport_cell: false\ngenerate: true\ntests:\n  files: false")
    cells = [nbformat.v4.new_raw_cell(config)]
    for cell in nb.cells:
        found = re.search(r'check\("([\w-]+)"', cell.source) if cell.cell_type == "code" else None
        if found:
            cells += question_cells(found.group(1), cell.source, root)
            continue
        if cell.cell_type == "code":
            cell.metadata.setdefault("tags", []).append("otter_ignore")
        cells.append(cell)
    nb.cells = cells
    return nb


def export(out: str | Path, notebooks: Sequence[str] = (), root: Path | None = None) -> dict[str, Path]:
    """Write, per notebook with exercises (those whose number is in ``notebooks``; default all), ``out/<stem>/``: the
    master notebook ``<stem>.ipynb``, and from ``otter assign`` ``dist/student/<stem>.ipynb`` (to hand out) and
    ``dist/autograder/`` (the zip that grades, and the solved notebook). Returns the student notebooks by stem."""
    import nbformat

    from .exercises import EXERCISES

    require_otter()
    root = root or checkout_root()
    if root is None:
        raise FileNotFoundError("calirl class export needs a checkout of the kit (its notebooks/ and solutions/ folders); run it there")
    numbers = {e.notebook for e in EXERCISES.values()} & (set(notebooks) or {e.notebook for e in EXERCISES.values()})
    written = {}
    for path in sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb") if p.name[:2] in numbers):
        folder = Path(out) / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(master_notebook(path, root), folder / path.name)
        (folder / "requirements.txt").write_text(f"calirl-lite=={__version__}\n", encoding="utf-8")
        run_otter(["assign", path.name, "dist"], folder)
        written[path.stem] = folder / "dist" / "student" / path.name
    return written


class OtterError(RuntimeError):
    """otter-grader failed: the command, the folder and the end of its output."""


def run_otter(args: list[str], cwd: Path) -> None:
    """``otter ARGS`` in ``cwd`` (as a module of this Python), its output kept for the error where it fails."""
    done = subprocess.run([sys.executable, "-m", "otter", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise OtterError(f"otter {' '.join(args)} failed in {cwd}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def grade(autograder: str | Path, notebook: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Score a filled notebook with an exported autograder zip (``otter run``, on this machine): writes
    ``scores.json`` (exercise → marks, the total, the seconds it took) beside otter's ``results.json`` in ``out``
    (default: a ``graded-<notebook>`` folder beside the notebook) and returns it."""
    require_otter()
    notebook, autograder = Path(notebook).resolve(), Path(autograder).resolve()
    for path in (notebook, autograder):
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    folder = Path(out) if out else notebook.parent / f"graded-{notebook.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run_otter(["run", "-a", str(autograder), "-o", str(folder.resolve()), str(notebook)], folder)
    tests = json.loads((folder / "results.json").read_text(encoding="utf-8"))["tests"]
    marks = {t["name"]: float(t["score"]) for t in tests if "score" in t}
    scores = {"notebook": str(notebook), "exercises": marks, "total": sum(marks.values()),
              "possible": sum(float(t["max_score"]) for t in tests if "max_score" in t), "seconds": time.perf_counter() - start}
    atomic_write_json(folder / "scores.json", scores)
    return scores
