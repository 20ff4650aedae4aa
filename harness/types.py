"""The data types plugins exchange with the core: kinds, contexts and results."""

from __future__ import annotations

import _signal
import abc
import fnmatch
import hashlib
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict

from planrun.atomic import read_upto
from planrun.errors import PlanrunError
from planrun.outcomes import CheckFailed, fail

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan, Task
    from planrun.process import ProcessResult


class Location(NamedTuple):
    """Where something is written: a file and a 1-based line and column."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.path
        return f"{self.path}:{self.line}:{self.col}" if self.col else f"{self.path}:{self.line}"


# Directory realpaths, cached: criteria ask for the same folders again and
# again. The runner forgets them whenever something may have changed the tree.
_REALDIRS: dict[str, str] = {}
# Bumped by forget_paths(): caches of file contents (data documents) compare
# against it, so nothing read before a step or a command is trusted after it.
_GENERATION = 0

#: Default bound on what a check reads from one file (``--max-file-bytes``).
DEFAULT_MAX_FILE_BYTES = 64 << 20
_MAX_FILE_BYTES = DEFAULT_MAX_FILE_BYTES

_MAIN_THREAD = threading.main_thread()
_MAIN_IDENT = _MAIN_THREAD.ident
_get_ident = threading.get_ident
_PROC_FD = os.path.isdir("/proc/self/fd")
_O_PATH: int = getattr(os, "O_PATH", 0)
_USE_PATH = bool(_O_PATH) and _PROC_FD


def _resolve(path: str) -> str | None:
    """``os.path.realpath(path)``, or ``None`` when the path changed under it.

    Python's realpath raises when a component it saw as a symlink stops being
    one (or starts being one) before it reads the link: a tree being changed
    while a check looks. Callers take ``None`` as "does not exist".
    """
    try:
        return os.path.realpath(path)
    except OSError:
        return None


def _must_resolve(path: str, what: str) -> str:
    real = _resolve(path)
    if real is not None:
        return real
    raise CheckFailed(f"{what} changed while it was resolved; nothing can be said", "")


def _kernel_realdir(path: str) -> str | None:
    """The real path of folder ``path`` as the kernel resolved it on opening it (``O_PATH``), or ``None``.

    What ``os.path.realpath`` gives for a folder that exists, at one open
    instead of an ``lstat`` per component: the name ``/proc/self/fd`` has for
    the descriptor. ``None`` (the caller resolves it by realpath) where that
    cannot be had: no ``O_PATH`` or ``/proc``, not a folder, not there, or
    removed meanwhile.
    """
    if not _USE_PATH:
        return None
    try:
        fd = os.open(path, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)
    if not real.startswith("/") or real.endswith(" (deleted)"):
        return None
    return real


def _realdir(path: str) -> str:
    try:
        return _REALDIRS[path]
    except KeyError:
        real = _REALDIRS[path] = _kernel_realdir(path) or _must_resolve(path, path)
        return real


# The real path each workdir had when a check first used it. A step that swaps
# the workdir itself for a symlink (``mv w w.old; ln -s /elsewhere w``) must not
# carry the checks out with it, so this is never forgotten.
_ROOTS: dict[str, str] = {}


def _pin_root(workdir: str) -> str:
    """The real path ``workdir`` had when first used (recorded now if this is the first use)."""
    try:
        return _ROOTS[workdir]
    except KeyError:
        first = _ROOTS[workdir] = _kernel_realdir(workdir) or _must_resolve(workdir, f"the workdir {workdir}")
        return first


# The last workdir :func:`_workdir_root` verified: [the object, the generation, its real path].
_LAST_ROOT: list[Any] = [None, -1, ""]


def _workdir_root(workdir: str | os.PathLike[str]) -> str:
    """The real path of ``workdir``; fails the check if it no longer is the folder it first was.

    Both are known for a generation once found (the realpath is kept until
    :func:`forget_paths`, the first one forever): asked again for the same
    workdir object (a ``str`` or ``Path``, never changed) in the same
    generation, the answer is what it was.
    """
    last = _LAST_ROOT
    if workdir is last[0] and last[1] == _GENERATION:
        return last[2]  # type: ignore[no-any-return]
    text = os.fspath(workdir)
    first = _pin_root(text)
    real = _realdir(text)
    if real != first:
        fail(f"the workdir {text} was replaced: it now resolves to {real}, not {first}")
    if isinstance(workdir, (str, PurePath)):
        last[0], last[1], last[2] = workdir, _GENERATION, real
    return real


def forget_paths() -> None:
    """Drop cached realpaths, folders and file contents (the tree may have changed)."""
    global _GENERATION
    _LAST_ROOT[0] = None
    _REALDIRS.clear()
    _CONTENTS.clear()
    _CONTENT_SIZE[0] = 0
    _close_dirs()
    _GENERATION += 1


class _Content:
    """One file as a check opened, verified and read it; its text and SHA-256 when asked for."""

    __slots__ = ("data", "text", "digest")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.text: str | None = None
        self.digest: str | None = None


# Files read in this generation, by (real workdir, rel): a criterion that reads
# what an earlier one read (in the same item or a later one, with nothing run in
# between) gets what was opened and verified then, without opening it again.
# forget_paths() drops them all; so does the runner after anything that may
# change the tree. Bounded: files over _CONTENT_FILE_MAX are never kept, and
# the oldest go first past _CONTENT_ENTRIES or _CONTENT_BYTES.
_CONTENTS: dict[tuple[str, str], _Content] = {}
_CONTENT_SIZE = [0]
_CONTENT_ENTRIES = 1024
_CONTENT_BYTES = 64 << 20
_CONTENT_FILE_MAX = 4 << 20


def _keep(key: tuple[str, str], entry: _Content) -> None:
    size = len(entry.data)
    if size > _CONTENT_FILE_MAX:
        return
    while _CONTENTS and (len(_CONTENTS) >= _CONTENT_ENTRIES or _CONTENT_SIZE[0] + size > _CONTENT_BYTES):
        _CONTENT_SIZE[0] -= len(_CONTENTS.pop(next(iter(_CONTENTS))).data)
    _CONTENTS[key] = entry
    _CONTENT_SIZE[0] += size


# Folders a literal path was looked up in, this generation: their path (as
# written below the real workdir) -> (an open descriptor, the folder's real path
# when it was opened and verified). A lookup by descriptor stays in that folder
# even if its name is swapped for a symlink afterwards.
_DIRS: dict[tuple[str, str], tuple[int, str]] = {}
_DIR_ENTRIES = 128


def _close_dirs() -> None:
    while _DIRS:
        fd = _DIRS.popitem()[1][0]
        try:
            os.close(fd)
        except OSError:
            pass


# --evidence: whether checks record what they read and ran (CriterionResult.record).
# Off, the only cost is one ``record is None`` test per open, glob and command.
_RECORDING = False
#: Characters of each output stream's kept text an evidence record keeps (its end).
RECORD_TAIL = 4096


def set_recording(on: bool) -> None:
    """Make every check record its evidence (``--evidence``): see :func:`new_record`."""
    global _RECORDING
    _RECORDING = on


def is_recording() -> bool:
    """Whether checks record their evidence (``--evidence``)."""
    return _RECORDING


def new_record() -> dict[str, Any] | None:
    """An empty evidence record for one check, or ``None`` when recording is off.

    While a check runs, ``files`` maps each workdir-relative path it opened
    or matched to what was seen; :func:`finish_record` turns it into a list.
    """
    return {"files": {}, "globs": [], "commands": []} if _RECORDING else None


def finish_record(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready form of a record: ``files`` as a list, in the order first met."""
    return {**record, "files": list(record["files"].values())}


def _hash_fd(fd: int) -> tuple[str, int]:
    """SHA-256 (hex) and size of everything in open file ``fd``, read with ``pread`` (its offset stays)."""
    sha, pos = hashlib.sha256(), 0
    while True:
        chunk = os.pread(fd, 1 << 20, pos)
        if not chunk:
            return sha.hexdigest(), pos
        sha.update(chunk)
        pos += len(chunk)


def _stream(total: int, digest: str | None, kept: str) -> dict[str, Any]:
    """One output stream in a command's evidence: bytes read, SHA-256 of them all, the end of what was kept."""
    return {"bytes": total, "sha256": digest, "tail": kept[-RECORD_TAIL:]}


def set_max_file_bytes(limit: int) -> None:
    """Set the run's bound on bytes read from one file (``--max-file-bytes``)."""
    global _MAX_FILE_BYTES
    _MAX_FILE_BYTES = limit


def _inside(real: str, root: str) -> bool:
    """``real`` is ``root`` or below it, compared by path components (never a bare string prefix).

    Both are absolute real paths (normalized: no ``.``, ``..``, ``//`` or
    trailing separator but for ``/`` itself), so ``real`` lies below ``root``
    exactly when it continues ``root`` with a separator: ``/w/ab`` is not
    inside ``/w/a``. The same as ``os.path.commonpath`` on such paths, at a
    fraction of its cost (it runs for every file a check opens).
    """
    if real == root:
        return True
    n = len(root)
    if root.endswith(os.sep):  # the file system's root
        return real.startswith(root)
    return len(real) > n and real[n] == os.sep and real.startswith(root)


def _fd_realpath(fd: int, path: str) -> str | None:
    """The real path of the object open as ``fd`` (opened through ``path``), or ``None``.

    Linux names an open file in ``/proc/self/fd``; elsewhere the realpath of
    ``path`` counts only if it is the very inode ``fd`` holds, so a symlink
    swapped between the open and this call is never taken for what was opened.
    """
    if _PROC_FD:
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            real = ""
        if real.startswith("/"):
            return real.removesuffix(" (deleted)")
    return _realpath_by_inode(fd, path)


def _realpath_by_inode(fd: int, path: str) -> str | None:
    """The realpath of ``path``, if it still names the inode open as ``fd`` (where /proc is missing)."""
    real = _resolve(path)
    if real is None:
        return None
    try:
        st, rst = os.fstat(fd), os.stat(real)
    except OSError:
        return None
    return real if (st.st_dev, st.st_ino) == (rst.st_dev, rst.st_ino) else None


def _fd_inside(fd: int, path: str, root: str) -> bool:
    """The object open as ``fd`` (opened through ``path``) lies inside the real directory ``root``."""
    real = _fd_realpath(fd, path)
    return real is not None and _inside(real, root)


def _read_capped(f: BinaryIO, rel: str, limit: int) -> bytes:
    """The rest of open file ``f`` (named ``rel`` in messages); fails beyond ``limit`` bytes."""
    size = os.fstat(f.fileno()).st_size
    if size > limit:
        fail(f"{rel} is {size} bytes, over the {limit}-byte limit (raise it with --max-file-bytes)")
    data = read_upto(f.read, limit, size)
    if len(data) > limit:
        fail(f"{rel} grew over the {limit}-byte limit while it was read (raise it with --max-file-bytes)")
    return data


def _read_fd(fd: int, rel: str, size: int, limit: int) -> bytes:
    """All of open file ``fd`` (``size`` bytes by its ``fstat``; named ``rel`` in messages); fails beyond ``limit``.

    Asks for one byte more than ``size``: a read that returns just ``size``
    bytes met the end of the file (no second read to find it), a file that grew
    is read on, and one that grew past ``limit`` fails without being read further.
    """
    if size > limit:
        fail(f"{rel} is {size} bytes, over the {limit}-byte limit (raise it with --max-file-bytes)")
    chunks: list[bytes] = []
    got, ask = 0, size + 1
    while True:
        chunk = os.read(fd, min(ask, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            fail(f"{rel} grew over the {limit}-byte limit while it was read (raise it with --max-file-bytes)")
        if got == size:
            break
        ask = max(ask - len(chunk), 1 << 16)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def compile_regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile a regex written in a plan; every way it can fail is a :class:`ValueError`.

    ``re.error``, but also ``OverflowError`` (``a{4294967296}``) and
    ``RecursionError`` (deep nesting), which pydantic would not turn into a
    located compile error by themselves.
    """
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"invalid regex {_short(pattern)}: {exc}") from None
    except (OverflowError, RecursionError, MemoryError, ValueError, TypeError) as exc:
        raise ValueError(f"invalid regex {_short(pattern)}: {exc or type(exc).__name__}") from None


def _short(text: str, width: int = 80) -> str:
    shown = repr(text)
    return shown if len(shown) <= width else shown[: width - 4] + "...'"


_GLOB_CHARS = re.compile(r"[*?[]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_MAX_DEPTH = 200  # folders below this depth are not searched by a glob


@lru_cache(maxsize=1024)
def _component_regex(part: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(part))


class _Matcher:
    """Expands one path or glob inside the workdir, never through a symlink out of it.

    It walks directory descriptors (``O_NOFOLLOW`` for real folders), so a
    folder swapped for a symlink mid-walk is never listed. A literal component
    or a final match that resolves outside is recorded in ``outside``; a
    wildcard folder leading outside is not descended; ``**`` follows no
    symlinked folder at all (no cycles, no escapes).
    """

    def __init__(self, root: str, dirs_only: bool) -> None:
        self.root = root
        self.dirs_only = dirs_only
        self.found: list[str] = []
        self.outside: list[str] = []
        self.truncated = False  # a folder was not searched: it lies deeper than _MAX_DEPTH
        self.unseen: tuple[str, str] | None = None  # the first path not looked at, and why (cannot be read...)

    def expand(self, fd: int, real: str, rel: str, parts: list[str], depth: int) -> None:
        if not parts:
            self.found.append(rel or ".")
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            if rest:
                self.expand(fd, real, rel, rest, depth)
            elif rel:
                self.found.append(rel)
            for name, is_dir, _ in self._entries(fd, "*", rel):
                if not rest:
                    self._final(fd, real, rel, name)
                if is_dir and self._may_descend(depth):
                    self._descend(fd, real, rel, name, parts, depth, follow=False)
            return
        if not _GLOB_CHARS.search(head):
            try:
                st = os.lstat(head, dir_fd=fd)
            except OSError as exc:
                if not _absent(exc):
                    self._unseen(rel or ".", "cannot be read")
                return
            if not rest:
                self._final(fd, real, rel, head, st)
            elif stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                self._descend(fd, real, rel, head, rest, depth, follow=True, literal=True)
            return
        for name, is_dir, is_link in self._entries(fd, head, rel):
            if not rest:
                self._final(fd, real, rel, name)
            elif (is_dir or is_link) and self._may_descend(depth):
                self._descend(fd, real, rel, name, rest, depth, follow=True)

    def _unseen(self, path: str, why: str) -> None:
        if self.unseen is None:
            self.unseen = (path, why)

    def _may_descend(self, depth: int) -> bool:
        if depth < _MAX_DEPTH:
            return True
        self.truncated = True
        return False

    def _entries(self, fd: int, part: str, rel: str) -> list[tuple[str, bool, bool]]:
        """Names in folder ``fd`` (``rel``) matching glob component ``part``: (name, real folder, symlink)."""
        regex = _component_regex(part)
        hidden = part.startswith(".")
        try:
            with os.scandir(fd) as it:
                entries = [
                    (e.name, e.is_dir(follow_symlinks=False), e.is_symlink())
                    for e in it
                    if (hidden or not e.name.startswith(".")) and regex.match(e.name)
                ]
        except OSError as exc:
            if not _absent(exc):
                self._unseen(rel or ".", "cannot be read")
            return []
        return sorted(entries)

    def _final(self, fd: int, real: str, rel: str, name: str, st: os.stat_result | None = None) -> None:
        path = _join(rel, name)
        try:
            st = st or os.lstat(name, dir_fd=fd)
        except OSError as exc:
            if not _absent(exc):
                self._unseen(path, "cannot be read")
            return
        if stat.S_ISLNK(st.st_mode):
            target = _resolve(os.path.join(real, name))
            if target is None:
                self._unseen(path, "changed while it was looked at")
                return
            if not _inside(target, self.root):
                self.outside.append(path)
                return
            if self.dirs_only and not os.path.isdir(target):
                return
        elif self.dirs_only and not stat.S_ISDIR(st.st_mode):
            return
        self.found.append(path)

    def _descend(
        self,
        fd: int,
        real: str,
        rel: str,
        name: str,
        parts: list[str],
        depth: int,
        *,
        follow: bool,
        literal: bool = False,
    ) -> None:
        path = _join(rel, name)
        try:
            child = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            child_real = os.path.join(real, name)
        except PermissionError:
            self._unseen(path, "cannot be read")  # a real folder (a symlink fails with ELOOP or ENOTDIR)
            return
        except OSError:
            if not follow:
                return
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                target = _resolve(os.path.join(real, name))
                if target is not None and not _inside(target, self.root):
                    if literal:
                        self.outside.append(path)
                elif not _absent(exc):
                    self._unseen(path, "cannot be read")
                return
            resolved = _fd_realpath(child, os.path.join(real, name))
            if resolved is None or not _inside(resolved, self.root):
                os.close(child)
                if literal:
                    self.outside.append(path)
                return
            child_real = resolved
        try:
            self.expand(child, child_real, path, parts, depth + 1)
        finally:
            os.close(child)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _walk(root: str, pattern: str) -> tuple[list[str], list[str]]:
    """``(found, outside)`` for any ``pattern`` below real workdir ``root``: the walk of :class:`_Matcher`."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    parts = [p for i, p in enumerate(parts) if not (p == "**" and parts[i + 1 : i + 2] == ["**"])]  # **/** is **
    if os.path.isabs(pattern) or ".." in parts:
        return [], [pattern]
    matcher = _Matcher(root, dirs_only=_wants_folder(pattern))
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as exc:
        fail(f"the workdir cannot be read: {exc.strerror or exc}")
    try:
        matcher.expand(fd, root, "", parts, 0)
    finally:
        os.close(fd)
    if matcher.outside and not _GLOB_CHARS.search(pattern):
        return [], [pattern]  # a plain path: name it as written
    if matcher.truncated and not matcher.found and not matcher.outside:
        fail(f"{pattern}: folders deeper than {_MAX_DEPTH} levels were not searched, so nothing can be said")
    if matcher.unseen and not matcher.found and not matcher.outside:
        fail(f"{pattern}: {matcher.unseen[0]} {matcher.unseen[1]}, so nothing can be said")
    return list(dict.fromkeys(matcher.found)), list(dict.fromkeys(matcher.outside))


class _Plain(NamedTuple):
    """A plain path (no wildcard) as :func:`_lookup` takes it."""

    folder: str  # the folder it is in, relative ("" for the workdir itself)
    name: str  # its last component
    rel: str  # the path as found (components joined by "/")
    dirs_only: bool  # written with a trailing "/"


_SLASH_ONLY = os.sep == "/" and not os.altsep


def _plain(pattern: str) -> _Plain | None:
    """``pattern`` as a plain path below the workdir, or ``None`` (a glob, the workdir itself, absolute, ``..``).

    A path written plainly (``a/b.txt``: no empty, ``.`` or ``..`` component,
    nothing that starts with a dot) is taken as it is; any other goes
    through :func:`_plain_parts`, which gives the same for it.
    """
    if (
        pattern
        and pattern[0] not in "/."
        and pattern[-1] != "/"
        and "//" not in pattern
        and "/." not in pattern
        and not _GLOB_CHARS.search(pattern)
        and _SLASH_ONLY
    ):
        folder, _, name = pattern.rpartition("/")
        return _Plain(folder, name, pattern, False)
    return _plain_parts(pattern)


@lru_cache(maxsize=4096)
def _plain_parts(pattern: str) -> _Plain | None:
    if _GLOB_CHARS.search(pattern) or os.path.isabs(pattern):
        return None
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return _Plain("/".join(parts[:-1]), parts[-1], "/".join(parts), _wants_folder(pattern))


def _wants_folder(pattern: str) -> bool:
    """``pattern`` names a folder only: it ends with ``/`` or ``/.`` (as the OS reads ``file.txt/.``: not a folder)."""
    stripped = pattern.rstrip("/")
    return stripped != pattern or stripped.endswith("/.")


def _folder(root: str, folder: str, *, fail_unreadable: bool = False) -> tuple[int, str] | str:
    """``(descriptor, real path)`` of ``folder`` (relative) below real workdir ``root``, opened and verified once
    per generation; else why not: ``"missing"`` (not there, or not a folder), ``"outside"`` (it resolves
    outside the workdir) or ``"unreadable"`` (it is there but cannot be searched; a folder that can be searched
    but not listed is opened ``O_PATH``, good for looking a name up in it).
    """
    key = (root, folder)
    cached = _DIRS.get(key)
    if cached is not None:
        return cached
    path = os.path.join(root, folder) if folder else root
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        real = _resolve(path) if folder else root
        if real is not None and not _inside(real, root):
            return "outside"
        if _absent(exc):
            return "missing"
        # Not listable is not absent: a name can still be looked up where the folder can be searched.
        fd = _search_only(path)
        if fd < 0:
            if fail_unreadable:
                fail(f"{'the workdir' if not folder else folder} cannot be read: {exc.strerror or exc}")
            return "unreadable"
    real = _fd_realpath(fd, path) if folder else root
    if real is None or not _inside(real, root):
        os.close(fd)
        return "outside"
    if len(_DIRS) >= _DIR_ENTRIES:
        _close_dirs()
    cached = _DIRS[key] = (fd, real)
    return cached


def _absent(exc: OSError) -> bool:
    """An error that says the thing is not there (as opposed to: it cannot be read)."""
    return isinstance(exc, (FileNotFoundError, NotADirectoryError))


def _search_only(path: str) -> int:
    """A descriptor of folder ``path`` good for lookups in it (``O_PATH``: no read permission needed), or -1."""
    if not _O_PATH:
        return -1
    try:
        return os.open(path, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1


def _lookup(root: str, plain: _Plain, pattern: str) -> tuple[list[str], list[str]]:
    """``(found, outside)`` for a plain path below real workdir ``root``: what the walk of :class:`_Matcher` finds.

    At one ``lstat`` in a folder opened once per generation: the folder is
    opened (following symlinks) and then verified by its descriptor's real
    path, so a folder that leads outside makes the path ``outside`` and nothing
    in it is looked at; the name is then looked up by descriptor, never by a
    path a swapped symlink could redirect.
    """
    cached = _folder(root, plain.folder)
    if not isinstance(cached, tuple):
        if cached == "unreadable":
            cached = _folder(root, plain.folder, fail_unreadable=True)
        return ([], [pattern]) if cached == "outside" else ([], [])
    fd, real = cached
    try:
        st = os.lstat(plain.name, dir_fd=fd)
    except OSError as exc:
        if _absent(exc):
            return [], []
        fail(f"{pattern} cannot be looked up ({exc.strerror or exc}), so nothing can be said")
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        target = _resolve(os.path.join(real, plain.name))
        if target is None:
            raise CheckFailed(f"{pattern} changed while it was looked at, so nothing can be said", "")
        if not _inside(target, root):
            return [], [pattern]
        if plain.dirs_only and not os.path.isdir(target):
            return [], []
    elif plain.dirs_only and not stat.S_ISDIR(mode):
        return [], []
    return [plain.rel], []


class ArgsModel(BaseModel):
    """Base for check argument models: unknown keys are errors, types strict."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    #: :func:`compile_regex`: for validators of regex arguments (every failure a located error).
    compile_regex = staticmethod(compile_regex)


def _relative_path(value: str) -> str:
    if not value:
        raise ValueError("empty path")
    if "\x00" in value:
        raise ValueError("NUL byte in path")
    if os.path.isabs(value) or value.startswith("~"):
        raise ValueError(f"absolute path {value!r}: criterion paths are relative to the workdir")
    if ".." in value.split("/") or (os.altsep is not None and ".." in re.split(r"[\\/]", value)):  # Path().parts
        raise ValueError(f"path {value!r} escapes the workdir with '..'")
    return value


#: A path relative to the workdir: absolute paths and ``..`` are compile errors.
RelPath = Annotated[str, AfterValidator(_relative_path)]

CheckFunction = Callable[[Any, "CheckContext"], None]


@dataclass(frozen=True)
class CheckKind:
    """A check kind a plugin registers.

    :param name: the key used in plans (``file_exists``).
    :param args: the pydantic model of its arguments. A ``mode="before"``
        model validator can accept shorthand forms (a bare string or list).
    :param function: ``function(args, ctx)``: returns ``None`` when the
        criterion holds, raises :func:`planrun.fail` when it does not.
    :param describe: one-line display text for a given ``args``.
    :param default_timeout: seconds, when the criterion sets no ``timeout``.
    :param inprocess: the check only reads files in this process (no
        subprocess, no network), so it is cheap enough to re-check after every
        later task. Kinds that do not say so are re-checked once, at the end of
        the plan.
    """

    name: str
    args: type[BaseModel]
    function: CheckFunction
    describe: Callable[[Any], str] | None = None
    default_timeout: float = 60.0
    inprocess: bool = False


class ExecutorKind(NamedTuple):
    """An executor a plugin registers: its name and a factory taking the config."""

    name: str
    factory: Callable[[Config], Executor]


class Executor(abc.ABC):
    """Base class of executors: perform one task in its workdir.

    :cvar max_attempts: attempts per task when ``--max-attempts`` (or config
        ``max_attempts``) does not say: 1 for ``shell``, 2 for agents. An
        executor with 1 is never re-run; one with more is re-run, in the same
        instance, with ``context.feedback`` holding the failure report.
    """

    name: str = "executor"
    max_attempts: int = 1

    @abc.abstractmethod
    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        """Perform ``task`` in ``context.workdir``; say done, failed (with why) or blocked."""


@dataclass
class ExecutionResult:
    """What an executor reports for one task.

    :param status: ``done`` (check the criteria), ``failed`` (the work itself
        failed, e.g. a shell step exited non-zero), or ``blocked`` (cannot
        proceed; ``message`` says why).
    """

    status: Literal["done", "failed", "blocked"] = "done"
    message: str = ""
    output: str = ""
    evidence: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 1
    #: The executor's short account of what it did (an agent's ``finish``);
    #: tasks that depend on this one see it in their context.
    summary: str = ""
    #: Cost of this attempt in the price table's currency; ``None`` when unknown.
    cost: float | None = None
    #: With ``status="failed"``: the executor can put it right (e.g. undo a change outside
    #: its files), so the runner may retry with ``message`` and ``evidence`` as feedback.
    retryable: bool = False
    #: Warnings for the report's warnings summary (the scope guard's, in ``--scope=warn``).
    warnings: list[str] = field(default_factory=list)


class StepTimeout(Exception):
    """A process or step ran past its timeout (an error, not a failure)."""


class ExecutorError(PlanrunError):
    """The executor cannot perform the task (a budget exceeded, an endpoint that refuses): the task's error.

    Reported as one line, without a traceback.

    :param stop: when set, the run stops after this task with this reason
        (e.g. an unreachable endpoint, which every other task would meet too).
    :param result: what the attempt used so far (tokens, cost), summed into the report.
    """

    def __init__(self, message: str, *, stop: str | None = None, result: ExecutionResult | None = None) -> None:
        super().__init__(message)
        self.stop = stop
        self.result = result


#: Set in the environment of everything planrun runs (steps, command checks, agent commands).
RUNNING_ENV = "PLANRUN_RUNNING"


# What a step, a command criterion or a test run sees of planrun's environment: what tools need to
# run (as tox passes by default), never an API key or token. ``[tool.planrun] passenv`` adds more.
COMMAND_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "COLUMNS", "LINES",
        "TMPDIR", "TEMP", "TMP", "CI", "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "SOURCE_DATE_EPOCH",
        "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONWARNINGS",
        "LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS",
        "JAVA_HOME", "GOPATH", "GOROOT", "GOCACHE", "CARGO_HOME", "RUSTUP_HOME", "NVM_DIR",
        "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    }
)  # fmt: skip
_COMMAND_ENV_PREFIXES = ("LC_",)
_PASSENV: tuple[str, ...] = ()


def set_passenv(patterns: Sequence[str]) -> None:
    """The run's ``passenv``: more variable names (or ``fnmatch`` patterns) that commands see."""
    global _PASSENV
    _PASSENV = tuple(patterns)


def command_environment() -> dict[str, str]:
    """The environment of a step, a command criterion or a test run: :data:`COMMAND_ENV`, ``LC_*``, ``passenv``.

    Built from an allowlist, never from everything planrun was given: what an
    agent wrote runs under these (a test suite, a build), and an API key or a
    token in planrun's environment must not reach it, or its output and the
    reports. A plugin that needs the whole environment (an agent CLI that
    reads its own key) passes ``env=`` itself.
    """
    env = {k: v for k, v in os.environ.items() if k in COMMAND_ENV or k.startswith(_COMMAND_ENV_PREFIXES)}
    for pattern in _PASSENV:
        if _GLOB_CHARS.search(pattern):
            env.update((k, v) for k, v in os.environ.items() if fnmatch.fnmatchcase(k, pattern))
        elif pattern in os.environ:
            env[pattern] = os.environ[pattern]
    return env


class _Context:
    workdir: Path
    timeout: float
    #: The evidence record of the running check (``--evidence``), else ``None``.
    record: dict[str, Any] | None = None

    def run(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        watch_stdout: Sequence[str] = (),
        watch_stderr: Sequence[str] = (),
    ) -> ProcessResult:
        """Run a command in its own process group in the workdir (see :func:`planrun.process.run_process`).

        ``watch_stdout``/``watch_stderr``: strings to look for in the whole
        streams, past the output cap (the result's ``stdout_seen``/``stderr_seen``).
        Cached realpaths are forgotten afterwards: the command may have changed the tree.
        ``env`` defaults to :func:`command_environment` (an allowlist, no secrets).
        """
        from planrun.process import run_process

        _pin_root(os.fspath(self.workdir))  # before anything runs that could swap the workdir
        # Marked as run by planrun: a `pytest` it starts does not collect plans again (no recursion).
        child_env = {**(command_environment() if env is None else env), RUNNING_ENV: "1"}
        record = self.record
        try:
            result = run_process(
                command,
                cwd=self.workdir if cwd is None else self.workdir / cwd,
                timeout=self.timeout if timeout is None else timeout,
                env=child_env,
                watch_stdout=watch_stdout,
                watch_stderr=watch_stderr,
                hash_output=record is not None,
            )
        finally:
            forget_paths()
        if record is not None:
            record["commands"].append(
                {
                    "command": result.command,
                    "cwd": "." if cwd is None else os.fspath(cwd),
                    "exit_code": result.returncode,
                    "timed_out": result.timed_out,
                    "duration": round(result.duration, 6),
                    "stdout": _stream(result.stdout_bytes, result.stdout_sha256, result.stdout),
                    "stderr": _stream(result.stderr_bytes, result.stderr_sha256, result.stderr),
                }
            )
        return result


@dataclass
class CheckContext(_Context):
    """What a check function gets besides its arguments."""

    workdir: Path
    timeout: float
    location: Location | None = None

    #: Bytes a read may return; ``None`` means the run's ``--max-file-bytes``.
    max_file_bytes: int | None = None

    #: What this check read and ran, for ``--evidence`` (see :func:`new_record`); ``None``: not recorded.
    record: dict[str, Any] | None = None

    @property
    def file_limit(self) -> int:
        """The most bytes :meth:`read_bytes` and :meth:`read_text` return before failing."""
        return _MAX_FILE_BYTES if self.max_file_bytes is None else self.max_file_bytes

    @property
    def generation(self) -> int:
        """Changes whenever something ran that may have changed the tree (a step, a command).

        A check that caches what it read keys the cache on this, never on
        file stamps alone (a step can rewrite a file keeping size and mtime).
        """
        return _GENERATION

    def glob(self, pattern: str) -> tuple[list[str], list[str]]:
        """``(found, outside)``: workdir-relative paths matching ``pattern``, and those resolving outside.

        ``pattern`` is a path or a glob (``*``, ``?``, ``[...]``, ``**``; a
        wildcard skips dot-names unless it starts with ``.``). The walk never
        leaves the workdir: a literal component or a match that is a symlink
        leading outside goes to ``outside`` (fail on it; a plain path is named
        as written), a wildcard folder leading outside is not searched, and
        ``**`` follows no symlinked folder.
        """
        root = _workdir_root(self.workdir)
        plain = _plain(pattern)
        # A plain path: one lookup in its (verified) folder; a glob: the walk.
        found, outside = _walk(root, pattern) if plain is None else _lookup(root, plain, pattern)
        if self.record is not None:
            self._record_glob(self.record, root, pattern, found, outside)
        return found, outside

    def _record_glob(self, record: dict[str, Any], root: str, pattern: str, found: list[str], out: list[str]) -> None:
        """Evidence of a glob: what it matched, and each match's type (and hash, for a file within the limit)."""
        record["globs"].append({"pattern": pattern, "found": found, "outside": out})
        files = record["files"]
        for rel in found:
            try:
                st = os.stat(os.path.join(root, rel))
            except OSError:
                files[rel] = {"path": rel, "type": "missing"}
                continue
            if stat.S_ISDIR(st.st_mode):
                files[rel] = {"path": rel, "type": "directory"}
            elif not stat.S_ISREG(st.st_mode):
                files[rel] = {"path": rel, "type": "other"}
            elif st.st_size > self.file_limit:
                files[rel] = {"path": rel, "type": "file", "size": st.st_size, "sha256": None}
            else:
                try:
                    self.open(rel).close()  # records the file with its hash, from what was opened
                except CheckFailed as exc:
                    files[rel] = {"path": rel, "type": "unreadable", "message": exc.message}

    def path(self, rel: str) -> Path:
        """Resolve ``rel`` under the workdir; a symlink that leads outside fails the check.

        This checks a path: anything that then opens it can meet another file
        (a symlink swapped in between). To read a file use :meth:`open`,
        :meth:`read_bytes` or :meth:`read_text`, which verify what they opened.
        """
        root = _workdir_root(self.workdir)
        head, tail = os.path.split(rel)
        base = _realdir(os.path.join(root, head)) if head else root
        full = os.path.join(base, tail) if tail else base
        if tail and os.path.islink(full):
            full = _must_resolve(full, rel)
        if not _inside(full, root):
            fail(f"{rel} resolves outside the workdir")
        return Path(full)

    def regular_file(self, rel: str) -> Path:
        """Resolve ``rel`` and fail unless it is an existing regular file right now.

        Check-then-use: the path may name another file by the time it is opened.
        Checks that read a file use :meth:`open` / :meth:`read_bytes` / :meth:`read_text`.
        """
        p = self.path(rel)
        try:
            st = p.stat()
        except FileNotFoundError:
            fail(f"{rel} does not exist")
        if not stat.S_ISREG(st.st_mode):
            fail(f"{rel} is not a regular file")
        return p

    def open(self, rel: str) -> BinaryIO:
        """Open ``rel`` for reading, then verify what was opened.

        The open file must be a regular file whose real path lies inside the
        workdir (symlinks that stay inside are fine); otherwise the check fails
        with ``REL resolves outside the workdir``, ``REL is not a regular file``
        or ``REL does not exist``. A FIFO or device never blocks the check and
        nothing outside the workdir is read. A hard link is a file of the
        workdir like any other: whoever made it could read its target already.
        Returns a binary file object: read from it, never reopen ``rel``.
        """
        root = _workdir_root(self.workdir)
        fd, _ = self._open_fd(root, rel)
        return os.fdopen(fd, "rb")

    def _open_fd(self, root: str, rel: str, *, record: bool = True) -> tuple[int, int]:
        """``(fd, size)``: ``rel`` open for reading, verified as :meth:`open` says (recorded with --evidence,
        unless ``record`` is false: a caller that reads it whole records the bytes it read).

        Where the kernel can (``O_PATH`` and ``/proc``), nothing is opened for
        reading before it is known to be a regular file inside the workdir: an
        ``O_PATH`` descriptor is checked, then the very file it holds is
        reopened through ``/proc/self/fd`` (the kernel follows the descriptor,
        not a path). A plain name in a folder this generation already verified
        is opened in that folder's descriptor without following a symlink, so
        it is inside by construction; anything else (a symlink, a folder not yet
        verified) is opened by path and verified by the real path it got.
        """
        fd = -1
        if _USE_PATH:
            plain = _plain(rel)
            folder = None if plain is None or plain.dirs_only else _folder(root, plain.folder)
            if isinstance(folder, tuple):
                try:
                    fd = os.open(plain.name, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder[0])  # type: ignore[union-attr]
                except OSError:
                    fd = -1  # missing, or worse: the long way says which
                else:
                    try:
                        st = os.fstat(fd)
                    except BaseException:
                        os.close(fd)
                        raise
                    if stat.S_ISLNK(st.st_mode):  # a symlink (O_PATH opened the link itself): the long way
                        os.close(fd)
                        fd = -1
        if fd < 0:
            full = os.path.join(root, rel)
            flags = (_O_PATH if _USE_PATH else os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY) | os.O_CLOEXEC
            try:
                fd = os.open(full, flags)
            except OSError as exc:
                real = _resolve(full)
                if real is not None and not _inside(real, root):
                    fail(f"{rel} resolves outside the workdir")
                if _absent(exc):
                    fail(f"{rel} does not exist")
                fail(f"{rel} cannot be opened: {exc.strerror or exc}")
            try:
                if not _fd_inside(fd, full, root):
                    fail(f"{rel} resolves outside the workdir")
                st = os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
        try:
            if not stat.S_ISREG(st.st_mode):
                fail(f"{rel} is not a regular file")
            if _USE_PATH:  # reopen the very file checked: the same inode by construction (no second fstat)
                try:
                    opened = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
                except OSError as exc:
                    fail(f"{rel} cannot be opened: {exc.strerror or exc}")
                os.close(fd)
                fd = opened
            if record and self.record is not None:
                self._record_fd(rel, fd)
            return fd, st.st_size
        except BaseException:
            os.close(fd)
            raise

    def _record_fd(self, rel: str, fd: int) -> None:
        """Evidence of a file a check streams: the hash of all it holds as opened."""
        digest, size = _hash_fd(fd)
        self.record["files"][rel] = {"path": rel, "type": "file", "size": size, "sha256": digest}  # type: ignore[index]

    def read(self, f: BinaryIO, rel: str, limit: int | None = None) -> bytes:
        """The rest of ``f`` (from :meth:`open`, named ``rel``); fails beyond ``limit`` bytes.

        ``limit`` defaults to :attr:`file_limit` (``--max-file-bytes``, 64 MiB).
        """
        return _read_capped(f, rel, self.file_limit if limit is None else limit)

    def _content(self, rel: str, limit: int | None) -> _Content:
        """``rel`` read whole (see :meth:`read_bytes`): kept for this generation, or from what was kept."""
        limit = self.file_limit if limit is None else limit
        root = _workdir_root(self.workdir)
        key = (root, rel)
        entry = _CONTENTS.get(key)
        if entry is not None:
            if len(entry.data) > limit:
                fail(f"{rel} is {len(entry.data)} bytes, over the {limit}-byte limit (raise it with --max-file-bytes)")
            if self.record is not None:
                self._record_kept(rel, entry)
            return entry
        fd, size = self._open_fd(root, rel, record=False)
        try:
            entry = _Content(_read_fd(fd, rel, size, limit))
        except CheckFailed:  # over the limit: what it holds is evidence all the same
            if self.record is not None:
                self._record_fd(rel, fd)
            raise
        finally:
            os.close(fd)
        _keep(key, entry)
        if self.record is not None:
            self._record_kept(rel, entry)  # the hash of the very bytes the check judges
        return entry

    def _record_kept(self, rel: str, entry: _Content) -> None:
        """Evidence of a file read from what this generation kept: the same record as when it was opened."""
        if entry.digest is None:
            entry.digest = hashlib.sha256(entry.data).hexdigest()
        self.record["files"][rel] = {  # type: ignore[index]
            "path": rel,
            "type": "file",
            "size": len(entry.data),
            "sha256": entry.digest,
        }

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        """The bytes of ``rel`` (see :meth:`open`); fails if there are more than ``limit``.

        ``limit`` defaults to :attr:`file_limit` (``--max-file-bytes``, 64 MiB).
        What was read is kept until something runs that may change the tree
        (a step, a command: see :attr:`generation`): another criterion reading
        ``rel`` of this workdir meanwhile gets it without opening it again.
        """
        return self._content(rel, limit).data

    def read_text(self, rel: str, limit: int | None = None) -> str:
        """:meth:`read_bytes` decoded as UTF-8 (bad bytes replaced), newlines made ``\\n``."""
        entry = self._content(rel, limit)
        text = entry.text
        if text is None:
            text = entry.data.decode("utf-8", errors="replace")
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            entry.text = text
        return text

    def read_or_open(self, rel: str) -> bytes | BinaryIO:
        """``rel`` whole when it is small (as :meth:`read_bytes`, kept the same way), else open (as :meth:`open`).

        For checks that can stream a file of any size but would rather not
        open a small one again: search ``bytes`` in memory, read a file object
        in chunks (and close it).
        """
        root = _workdir_root(self.workdir)
        key = (root, rel)
        entry = _CONTENTS.get(key)
        if entry is not None:
            if self.record is not None:
                self._record_kept(rel, entry)
            return entry.data
        fd, size = self._open_fd(root, rel, record=False)
        try:
            cap = min(self.file_limit, _CONTENT_FILE_MAX)
            if size <= cap:
                try:
                    entry = _Content(_read_fd(fd, rel, size, cap))
                except CheckFailed:  # it grew while it was read: stream it from the start
                    os.lseek(fd, 0, os.SEEK_SET)
                else:
                    os.close(fd)
                    _keep(key, entry)
                    if self.record is not None:
                        self._record_kept(rel, entry)  # the hash of the very bytes the check judges
                    return entry.data
            if self.record is not None:
                self._record_fd(rel, fd)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def time_limit(self, seconds: float, what: str) -> time_limit:
        """``with ctx.time_limit(5, "GET url"):`` raises :class:`StepTimeout` if the block runs past ``seconds``.

        For work whose parts each have a timeout but whose whole has none (a
        server that drips its answer a byte at a time). Main thread only.
        """
        return time_limit(seconds, what)

    def search(self, pattern: re.Pattern[str], text: str, pos: int = 0) -> re.Match[str] | None:
        """``pattern.search(text)`` under this check's time limit."""
        with time_limit(self.timeout, f"regex {pattern.pattern!r}"):
            return pattern.search(text, pos)


class _TimeLimitExceeded(BaseException):
    """Raised in the block a :class:`time_limit` guards; a BaseException, so ``except Exception`` cannot swallow it."""

    def __init__(self, owner: time_limit) -> None:
        super().__init__()
        self.owner = owner


def _on_alarm(signum: int, frame: object) -> None:
    """The SIGALRM handler of every :class:`time_limit`: interrupt the block whose time is up.

    Outside a session that is the innermost armed block (its timer is the one
    running). In a session (:func:`alarm_handler`) timers are set lazily: the
    alarm may come early, for a block that has ended or not yet run out; then
    it is set again for the earliest deadline still armed, and nothing is raised.
    """
    global _TIMER_AT
    if not _LAZY[0]:
        if _ARMED:
            raise _TimeLimitExceeded(_ARMED[-1])
        return
    _TIMER_AT = 0.0
    if not _ARMED:
        return
    now = time.monotonic()
    due = None
    for limit in _ARMED:
        if limit._deadline <= now and (due is None or limit._deadline < due._deadline):
            due = limit
    rest = [limit._deadline for limit in _ARMED if limit is not due]
    if rest:
        _arm_at(min(rest), now)
    if due is not None:
        raise _TimeLimitExceeded(due)


def _arm_at(deadline: float, now: float) -> None:
    """Set the session's timer to fire at ``deadline`` (monotonic)."""
    global _TIMER_AT
    _TIMER_AT = deadline
    _signal.setitimer(_ITIMER_REAL, max(deadline - now, 0.001))


# The time limits whose timer runs, innermost last (an outer one waits, its timer stopped, while an inner one runs).
_ARMED: list[time_limit] = []
_SIGALRM = signal.SIGALRM
_ITIMER_REAL = signal.ITIMER_REAL
# In a session planrun owns the real timer: [True] while it does (see alarm_handler).
_LAZY = [False]
# With _LAZY: when the timer fires next (monotonic); 0.0 when it is stopped.
_TIMER_AT = 0.0


def _after_fork_in_child() -> None:
    """A forked child (a worker) has no timer running: what the parent's lazy timer was set for does not hold."""
    global _TIMER_AT
    _TIMER_AT = 0.0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def alarm_handler() -> Iterator[None]:
    """Install the time limits' SIGALRM handler for the block (a session), so arming one is nearly free.

    Without it each :class:`time_limit` installs and restores the handler
    itself and sets the timer twice. Inside it, when no other timer runs,
    planrun owns the real timer: a time limit only notes its deadline (the
    timer is set when that deadline comes before the one it is set for), and
    the timer is stopped when the block ends. Main thread only; elsewhere
    nothing happens.
    """
    global _TIMER_AT
    if threading.current_thread() is not threading.main_thread() or _LAZY[0]:
        yield
        return
    old = _signal.signal(_SIGALRM, _on_alarm)
    lazy = not _ARMED and _signal.getitimer(_ITIMER_REAL)[0] == 0  # nobody else's timer runs
    _LAZY[0] = lazy
    try:
        yield
    finally:
        if lazy:
            _LAZY[0] = False
            _signal.setitimer(_ITIMER_REAL, 0)
            _TIMER_AT = 0.0
            _ARMED.clear()
        _signal.signal(_SIGALRM, old)


class time_limit:  # noqa: N801 - used like a function: ``with time_limit(5, "what"):``
    """Raise :class:`StepTimeout` if the block runs past ``seconds`` (main thread only).

    CPython's regex engine checks for signals while it backtracks, so a
    SIGALRM interrupts a catastrophic pattern. Limits nest: an inner, shorter
    limit fires first, and the outer one is re-armed with what is left of it.
    Outside the main thread this is a no-op. Inside :func:`alarm_handler` (a
    session) arming one costs a clock read (the timer is set only when this
    deadline is the earliest); outside, the handler is installed for the block
    and restored after it.
    """

    __slots__ = ("seconds", "what", "said", "_armed", "_outer_left", "_started", "_old", "_deadline")

    def __init__(self, seconds: float, what: str, said: float | None = None) -> None:
        self.seconds = seconds
        self.what = what
        self.said = seconds if said is None else said  # the limit the message names (a grace may follow it)
        self._armed = False
        self._outer_left = 0.0
        self._old: Any = None
        self._deadline = 0.0

    def __enter__(self) -> None:
        if self.seconds <= 0 or _get_ident() != _MAIN_IDENT:
            return
        if _LAZY[0]:
            now = time.monotonic()
            self._deadline = now + self.seconds
            _ARMED.append(self)
            self._armed = True
            if not _TIMER_AT or self._deadline < _TIMER_AT:
                _arm_at(self._deadline, now)
            return
        outer_left = _signal.getitimer(_ITIMER_REAL)[0]
        if outer_left and outer_left <= self.seconds:
            return  # an enclosing limit fires first
        self._outer_left = outer_left
        self._started = time.monotonic()
        if _signal.getsignal(_SIGALRM) is not _on_alarm:
            self._old = _signal.signal(_SIGALRM, _on_alarm)
        _ARMED.append(self)
        self._armed = True
        _signal.setitimer(_ITIMER_REAL, self.seconds)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._armed:
            lazy = _LAZY[0]  # lazily, the timer stays: when it fires it is set again for what is still armed
            if not lazy:
                _signal.setitimer(_ITIMER_REAL, 0)
            self._armed = False
            if _ARMED and _ARMED[-1] is self:
                _ARMED.pop()
            elif self in _ARMED:
                _ARMED.remove(self)
            if not lazy:
                if self._old is not None:
                    _signal.signal(_SIGALRM, self._old)
                    self._old = None
                if self._outer_left:
                    left = self._outer_left - (time.monotonic() - self._started)
                    _signal.setitimer(_ITIMER_REAL, max(left, 0.001))
        if isinstance(exc, _TimeLimitExceeded) and exc.owner is self:
            raise StepTimeout(f"{self.what} ran longer than {self.said:g}s") from None


class _Reaimed(time_limit):
    """One time limit that a run of checks aims anew at each check (see :func:`limit_each`); lazy timers only."""

    __slots__ = ()

    def aim(self, seconds: float, name: str, said: float | None = None) -> float:
        """Arm for ``seconds`` from now for check ``name`` (its message names ``said``); returns the clock read."""
        now = time.monotonic()
        self.seconds = seconds
        self.said = seconds if said is None else said
        self.what = name
        self._deadline = deadline = now + seconds
        _ARMED.append(self)
        self._armed = True
        if not _TIMER_AT or deadline < _TIMER_AT:
            _arm_at(deadline, now)
        return now

    def disarm(self) -> None:
        if self._armed:
            self._armed = False
            if _ARMED and _ARMED[-1] is self:
                _ARMED.pop()
            elif self in _ARMED:
                _ARMED.remove(self)

    def timed_out(self, exc: BaseException) -> StepTimeout | None:
        """The :class:`StepTimeout` of this limit if ``exc`` is its alarm, else ``None``."""
        if isinstance(exc, _TimeLimitExceeded) and exc.owner is self:
            return StepTimeout(f"check {self.what!r} ran longer than {self.said:g}s")
        return None


def limit_each() -> _Reaimed | None:
    """A time limit to aim at one check after another (cheaper than a :class:`time_limit` each).

    ``None`` where timers are not lazy (outside a session, or not in the main
    thread): use :class:`time_limit` there. ``aim(seconds, name)`` just before
    each check and ``disarm()`` at its end, both inside one ``try`` whose
    ``except BaseException`` asks ``timed_out(exc)``.
    """
    if not _LAZY[0] or _get_ident() != _MAIN_IDENT:
        return None
    return _Reaimed(0.0, "")


@dataclass
class ExecutionContext(_Context):
    """What an executor gets besides the task.

    :param criteria: the display text of the task's compiled criteria.
    :param checks: the compiled criteria themselves (:class:`planrun.compiler.Check`).
    :param dependencies: ``{task id: summary}`` of the tasks this one depends on.
    :param attempt: 1 for the first attempt; more when the runner retries.
    :param feedback: on a retry, the failure report of the previous attempt.
    :param nodeid: the item's node id, for progress reports.
    :param beside: under ``-n``, the files of the tasks performed at the same time as this one
        (:mod:`planrun.taskgroup`), as workdir-relative paths of files or folders: theirs, not this
        task's to read or change (the scope guard leaves their changes to them, the agent's tools
        refuse them).
    """

    workdir: Path
    timeout: float
    plan: Plan
    config: Config
    feedback: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    criteria: list[str] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    dependencies: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    nodeid: str = ""
    beside: list[str] = field(default_factory=list)

    def progress(self, **status: Any) -> None:
        """Tell reporters what the executor is doing (``turn=3, tool="write_file", tokens_in=...``)."""
        self.config.hook.planrun_task_progress(nodeid=self.nodeid, attempt=self.attempt, status=status)
