"""Every checked exercise: its solution (solutions/, which no notebook imports) passes, and the stub cell in its
notebook reports "not done yet" without raising."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

from calirl_lite.exercises import EXERCISES, check, hint

ROOT = Path(__file__).resolve().parent.parent


def solution(name: str):
    notebook = EXERCISES[name].notebook
    path = next((ROOT / "solutions").glob(f"ex{notebook}_*.py"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name.replace("-", "_"))


def stub_cells() -> dict[str, tuple[str, str]]:
    """exercise name → (notebook, the source of its stub cell)."""
    found = {}
    for path in sorted((ROOT / "notebooks").glob("0[0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and 'check("' in cell.source:
                name = cell.source.split('check("', 1)[1].split('"', 1)[0]
                assert name not in found, f"{name} is checked twice"
                found[name] = (path.name, cell.source)
    return found


def test_every_notebook_from_01_to_06_has_two_or_three_exercises_and_every_exercise_a_stub():
    stubs = stub_cells()
    assert set(stubs) == set(EXERCISES) and len(EXERCISES) >= 12
    for number in ("01", "02", "03", "04", "05", "06"):
        mine = [n for n, e in EXERCISES.items() if e.notebook == number]
        assert 2 <= len(mine) <= 3 and all(stubs[n][0].startswith(number) for n in mine)
    assert not any("solutions" in source for _, source in stubs.values())  # the notebooks never import the solutions


def test_no_notebook_calls_an_exercises_reference_answer_before_the_exercise():
    import re

    for path in sorted((ROOT / "notebooks").glob("0[0-9]_*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        for name, exercise in EXERCISES.items():
            at = next((i for i, source in enumerate(cells) if f'check("{name}"' in source), None)
            for source in cells[:at] if at is not None else ():
                for function in exercise.reference:
                    assert not re.search(rf"\b{function}\s*\(", source), f"{path.name} calls {function} before exercise {name}"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_solution_passes(name, capsys):
    assert check(name, solution(name)) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_notebook_stub_reports_not_done_without_raising(name, capsys):
    namespace: dict = {}
    exec(stub_cells()[name][1], namespace)  # the committed cell, as Run All runs it (it calls check itself)
    out = capsys.readouterr().out
    assert "not done yet" in out and "Nudge:" in out and "✓" not in out
    assert EXERCISES[name].hint not in out  # the formula only when asked for


def test_a_wrong_answer_gets_a_nudge_the_formula_only_when_asked_and_an_error_in_it_does_not_escape(capsys):
    assert check("tv-distance", lambda p, q: sum(abs(a - b) for a, b in zip(p, q))) is False  # forgot the ½
    out = capsys.readouterr().out
    assert "not yet" in out and EXERCISES["tv-distance"].nudge in out and "½" not in out and "hint('tv-distance')" in out
    assert "½ Σ_x |p(x) − q(x)|" in hint("tv-distance") and "½ Σ_x" in capsys.readouterr().out
    assert check("group-advantages", lambda rewards, g: 1 / 0) is False
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    assert check("failing-simulator", lambda: "p_accept_wrong=0.5") is False  # asking still pays with it
    assert "asking still pays" in capsys.readouterr().out
    assert check("no-such-exercise", None) is False and "the exercises are" in capsys.readouterr().out
