"""SIGINT and SIGTERM as Ctrl-C: the one handler of the console script and of a session."""

from __future__ import annotations

import signal


class Interrupts:
    """The SIGINT/SIGTERM handler: the first signal raises :exc:`KeyboardInterrupt`, later ones are absorbed.

    Absorbing them keeps a second Ctrl-C (or a TERM right after a TERM) from
    cutting the partial report short or killing the process with 130/143.
    Imports nothing but :mod:`signal`: the console script installs it before
    anything else (``planrun --version`` never imports the session).
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count == 1:
            raise KeyboardInterrupt(signal.Signals(signum).name)


def install_interrupts() -> Interrupts:
    """Install one :class:`Interrupts` for SIGINT and SIGTERM for good (the console script, until exit)."""
    handler = Interrupts()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return handler
