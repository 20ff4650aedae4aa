"""The http check against servers that answer badly: every answer fails in one line, nothing crashes.

A raw socket server on 127.0.0.1 writes exactly the bytes each test wants,
however malformed; compile-time problems with the URL and headers are located
collection errors.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner, RunResult

from .conftest import CheckRun

DEEP = 100_000


def _response(status: str, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


ANSWERS: dict[str, bytes] = {
    "/ok": _response("200 OK", b"fine"),
    "/many-headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
    "/long-header": b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n",
    "/long-status": b"HTTP/1.1 200 " + b"O" * 200_000 + b"\r\n\r\n",
    "/not-http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "/escapes": b"\x1b]0;PWNED\x07\x1b[2J\x9b31m\r\n",
    "/status-999999": b"HTTP/1.1 999999 OK\r\nContent-Length: 0\r\n\r\n",
    "/status-999": _response("999 Odd"),
    "/http2": b"HTTP/2.0 200 OK\r\n\r\n",
    "/empty": b"",
    "/short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
    "/bad-chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    "/cr-in-header": b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\x1b[2J\r\nContent-Length: 2\r\n\r\nok",
    "/folded-location": b"HTTP/1.1 302 Found\r\nLocation: /ok\r\n\tInjected: 1\r\nContent-Length: 0\r\n\r\n",
    "/deep-json": _response("200 OK", b"[" * DEEP + b"]" * DEEP, "Content-Type: application/json"),
    "/to-file": _response("302 Found", b"", "Location: file:///etc/passwd"),
    "/to-FILE": _response("302 Found", b"", "Location: FILE:///etc/passwd"),
    "/to-gopher": _response("301 Moved", b"", "Location: gopher://127.0.0.1:70/x"),
    "/to-ftp": _response("307 Temporary", b"", "Location: ftp://127.0.0.1/x"),
    "/to-bad-port": _response("302 Found", b"", "Location: http://127.0.0.1:84301/"),
    "/to-space": _response("302 Found", b"", "Location: /a b"),
    "/to-ok": _response("302 Found", b"", "Location: /ok"),
    "/see-other": _response("303 See Other", b"", "Location: /ok"),
    "/keep-method": _response("307 Temporary Redirect", b"", "Location: /ok"),
    "/no-location": _response("302 Found", b"moved, but where?"),
}


class RawServer:
    """Answers each request with ``ANSWERS[path]`` byte for byte, then closes; ``/drip`` never ends."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # so that close() does not wait for a connection that never comes
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.requests: list[bytes] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        # Client disconnects are expected here (that is what half these tests do): stay quiet.
        with conn:
            try:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                while length and len(body) < int(length.group(1)):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                data = head + b"\r\n\r\n" + body
                self.requests.append(data)
                path = data.split(b" ", 2)[1].decode("latin-1")
                if path == "/drip":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                    while not self.stop.wait(0.05):
                        conn.sendall(b"x")
                    return
                conn.sendall(ANSWERS.get(path, _response("404 Not Found")))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    server = RawServer()
    try:
        yield server
    finally:
        server.close()


def _assert_one_line_failure(result: RunResult, message: str) -> None:
    __tracebackhide__ = True
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"  {message}", f"FAILED c.plan.yaml::t - * - {message}"])
    assert result.no_traceback(), result
    assert "check crashed" not in result.outstr, result
    for raw_byte in ("\x1b", "\x07", "\x9b", "\r"):
        assert raw_byte not in result.outstr, result


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/many-headers", "GET {s}/many-headers: bad response: *more than 100 headers*"),
        ("/long-header", "GET {s}/long-header: bad response: *more than 65536 bytes*"),
        ("/long-status", "GET {s}/long-status: bad response: *more than 65536 bytes*"),
        ("/not-http", "GET {s}/not-http: not an HTTP response: bad status line 'SSH-2.0-OpenSSH_9.6*'"),
        ("/escapes", "GET {s}/escapes: not an HTTP response: bad status line '\\x1b]0;PWNED\\x07\\x1b[[]2J*'"),
        ("/status-999999", "GET {s}/status-999999: not an HTTP response: bad status line 'HTTP/1.1 999999 OK*'"),
        ("/status-999", "GET {s}/status-999: expected a success status, got 999"),
        ("/http2", "GET {s}/http2: bad response: UnknownProtocol: *HTTP/2.0*"),
        ("/empty", "GET {s}/empty: the server closed the connection without answering"),
        ("/short-body", "GET {s}/short-body: the response body ended early (5 bytes read)"),
        ("/bad-chunks", "GET {s}/bad-chunks: the response body ended early (0 bytes read)"),
        ("/to-space", "GET {s}/to-space: redirect to a bad URL: '{s}/a b' contains a space; percent-encode it"),
        ("/folded-location", "GET {s}/folded-location*: redirect to a bad URL: *"),
    ],
)
def test_malformed_answer_fails_in_one_line(check: CheckRun, raw: RawServer, path: str, message: str) -> None:
    result = check(f"http: '{raw.url}{path}'")
    _assert_one_line_failure(result, message.replace("{s}", raw.url))


def test_control_characters_in_response_headers_do_not_crash_or_reach_the_terminal(
    check: CheckRun, raw: RawServer
) -> None:
    result = check(f"http: {{url: '{raw.url}/cr-in-header', status: 500}}")
    _assert_one_line_failure(result, f"GET {raw.url}/cr-in-header: expected status 500, got 200")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/to-file", "file:///etc/passwd"),
        ("/to-FILE", "*:///etc/passwd"),
        ("/to-gopher", "gopher://127.0.0.1:70/x"),
        ("/to-ftp", "ftp://127.0.0.1/x"),
    ],
)
def test_redirect_to_a_non_http_url_fails_the_criterion(
    check: CheckRun, raw: RawServer, path: str, target: str
) -> None:
    result = check(f"http: '{raw.url}{path}'")
    _assert_one_line_failure(result, f"GET {raw.url}{path}: redirect to a non-HTTP URL {target}")
    result = check(f"http: {{url: '{raw.url}{path}', status: 302}}")  # naming the status does not let it pass
    assert result.ret == ExitCode.TESTS_FAILED, result


def test_redirect_to_an_out_of_range_port_fails(check: CheckRun, raw: RawServer) -> None:
    result = check(f"http: '{raw.url}/to-bad-port'")
    _assert_one_line_failure(
        result, f"GET {raw.url}/to-bad-port*: redirect to a bad URL: *the port must be a number from 1 to 65535"
    )


def test_deep_json_body_fails_in_one_line(check: CheckRun, raw: RawServer) -> None:
    result = check(f"http: {{url: '{raw.url}/deep-json', json_path: a, equals: 1}}")
    _assert_one_line_failure(result, f"GET {raw.url}/deep-json: the body is JSON nested too deeply to read")


def test_endless_body_is_a_timeout_error(check: CheckRun, raw: RawServer) -> None:
    result = check(f"{{http: '{raw.url}/drip', timeout: 0.5}}")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"  timed out: GET {raw.url}/drip did not answer in 0.5s"])
    assert result.no_traceback()


def test_a_followed_redirect_sends_no_credentials_to_another_server(check: CheckRun, raw: RawServer) -> None:
    answers = dict(ANSWERS)
    other = RawServer()
    try:
        ANSWERS["/elsewhere"] = _response("302 Found", b"", f"Location: {other.url}/ok")
        result = check(f"http: {{url: '{raw.url}/elsewhere', headers: {{Authorization: Bearer s3cret, X-Kept: kept}}}}")
        assert result.ret == ExitCode.OK, result
    finally:
        ANSWERS.clear()
        ANSWERS.update(answers)
        other.close()
    assert b"Authorization: Bearer s3cret" in raw.requests[-1]
    assert len(other.requests) == 1
    assert b"s3cret" not in other.requests[0] and b"X-Kept: kept" in other.requests[0]


def test_a_redirect_without_location_is_not_a_success(check: CheckRun, raw: RawServer) -> None:
    result = check(f"http: '{raw.url}/no-location'")
    _assert_one_line_failure(result, f"GET {raw.url}/no-location: expected a success status, got 302")
    assert check(f"http: {{url: '{raw.url}/no-location', status: 302}}").ret == ExitCode.OK


@pytest.mark.parametrize(
    ("path", "method_after", "body_after"),
    [("/to-ok", "GET", False), ("/see-other", "GET", False), ("/keep-method", "POST", True)],
)
def test_redirects_are_followed_as_browsers_do(
    check: CheckRun, raw: RawServer, path: str, method_after: str, body_after: bool
) -> None:
    result = check(f"http: {{method: POST, url: '{raw.url}{path}', json: {{k: v}}, body_contains: fine}}")
    assert result.ret == ExitCode.OK, result
    first, second = raw.requests[-2:]
    assert first.startswith(f"POST {path} ".encode()) and first.endswith(b'{"k": "v"}')
    assert second.startswith(f"{method_after} /ok ".encode())
    assert second.endswith(b'{"k": "v"}') is body_after
    assert (b"Content-Type: application/json" in second) is body_after


# -- compile time: located collection errors, nothing runs ---------------------


def _plan(planrunner: Planrunner, criterion: str) -> RunResult:
    planrunner.makeplan(
        "c",
        f"""
        plan: c
        tasks:
          - id: first
            name: First
            run: touch executed.txt
            criteria: [{{file_exists: executed.txt}}]
          - id: t
            name: T
            criteria:
              - {criterion}
        """,
    )
    return planrunner.run("c.plan.yaml")


@pytest.mark.parametrize(
    ("criterion", "where", "message"),
    [
        ("http: 'http://127.0.0.1:84301/'", "10:15", "http: url: 'http://127.0.0.1:84301/': the port must be *"),
        ("http: 'http://127.0.0.1:0/'", "10:15", "http: url: 'http://127.0.0.1:0/': the port must be *"),
        ("http: 'http://127.0.0.1:http/'", "10:15", "http: url: *: the port must be a number from 1 to 65535"),
        (
            "http: 'http://127.0.0.1/a b'",
            "10:15",
            "http: url: 'http://127.0.0.1/a b' contains a space; percent-encode it",
        ),
        ('http: "http://127.0.0.1/a\\tb"', "10:15", "http: url: * contains the character '\\t'; percent-encode it"),
        (
            "http: 'http://127.0.0.1/caf\u00e9'",
            "10:15",
            "http: url: * contains the character '\u00e9'; percent-encode it",
        ),
        (
            "http: 'gopher://127.0.0.1/'",
            "10:15",
            "http: url: 'gopher://127.0.0.1/': only http and https URLs are checked",
        ),
        ("http: 'ftp://127.0.0.1/'", "10:15", "http: url: 'ftp://127.0.0.1/': only http and https URLs are checked"),
        ("http: 'http:///path'", "10:15", "http: url: 'http:///path' has no host"),
        ("http: 'http://'", "10:15", "http: url: 'http://' has no host"),
        ("http: 'http://[::1/'", "10:15", "http: url: 'http://[[]::1/': Invalid IPv6 URL"),
        ("http: 'http://u:p@127.0.0.1/'", "10:15", "http: url: *: credentials in the URL are not sent*"),
        ("http: {url: 'http://127.0.0.1:99999/'}", "10:21", "http: url: *: the port must be *"),
        (  # a carriage return is refused by the loader already, as any control character in a value
            'http: {url: "http://127.0.0.1/", headers: {X-A: "v\\r\\nInjected: 1"}}',
            "10:57",
            "control character U+000D in value",
        ),
        (
            'http: {url: "http://127.0.0.1/", headers: {X-A: "v\\nInjected: 1"}}',
            "10:57",
            "http: headers.X-A: the value 'v\\nInjected: 1' contains a line break or control character",
        ),
        (
            'http: {url: "http://127.0.0.1/", headers: {"X A": v}}',
            "10:*",
            "http: headers.X A: 'X A' is not a valid HTTP header name",
        ),
        (
            'http: {url: "http://127.0.0.1/", headers: {"X-A:b": v}}',
            "10:*",
            "http: headers.X-A:b: 'X-A:b' is not a valid HTTP header name",
        ),
    ],
)
def test_bad_url_or_header_is_a_located_compile_error(
    planrunner: Planrunner, criterion: str, where: str, message: str
) -> None:
    result = _plan(planrunner, criterion)
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines([f"c.plan.yaml:{where}: {message}", "*= 1 error in *"])
    assert result.no_traceback()
    assert not Path("executed.txt").exists()
