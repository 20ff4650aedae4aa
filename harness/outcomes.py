"""Outcome exceptions a check raises: failed (``fail``) or skipped (``skip``)."""

from __future__ import annotations

from typing import NoReturn


class CheckFailed(AssertionError):
    """A criterion does not hold. A plain ``assert`` in a check counts the same.

    :param message: one line: what was expected and what was found.
    :param evidence: optional text shown under the message (nearest file
        lines, a command's output tail).
    """

    def __init__(self, message: str, evidence: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence


class Skipped(Exception):
    """A criterion that is not checked, with the reason.

    :param manual: the criterion can only be checked by a person; under
        ``--strict`` that makes it an error instead of a skip.
    """

    def __init__(self, reason: str, manual: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.manual = manual


def fail(message: str, evidence: str = "") -> NoReturn:
    """Fail the current check with ``message`` and optional ``evidence``."""
    __tracebackhide__ = True
    raise CheckFailed(message, evidence)


def skip(reason: str, *, manual: bool = False) -> NoReturn:
    """Skip the current check with ``reason`` (``manual=True``: a person must check it)."""
    __tracebackhide__ = True
    raise Skipped(reason, manual)
