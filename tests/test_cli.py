"""The ``calirl`` command: outputs, clean errors, and the main job's notebook runner."""

import json
import subprocess
import sys

import nbformat
import pytest

from calirl_lite.cli import main


def test_shift_writes_json_and_png(tmp_path, capsys):
    assert main(["shift", "--horizons", "5", "10", "20", "40", "80", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "shift.json").read_text())
    rows = data["per_horizon"]
    assert [r["H"] for r in rows] == [5, 10, 20, 40, 80]
    for r in rows:
        for key in ("gap_static", "gap_interactive", "gap_simulator", "bound_static", "bound_simulator", "eps", "delta"):
            assert isinstance(r[key], float)
        assert r["gap_static"] <= r["bound_static"] and r["gap_simulator"] <= r["bound_simulator"]
    assert (tmp_path / "shift.png").stat().st_size > 1000
    assert "gap ∝ H^" in capsys.readouterr().out


def test_settings_flags_reach_the_run(tmp_path):
    assert main(["shift", "--horizons", "4", "8", "--eps", "0.01", "--delta", "0.02", "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "shift.json").read_text())["per_horizon"][0]
    assert (row["eps"], row["delta"]) == (0.01, 0.02)


@pytest.mark.parametrize(
    "args, field",
    [
        (["--horizons", "0", "5"], "horizons"),
        (["--eps", "1.5"], "eps"),
        (["--delta", "-0.1"], "delta"),
        (["--r-max", "-2"], "r_max"),
    ],
)
def test_bad_settings_end_with_one_clear_line(tmp_path, capsys, args, field):
    assert main(["shift", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    assert not (tmp_path / "shift.json").exists()


def test_python_dash_m_and_help_show_field_docs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "calirl_lite", "shift", "--help"], capture_output=True, text=True, check=True).stdout
    assert "per-step error" in out and "--horizons" in out
    bad = subprocess.run([sys.executable, "-m", "calirl_lite", "shift", "--eps", "2", "--out", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "eps must lie in [0, 1]" in bad.stderr and "Traceback" not in bad.stderr


def test_notebooks_runs_notebooks_and_keeps_executed_copies(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from calirl_lite.env import context\nprint(context().results_dir('x'))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "07_tiny.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "results"
    assert main(["notebooks", "--notebooks", str(path), "--out", str(out)]) == 0
    executed = nbformat.read(out / "notebooks" / "07_tiny.ipynb", as_version=4)
    assert str(out / "x") in executed.cells[0].outputs[0]["text"]  # the kernel wrote under --out
    assert nbformat.read(path, as_version=4).cells[0].outputs == []  # the source stays clean


def test_notebooks_names_a_missing_notebook(tmp_path, capsys):
    assert main(["notebooks", "--notebooks", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path)]) == 2
    assert "nope.ipynb" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["shift", "world build", "bench rollout", "bench train", "bench memory", "bench world", "bench parsing",
                                     "calibrate", "train", "evaluate", "reproduce", "notebooks", "class export", "class grade"])
def test_every_command_prints_its_help(command, capsys):
    from calirl_lite.cli import COMMANDS, main

    assert command.split()[0] in COMMANDS
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0 and "--" in capsys.readouterr().out  # a help text with "5% warm-up" in it once crashed argparse
