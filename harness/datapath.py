"""Dotted paths into parsed documents: ``a.b[0].c`` and ``a["dotted.key"]``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# An index has at most 18 digits: a longer one is no index (and Python would refuse to convert it).
_TOKEN = re.compile(r"""([^.\[\]"']+)|\[(-?\d{1,18})\]|\["([^"]*)"\]|\['([^']*)'\]""")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What :func:`lookup` returns when the path leads nowhere.
MISSING: Any = _Missing()


def parse_path(path: str) -> list[str | int]:
    """``a.b[0].c`` -> ``["a", "b", 0, "c"]``; ``""`` or ``.`` is the whole document.

    A key with dots in it is quoted in brackets: ``tool["package.name"]``.

    :raises ValueError: the path does not parse.
    """
    if path in ("", "."):
        return []
    parts: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        between = path[pos : m.start()]
        if between not in ("", ".") or (between == "" and pos and m.group(1)):
            raise ValueError(f"cannot parse data path {_short(path)} at {_short(path[pos:])}")
        name, index, dq, sq = m.groups()
        parts.append(int(index) if index is not None else next(p for p in (name, dq, sq) if p is not None))
        pos = m.end()
    if pos != len(path):
        raise ValueError(f"cannot parse data path {_short(path)} at {_short(path[pos:])}")
    return parts


def _short(text: str, width: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= width else shown[: width - 4] + "...'"


def lookup(doc: Any, parts: Sequence[str | int]) -> Any:
    """The value at ``parts`` in ``doc``, or :data:`MISSING`."""
    value = doc
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                return MISSING
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
    return value
