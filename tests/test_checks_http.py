"""The http check kind against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from planrun import ExitCode

from .conftest import CheckRun

# Set when the module's server shuts down: /slow answers then, not seconds later during another test.
RELEASE = threading.Event()


class Server(ThreadingHTTPServer):
    # Join the handler threads on close, so that none outlives this module and writes
    # into another test's captured output (#27: the stray BrokenPipeError traceback).
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client stopped reading on purpose (/big, /slow): not worth a traceback
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        routes = {
            "/health": lambda: self._send(200, b"ok: all good"),
            "/user": lambda: self._send(200, b'{"user": {"id": 7, "admin": false}}', "application/json"),
            "/moved": lambda: self._send(302, b"", Location="/health"),
            "/loop": lambda: self._send(302, b"", Location="/loop"),
            "/ftp": lambda: self._send(302, b"", Location="ftp://127.0.0.1/x"),
            "/big": lambda: self._send(200, b"x" * (2 << 20)),
            "/slow": lambda: (RELEASE.wait(30), self._send(200, b"late")),
        }
        routes.get(self.path, lambda: self._send(404, b"no such page"))()

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        data = json.loads(self.rfile.read(length) or b"{}")
        ok = self.headers.get("Content-Type") == "application/json" and data.get("password") == "x"
        self._send(200 if ok else 401, b'{"token": "t"}' if ok else b'{"error": "bad password"}', "application/json")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    RELEASE.clear()
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        RELEASE.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize(
    "criterion",
    [
        "http: {url: '{s}/health', status: 200}",
        "http: '{s}/health'",
        "http: {url: '{s}/health', body_contains: all good}",
        "http: {url: '{s}/moved', status: 200, body_contains: ok}",
        "http: {url: '{s}/nothing', status: 404}",
        "http: {method: HEAD, url: '{s}/health'}",
        "http: {url: '{s}/user', json_path: user.id, equals: 7}",
        "http: {url: '{s}/user', json_path: user.admin, equals: false}",
        "http: {method: POST, url: '{s}/login', json: {password: x}, status: 200, json_path: token, equals: t}",
        "http: {method: POST, url: '{s}/login', json: {password: y}, status: 401}",
        "'HTTP GET {s}/health returns 200'",
    ],
)
def test_http_passes(check: CheckRun, server: str, criterion: str) -> None:
    result = check(criterion.replace("{s}", server))
    assert result.ret == ExitCode.OK, result


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ("http: {url: '{s}/nothing', status: 200}", "GET {s}/nothing: expected status 200, got 404"),
        ("http: '{s}/nothing'", "GET {s}/nothing: expected a success status, got 404"),
        ("http: {url: '{s}/health', body_contains: broken}", "GET {s}/health: the body does not contain 'broken'"),
        ("http: {url: '{s}/user', json_path: user.id, equals: 8}", "GET {s}/user: user.id: expected 8, got 7"),
        (
            "http: {url: '{s}/user', json_path: user.name, equals: x}",
            "GET {s}/user: user.name is missing from the JSON body",
        ),
        ("http: {url: '{s}/health', json_path: a, equals: 1}", "GET {s}/health: the body is not JSON"),
        ("http: {url: '{s}/loop'}", "GET {s}/loop: *redirect*"),
        ("http: {url: '{s}/ftp'}", "GET {s}/ftp: redirect to a non-HTTP URL ftp://127.0.0.1/x"),
        ("http: {url: '{s}/big'}", "GET {s}/big: the response body is over 1048576 bytes"),
        ("'HTTP POST {s}/login returns 200'", "POST {s}/login: expected status 200, got 401"),
    ],
)
def test_http_fails_with_expected_and_actual(check: CheckRun, server: str, criterion: str, message: str) -> None:
    result = check(criterion.replace("{s}", server))
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"  {message.replace('{s}', server)}"])


def test_http_connection_refused_fails(check: CheckRun) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = check(f"http: 'http://127.0.0.1:{port}/'")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"  GET http://127.0.0.1:{port}/: *Connection refused*"])


def test_http_timeout_is_an_error(check: CheckRun, server: str) -> None:
    result = check(f"{{http: '{server}/slow', timeout: 0.5}}")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"  timed out: GET {server}/slow did not answer in 0.5s"])


def test_http_only_http_urls(check: CheckRun) -> None:
    result = check("http: 'file:///etc/passwd'")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["c.plan.yaml:6:15: http: url: 'file:///etc/passwd': only http and https URLs are checked"]
    )
