"""The kit without its repository: a wheel installed in a fresh virtual environment outside the checkout runs
notebook 00 copied alone into an empty folder, in class mode, on the toy world shipped inside the wheel (nothing is
built); and the notebooks' install cell installs the kit from a package index (the built wheel served with
--find-links), as Colab would from the registry.

The fresh environments see the set-up's packages (torch, transformers, TRL, Jupyter …) through one read-only
link, without the kit itself, so that the test downloads nothing and the kit can only come from the wheel.
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOKS = """
import importlib, sys, nbformat, nbclient
if importlib.util.find_spec("calirl_lite"):  # (the install cell's test starts without the kit)
    from calirl_lite.notebook_runner import steady_replies
    steady_replies()
for name in sys.argv[1:]:
    nb = nbformat.read(name, as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
    nbformat.write(nb, "executed-" + name)
importlib.invalidate_caches()
print(importlib.import_module("calirl_lite").__file__)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (found,) = out.glob("calirl_lite-*.whl")
    return found


def fresh_venv(folder: Path) -> tuple[Path, dict[str, str]]:
    """A new virtual environment (its python and the environment to run it in) that sees the set-up's packages,
    less the kit, through a .pth file pointing at a folder of links to them."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)  # pip too comes from the set-up
    (folder / "home").mkdir()
    python = folder / "venv" / "bin" / "python"
    shared = folder / "setup" / "site-packages"  # (named so: dill pickles modules from other folders by value, which fails)
    shared.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "calirl" not in entry.name.lower() and not entry.name.startswith("__editable__") and entry.suffix != ".pth":
            (shared / entry.name).symlink_to(entry)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "setup-packages.pth").write_text(str(shared) + "\n")
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(folder / "venv"), "--name", "python3"], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALIRL_", "JUPYTER", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(CALIRL_SMOKE="1", HOME=str(folder / "home"), XDG_CACHE_HOME=str(folder / "home" / ".cache"),
               JUPYTER_PATH=str(folder / "venv" / "share" / "jupyter"), JUPYTER_DATA_DIR=str(folder / "home" / "jupyter"),
               PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}", MPLBACKEND="Agg")
    return python, env


@pytest.mark.executes("00_quickstart.ipynb")
def test_notebook_00_runs_from_the_wheel_alone_in_an_empty_folder_on_the_shipped_world(tmp_path, wheel):
    python, env = fresh_venv(tmp_path)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, env=env)
    work = tmp_path / "class"
    work.mkdir()
    (work / "00_quickstart.ipynb").write_bytes((ROOT / "notebooks" / "00_quickstart.ipynb").read_bytes())
    env = {**{k: v for k, v in env.items() if k != "CALIRL_SMOKE"}, "CALIRL_CLASS": "1"}  # class mode: the full-size world, shipped
    done = subprocess.run([str(python), "-c", RUN_NOTEBOOKS, "00_quickstart.ipynb"], cwd=work, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(tmp_path / "venv") in done.stdout and str(ROOT) not in done.stdout  # the kit came from the wheel
    cache = tmp_path / "home" / ".cache" / "calirl_lite"
    assert not list((cache / "cache").glob("tiny-seed0-*")) and any((cache / "runs").glob("train-oracle-*/eval.json"))  # no world was built
    executed = json.loads((work / "executed-00_quickstart.ipynb").read_text())
    assert any("site-packages/calirl_lite/prebuilt/tiny-seed0" in "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert not (work / "runs").exists() and not (work / "data").exists()
    install = executed["cells"][1]
    assert install["id"] == "install" and install["outputs"] == []  # the kit was there: the cell did nothing


def test_the_install_cell_installs_the_kit_from_a_package_index(tmp_path, wheel):
    python, env = fresh_venv(tmp_path)
    probe = [str(python), "-c", "import importlib.util, torch; print(importlib.util.find_spec('calirl_lite'), torch.__version__)"]
    before = subprocess.run(probe, capture_output=True, text=True, env=env, check=True, cwd=tmp_path).stdout.split()
    assert before[0] == "None"  # no kit in this environment yet
    nb = {"cells": [json.loads((ROOT / "notebooks" / "00_quickstart.ipynb").read_text())["cells"][1]], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "install.ipynb").write_text(json.dumps(nb))
    env.update(PIP_FIND_LINKS=str(wheel.parent), PIP_NO_INDEX="1")  # the wheel as the index: nothing else can be fetched
    done = subprocess.run([str(python), "-c", RUN_NOTEBOOKS, "install.ipynb"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    after = subprocess.run([str(python), "-c", "import calirl_lite, torch; print(calirl_lite.__file__, calirl_lite.__version__, torch.__version__)"],
                           capture_output=True, text=True, env=env, check=True, cwd=tmp_path).stdout.split()
    assert after[0].startswith(str(tmp_path / "venv")) and after[2] == before[1]  # installed from the wheel; torch untouched
