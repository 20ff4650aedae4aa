"""The :class:`Toolbox`: one agent's tools in one workdir, and the dispatch of a model's calls."""

from __future__ import annotations

import codecs
import json
import math
import os
import stat
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from planrun.agenttools.messages import ToolError, _bound, _name, _shown, _strerror
from planrun.agenttools.paths import _BINARY_PROBE, _NOFOLLOW, _fold, _kind, _parts
from planrun.agenttools.sandbox import _ENV_DENIED, _find_bwrap, _Sandboxed
from planrun.agenttools.schemas import _arguments, _json_type
from planrun.agenttools.search import _Searching
from planrun.process import run_process
from planrun.reports import printable
from planrun.types import forget_paths

_MAX_TIMEOUT = 600.0  # the most seconds a model may ask one command for (or the default timeout, if longer)
_MAX_WRITE = 8 << 20  # bytes write_file and edit_file write at most
_MAX_ENTRIES = 1000  # list_dir entries shown


class Toolbox(_Searching, _Sandboxed):
    """The tools of one agent in one workdir.

    :param workdir: the only folder the tools read and write (its real path is used).
    :param protected: more paths refused like plan files (read and write): the
        plan files of the run, relative to the workdir or absolute.
    :param timeout: the default seconds of one ``run_command``; a model may ask
        for up to ``max(timeout, 600)``.
    :param max_output: characters of one tool result at most (``run_command``
        output keeps its head and tail; ``list_dir`` and ``search`` stop early).
    :param max_read: bytes ``read_file`` returns at most per call.
    :param sandbox: ``auto`` (bubblewrap when it works here), ``bwrap``
        (required: :class:`~planrun.UsageError` without it) or ``none``.
    :param env: variables added to the allowlisted environment of commands;
        a name that looks like a secret is a :class:`ValueError`.
    :param readonly: only ``read_file``, ``list_dir`` and ``search`` exist.
    :raises UsageError: see ``sandbox``.
    :raises ValueError: ``workdir`` is not a folder, or a bad limit or ``env``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        protected: Sequence[str] = (),
        timeout: float = 60,
        max_output: int = 64_000,
        max_read: int = 256_000,
        sandbox: str = "auto",
        env: Mapping[str, str] | None = None,
        readonly: bool = False,
    ) -> None:
        self.workdir = Path(os.path.realpath(workdir))
        self._root = os.fspath(self.workdir)
        try:
            st = os.stat(self._root)
        except OSError as exc:
            raise ValueError(f"workdir {workdir}: {_strerror(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"workdir {workdir} is not a folder")
        self._root_id = (st.st_dev, st.st_ino)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if max_output < 200 or max_read < 1:
            raise ValueError("max_output must be at least 200 and max_read at least 1")
        self.timeout = float(timeout)
        self.max_output = max_output
        self.max_read = max_read
        self.readonly = readonly
        self._protected_paths = [rel for p in protected for rel in self._protected_rels(os.fspath(p))]
        self._protected = tuple({tuple(map(_fold, rel)): "/".join(rel) for rel in self._protected_paths}.items())
        for key in env or {}:
            if _ENV_DENIED.search(key):
                raise ValueError(f"env: {key} looks like a secret; commands of an agent never get secrets")
        self._extra_env = dict(env or {})
        self._bwrap = _find_bwrap(sandbox)
        self._private: str | None = None
        self._cleanup: weakref.finalize | None = None
        self._tools: dict[str, Callable[..., str]] = {
            "read_file": self.read_file,
            "list_dir": self.list_dir,
            "search": self.search,
            "write_file": self.write_file,
            "edit_file": self.edit_file,
            "run_command": self.run_command,
        }

    def sandbox_name(self) -> str:
        """``"bubblewrap"`` when commands run inside bwrap, else ``"none"``."""
        return "bubblewrap" if self._bwrap else "none"

    def close(self) -> None:
        """Remove the private home and temp folder of commands (also done when the toolbox is collected)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Toolbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatch --

    def call(self, name: str, arguments: object) -> str:
        """Perform tool ``name`` with ``arguments`` (parsed JSON): its result, or :class:`ToolError`.

        Unknown tools, missing, unexpected and wrongly typed arguments are
        refused with a message saying which; ``null`` counts as an omitted
        optional argument.
        """
        given = _arguments(name, arguments, self.readonly)
        try:
            return self._tools[name](**given)
        except OSError as exc:  # what the tools did not foresee: still one line for the model
            raise ToolError(f"{name}: {_strerror(exc)}") from None

    def _writable(self, tool: str) -> None:
        if self.readonly:
            raise ToolError(f"{tool} is not available: this agent may only read")

    # -- the tools --

    def read_file(self, path: str, offset: int = 0, limit: int | None = None) -> str:
        """The exact text of a file, from line ``offset`` (0-based), at most ``limit`` lines and ``max_read`` bytes.

        When something is left out, a last line ``[planrun: ...]`` says which
        lines were shown and the ``offset`` to read on from. Binary files are
        refused. Undecodable bytes become U+FFFD, and a last line says so.
        """
        fd, st, _ = self._open_read(path, "file")
        rel = "/".join(_parts(path))
        with os.fdopen(fd, "rb") as f:
            if b"\x00" in f.read(_BINARY_PROBE):
                raise ToolError(f"{_shown(rel)} is a binary file ({st.st_size} bytes): read_file shows text only")
            f.seek(0)
            skipped = _skip_lines(f, offset)
            if skipped < offset:
                if skipped == 0 and st.st_size == 0:
                    return f"[planrun: {_name(rel)} is empty]"
                return f"[planrun: {_name(rel)} has {skipped} lines; offset {offset} is past its end]"
            data = f.read(self.max_read + 1)
            more = len(data) > self.max_read or bool(f.read(1))
        data = data[: self.max_read]
        long_line = more and b"\n" not in data
        if more and not long_line:
            data = data[: data.rindex(b"\n") + 1]
        lines = data.splitlines(keepends=True)
        if limit is not None and len(lines) > limit:
            lines, more = lines[:limit], True
            data = b"".join(lines)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(data, final=not long_line)
        notes = []
        try:
            codecs.getincrementaldecoder("utf-8")("strict").decode(data, final=not long_line)
        except UnicodeDecodeError:
            notes.append(f"[planrun: {_name(rel)} is not valid UTF-8: undecodable bytes are shown as U+FFFD]")
        if long_line:
            notes.append(
                f"[planrun: line {offset + 1} of {_name(rel)} is longer than {self.max_read} bytes: "
                f"only its start is shown; read on with offset={offset + 1}]"
            )
        elif more:
            notes.append(
                f"[planrun: showed lines {offset + 1}-{offset + len(lines)} of {_name(rel)} ({st.st_size} bytes); "
                f"read on with offset={offset + len(lines)}]"
            )
        if not text and not notes:
            return f"[planrun: {_name(rel)} is empty]"
        if notes and text and not text.endswith("\n"):
            text += "\n"
        return text + "\n".join(notes)

    def write_file(self, path: str, content: str) -> str:
        """Create or replace ``path`` with ``content`` (UTF-8); missing folders are created."""
        self._writable("write_file")
        data = _encode(content)
        fd, name, rel = self._open_parent(path, create=True)
        try:
            old = self._target(fd, name, rel)
            self._replace(fd, name, rel, data, old)
        finally:
            os.close(fd)
        return f"{'replaced' if old else 'created'} {_name(rel)} ({len(data)} bytes)"

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of ``old`` in ``path`` by ``new``; zero or several occurrences are refused."""
        self._writable("edit_file")
        if not isinstance(old, str) or not old:
            raise ToolError("edit_file: old must be a non-empty string (use write_file to create a file)")
        if not isinstance(new, str):
            raise ToolError("edit_file: new must be a string")
        fd, name, rel = self._open_parent(path, create=False)
        try:
            st = self._target(fd, name, rel)
            if st is None:
                raise ToolError(f"{_shown(rel)} does not exist (use write_file to create it)")
            text = self._read_for_edit(fd, name, rel, st)
            count = text.count(old)
            if count != 1:
                crlf = " (the file has CRLF line endings)" if count == 0 and "\r\n" in text else ""
                if count == 0:
                    raise ToolError(f"old text not found in {_shown(rel)} (0 matches){crlf}")
                raise ToolError(
                    f"old text occurs {count} times in {_shown(rel)} ({count} matches): "
                    "include more surrounding text to make it unique"
                )
            at = text.index(old)
            updated = text[:at] + new + text[at + len(old) :]
            self._replace(fd, name, rel, _encode(updated), st)
        finally:
            os.close(fd)
        line = text.count("\n", 0, at) + 1
        return f"edited {_name(rel)}: replaced 1 occurrence at line {line}"

    def _read_for_edit(self, fd: int, name: str, rel: str, st: os.stat_result) -> str:
        if st.st_size > _MAX_WRITE:
            raise ToolError(f"{_shown(rel)} is {st.st_size} bytes, over the {_MAX_WRITE}-byte edit limit")
        try:
            ffd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be read: {_strerror(exc)}") from None
        with os.fdopen(ffd, "rb") as f:
            now = os.fstat(f.fileno())
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
                raise ToolError(f"{_shown(rel)} changed while it was opened; try again")
            data = f.read(_MAX_WRITE + 1)
        if len(data) > _MAX_WRITE:
            raise ToolError(f"{_shown(rel)} is over the {_MAX_WRITE}-byte edit limit")
        if b"\x00" in data[:_BINARY_PROBE]:
            raise ToolError(f"{_shown(rel)} is a binary file: edit_file edits text only")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{_shown(rel)} is not valid UTF-8: edit_file edits UTF-8 text only") from None

    def list_dir(self, path: str = ".") -> str:
        """The entries of a folder, sorted: folders end with ``/``, symlinks show ``-> target``."""
        fd, _, _ = self._open_read(path, "dir")
        rel = "/".join(_parts(path)) or "."
        try:
            names: list[tuple[str, str]] = []
            total = 0
            with os.scandir(fd) as it:
                for entry in it:
                    total += 1
                    if total > 100 * _MAX_ENTRIES:
                        break
                    names.append((entry.name, self._entry_line(fd, entry)))
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be listed: {_strerror(exc)}") from None
        finally:
            os.close(fd)
        if not names:
            return f"[planrun: {_name(rel)} is empty]"
        names.sort()
        lines = [line for _, line in names[:_MAX_ENTRIES]]
        if total > _MAX_ENTRIES:
            more = f"{total - _MAX_ENTRIES}" + ("+" if total > 100 * _MAX_ENTRIES else "")
            lines.append(f"[... {more} more entries not shown]")
        return _bound("\n".join(lines), self.max_output)

    @staticmethod
    def _entry_line(fd: int, entry: os.DirEntry[str]) -> str:
        name = _name(entry.name)
        try:
            if entry.is_symlink():
                return f"{name} -> {_name(os.readlink(entry.name, dir_fd=fd))}"
            if entry.is_dir(follow_symlinks=False):
                return f"{name}/"
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            return name
        return name if stat.S_ISREG(mode) else f"{name} [{_kind(mode).removeprefix('a ')}]"

    def run_command(self, command: str, timeout: float | None = None) -> str:
        """Run ``command`` with bash in the workdir; its exit status and output (stderr merged, capped).

        ``timeout`` defaults to the toolbox's and is capped at ``max(timeout, 600)``
        seconds. When it passes, the command and everything it started are killed.
        """
        self._writable("run_command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("run_command: command must be a non-empty string")
        if "\x00" in command:
            raise ToolError("run_command: command contains a NUL byte")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise ToolError(f"run_command: timeout must be a number of seconds, not {_json_type(timeout)}")
        limit = self.timeout if timeout is None else float(timeout)
        if not (limit > 0 and math.isfinite(limit)):
            raise ToolError(f"run_command: timeout must be a positive number of seconds, not {timeout!r}")
        limit = min(limit, max(self.timeout, _MAX_TIMEOUT))
        os.close(self._open_root())  # the workdir is still the one we confine to
        env = self._environment()
        shell = env["SHELL"]
        inner = ["/bin/sh", "-c", 'exec "$@" 2>&1', "sh"]
        inner += [shell, "--noprofile", "--norc", "-c", command] if shell != "/bin/sh" else [shell, "-c", command]
        argv = self._bwrap_argv() + inner if self._bwrap else inner
        try:
            result = run_process(argv, cwd=self._root, timeout=limit, env=env, max_output=self.max_output // 2)
        except OSError as exc:
            raise ToolError(f"run_command: the command could not be started: {_strerror(exc)}") from None
        finally:
            forget_paths()
        if result.timed_out:
            head = f"timed out after {limit:g}s: the command and everything it started were killed"
        elif result.returncode is not None and result.returncode < 0:
            head = f"killed by signal {-result.returncode}"
        else:
            head = f"exit code {result.returncode}"
        if result.stdout_omitted:
            head += f"; output {result.stdout_bytes} bytes, {result.stdout_omitted} not shown (the middle)"
        out = [head]
        if result.stdout:
            out.append(result.stdout.rstrip("\n"))
        elif not result.stderr:
            out[0] += " (no output)"
        if result.stderr:  # only bwrap or the wrapper write here: the command's stderr is merged into stdout
            out.append("stderr: " + result.stderr.rstrip("\n"))
        return _bound(printable("\n".join(out)), self.max_output)


def _search_child(request: str) -> None:
    """The child process of :meth:`Toolbox._search_in_child`: one search, its answer as JSON on stdout."""
    args = json.loads(request)
    box = Toolbox(Path(args["workdir"]), protected=args["protected"], timeout=args["timeout"], sandbox="none")
    box.max_output = args["max_output"]
    try:
        answer = {"result": box.search(*args["args"])}
    except ToolError as exc:
        answer = {"error": str(exc)}
    sys.stdout.write(json.dumps(answer))


def _skip_lines(f: Any, count: int) -> int:
    """Move ``f`` past ``count`` lines; how many it skipped (fewer at the end of the file)."""
    skipped = 0
    while skipped < count:
        pos = f.tell()
        chunk = f.read(1 << 16)
        if not chunk:
            return skipped
        start = 0
        while skipped < count:
            at = chunk.find(b"\n", start)
            if at < 0:
                break
            skipped += 1
            start = at + 1
        if skipped == count:
            f.seek(pos + start)
            return skipped
    return skipped


def _encode(content: str) -> bytes:
    if not isinstance(content, str):
        raise ToolError("content must be a string")
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("content is not valid Unicode text (lone surrogates)") from None
    if len(data) > _MAX_WRITE:
        raise ToolError(f"content is {len(data)} bytes, over the {_MAX_WRITE}-byte write limit")
    return data
