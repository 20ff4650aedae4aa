"""Check kinds about files: file_exists, file_absent, file_contains, file_not_contains."""

from __future__ import annotations

import difflib
import io
import re
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import Field, model_validator

from planrun import ArgsModel, CheckContext, CheckKind, RelPath, fail, hookimpl


def _paths_shorthand(value: Any) -> Any:
    """``file_exists: a`` and ``file_exists: [a, b]`` mean ``{paths: [...]}``."""
    if isinstance(value, str):
        return {"paths": [value]}
    if isinstance(value, list):
        return {"paths": value}
    if isinstance(value, dict) and "path" in value and "paths" not in value:
        value = dict(value)
        value["paths"] = [value.pop("path")]
    return value


class PathsArgs(ArgsModel):
    paths: list[RelPath] = Field(min_length=1)

    _shorthand = model_validator(mode="before")(_paths_shorthand)


_SHOWN = 10  # names listed in one message


def show_name(rel: str) -> str:
    """A workdir file name fit for a one-line message (names are hostile: newlines, escapes)."""
    return rel if rel.isprintable() else rel.encode("unicode_escape", "backslashreplace").decode("ascii")


def _names(paths: list[str]) -> str:
    shown = ", ".join(show_name(p) for p in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _fail_outside(outside: list[str]) -> None:
    if outside:
        fail(f"{_names(outside)} {'resolves' if len(outside) == 1 else 'resolve'} outside the workdir")


def file_exists(args: PathsArgs, ctx: CheckContext) -> None:
    missing, outside = [], []
    for pattern in args.paths:
        found, out = ctx.glob(pattern)
        outside += out
        if not found and not out:
            missing.append(pattern)
    _fail_outside(outside)
    if missing:
        fail(f"not found: {_names(missing)}")


def file_absent(args: PathsArgs, ctx: CheckContext) -> None:
    present, outside = [], []
    for pattern in args.paths:
        found, out = ctx.glob(pattern)
        present += found
        outside += out
    _fail_outside(outside)
    if present:
        fail(f"exists but should not: {_names(present)}")


class ContainsArgs(ArgsModel):
    path: RelPath
    pattern: str | None = None
    text: str | None = None
    count: int | None = Field(default=None, ge=0)
    min: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_needle(self) -> ContainsArgs:
        if (self.pattern is None) == (self.text is None):
            raise ValueError("give exactly one of 'pattern' (a regex) or 'text' (literal)")
        if self.pattern is not None:
            ArgsModel.compile_regex(self.pattern, re.MULTILINE)
        if self.count is not None and self.min is not None:
            raise ValueError("give 'count' or 'min', not both")
        return self

    @property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern if self.pattern is not None else re.escape(self.text or ""))

    @property
    def needle(self) -> str:
        return f"/{self.pattern}/" if self.pattern is not None else repr(self.text)


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    return ArgsModel.compile_regex(pattern, re.MULTILINE)


_CHUNK = 1 << 20  # bytes per read when a literal is searched in a stream
_CONTEXT = 1 << 16  # bytes kept before the current chunk, for the excerpt


class _Scan(NamedTuple):
    found: int  # matches seen, at most the limit asked for
    head: str  # the start of the file, for "nearest lines"
    line: int  # 0-based line of the first match (when found)
    window: str  # text around the first match
    window_line: int  # 0-based line number of the window's first line


def _scan_literal(ctx: CheckContext, rel: str, text: str, limit: int) -> _Scan:
    """Count non-overlapping ``text`` in ``rel`` (up to ``limit``), reading in bounded chunks.

    Any file size works: one chunk, ``len(needle) - 1`` bytes of overlap and a
    little context are held. Newlines read as ``\\n`` (``\\r\\n`` and ``\\r``
    translated), as in :meth:`CheckContext.read_text`, so both paths agree.
    """
    needle = text.encode("utf-8")
    found, head, line, window, window_line = 0, b"", 0, b"", 0
    if "\r" in text:  # no \r survives newline translation
        limit = 0
    kept = ctx.read_or_open(rel)  # a small file whole (maybe read by an earlier criterion), else a stream
    if isinstance(kept, bytes) and len(kept) <= _CHUNK and b"\r" not in kept:
        return _scan_bytes(kept, needle, limit)  # what the loop below makes of one chunk, without the loop
    with io.BytesIO(kept) if isinstance(kept, bytes) else kept as f:
        buf, prev = b"", b""  # prev: the bytes just before buf, for context
        dropped_lines = 0  # newlines in everything before buf
        held = b""  # a \r at the end of a chunk waits for a \n
        while found < limit:
            data = f.read(_CHUNK)
            if not data and not held:
                break
            chunk, held = held + data, b""
            if data and chunk.endswith(b"\r"):  # not at the end of the file
                chunk, held = chunk[:-1], b"\r"
            if b"\r" in chunk:
                chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if not head:
                head = chunk
            buf += chunk
            pos = 0
            while found < limit:
                at = buf.find(needle, pos)
                if at < 0:
                    break
                if found == 0:
                    line = dropped_lines + buf.count(b"\n", 0, at)
                    window, window_line = prev + buf, dropped_lines - prev.count(b"\n")
                found += 1
                pos = at + len(needle)
            keep = max(pos, len(buf) - len(needle) + 1)
            dropped_lines += buf.count(b"\n", 0, keep)
            prev = (prev + buf[:keep])[-_CONTEXT:]
            buf = buf[keep:]
    return _Scan(found, _decode(head), line, _decode(window), window_line)


def _scan_bytes(data: bytes, needle: bytes, limit: int) -> _Scan:
    """:func:`_scan_literal` of a file that is one chunk (at most ``_CHUNK`` bytes) with no ``\\r`` in it."""
    if limit <= 0:
        return _Scan(0, "", 0, "", 0)
    found, pos, line = 0, 0, 0
    while found < limit:
        at = data.find(needle, pos)
        if at < 0:
            break
        if found == 0:
            line = data.count(b"\n", 0, at)
        found += 1
        pos = at + len(needle)
    text = _decode(data)
    return _Scan(found, text, line, text if found else "", 0)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _count(ctx: CheckContext, regex: re.Pattern[str], text: str, limit: int) -> int:
    """Matches of ``regex`` in ``text``, counting no further than ``limit``."""
    n, pos = 0, 0
    while n < limit:
        m = ctx.search(regex, text, pos)
        if m is None:
            break
        n += 1
        pos = m.end() + (m.end() == m.start())
    return n


_LINE_WIDTH = 200  # characters of one file line shown in a report


def _show_line(line: str) -> str:
    line = show_name(line)
    return line if len(line) <= _LINE_WIDTH else line[: _LINE_WIDTH - 3] + "..."


def _excerpt(text: str, center: int, width: int = 2, first: int = 0) -> str:
    """Lines around 0-based line ``center`` of ``text`` (whose first line is file line ``first``).

    Numbered, the center marked with ``>``; lines are escaped and cut, as
    everything read from the workdir is hostile when printed.
    """
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    lo, hi = max(0, center - width), min(len(lines), center + width + 1)
    return "\n".join(f"{'>' if i == center else ' '}{first + i + 1:5d} | {_show_line(lines[i])}" for i in range(lo, hi))


def nearest_lines(text: str, needle: str) -> str:
    """The lines of ``text`` most like ``needle``: what the author probably meant."""
    if not text:
        return "(the file is empty)"
    lines = text.split("\n", 5000)[:5000]
    probe = re.sub(r"\\[bBdDsSwW]|[\\^$.*+?()[\]{}|]", " ", needle).strip() or needle
    best, best_ratio = 0, -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    for i, line in enumerate(lines):
        matcher.set_seq1(line.strip()[:1000])
        ratio = matcher.quick_ratio()
        if ratio > best_ratio and matcher.ratio() > best_ratio:
            best, best_ratio = i, matcher.ratio()
    return "nearest lines:\n" + _excerpt("\n".join(lines), best)


def _is_literal(args: ContainsArgs) -> bool:
    """Literal text is searched in a stream (any size); a regex needs the text (``--max-file-bytes``)."""
    return bool(args.text)


def file_contains(args: ContainsArgs, ctx: CheckContext) -> None:
    hint = args.pattern if args.pattern is not None else args.text or ""
    limit = args.count + 1 if args.count is not None else args.min or 1
    if _is_literal(args):
        scan = _scan_literal(ctx, args.path, args.text or "", limit)
        found, text = scan.found, scan.head
    else:
        text = ctx.read_text(args.path)
        found = _count(ctx, args.regex, text, limit)
    if args.count is not None:
        if found != args.count:
            times = f"more than {args.count}" if found > args.count else str(found)
            fail(
                f"{args.needle} found {times} times in {args.path}, expected exactly {args.count}",
                nearest_lines(text, hint),
            )
        return
    if found < limit:
        what = "not found" if found == 0 else f"found {found} times, expected at least {limit}"
        fail(f"{args.needle} {what} in {args.path}", nearest_lines(text, hint))


def file_not_contains(args: ContainsArgs, ctx: CheckContext) -> None:
    if _is_literal(args):
        scan = _scan_literal(ctx, args.path, args.text or "", 1)
        if scan.found:
            excerpt = _excerpt(scan.window, scan.line - scan.window_line, first=scan.window_line)
            fail(f"{args.needle} found in {args.path} at line {scan.line + 1}", excerpt)
        return
    text = ctx.read_text(args.path)
    m = ctx.search(args.regex, text)
    if m is not None:
        line = text.count("\n", 0, m.start())
        fail(f"{args.needle} found in {args.path} at line {line + 1}", _excerpt(text, line))


def _describe_paths(name: str) -> Any:
    return lambda a: f"{name} {', '.join(a.paths)}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [
        CheckKind(
            "file_exists", PathsArgs, file_exists, _describe_paths("file_exists"), default_timeout=10, inprocess=True
        ),
        CheckKind(
            "file_absent", PathsArgs, file_absent, _describe_paths("file_absent"), default_timeout=10, inprocess=True
        ),
        CheckKind(
            "file_contains",
            ContainsArgs,
            file_contains,
            lambda a: f"file_contains {a.path} {a.needle}",
            default_timeout=10,
            inprocess=True,
        ),
        CheckKind(
            "file_not_contains",
            ContainsArgs,
            file_not_contains,
            lambda a: f"file_not_contains {a.path} {a.needle}",
            default_timeout=10,
            inprocess=True,
        ),
    ]
