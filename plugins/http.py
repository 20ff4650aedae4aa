"""The ``http`` check kind: a request's status, body and JSON."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from planrun import MISSING, ArgsModel, CheckContext, CheckKind, StepTimeout, fail, hookimpl, lookup, parse_path

MAX_BODY = 1 << 20
MAX_REDIRECTS = 5


class HttpArgs(ArgsModel):
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
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

    @model_validator(mode="after")
    def _valid(self) -> HttpArgs:
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"url {self.url!r}: only http and https URLs are checked")
        if self.json_body is not MISSING and self.body is not None:
            raise ValueError("give 'json' or 'body', not both")
        if (self.json_path is None) != (self.equals is MISSING):
            raise ValueError("'json_path' and 'equals' go together")
        if self.json_path is not None:
            parse_path(self.json_path)
        return self


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-HTTP URL {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def http(args: HttpArgs, ctx: CheckContext) -> None:
    data = None
    headers = dict(args.headers)
    if args.json_body is not MISSING:
        data = json.dumps(args.json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif args.body is not None:
        data = args.body.encode()
    request = urllib.request.Request(args.url, data=data, headers=headers, method=args.method)
    # No proxy: a check of 127.0.0.1 must reach 127.0.0.1 whatever the environment says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _Redirects())
    what = f"{args.method} {args.url}"
    try:
        with opener.open(request, timeout=ctx.timeout) as response:
            status, raw = response.status, response.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in (301, 302, 303, 307, 308) and "redirect" in str(exc.msg):
            fail(f"{what}: {exc.msg}")
        status, raw = exc.code, exc.read(MAX_BODY + 1) if exc.fp is not None else b""
        exc.close()
    except TimeoutError:
        raise StepTimeout(f"{what} did not answer in {ctx.timeout:g}s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise StepTimeout(f"{what} did not answer in {ctx.timeout:g}s") from None
        fail(f"{what}: {exc.reason}")
    except OSError as exc:
        fail(f"{what}: {exc}")
    if len(raw) > MAX_BODY:
        fail(f"{what}: the response body is over {MAX_BODY} bytes")
    text = raw.decode("utf-8", "replace")
    evidence = "response body:\n" + (text[:2000] or "(empty)")
    if args.status is not None and status != args.status:
        fail(f"{what}: expected status {args.status}, got {status}", evidence)
    if args.status is None and not 200 <= status < 400:
        fail(f"{what}: expected a success status, got {status}", evidence)
    if args.body_contains is not None and args.body_contains not in text:
        fail(f"{what}: the body does not contain {args.body_contains!r}", evidence)
    if args.json_path is not None:
        try:
            doc = json.loads(text)
        except ValueError:
            fail(f"{what}: the body is not JSON", evidence)
        value = lookup(doc, parse_path(args.json_path))
        if value is MISSING:
            fail(f"{what}: {args.json_path} is missing from the JSON body", evidence)
        if value != args.equals or isinstance(value, bool) != isinstance(args.equals, bool):
            fail(f"{what}: {args.json_path}: expected {json.dumps(args.equals)}, got {json.dumps(value)}", evidence)


def _describe(args: HttpArgs) -> str:
    expect = f" -> {args.status}" if args.status is not None else ""
    return f"http {args.method} {args.url}{expect}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("http", HttpArgs, http, _describe, default_timeout=10)]
