"""Compile the common English criteria (``"`make` passes"``) into checks."""

from __future__ import annotations

import re
from typing import Any

from planrun import hookimpl

_CMD = r"`(?P<cmd>[^`]+)`"
_PATH = r"`?(?P<path>[^\s`]+)`?"
# A bare word is a path only if it looks like one: a slash or a file extension.
_LOOKS_LIKE_PATH = re.compile(r"^(?:\.?/)?[\w.*?\[\]-]+(?:/[\w.*?\[\]-]*)*$")

_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(rf"^{_CMD}\s+(?:passes|succeeds|exits\s+0|runs(?:\s+successfully)?)\.?$", re.I),
        lambda m: {"command": {"run": m["cmd"]}},
    ),
    (
        re.compile(rf"^{_CMD}\s+(?:outputs|prints)\s+`(?P<text>[^`]*)`\.?$", re.I),
        lambda m: {"command": {"run": m["cmd"], "stdout_contains": m["text"]}},
    ),
    (re.compile(rf"^(?:the\s+)?(?:file|directory)\s+{_PATH}\s+exists\.?$", re.I), lambda m: {"file_exists": m["path"]}),
    (
        re.compile(rf"^{_PATH}\s+exists\.?$", re.I),
        lambda m: {"file_exists": m["path"]} if _is_path(m["path"]) else None,
    ),
    (
        re.compile(rf"^(?:(?:the\s+)?file\s+)?{_PATH}\s+contains\s+`(?P<text>[^`]+)`\.?$", re.I),
        lambda m: {"file_contains": {"path": m["path"], "text": m["text"]}} if _is_path(m["path"]) else None,
    ),
    (
        re.compile(
            rf"^(?:(?:the\s+)?(?:file|directory)\s+)?{_PATH}\s+(?:is\s+deleted|is\s+removed|does\s+not\s+exist)\.?$",
            re.I,
        ),
        lambda m: {"file_absent": m["path"]} if _is_path(m["path"]) else None,
    ),
    (
        re.compile(
            r"^HTTP\s+(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(?P<url>https?://\S+)\s+returns\s+(?P<status>[1-5]\d\d)\.?$",
            re.I,
        ),
        lambda m: {"http": {"method": m["method"].upper(), "url": m["url"], "status": int(m["status"])}},
    ),
]


def _is_path(word: str) -> bool:
    return bool(_LOOKS_LIKE_PATH.match(word)) and ("/" in word or "." in word.strip("."))


def compile_sentence(text: str) -> dict[str, Any] | None:
    """The mapping form of a sentence criterion, or ``None`` if no pattern fits."""
    sentence = " ".join(text.split())
    for pattern, build in _PATTERNS:
        m = pattern.match(sentence)
        if m is not None:
            result = build(m)
            if result is not None:
                return result
    return None


@hookimpl
def planrun_compile_criterion(text: str) -> dict[str, Any] | None:
    return compile_sentence(text)
