"""Check kinds about files: file_exists, file_absent, file_contains, file_not_contains."""

from __future__ import annotations

import difflib
import glob
import os
import re
from functools import lru_cache
from typing import Any

from pydantic import Field, model_validator

from planrun import ArgsModel, CheckContext, CheckKind, RelPath, fail, hookimpl

_GLOB_CHARS = re.compile(r"[*?[]")


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


def _matches(ctx: CheckContext, pattern: str) -> list[str]:
    root = os.path.realpath(ctx.workdir)
    if not _GLOB_CHARS.search(pattern):
        return [pattern] if os.path.lexists(os.path.join(root, pattern)) else []
    return glob.glob(pattern, root_dir=root, recursive=True)


def file_exists(args: PathsArgs, ctx: CheckContext) -> None:
    missing = []
    for pattern in args.paths:
        found = _matches(ctx, pattern)
        for rel in found:
            ctx.path(rel)  # a symlink out of the workdir fails the check
        if not found:
            missing.append(pattern)
    if missing:
        fail(f"not found: {', '.join(missing)}")


def file_absent(args: PathsArgs, ctx: CheckContext) -> None:
    present = [rel for pattern in args.paths for rel in _matches(ctx, pattern)]
    if present:
        fail(f"exists but should not: {', '.join(present)}")


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
            try:
                re.compile(self.pattern, re.MULTILINE)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None
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
    return re.compile(pattern, re.MULTILINE)


def _read(ctx: CheckContext, rel: str) -> str:
    with open(ctx.regular_file(rel), encoding="utf-8", errors="replace") as f:
        return f.read()


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


def _excerpt(text: str, center: int, width: int = 2) -> str:
    """Lines around 0-based line ``center``, numbered, the center marked with ``>``."""
    lines = text.splitlines()
    lo, hi = max(0, center - width), min(len(lines), center + width + 1)
    return "\n".join(f"{'>' if i == center else ' '}{i + 1:5d} | {lines[i]}" for i in range(lo, hi))


def nearest_lines(text: str, needle: str) -> str:
    """The lines of ``text`` most like ``needle``: what the author probably meant."""
    lines = text.splitlines()[:5000]
    if not lines:
        return "(the file is empty)"
    probe = re.sub(r"\\[bBdDsSwW]|[\\^$.*+?()[\]{}|]", " ", needle).strip() or needle
    best, best_ratio = 0, -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    for i, line in enumerate(lines):
        matcher.set_seq1(line.strip())
        ratio = matcher.quick_ratio()
        if ratio > best_ratio and matcher.ratio() > best_ratio:
            best, best_ratio = i, matcher.ratio()
    return "nearest lines:\n" + _excerpt(text, best)


def file_contains(args: ContainsArgs, ctx: CheckContext) -> None:
    text = _read(ctx, args.path)
    hint = args.pattern if args.pattern is not None else args.text or ""
    if args.count is not None:
        found = _count(ctx, args.regex, text, args.count + 1)
        if found != args.count:
            times = f"more than {args.count}" if found > args.count else str(found)
            fail(
                f"{args.needle} found {times} times in {args.path}, expected exactly {args.count}",
                nearest_lines(text, hint),
            )
        return
    want = args.min or 1
    found = _count(ctx, args.regex, text, want)
    if found < want:
        what = "not found" if found == 0 else f"found {found} times, expected at least {want}"
        fail(f"{args.needle} {what} in {args.path}", nearest_lines(text, hint))


def file_not_contains(args: ContainsArgs, ctx: CheckContext) -> None:
    text = _read(ctx, args.path)
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
