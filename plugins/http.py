"""The ``http`` check kind: a request's status, body and JSON.

Requests go out through :mod:`http.client` with planrun's own redirect loop:
``http``/``https`` only (a redirect anywhere else fails the criterion), at
most five redirects, a 1 MiB body, no proxy whatever the environment says,
and one deadline for the whole conversation. Whatever the server answers,
however malformed, the criterion fails with one line; it never crashes.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple
from urllib.parse import SplitResult, urljoin, urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from planrun import (
    MISSING,
    ArgsModel,
    CheckContext,
    CheckFailed,
    CheckKind,
    StepTimeout,
    fail,
    hookimpl,
    lookup,
    parse_path,
)

MAX_BODY = 1 << 20
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_RECORD_TAIL = 4096  # bytes of a body an evidence record keeps, as it keeps of command output
_SHOWN = 200  # how much of a server's bytes a message quotes

# RFC 9110 token characters: what a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A header value: visible ASCII, Latin-1 text, spaces and tabs; no CR, LF, NUL or other controls.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


if TYPE_CHECKING:
    import http.client as http_client


class Target(NamedTuple):
    """A checked URL, split into what a connection needs."""

    https: bool
    host: str
    port: int
    path: str  # the request target: path and query


def parse_url(url: str) -> Target:
    """Split ``url`` for a request, or raise ``ValueError`` saying what is wrong with it."""
    bad = next((c for c in url if not "\x21" <= c <= "\x7e"), None)
    if bad is not None:
        what = "a space" if bad == " " else f"the character {bad!r}"
        raise ValueError(f"{url!r} contains {what}; percent-encode it")
    try:
        parts: SplitResult = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: only http and https URLs are checked")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    if "@" in parts.netloc:
        raise ValueError(f"{url!r}: credentials in the URL are not sent; give an Authorization header")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535")
    https = parts.scheme == "https"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(https, parts.hostname, port or (443 if https else 80), path)


def _header_name(name: str) -> str:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid HTTP header name")
    return name


def _header_value(value: str) -> str:
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"the value {value!r} contains a line break or control character")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]


Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpArgs(ArgsModel):
    url: str
    method: Method = "GET"
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    json_body: Any = Field(default=MISSING, alias="json")
    body: str | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    body_contains: str | None = None
    json_path: str | None = None
    equals: Any = MISSING

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parse_url(url)
        return url

    @model_validator(mode="after")
    def _valid(self) -> HttpArgs:
        if self.json_body is not MISSING and self.body is not None:
            raise ValueError("give 'json' or 'body', not both")
        if (self.json_path is None) != (self.equals is MISSING):
            raise ValueError("'json_path' and 'equals' go together")
        if self.json_path is not None:
            parse_path(self.json_path)
        return self


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... (+{len(text) - _SHOWN} more)"


def _quote(text: str | bytes) -> str:
    """A server-controlled string for a message: repr'd and at most _SHOWN characters."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    shown = repr(text[:_SHOWN])
    return shown + (f" (+{len(text) - _SHOWN} more)" if len(text) > _SHOWN else "")


def _bad_response(exc: Exception) -> str:
    """One line for whatever :mod:`http.client` raised about the server's answer."""
    import http.client as http_client  # only when an http criterion runs (it imports ssl and email)

    if isinstance(exc, http_client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http_client.LineTooLong):
        return f"bad response: {exc}"
    if isinstance(exc, http_client.IncompleteRead):
        return f"the response body ended early ({len(exc.partial)} bytes read)"
    if isinstance(exc, http_client.BadStatusLine):
        return f"not an HTTP response: bad status line {_quote(str(exc.args[0]) if exc.args else '')}"
    return f"bad response: {type(exc).__name__}: {str(exc)[:_SHOWN]}"


class _Deadline:
    """One time budget for a check's whole conversation: connects, redirects and reads."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"{self.what} did not answer in {self.seconds:g}s")
        return left


def _exchange(
    target: Target, method: str, headers: dict[str, str], data: bytes | None, deadline: _Deadline
) -> tuple[int, http_client.HTTPMessage, bytes]:
    """One request and its response: ``(status, headers, body)``, the body cut at MAX_BODY + 1 bytes."""
    import http.client as http_client

    cls = http_client.HTTPSConnection if target.https else http_client.HTTPConnection
    conn = cls(target.host, target.port, timeout=deadline.left())
    try:
        conn.connect()
        sock = conn.sock
        assert sock is not None
        conn.request(method, target.path, body=data, headers=headers)
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BODY:
            sock.settimeout(deadline.left())
            chunk = response.read1(min(1 << 16, MAX_BODY + 1 - size))
            if not chunk:
                if response.length:  # the server closed before sending the Content-Length it announced
                    raise http_client.IncompleteRead(b"".join(chunks), response.length)
                break
            chunks.append(chunk)
            size += len(chunk)
        return response.status, response.headers, b"".join(chunks)
    finally:
        conn.close()


def _redirect(status: int, method: Method, data: bytes | None) -> tuple[Method, bytes | None]:
    """The method and body of the request that follows a redirect (what browsers and urllib do)."""
    if status == 303 and method != "HEAD" or status in (301, 302) and method == "POST":
        return "GET", None
    return method, data


def request(args: HttpArgs, timeout: float, ctx: CheckContext) -> tuple[int, bytes]:
    """Send ``args``' request, following redirects; ``(status, body)`` of the last response.

    :raises CheckFailed: the server could not be reached, answered something
        that is not HTTP, or redirected too often or to a URL that is not http(s).
    :raises StepTimeout: the whole exchange took longer than ``timeout``.
    """
    import http.client as http_client  # only when an http criterion runs (it imports ssl and email)

    what = f"{args.method} {args.url}"
    deadline = _Deadline(timeout, what)
    headers = dict(args.headers)
    data = None
    if args.json_body is not MISSING:
        data = json.dumps(args.json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif args.body is not None:
        data = args.body.encode()
    method, url = args.method, args.url
    target = parse_url(url)
    for hop in range(MAX_REDIRECTS + 1):
        where = what if not hop else f"{what} (redirected to {url})"
        try:
            # Socket timeouts bound each read; this bounds them all (a server may drip its headers).
            with ctx.time_limit(deadline.left(), what):
                status, response_headers, raw = _exchange(target, method, headers, data, deadline)
        except (TimeoutError, StepTimeout):
            raise StepTimeout(f"{what} did not answer in {timeout:g}s") from None
        except http_client.HTTPException as exc:
            fail(f"{where}: {_bad_response(exc)}")
        except (OSError, ValueError, UnicodeError) as exc:
            fail(f"{where}: {type(exc).__name__ if not str(exc) else str(exc)[:_SHOWN]}")
        if ctx.record is not None:  # --evidence: what was asked and what came back
            ctx.record.setdefault("requests", []).append(
                {
                    "method": method,
                    "url": url,
                    "status": status,
                    "bytes": len(raw),
                    "sha256": hashlib.sha256(raw).hexdigest(),
                    "tail": raw[-_RECORD_TAIL:].decode("utf-8", "replace"),
                }
            )
        location = response_headers.get("Location") if status in _REDIRECTS else None
        if location is None:
            return status, raw
        try:
            new_url = urljoin(url, location.strip())
            scheme = urlsplit(new_url).scheme
        except ValueError as exc:  # http://[::1 (an unclosed IPv6 address)
            fail(f"{where}: redirect to a bad URL {_quote(location)}: {str(exc)[:_SHOWN]}")
        if scheme not in ("http", "https"):
            fail(f"{what}: redirect to a non-HTTP URL {_clip(new_url)}")
        try:
            new_target = parse_url(new_url)
        except ValueError as exc:
            fail(f"{where}: redirect to a bad URL: {str(exc)[:_SHOWN]}")
        if (new_target.host, new_target.port, new_target.https) != (target.host, target.port, target.https):
            # Credentials are for the server they were written for, as curl does.
            headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
        method, data = _redirect(status, method, data)
        if data is None:
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        url, target = new_url, new_target
    raise CheckFailed(f"{what}: more than {MAX_REDIRECTS} redirects (the last to {_clip(url)})")


def _shown_json(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def http(args: HttpArgs, ctx: CheckContext) -> None:
    what = f"{args.method} {args.url}"
    status, raw = request(args, ctx.timeout, ctx)
    if len(raw) > MAX_BODY:
        fail(f"{what}: the response body is over {MAX_BODY} bytes")
    text = raw.decode("utf-8", "replace")
    evidence = "response body:\n" + (text[:2000] or "(empty)")
    if args.status is not None and status != args.status:
        fail(f"{what}: expected status {args.status}, got {status}", evidence)
    if args.status is None and not 200 <= status < 300:
        fail(f"{what}: expected a success status, got {status}", evidence)
    if args.body_contains is not None and args.body_contains not in text:
        fail(f"{what}: the body does not contain {args.body_contains!r}", evidence)
    if args.json_path is not None:
        try:
            doc = json.loads(text)
        except RecursionError:
            fail(f"{what}: the body is JSON nested too deeply to read", evidence)
        except ValueError:
            fail(f"{what}: the body is not JSON", evidence)
        value = lookup(doc, parse_path(args.json_path))
        if value is MISSING:
            fail(f"{what}: {args.json_path} is missing from the JSON body", evidence)
        if value != args.equals or isinstance(value, bool) != isinstance(args.equals, bool):
            fail(f"{what}: {args.json_path}: expected {_shown_json(args.equals)}, got {_shown_json(value)}", evidence)


def _describe(args: HttpArgs) -> str:
    expect = f" -> {args.status}" if args.status is not None else ""
    return f"http {args.method} {args.url}{expect}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("http", HttpArgs, http, _describe, default_timeout=10)]
