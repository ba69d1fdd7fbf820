"""A real browser: JupyterLab served on 127.0.0.1, opened in headless Chromium (Debian's ``chromium``, driven by
Playwright), runs notebooks top to bottom: notebook 02's dialogue inspector must render and answer a click and its turn-by-turn
view redraw for a moved slider, notebook 01's step-by-step shift figure must redraw for a moved slider, and notebook
06's simulator designer must take a moved slider and a pressed button, train, and draw a new curve. Each notebook is
then saved from the page and read back: every code cell ran, and none raised. These runs are those notebooks'
execution in the test suite (nbmake leaves them out where this test runs: see the conftest).

It runs as it is in both front ends the kit allows: JupyterLab 4 with ipywidgets 8 (``make test``, the main .venv)
and JupyterLab 3.6 with ipywidgets 7.7, Colab's (``make lowest``: scripts/lowest.py). The two differ in their sliders
(``SLIDER_HANDLE``); the rest of what it uses (menus, widget classes, output images) is the same in both.

``.ci/run`` (``make test``) installs what this needs: ``scripts/browser.sh`` puts Debian's chromium on the
machine, and ``playwright`` is in requirements-dev.txt (only its driver is used; no browser is downloaded).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("02_users_and_simulators.ipynb", "06_which_simulator_errors_matter.ipynb", "01_compounding_shift.ipynb")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A slider's handle, which takes the focus and the keys: ipywidgets 8 draws its sliders with noUiSlider, ipywidgets 7
# with jQuery UI (each page has only one of the two)
SLIDER_HANDLE = ".noUi-handle, .ui-slider-handle"


def chromium() -> str:
    """Chromium's path. Where it is missing the test is skipped with the reason — except in CI (``CI=true``), where
    ``scripts/browser.sh`` installs it, so a missing browser there is a failure."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        why = "this test needs Debian's chromium (/usr/bin/chromium): run `bash scripts/browser.sh` (make test does; it needs root or sudo)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise RuntimeError(why)
        pytest.skip(why)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab on 127.0.0.1 with a token for the module, serving copies of the notebooks (the committed ones are
    never touched); ``(url, token, folder of the copies)``. Runs go to the test session's runs folder."""
    chromium()  # no browser, no point starting the lab (skipped, or an error in CI)
    tmp_path = tmp_path_factory.mktemp("browser")
    work = tmp_path / "lab"
    work.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, work / name)
    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, CALIRL_SMOKE="1", CALIRL_RESULTS=str(tmp_path / "results"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
    env.pop("MPLBACKEND", None)  # the kernel's own (inline) backend, as a person's JupyterLab has: figures are images
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.news_url=",
                             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI runs as root
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"JupyterLab did not start; see {tmp_path / 'jupyterlab.log'}:\n" + (tmp_path / "jupyterlab.log").read_text()[-2000:])
            time.sleep(0.5)
    yield url, token, work
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def open_and_run_all(p, url: str, token: str, notebook: str):
    """A page with ``notebook`` open in JupyterLab and Run All Cells started."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS, headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    workspace = notebook.split("_")[0]  # a workspace of its own: the lab serves every test, and would reopen the last one's tabs
    page.goto(f"{url}/lab/workspaces/nb{workspace}/tree/{notebook}?token={token}")
    expect(visible_notebook(page).locator(".jp-Cell").first).to_be_visible(timeout=90_000)
    try:  # a fresh JupyterLab may ask which kernel to start; the notebook's own (python3) is preselected
        page.get_by_role("dialog").get_by_role("button", name="Select", exact=True).click(timeout=20_000)
    except PlaywrightTimeout:
        pass  # it started the notebook's kernel without asking
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    return browser, page


def visible_notebook(page):
    """The notebook on show (a workspace may hold others, hidden)."""
    return page.locator(".jp-Notebook").filter(visible=True).first


def saved_and_every_cell_ran(page, work: Path, notebook: str) -> None:
    """Wait until no cell is running, save the notebook from the page, and check the saved copy: every code cell was
    executed and none raised."""
    from playwright.sync_api import expect

    expect(page.locator(".jp-InputArea-prompt", has_text="[*]")).to_have_count(0, timeout=600_000)
    before = (work / notebook).stat().st_mtime_ns
    visible_notebook(page).focus()
    page.keyboard.press("Control+s")
    deadline = time.time() + 60
    while (work / notebook).stat().st_mtime_ns == before:
        assert time.time() < deadline, "the notebook was not saved"
        time.sleep(0.5)
    time.sleep(1)
    nb = nbformat.read(work / notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), [c.source[:60] for c in code if c.execution_count is None]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, [f"{e.get('ename')}: {e.get('evalue')}" for e in errors]


def slide_and_see_the_figure_change(page, label: str, key: str) -> None:
    """Move the slider called ``label`` with ``key`` (End, Home …) and wait for the figure beside it to be redrawn."""
    from playwright.sync_api import expect

    slider = page.locator(".widget-slider").filter(has=page.get_by_text(label, exact=True)).last
    expect(slider).to_be_visible(timeout=600_000)
    figure = page.locator(".widget-vbox", has=slider).last.locator(".jp-OutputArea-output img").last
    expect(figure).to_be_visible(timeout=120_000)
    before = figure.get_attribute("src")
    slider.locator(SLIDER_HANDLE).focus()
    page.keyboard.press(key)
    expect(figure).not_to_have_attribute("src", before, timeout=120_000)  # recomputed in the kernel, redrawn in the page


@pytest.mark.executes("02_users_and_simulators.ipynb")
def test_jupyterlab_runs_notebook_02_and_the_inspector_answers_a_click(lab):
    from playwright.sync_api import expect, sync_playwright

    url, token, work = lab
    with sync_playwright() as p:
        browser, page = open_and_run_all(p, url, token, NOTEBOOKS[0])
        # the inspector: its buttons and its dialogue view, rendered by ipywidgets in the page
        nxt = page.get_by_role("button", name="next ▶")
        expect(nxt).to_be_visible(timeout=600_000)
        inspector = page.locator(".widget-vbox", has=nxt).last
        messages = inspector.locator(".calirl-dialogue .calirl-user, .calirl-dialogue .calirl-assistant")
        expect(messages).to_have_count(1, timeout=60_000)  # the inspector opens on the first message
        nxt.click()
        expect(messages).to_have_count(2, timeout=60_000)  # a click in the browser reaches the kernel and back
        page.get_by_role("button", name="whole dialogue").click()
        expect(inspector.locator(".calirl-dialogue")).to_contain_text("scores", timeout=60_000)
        assert messages.count() >= 2
        slide_and_see_the_figure_change(page, "turn", "End")  # the turn-by-turn view, at the last turn
        if os.environ.get("CALIRL_BROWSER_SHOT"):  # a picture of the page, for a person to look at
            page.screenshot(path=os.environ["CALIRL_BROWSER_SHOT"])
        saved_and_every_cell_ran(page, work, NOTEBOOKS[0])
        browser.close()


@pytest.mark.executes("01_compounding_shift.ipynb")
def test_jupyterlab_runs_notebook_01_and_the_shift_redraws_step_by_step_for_a_moved_slider(lab):
    from playwright.sync_api import sync_playwright

    url, token, work = lab
    with sync_playwright() as p:
        browser, page = open_and_run_all(p, url, token, NOTEBOOKS[2])
        slide_and_see_the_figure_change(page, "H", "Home")  # the horizon of the step-by-step view, down to its least
        slide_and_see_the_figure_change(page, "ε", "End")  # the learner's error, up to its most (the explorer above has one too)
        if os.environ.get("CALIRL_BROWSER_SHOT_01"):
            page.screenshot(path=os.environ["CALIRL_BROWSER_SHOT_01"])
        saved_and_every_cell_ran(page, work, NOTEBOOKS[2])
        browser.close()


@pytest.mark.executes("06_which_simulator_errors_matter.ipynb")
def test_jupyterlab_runs_notebook_06_and_the_designer_trains_on_a_moved_slider(lab):
    from playwright.sync_api import expect, sync_playwright

    url, token, work = lab
    with sync_playwright() as p:
        browser, page = open_and_run_all(p, url, token, NOTEBOOKS[1])
        button = page.get_by_role("button", name="train against it")
        expect(button).to_be_visible(timeout=600_000)  # the lab (smoke grid) ran and the designer rendered
        designer = page.locator(".widget-vbox", has=button).last
        slider = designer.locator(".widget-slider", has=page.get_by_text("accepts a wrong answer"))
        slider.locator(SLIDER_HANDLE).focus()
        page.keyboard.press("End")  # all the way: a sycophantic simulator
        expect(slider.locator(".widget-readout")).to_have_text("1.00", timeout=30_000)
        button.click()
        status = designer.locator(".widget-html").last
        expect(status).to_contain_text("#1 p_accept_wrong=1", timeout=300_000)  # the run finished with the moved slider's simulator
        expect(status).to_contain_text("the real users' accuracy", timeout=10_000)
        expect(designer.locator(".jp-OutputArea-output img")).to_have_count(1, timeout=60_000)  # the figure with the new curve
        if os.environ.get("CALIRL_BROWSER_SHOT_06"):
            page.screenshot(path=os.environ["CALIRL_BROWSER_SHOT_06"], full_page=True)
        saved_and_every_cell_ran(page, work, NOTEBOOKS[1])
        browser.close()
