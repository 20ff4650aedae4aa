"""What a task's criteria read: the paths file and data criteria inspect, the files commands name.

The scope guard uses it to know which files judge a task; ``-n`` to know which tasks may be performed
side by side (:mod:`planrun.taskgroup`).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def criteria_reads(checks: Iterable[Any], workdir: Path) -> tuple[list[str], list[str]]:
    """``(patterns, named)``: the paths file and data criteria inspect, and the existing files commands name.

    ``named`` are workdir-relative paths of files (or folders) that exist now
    and appear as a word (or after ``=`` in a word) of a ``command``
    criterion's ``run``, relative to the workdir or the criterion's ``cwd``.
    """
    patterns: list[str] = []
    named: list[str] = []
    root = os.path.realpath(workdir)
    for check in checks:
        args = getattr(check, "args", None)
        for key in ("path", "file"):
            value = getattr(args, key, None)
            if isinstance(value, str) and key == "path" and getattr(check, "kind", "") == "data":
                continue  # data's path is a path into the document, not a file
            if isinstance(value, str) and value:
                patterns.append(value)
        paths = getattr(args, "paths", None)
        if isinstance(paths, (list, tuple)):
            patterns.extend(p for p in paths if isinstance(p, str))
        run = getattr(args, "run", None)
        if isinstance(run, str):
            cwd = getattr(args, "cwd", None) or ""
            named.extend(_named_files(run, root, cwd if isinstance(cwd, str) else "", getattr(args, "env", None)))
    return patterns, list(dict.fromkeys(named))


_SHELL_SPLIT = re.compile(r"[\s;&|()<>'\"`=]+")


def _words(run: str) -> list[str]:
    """The shell words of ``run`` and every word inside them (``sh -c 'sh check.sh'`` names check.sh too)."""
    try:
        words = shlex.split(run)
    except ValueError:
        words = run.split()
    inner = [w for word in [run, *words] for w in _SHELL_SPLIT.split(word)]
    return list(dict.fromkeys(w for w in [*words, *inner] if w))


def _named_files(run: str, root: str, cwd: str, env: Any = None) -> list[str]:
    found = []
    values = list(env.values()) if isinstance(env, dict) else []
    for word in _words(run) + [v for v in values if isinstance(v, str)]:
        for candidate in (word, word.partition("=")[2]):
            if not candidate or candidate.startswith("-"):
                continue
            found.extend(_resolve(candidate, root, cwd))
    return found


def _resolve(word: str, root: str, cwd: str) -> list[str]:
    """Workdir-relative names of what ``word`` names inside the workdir (itself and, for a symlink, its target)."""
    full = word if os.path.isabs(word) else os.path.join(root, cwd, word)
    full = os.path.normpath(full)
    out = []
    for path in (full, os.path.realpath(full)):
        if path == root or os.path.commonpath((root, path)) != root or not os.path.exists(path):
            continue
        out.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return out
