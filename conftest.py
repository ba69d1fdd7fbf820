"""Test-wide settings: smoke mode on, results and runs in a temporary folder, no display; the session's shared runs.

``make test`` runs the suite in two processes (pytest-xdist, ``-n 2 --dist loadfile``: one per core, each test file
whole in one process, one torch thread each). Markers (``pytest -m "not slow"`` runs the fast part in a few minutes):

* ``slow`` — a test that trains, executes a notebook, builds a wheel or drives a browser (tens of seconds or more);
* ``browser`` — JupyterLab in headless Chromium (``scripts/browser.sh`` installs it);
* ``gpu`` — needs CUDA (skipped without it).

What several tests (and notebooks) read — the smoke world, the smoke calibrations, the four methods' smoke runs,
SmolLM2's runs — is made once per session by the fixtures below (:mod:`tests.shared`), whichever test asks first,
into the session's runs folder: a test's result never depends on the order the tests run in.
"""

import os
import tempfile

if os.environ.get("PYTEST_XDIST_WORKER"):  # two test processes on two cores: one thread each (before torch is imported)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("CALIRL_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The notebooks executed by nbmake inherit these folders, so a test run never writes into results/, runs/ or the
# user's cache; the session's built toy worlds and converted models are shared by every test. Folders this file
# made are removed when the session ends (a whole run writes a few GB: SmolLM2's converted weights and policies).
_MADE = []
for _name, _prefix in (("CALIRL_RESULTS", "results"), ("CALIRL_CACHE", "cache"), ("CALIRL_RUNS", "runs")):
    if _name not in os.environ:
        os.environ[_name] = tempfile.mkdtemp(prefix=f"calirl-test-{_prefix}-")
        _MADE.append(os.environ[_name])


import pytest  # noqa: E402

from calirl_lite.notebook_runner import steady_replies  # noqa: E402
from tests import shared  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    import shutil

    for folder in _MADE:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "executes(notebook): the test executes this notebook top to bottom, so nbmake leaves it out")
    config.pluginmanager.register(EachNotebookOnce(), "each-notebook-once")
    steady_replies()  # nbmake's client hears every cell's reply at once, also on a busy machine


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":  # a notebook executed by nbmake is a slow test
            item.add_marker(pytest.mark.slow)


class EachNotebookOnce:
    """Every notebook is executed once per test run: where a selected test executes it (the browser test, the
    wheel's test), nbmake leaves it out. A test that would be skipped (no browser) leaves it to nbmake."""

    @pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they deselect
    def pytest_collection_modifyitems(self, config, items):
        covered = {m.args[0] for item in items for m in item.iter_markers("executes") if not _skipped(item)}
        dropped = [item for item in items if item.path.suffix == ".ipynb" and item.path.name in covered]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if item not in dropped]


def _skipped(item) -> bool:
    """Whether the test will be skipped for want of what it needs (the browser test without chromium, outside CI)."""
    import shutil

    return any(m.name == "browser" for m in item.iter_markers()) and not (shutil.which("chromium") or shutil.which("chromium-browser"))


def pytest_runtest_setup(item):
    """A notebook executed by nbmake gets what it reuses made first (the same runs the tests share)."""
    if item.path.suffix == ".ipynb":
        shared.before_notebook(item.path.name)


@pytest.fixture(scope="session")
def ctx():
    """The session's context: smoke mode, the temporary folders above, world seed 0 at smoke size."""
    return shared.ctx()


@pytest.fixture(scope="session")
def full_ctx():
    """A full-size context on the world shipped with the kit (nothing is built), runs in the session's folder."""
    return shared.full_ctx()


@pytest.fixture(scope="session")
def world(ctx):
    """The smoke world, built once per session."""
    return ctx.toy_world(verbose=False)


@pytest.fixture(scope="session")
def calibrated(ctx):
    """The smoke calibration runs of both toy tasks (their stages), made once per session."""
    return shared.calibrations()


@pytest.fixture(scope="session")
def method_runs(ctx):
    """Every method's smoke run on arith-chat, seed 0 (their results by method), trained once per session."""
    return shared.method_runs()


@pytest.fixture
def chat_stub():
    """An OpenAI-compatible chat endpoint on 127.0.0.1: ``(base_url, calls, reply)``; ``reply[0]`` is a function of the
    request body (and the number of calls so far) giving the reply text. Any path but /v1/chat/completions is a 404."""
    reply = [lambda body, n: "ok"]
    with shared.chat_server(lambda body, n: reply[0](body, n)) as (url, calls):
        yield url, calls, reply
