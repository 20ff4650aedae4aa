"""A scripted OpenAI-compatible server for tests: real HTTP on 127.0.0.1, replies played in order.

Use it to drive an agent executor (or any OpenAI client) without a model::

    from planrun.testing import ScriptedOpenAI, text, tool_turn, error

    with ScriptedOpenAI([tool_turn(("write_file", {"path": "a", "content": "x"})),
                         tool_turn(("finish", {"summary": "wrote a"}))]) as server:
        ...  # point the client at server.url (ends in /v1)
    server.requests[0].body["messages"]

Every request is recorded (:attr:`ScriptedOpenAI.requests`). When the script
is used up the server answers 400 "script exhausted" (not retried by clients),
so a test that sends more requests than it scripted fails loudly.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass
class Reply:
    """One scripted answer: an HTTP status, a JSON body, headers, and a delay before answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RecordedRequest:
    """A request the server received: path, headers (case-insensitive lookups via :meth:`header`), JSON body."""

    path: str
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lower), None)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    def text(self) -> str:
        """Everything the request sent, as one string (for ``in`` assertions)."""
        return json.dumps(self.body, ensure_ascii=False)


def _completion(message: dict[str, Any], finish_reason: str, usage: tuple[int, int] | None, model: str) -> Reply:
    body: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    return Reply(200, body)


def tool_turn(
    *calls: tuple[str, Mapping[str, Any] | str],
    content: str = "",
    usage: tuple[int, int] | None = (100, 20),
    finish_reason: str = "tool_calls",
    model: str = "scripted",
) -> Reply:
    """An assistant turn calling tools: each call ``(name, arguments)``; a ``str`` is sent as is (malformed JSON)."""
    tool_calls = []
    for n, (name, args) in enumerate(calls, 1):
        arguments = args if isinstance(args, str) else json.dumps(dict(args))
        tool_calls.append({"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": arguments}})
    message = {"role": "assistant", "content": content or None, "tool_calls": tool_calls}
    return _completion(message, finish_reason, usage, model)


def text(
    content: str, *, usage: tuple[int, int] | None = (100, 20), finish_reason: str = "stop", model: str = "scripted"
) -> Reply:
    """An assistant turn answering in text, without tool calls."""
    return _completion({"role": "assistant", "content": content}, finish_reason, usage, model)


def error(status: int, message: str = "", *, retry_after: float | None = None, kind: str = "") -> Reply:
    """An OpenAI-style error answer (``{"error": {...}}``), with ``Retry-After`` if given."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    body = {"error": {"message": message or f"scripted error {status}", "type": kind or "scripted_error", "code": None}}
    return Reply(status, body, headers)


def delay(seconds: float, reply: Reply | None = None) -> Reply:
    """``reply`` (default: an empty text turn) after ``seconds``: longer than the client's timeout, it times out."""
    base = reply if reply is not None else text("")
    return Reply(base.status, base.body, dict(base.headers), seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add some 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.scripted.connections.add(self.connection)

    def finish(self) -> None:
        self.server.scripted.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: tests read their own output

    def _send(self, reply: Reply) -> None:
        data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client gave up (a timeout): nothing to tell it

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(Reply(200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "x"}]}))
        else:
            self._send(error(404, f"no such path {self.path}"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = self.path.split("?", 1)[0]
        if path not in _PATHS:
            self._send(error(404, f"no such path {path}"))
            return
        reply = self.server.scripted.record(RecordedRequest(path, dict(self.headers.items()), body))
        if reply.delay and self.server.scripted.closing.wait(reply.delay):
            return  # shutting down: do not keep the test waiting
        self._send(reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handlers: nothing outlives the server
    scripted: ScriptedOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that disconnects is not the test's failure


class ScriptedOpenAI:
    """An OpenAI-compatible ``POST /v1/chat/completions`` that plays ``script`` in order and records every request.

    :param script: :class:`Reply` objects (see :func:`tool_turn`, :func:`text`, :func:`error`, :func:`delay`).
    """

    def __init__(self, script: Iterable[Reply] = ()) -> None:
        self.script: list[Reply] = list(script)
        self.requests: list[RecordedRequest] = []
        self.closing = threading.Event()
        #: Open client connections (keep-alive): closed by :meth:`close` so no handler thread waits on one.
        self.connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def add(self, *replies: Reply) -> None:
        """Append replies to the script (also while serving)."""
        with self._lock:
            self.script.extend(replies)

    def record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.script:
                return self.script.pop(0)
        return error(400, f"the scripted server's script is exhausted (request {len(self.requests)})")

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client takes (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedOpenAI:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.scripted = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self.closing.set()
        self._server.shutdown()
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["RecordedRequest", "Reply", "ScriptedOpenAI", "delay", "error", "text", "tool_turn"]
