#!/usr/bin/env bash
# The browser of tests/test_browser.py: Debian's chromium (headless, driven by Playwright's driver from
# requirements-dev.txt; Playwright downloads no browser of its own). Installed once with apt-get when missing.
# Where it cannot be installed (no apt-get, no root or sudo: macOS, a shared machine) the browser test is skipped
# with the reason; in CI (CI=true) that is an error.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
cannot() {
  echo "scripts/browser.sh: $1; tests/test_browser.py will be skipped (install Debian's chromium to run it)" >&2
  case "${CI:-}" in 1|true|TRUE|yes) exit 1 ;; *) exit 0 ;; esac
}
command -v apt-get >/dev/null 2>&1 || cannot "no apt-get on this machine"
if [ "$(id -u)" = 0 ]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else cannot "apt-get needs root or passwordless sudo"; fi
"${SUDO[@]}" apt-get install -y -q chromium >/dev/null 2>&1 \
  || { "${SUDO[@]}" apt-get update -q >/dev/null && "${SUDO[@]}" apt-get install -y -q chromium >/dev/null; } \
  || cannot "apt-get could not install chromium"
chromium --version
