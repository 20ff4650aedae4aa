"""The ``planrun`` command's entry point, kept free of imports so a Ctrl-C at start is one line.

Importing :mod:`planrun.cli` (and pluggy, pydantic, yaml behind it) takes about
a tenth of a second. A SIGINT in that window would otherwise end in a
``KeyboardInterrupt`` traceback from whatever module was being imported. Here it
ends with one line and exit code 2, pytest's "interrupted": nothing has run yet.
"""

from __future__ import annotations

import os
import sys


def script() -> None:
    """Import the command line, then hand over to :func:`planrun.cli.script`."""
    try:
        from planrun.cli import script as run
    except KeyboardInterrupt:
        try:
            sys.stderr.write("planrun: interrupted while starting: nothing ran\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed or gone: the exit code says it
            pass
        os._exit(2)
    run()
