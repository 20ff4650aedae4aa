"""The agent tools' ``search``: a regex over the files of the workdir, walked without following symlinks."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading

from planrun.agenttools.messages import ToolError, _name, _shown
from planrun.agenttools.paths import _BINARY_PROBE, _DIR_FLAGS, _NOFOLLOW, _Confined, _protection
from planrun.agenttools.sandbox import _DEFAULT_PATH
from planrun.process import run_process
from planrun.types import StepTimeout, compile_regex, time_limit

_MAX_MATCHES = 200  # search matches shown
_MAX_LINE = 300  # characters of a matching line shown
_MAX_SEARCH_FILES = 20_000  # files search reads
_MAX_SEARCH_FILE = 4 << 20  # bytes of one file search reads (bigger files are skipped)
_MAX_SEARCH_BYTES = 256 << 20  # bytes search reads in all
_MAX_DEPTH = 64  # folders below this depth are not searched
_SEARCH_TIME = 20.0  # seconds a search may take (a catastrophic regex is stopped)
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache"})


def _glob_regex(glob: str) -> re.Pattern[str]:
    """A regex for a glob over workdir-relative paths: ``*`` and ``?`` within a component, ``**/`` any folders.

    A glob without ``/`` matches the file's name at any depth (``*.py``).
    """
    if "/" not in glob:
        glob = "**/" + glob
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ToolError(f"invalid glob {_shown(glob)}: {exc}") from None


class _Searching(_Confined):
    """The ``search`` tool of a :class:`~planrun.agenttools.Toolbox`."""

    timeout: float
    max_output: int

    def search(self, pattern: str, path: str = ".", glob: str | None = None) -> str:
        """Lines matching the regex ``pattern`` in the files under ``path`` (only those matching ``glob``).

        Walks real folders only (no symlink is followed), skips binary, protected
        and unreadable files and the folders in ``_SKIPPED_DIRS`` (unless
        ``path`` names one), and stops at the caps, saying so. The regex runs
        under a time limit: a signal in the main thread; called from another
        thread, the search runs in a child process killed at the limit.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("search: pattern must be a non-empty string")
        try:
            regex = compile_regex(pattern)
        except ValueError as exc:
            raise ToolError(f"search: {exc}") from None
        globre = _glob_regex(glob) if glob else None
        seconds = min(self.timeout, _SEARCH_TIME)
        if threading.current_thread() is not threading.main_thread():
            return self._search_in_child(pattern, path, glob, seconds)
        fd, st, real_rel = self._open_read(path, "any")
        state = _SearchState(self.max_output, regex, globre)
        start = "" if real_rel == "." else real_rel
        try:
            with time_limit(seconds, f"search {pattern!r}"):
                if stat.S_ISDIR(st.st_mode):
                    self._search_dir(fd, start, state, 0)
                else:
                    state.file(fd, start)
        except StepTimeout:
            raise ToolError(f"search stopped: the regex {_shown(pattern, 80)} ran longer than {seconds:g}s") from None
        except _Enough:
            pass
        finally:
            os.close(fd)
        return state.result()

    def _search_in_child(self, pattern: str, path: str, glob: str | None, seconds: float) -> str:
        """:meth:`search` in a child Python process (where no signal can stop a regex in this one)."""
        request = {
            "workdir": self._root,
            "protected": ["/".join(p) for p in self._protected_paths],
            "timeout": seconds,
            "max_output": self.max_output,
            "args": [pattern, path, glob],
        }
        code = "import sys; from planrun.agenttools.toolbox import _search_child; _search_child(sys.argv[1])"
        env = {"PATH": os.environ.get("PATH", _DEFAULT_PATH), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = run_process(
            [sys.executable, "-c", code, json.dumps(request)], cwd=self._root, timeout=seconds + 10, env=env
        )
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = None
        if done.timed_out or not isinstance(answer, dict):
            raise ToolError(f"search stopped: the regex {_shown(pattern, 80)} ran longer than {seconds:g}s")
        if "error" in answer:
            raise ToolError(str(answer["error"]))
        return str(answer["result"])

    def _search_dir(self, fd: int, rel: str, state: _SearchState, depth: int) -> None:
        try:
            with os.scandir(fd) as it:
                entries = sorted(
                    (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in it
                )
        except OSError:
            return
        for name, is_dir, is_file in entries:
            child_rel = f"{rel}/{name}" if rel else name
            prot = _protection(child_rel.split("/"), self._protected)
            if prot is not None and not prot.readable:
                continue
            if is_dir:
                if name in _SKIPPED_DIRS or depth >= _MAX_DEPTH:
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue
                try:
                    self._search_dir(child, child_rel, state, depth + 1)
                finally:
                    os.close(child)
            elif is_file and (state.glob is None or state.glob.match(child_rel)):
                try:
                    ffd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=fd)
                except OSError:
                    continue
                try:
                    state.file(ffd, child_rel)
                finally:
                    os.close(ffd)


class _Enough(Exception):
    """The search reached a cap."""


class _SearchState:
    """What a search found and read so far, with its caps."""

    def __init__(self, budget: int, regex: re.Pattern[str], glob: re.Pattern[str] | None) -> None:
        self.budget = budget - 200  # room for the closing notes
        self.regex = regex
        self.glob = glob
        self.lines: list[str] = []
        self.used = 0
        self.files = 0
        self.bytes = 0
        self.skipped_big = 0
        self.stopped = ""

    def file(self, fd: int, rel: str) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        if st.st_size > _MAX_SEARCH_FILE:
            self.skipped_big += 1
            return
        if self.files >= _MAX_SEARCH_FILES or self.bytes + st.st_size > _MAX_SEARCH_BYTES:
            self.stopped = f"stopped after reading {self.files} files ({self.bytes} bytes)"
            raise _Enough
        try:
            data = os.read(fd, _MAX_SEARCH_FILE + 1)
        except OSError:
            return
        self.files += 1
        self.bytes += len(data)
        if b"\x00" in data[:_BINARY_PROBE] or len(data) > _MAX_SEARCH_FILE:
            return
        text = data.decode("utf-8", errors="replace")
        shown_rel = _name(rel)
        for number, line in enumerate(text.splitlines(), 1):
            if self.regex.search(line):
                if len(self.lines) >= _MAX_MATCHES:
                    self.stopped = f"stopped at {_MAX_MATCHES} matches"
                    raise _Enough
                if len(line) > _MAX_LINE:
                    line = line[:_MAX_LINE] + "..."
                entry = f"{shown_rel}:{number}:{_name(line)}"
                if self.used + len(entry) + 1 > self.budget:
                    self.stopped = f"stopped at {self.budget} characters of results"
                    raise _Enough
                self.lines.append(entry)
                self.used += len(entry) + 1

    def result(self) -> str:
        notes = []
        if self.stopped:
            notes.append(f"[planrun: {self.stopped}; narrow the pattern, path or glob]")
        if self.skipped_big:
            notes.append(f"[planrun: {self.skipped_big} files over {_MAX_SEARCH_FILE} bytes not searched]")
        if not self.lines:
            return "\n".join(["no matches", *notes])
        return "\n".join(self.lines + notes)
