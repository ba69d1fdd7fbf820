"""The endpoint client against servers that misbehave: each call ends within its deadline, with the kit's error
naming the endpoint; transient failures are retried."""

import http.server
import json
import socket
import threading
import time

import pytest

from calirl_lite.cli import main
from calirl_lite.endpoints import EndpointError, chat_completion

GOOD = json.dumps({"choices": [{"message": {"content": "Score: 7"}}]}).encode()


@pytest.fixture
def hostile():
    """``(base_url, mode, calls)``: set ``mode[0]`` to drip, close, short, badutf8, null, huge or flaky (503 twice,
    then a good reply); ``calls`` counts the requests."""
    mode, calls = ["ok"], []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            calls.append(mode[0])
            if mode[0] == "close":
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if mode[0] == "flaky" and len(calls) <= 2:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = {"null": json.dumps({"choices": [{"message": {"content": None}}]}).encode(),
                    "badutf8": b'{"choices": [{"message": {"content": "Score: 7 \xff"}}]}'}.get(mode[0], GOOD)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            length = {"short": len(body) + 100, "huge": 10**12}.get(mode[0], len(body))
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if mode[0] == "drip":
                try:
                    for b in body:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(0.3)
                except OSError:  # the client hung up at its deadline
                    return
            else:
                self.wfile.write(body)
                self.wfile.flush()
            if mode[0] == "short":
                self.connection.shutdown(socket.SHUT_RDWR)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", mode, calls
    server.shutdown()


@pytest.mark.parametrize("how, message", [
    ("drip", r"gave no complete reply in time \(the deadline is 2 s\)"),
    ("close", r"closed the connection without a reply \(3 tries in"),
    ("short", r"sent a reply cut short \(\d+ bytes of \d+\) \(3 tries"),
    ("badutf8", r"sent bytes that are not UTF-8 \(byte 0xff"),
    ("null", r"gave null as choices\[0\].message.content, not text"),
    ("huge", r"announced a reply of 1,000,000,000,000 bytes"),
])
def test_a_misbehaving_endpoint_ends_within_its_deadline_with_the_kits_error(hostile, how, message):
    url, mode, _ = hostile
    mode[0] = how
    start = time.monotonic()
    with pytest.raises(EndpointError, match=f"^endpoint {url} {message}"):
        chat_completion(url, "m", [{"role": "user", "content": "hi"}], timeout=2.0, api_key="sk-secret")
    assert time.monotonic() - start < 2.5


def test_transient_failures_are_retried_with_backoff(hostile):
    url, mode, calls = hostile
    mode[0] = "flaky"
    start = time.monotonic()
    assert chat_completion(url, "m", [{"role": "user", "content": "hi"}], timeout=10.0) == "Score: 7"
    assert len(calls) == 3 and time.monotonic() - start >= 0.5 + 1.0  # waited 0.5 s, then 1 s


def test_the_api_key_never_reaches_an_error(hostile):
    url, mode, _ = hostile
    mode[0] = "null"
    with pytest.raises(EndpointError) as e:
        chat_completion(url, "m", [{"role": "user", "content": "hi"}], api_key="sk-secret-123")
    assert "sk-secret" not in str(e.value)


def test_evaluate_with_a_dripping_judge_stops_at_its_deadline_in_one_line(hostile, capsys):
    url, mode, _ = hostile
    mode[0] = "drip"
    start = time.monotonic()
    assert main(["evaluate", "--seeds", "0", "--n-eval", "1", "--judge-endpoint", url, "--judge-model", "j", "--judge-timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"calirl evaluate: error: endpoint {url} gave no complete reply in time (the deadline is 1 s)"
    assert time.monotonic() - start < 60
