"""The agent tools' :class:`ToolError` and how text from the workdir is shown in its one-line messages."""

from __future__ import annotations

from planrun.reports import printable


class ToolError(Exception):
    """A tool call refused or failed: ``str(exc)`` is one line for the model (no traceback, no secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


def _shown(text: str, width: int = 200) -> str:
    """``text`` for a message: control characters and newlines escaped, quoted, shortened."""
    text = printable(text).replace("\n", "\\n").replace("\t", "\\t")
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"'{text}'"


def _name(text: str) -> str:
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")


def _one_line(text: str, width: int = 1000) -> str:
    text = _name(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _strerror(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _bound(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its head and tail, the middle counted."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 0) // 2
    omitted = len(text) - 2 * keep
    return f"{text[:keep]}\n[... {omitted} characters not shown ...]\n{text[len(text) - keep :]}"
