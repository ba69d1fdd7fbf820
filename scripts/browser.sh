#!/usr/bin/env bash
# The browser of tests/test_browser.py: Debian's chromium (headless, driven by Playwright's driver from
# requirements-dev.txt; Playwright downloads no browser of its own). Installed once with apt-get when missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
  echo "tests/test_browser.py needs Debian's chromium: run 'sudo apt-get install -y chromium' once" >&2; exit 1
fi
"${SUDO[@]}" apt-get install -y -q chromium >/dev/null 2>&1 \
  || { "${SUDO[@]}" apt-get update -q >/dev/null && "${SUDO[@]}" apt-get install -y -q chromium >/dev/null; }
chromium --version
