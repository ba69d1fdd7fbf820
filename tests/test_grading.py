"""Grading with otter-grader: the student version holds no solution, the autograder gives every exercise full marks on
the solutions and none on the untouched stubs, and `calirl class grade` writes the marks per exercise."""

import json
import re

import nbformat
import pytest

from calirl_lite.exercises import EXERCISES
from calirl_lite.grading import export, master_notebook, solution_body
from tests.test_exercises import ROOT

pytest.importorskip("otter", reason="the class extra (otter-grader) is not installed")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("class")
    return out, export(out)


def questions(master):
    """(exercise name, the solved cell, the hidden test) of each question of a master notebook."""
    cells, found = master.cells, []
    for i, cell in enumerate(cells):
        m = re.match(r"# BEGIN QUESTION\nname: ([\w-]+)", cell.source) if cell.cell_type == "raw" else None
        if m:
            found.append((m.group(1), cells[i + 2].source, cells[i + 5].source))
    return found


@pytest.mark.slow
def test_every_notebook_with_exercises_is_exported_and_its_student_version_holds_no_solution(exported):
    out, students = exported
    assert sorted(s[:2] for s in students) == sorted({e.notebook for e in EXERCISES.values()})
    for stem, student in students.items():
        nb = nbformat.read(student, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        for name in (n for n, e in EXERCISES.items() if e.notebook == stem[:2]):
            body = solution_body(name, ROOT)
            assert body.strip().splitlines()[-1].strip() not in text, f"{name}: the solution is in the student notebook"
            assert f'check("{name}"' in text
        assert "BEGIN SOLUTION" not in text and "EXERCISES[" not in text  # neither the solutions nor the hidden tests
        assert list((out / stem / "dist" / "autograder").glob("*.zip"))


@pytest.mark.parametrize("number", sorted({e.notebook for e in EXERCISES.values()}))
def test_the_autograders_tests_pass_the_solutions_and_fail_the_stubs(number):
    """What otter runs for each question — the solved cell, then its test — on the solution and on the stub."""
    path = next((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    stubs = {re.search(r'check\("([\w-]+)"', c.source).group(1): c.source for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "code" and 'check("' in c.source}
    found = questions(master_notebook(path, ROOT))
    assert [n for n, _, _ in found] == list(stubs)
    for name, solved, test in found:
        namespace: dict = {}
        exec(solved.replace("# BEGIN SOLUTION", "").replace("# END SOLUTION", ""), namespace)  # the solved cell, as the autograder's notebook has it
        exec(test, namespace)  # passes: no AssertionError
        stub: dict = {}
        exec(stubs[name], stub)  # the untouched stub prints "not done yet"
        with pytest.raises((AssertionError, NotImplementedError)):
            exec(test, stub)


@pytest.mark.slow
def test_grading_a_handed_in_notebook_writes_each_exercises_marks(exported, tmp_path, capsys):
    from calirl_lite.cli import main

    out, students = exported
    stem = "01_compounding_shift"
    zip_file = next((out / stem / "dist" / "autograder").glob("*.zip"))
    solved = out / stem / "dist" / "autograder" / f"{stem}.ipynb"
    assert main(["class", "grade", str(zip_file), str(solved), "--out", str(tmp_path / "solved")]) == 0
    scores = json.loads((tmp_path / "solved" / "scores.json").read_text())
    names = [n for n, e in EXERCISES.items() if e.notebook == "01"]
    assert scores["exercises"] == {n: 1.0 for n in names} and scores["total"] == scores["possible"] == len(names)
    assert main(["class", "grade", str(zip_file), str(students[stem]), "--out", str(tmp_path / "stub")]) == 0
    assert json.loads((tmp_path / "stub" / "scores.json").read_text())["exercises"] == {n: 0.0 for n in names}
    assert f"total 0 of {len(names)}" in capsys.readouterr().out
    assert main(["class", "grade", str(zip_file), str(tmp_path / "missing.ipynb")]) == 2  # a clear error, not a traceback
