"""Test-wide settings: smoke mode on, results and runs in a temporary folder, no display."""

import os
import tempfile

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


def pytest_sessionfinish(session, exitstatus):
    import shutil

    for folder in _MADE:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def chat_stub():
    """An OpenAI-compatible chat endpoint on 127.0.0.1: ``(base_url, calls, reply)``; ``reply[0]`` is a function of the
    request body (and the number of calls so far) giving the reply text. Any path but /v1/chat/completions is a 404."""
    import http.server
    import json
    import threading

    calls: list = []
    reply = [lambda body, n: "ok"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(body)
            if self.path != "/v1/chat/completions":
                self.send_response(404)
                self.end_headers()
                return
            out = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply[0](body, len(calls))}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls, reply
    server.shutdown()
