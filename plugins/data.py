"""The ``data`` check kind: a value inside a JSON, YAML or TOML file."""

from __future__ import annotations

import json
import re
import sys
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
        parse_path(self.path)
        given = [n for n in ("exists", "matches", "type") if getattr(self, n) is not None]
        given += [n for n in ("equals", "contains") if getattr(self, n) is not MISSING]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of exists, equals, matches, contains, type (got {', '.join(given) or 'none'})"
            )
        if self.type is not None and self.type not in _TYPES:
            raise ValueError(f"type {self.type!r} is not one of {', '.join(_TYPES)}")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.matches!r}: {exc}") from None
        return self


# Parsed documents by path, valid while (mtime, size, inode) stay the same:
# plans check many values of one file. Checks never mutate what they read.
_CACHE: dict[str, tuple[tuple[int, int, int], Any]] = {}
_CACHE_SIZE = 64


def load(ctx: CheckContext, rel: str) -> Any:
    path = ctx.regular_file(rel)
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _CACHE.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    value = _parse(path, rel)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[str(path)] = (stamp, value)
    return value


def _parse(path: Any, rel: str) -> Any:
    try:
        if rel.endswith(".json"):
            return json.loads(path.read_bytes())
        if rel.endswith(".toml"):
            return tomllib.loads(path.read_text(encoding="utf-8"))
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(path.read_bytes(), Loader=loader)  # noqa: S506 - a safe loader
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{rel} does not parse: {exc}")
    except Exception as exc:  # yaml.YAMLError, without importing yaml up front
        fail(f"{rel} does not parse: {type(exc).__name__}: {exc}")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if value is not MISSING else "(missing)"
    return text if len(text) <= 200 else text[:197] + "..."


def data(args: DataArgs, ctx: CheckContext) -> None:
    value = lookup(load(ctx, args.file), parse_path(args.path))
    where = f"{args.file}:{args.path or '.'}"
    if args.exists is not None:
        if (value is not MISSING) != args.exists:
            fail(f"{where} {'is missing' if args.exists else 'exists but should not'}")
        return
    if value is MISSING:
        fail(f"{where} is missing")
    if args.equals is not MISSING:
        if value != args.equals or type(value) is bool and type(args.equals) is not bool:
            fail(f"{where}: expected {_show(args.equals)}, got {_show(value)}")
    elif args.matches is not None:
        if not isinstance(value, (str, int, float)) or ctx.search(re.compile(args.matches), str(value)) is None:
            fail(f"{where}: {_show(value)} does not match /{args.matches}/")
    elif args.contains is not MISSING:
        ok = (
            isinstance(value, (list, dict))
            and args.contains in value
            or (isinstance(value, str) and isinstance(args.contains, str) and args.contains in value)
        )
        if not ok:
            fail(f"{where}: {_show(value)} does not contain {_show(args.contains)}")
    elif args.type is not None:
        types = _TYPES[args.type]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            fail(f"{where}: expected {args.type}, got {type(value).__name__} {_show(value)}")


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
