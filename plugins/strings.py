"""Compile the common English criteria (``"`make` passes"``) into checks."""

from __future__ import annotations

import re
from typing import Any

from planrun import hookimpl

_CMD = r"`(?P<cmd>[^`]+)`"
# A path, bare or in matching backticks or quotes (the quotes are not part of it).
_PATH = r"""(?P<q>[`"']?)(?P<path>[^\s`"']+)(?P=q)"""
# In "PATH exists", "PATH contains `X`" and "PATH is deleted" a bare word is a
# path (LICENSE, Makefile), unless it is one of the words prose starts with.
_LOOKS_LIKE_PATH = re.compile(r"^(?:\.?/)?[\w.*?\[\]-]+(?:/[\w.*?\[\]-]*)*$")
_PROSE = frozenset(
    "it this that these those there here everything something nothing anything all each every one none"
    " which what who output result code file files directory folder".split()
)

_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(rf"^{_CMD}\s+(?:passes|succeeds|exits\s+0|runs(?:\s+successfully)?)\.?$", re.I),
        lambda m: _passes(m["cmd"]),
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


#: The sentence forms above, for the hint on a sentence that compiles to
#: nothing: ``(form, check kind, ways people write it)``, with the
#: placeholders CMD, TEXT, PATH, METHOD, URL and NNN. The compiler reads this
#: attribute from every plugin that implements ``planrun_compile_criterion``.
SENTENCE_FORMS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "`CMD` passes",
        "command",
        ("`CMD` passes", "`CMD` succeeds", "`CMD` exits 0", "`CMD` runs successfully", "`CMD` works", "`CMD` is green"),
    ),
    ("`CMD` outputs `TEXT`", "command", ("`CMD` outputs `TEXT`", "`CMD` prints `TEXT`", "`CMD` shows `TEXT`")),
    (
        "PATH exists",
        "file_exists",
        ("PATH exists", "File PATH exists", "PATH is present", "PATH is created", "PATH was created"),
    ),
    (
        "PATH contains `TEXT`",
        "file_contains",
        ("PATH contains `TEXT`", "PATH has `TEXT`", "PATH includes `TEXT`", "PATH mentions `TEXT`"),
    ),
    (
        "PATH is deleted",
        "file_absent",
        (
            "PATH is deleted",
            "PATH is removed",
            "PATH does not exist",
            "PATH is gone",
            "PATH is absent",
            "PATH was removed",
            "PATH was deleted",
        ),
    ),
    ("HTTP METHOD URL returns NNN", "http", ("HTTP METHOD URL returns NNN", "METHOD URL returns NNN")),
]


# "`pytest tests/` passes" is a ``tests`` criterion: a run that collects nothing fails.
_PYTEST = re.compile(r"^(?:python3?\s+-m\s+)?(?:pytest|py\.test)(?:\s|$)")


def _passes(cmd: str) -> dict[str, Any]:
    if _PYTEST.match(cmd.strip()):
        return {"tests": {"run": f"{cmd.strip()} --junitxml={{junit}}"}}
    return {"command": {"run": cmd}}


def _is_path(word: str) -> bool:
    bare = word.strip(".")
    return bool(_LOOKS_LIKE_PATH.match(word)) and bare != "" and bare.lower() not in _PROSE


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
