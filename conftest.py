"""Test-wide settings: smoke mode on, results and runs in a temporary folder, no display."""

import os
import tempfile

os.environ.setdefault("CALIRL_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The notebooks executed by nbmake inherit this, so a test run never writes into results/.
os.environ.setdefault("CALIRL_RESULTS", tempfile.mkdtemp(prefix="calirl-test-results-"))
# Built toy worlds and converted models for the whole test session (notebooks included).
os.environ.setdefault("CALIRL_CACHE", tempfile.mkdtemp(prefix="calirl-test-cache-"))
os.environ.setdefault("CALIRL_RUNS", tempfile.mkdtemp(prefix="calirl-test-runs-"))
