"""The handled-error tree: what a user did wrong, with where they did it."""

from __future__ import annotations

from pathlib import Path


class PlanrunError(Exception):
    """Base of every error that is the user's to fix: printed as one line, no traceback."""


class UsageError(PlanrunError):
    """Bad command line, config or plugin name (exit 4)."""


class PluginError(PlanrunError):
    """A plugin or conftest failed to load or registered something invalid (exit 4)."""


class PlanError(PlanrunError):
    """A plan file that does not load or validate: a collection error (exit 2).

    :param message: what is wrong, one line.
    :param path: the plan file.
    :param line: 1-based line, if known.
    :param col: 1-based column, if known.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.col = col

    @property
    def location(self) -> str:
        parts = [p for p in (self.path, self.line, self.col) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message


class CompileError(PlanError):
    """A criterion that does not compile into a check (a collection error, exit 2)."""


def one_file(arg: str) -> Path:
    """``arg``, the one file a command reads (``planrun review PLAN``, ``planrun import SOURCE``), as a path.

    A usage check only: whatever reads the file opens it and verifies what it opened.

    :raises UsageError: ``ARG: no such file`` or ``ARG: not a regular file``.
    """
    path = Path(arg)
    if not path.is_file():
        raise UsageError(f"{arg}: no such file" if not path.exists() else f"{arg}: not a regular file")
    return path
