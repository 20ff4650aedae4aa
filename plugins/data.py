"""The ``data`` check kind: a value inside a JSON, YAML or TOML file."""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from json.encoder import encode_basestring, encode_basestring_ascii  # what json.dumps does with a str
from typing import Any

from pydantic import model_validator

from planrun import MISSING, ArgsModel, CheckContext, CheckKind, RelPath, fail, hookimpl, lookup, parse_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "list": (list,),
    "object": (dict,),
    "mapping": (dict,),
    "null": (type(None),),
}


class DataArgs(ArgsModel):
    file: RelPath
    path: str = ""
    exists: bool | None = None
    equals: Any = MISSING
    matches: str | None = None
    contains: Any = MISSING
    type: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> DataArgs:
        if not self.file.endswith((".json", ".yaml", ".yml", ".toml")):
            raise ValueError(f"file {self.file!r}: data files are .json, .yaml, .yml or .toml")
        _parts(self.path)  # raises ValueError when it does not parse (a failure is not cached)
        given = [n for n in ("exists", "matches", "type") if getattr(self, n) is not None]
        given += [n for n in ("equals", "contains") if getattr(self, n) is not MISSING]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of exists, equals, matches, contains, type (got {', '.join(given) or 'none'})"
            )
        if self.type is not None and self.type not in _TYPES:
            raise ValueError(f"type {self.type!r} is not one of {', '.join(_TYPES)}")
        if self.matches is not None:
            ArgsModel.compile_regex(self.matches)
        return self


# Parsed documents by content: plans check many values of one file. The bytes
# come from CheckContext.read_bytes (opened and verified, or what this
# generation already read and verified), so a hit costs a dict lookup: the very
# bytes object is the key (its hash is computed once). Equal bytes parse to an
# equal document, so an entry never goes stale; the oldest go first past the
# bounds. Checks never mutate what they read.
_CACHE: dict[tuple[str, bytes], Any] = {}
_CACHE_ENTRIES = 64
_CACHE_BYTES = 256 << 20
_cache_state = {"bytes": 0}


def load(ctx: CheckContext, rel: str) -> Any:
    """The parsed document ``rel`` (read and verified by :meth:`CheckContext.read_bytes`)."""
    raw = ctx.read_bytes(rel)
    key = (rel.rsplit(".", 1)[-1], raw)
    try:
        return _CACHE[key]
    except KeyError:
        pass
    value = _parse(raw, rel)
    while _CACHE and (len(_CACHE) >= _CACHE_ENTRIES or _cache_state["bytes"] + len(raw) > _CACHE_BYTES):
        oldest = next(iter(_CACHE))
        del _CACHE[oldest]
        _cache_state["bytes"] -= len(oldest[1])
    _CACHE[key] = value
    _cache_state["bytes"] += len(raw)
    return value


@lru_cache(maxsize=8192)
def _parts(path: str) -> tuple[str | int, ...]:
    """:func:`parse_path` once per distinct path (validated at compile time, so it parses)."""
    return tuple(parse_path(path))


def _parse(raw: bytes, rel: str) -> Any:
    try:
        if rel.endswith(".json"):
            return json.loads(raw)
        if rel.endswith(".toml"):
            return tomllib.loads(raw.decode("utf-8"))
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(raw, Loader=loader)  # noqa: S506 - a safe loader
    except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError, TOMLDecodeError
        if "integer string conversion" in str(exc):
            fail(f"{rel} does not parse: a number has more than {sys.get_int_max_str_digits()} digits")
        fail(f"{rel} does not parse: {_one_line(str(exc))}")
    except RecursionError:
        fail(f"{rel} does not parse: nested too deeply")
    except Exception as exc:  # yaml.YAMLError, without importing yaml up front
        fail(f"{rel} does not parse: {type(exc).__name__}: {_one_line(str(exc))}")


_WIDTH = 200  # characters of a value or message shown


def _one_line(text: str) -> str:
    """``text`` (maybe quoting the file) as one bounded, printable line."""
    text = " ".join(text.split())
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


class _Full(Exception):
    pass


def _show(value: Any) -> str:
    """``value`` as JSON-like text for a message: bounded, printable, whatever the value is.

    Renders at most :data:`_WIDTH` characters, however big or deep the value
    (or its YAML aliases) and however many digits its integers have.
    """
    if value is MISSING:
        return "(missing)"
    kind = value.__class__
    if kind is str or kind is int or value is None or kind is bool:  # a scalar, as walk() shows it
        shown = _quote(value[: _WIDTH + 1]) if kind is str else _int_text(value) if kind is int else _CONSTANTS[value]
        return shown if len(shown) <= _WIDTH else shown[: _WIDTH - 3] + "..."
    out: list[str] = []
    room = [_WIDTH + 1]

    def put(text: str) -> None:
        out.append(text)
        room[0] -= len(text)
        if room[0] <= 0:
            raise _Full

    def walk(v: Any, depth: int) -> None:
        if depth > 32:
            put("...")
        elif v is None or isinstance(v, (bool, float)):
            put(json.dumps(v))
        elif isinstance(v, int):
            put(_int_text(v))
        elif isinstance(v, str):
            put(_quote(v[: _WIDTH + 1]))
        elif isinstance(v, list):
            put("[")
            for i, item in enumerate(v):
                put(", " if i else "")
                walk(item, depth + 1)
            put("]")
        elif isinstance(v, dict):
            put("{")
            for i, (k, item) in enumerate(v.items()):
                put(", " if i else "")
                walk(k, depth + 1)
                put(": ")
                walk(item, depth + 1)
            put("}")
        else:  # dates and times from YAML or TOML
            put(_quote(str(v)))

    try:
        walk(value, 0)
    except _Full:
        return "".join(out)[: _WIDTH - 3] + "..."
    return "".join(out)


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _quote(text: str) -> str:
    """``text`` as a JSON string: as it is if that prints, else with ``\\u`` escapes (``json.dumps`` of a str)."""
    shown = encode_basestring(text)
    return shown if shown.isprintable() else encode_basestring_ascii(text)


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python converts
        return f"(an integer of {value.bit_length()} bits)"


def data(args: DataArgs, ctx: CheckContext) -> None:
    value = lookup(load(ctx, args.file), _parts(args.path))
    if args.exists is not None:
        if (value is not MISSING) != args.exists:
            fail(f"{_where(args)} {'is missing' if args.exists else 'exists but should not'}")
        return
    if value is MISSING:
        fail(f"{_where(args)} is missing")
    if args.equals is not MISSING:
        if value != args.equals or type(value) is bool and type(args.equals) is not bool:
            fail(f"{_where(args)}: expected {_show(args.equals)}, got {_show(value)}")
    elif args.matches is not None:
        text = _matchable(value)
        if text is None or ctx.search(_regex(args.matches), text) is None:
            fail(f"{_where(args)}: {_show(value)} does not match /{args.matches}/")
    elif args.contains is not MISSING:
        if not _contains(value, args.contains):
            fail(f"{_where(args)}: {_show(value)} does not contain {_show(args.contains)}")
    elif args.type is not None:
        types = _TYPES[args.type]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            fail(f"{_where(args)}: expected {args.type}, got {type(value).__name__} {_show(value)}")


def _where(args: DataArgs) -> str:
    return f"{args.file}:{args.path or '.'}"


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return ArgsModel.compile_regex(pattern)


def _matchable(value: Any) -> str | None:
    """The text a ``matches`` regex sees: strings, and numbers as Python writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        try:
            return str(value)
        except ValueError:  # an integer with more digits than Python converts
            return None
    return None


def _contains(value: Any, item: Any) -> bool:
    if isinstance(value, str):
        return isinstance(item, str) and item in value
    if isinstance(value, dict):
        try:
            return item in value
        except TypeError:  # an unhashable item (a list, a mapping) is never a key
            return False
    return isinstance(value, list) and item in value


def _describe(args: DataArgs) -> str:
    for name in ("exists", "matches", "type"):
        if getattr(args, name) is not None:
            return f"data {args.file}:{args.path or '.'} {name} {getattr(args, name)!r}"
    for name in ("equals", "contains"):
        if getattr(args, name) is not MISSING:
            return f"data {args.file}:{args.path or '.'} {name} {_show(getattr(args, name))}"
    return f"data {args.file}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("data", DataArgs, data, _describe, default_timeout=10, inprocess=True)]
