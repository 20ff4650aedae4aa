"""The guard on planrun's output under GitHub Actions: no line it prints can be a workflow command.

How the runner reads a step's output (actions/runner,
``src/Runner.Common/ActionCommand.cs`` and ``src/Runner.Worker/ActionCommandManager.cs``):
every line of stdout *and* stderr (split at ``\\n``, ``\\r`` and ``\\r\\n``) is a
command when, after ``TrimStart()`` (any Unicode white space), it starts with
``::`` and the name before the next space or ``::`` is a registered command
(``TryParseV2``), or when it holds ``##[NAME`` *anywhere* (the legacy
``TryParse``: ``IndexOf("##[")``).

:class:`CommandGuard` is the stream the ``github`` plugin puts in front of
``sys.stdout`` and ``sys.stderr``; :func:`neutralised` is its rule for one
text; :func:`write_data` and :func:`write_commands` are how the subcommands
print data and annotations past it, exactly where they may.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO

# What StreamReader.ReadLine splits at (\n, \r), and, to be safe, every other character Python calls a line break.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# What .NET's TrimStart() removes (Char.IsWhiteSpace), a superset of it: Python's white space, plus the
# characters older Unicode versions called white space, plus zero-width ones.
_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\u180e\u200b\u2060\ufeff"
)
_SPACE_CLASS = "[" + re.escape(_SPACE) + "]"
_BREAK_CLASS = "[" + re.escape(_BREAKS) + "]"
# ``::`` first on a line (after white space): a backslash goes between the colons.
_V2 = re.compile(f"({_BREAK_CLASS}{_SPACE_CLASS}*:)(?=:)")
# ``##[`` anywhere: a backslash goes before the bracket.
_V1 = re.compile(r"(?<=##)(?=\[)")
_LEAD, _COLON, _BODY = "\n", "\n:", "x"


class CommandGuard:
    """A text stream that passes everything to ``stream`` except what the Actions runner would take for a command.

    It keeps no text back (a partial line is written at once) and carries
    only a few characters of state from one write to the next, so a command
    split across writes is caught as well.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()  # the state belongs to one write at a time (the status line has a thread)
        self._state = _LEAD  # at the start of a line (after white space), after one colon there, or later
        self._hashes = ""  # the '#' characters that ended the last write (up to two)

    def neutralise(self, text: str) -> str:
        """``text`` as it goes out: ``::`` leading a line becomes ``:\\:``, ``##[`` becomes ``##\\[``."""
        if not text:
            return text
        context = (self._state if self._state != _BODY or not self._hashes else "") + self._hashes
        context = context or _BODY
        whole = context + text
        out = _V1.sub("\\\\", _V2.sub(r"\1\\", whole))
        # The state for the next write, from the text as written.
        last = max(whole.rfind(ch) for ch in _BREAKS)
        if last < 0:
            self._state = _BODY
        else:
            rest = whole[last + 1 :].lstrip(_SPACE)
            self._state = _LEAD if not rest else _COLON if rest == ":" else _BODY
        tail = len(whole) - len(whole.rstrip("#"))
        self._hashes = "#" * min(tail, 2)
        # The context is made of characters that the substitutions leave alone at its end, so it is a prefix of out.
        return out[len(context) :]

    def write(self, text: str) -> int:
        with self._lock:
            self.stream.write(self.neutralise(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def raw_write(self, text: str) -> None:
        """Write ``text`` as it is (planrun's own commands, whole lines), after everything written before."""
        with self._lock:
            if self._state != _LEAD:  # never glued to the end of a partial line
                text = "\n" + text
            self.stream.write(text)
            self._state, self._hashes = _LEAD, ""
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self.stream, name)


def neutralised(text: str) -> str:
    """``text``, read as starting a line, with nothing in it that the runner would take for a workflow command."""
    return CommandGuard(sys.stdout).neutralise(text)  # a new guard's state: at the start of a line


def _regular_file(stream: Any) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


# Line breaks that JSON leaves raw (it escapes every other control character), as JSON escapes.
_JSON_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def write_data(text: str, *, json_text: bool = False) -> None:
    """Write ``text``, data for a program (JSON, YAML, a graph), to stdout: exact wherever the runner cannot read it.

    Unguarded (not on GitHub Actions), or into a regular file (``> out.json``:
    the runner reads only the step's pipe), it goes as it is. JSON anywhere
    else goes with ``##[`` written ``##\\u005b`` and the line breaks JSON
    leaves raw escaped: the same JSON, and no workflow command in it. Any
    other text goes through the guard, and if the guard changed a line a
    warning on stderr says to write to a file for the exact text.
    """
    out = sys.stdout
    if not isinstance(out, CommandGuard):
        out.write(text)
        return
    if _regular_file(out.stream):
        out.flush()
        out.stream.write(text)
        out.stream.flush()
        return
    if json_text:
        safe = text.replace("##[", "##\\u005b").translate(_JSON_BREAKS)
        if neutralised(safe) == safe:  # what the escapes promise, checked before anything goes out raw
            out.raw_write(safe)
            return
        text = safe
    if neutralised(text) != text:
        print(
            "warning: lines that GitHub Actions would take for workflow commands were altered;"
            " redirect the output to a file for the exact text",
            file=sys.stderr,
        )
    out.write(text)


def write_commands(lines: list[str]) -> None:
    """Print workflow commands planrun made (their values escaped): as they are, past the guard, when it is on."""
    out = sys.stdout
    if isinstance(out, CommandGuard):
        out.raw_write("".join(line + "\n" for line in lines))
    else:
        out.write("".join(line + "\n" for line in lines))
