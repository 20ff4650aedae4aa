"""Paths of the agent tools: workdir-relative names, the protected names, and opening confined to the workdir.

Reads open, then verify what was opened; writes walk every folder with
``O_NOFOLLOW`` and replace their target by renaming a fresh file over it.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import NamedTuple

from planrun.agenttools.messages import ToolError, _shown, _strerror
from planrun.atomic import temp_name
from planrun.types import _fd_realpath, forget_paths
from planrun.types import _resolve as _realpath


class Protection(NamedTuple):
    """One protected name.

    :param pattern: one or more path components separated by ``/``, each an
        :mod:`fnmatch` pattern, compared case-insensitively. A path is protected
        when its components contain the pattern's components one after the
        other, anywhere: the named file or folder and everything below it.
    :param reason: what it is, shown in the refusal.
    :param readable: ``read_file``, ``list_dir`` and ``search`` may look at it
        (writes are always refused).
    """

    pattern: str
    reason: str
    readable: bool


#: Paths the tools refuse by name. Unreadable ones hold what the agent must not
#: see: git internals (remote URLs with credentials), planrun's state and
#: transcripts and the plan files (other tasks' descriptions: context per task,
#: nothing more), and secrets files. The readable ones may guide the agent
#: (how CI runs the tests) but writing them would change what runs later: CI,
#: git hooks, and agent and editor config (instructions every later agent obeys).
PROTECTED_PATTERNS: tuple[Protection, ...] = (
    Protection(".git", "git internals", False),
    Protection(".planrun", "planrun state", False),
    Protection("*.plan.yaml", "a plan file", False),
    Protection("*.plan.yml", "a plan file", False),
    Protection(".env", "a secrets file", False),
    Protection(".env.*", "a secrets file", False),
    Protection(".netrc", "a secrets file", False),
    Protection(".pgpass", "a secrets file", False),
    Protection(".npmrc", "a secrets file", False),
    Protection(".pypirc", "a secrets file", False),
    Protection("*.pem", "a secrets file", False),
    Protection("*.key", "a secrets file", False),
    Protection("id_rsa*", "a secrets file", False),
    Protection("id_ecdsa*", "a secrets file", False),
    Protection("id_ed25519*", "a secrets file", False),
    Protection(".ssh", "a secrets folder", False),
    Protection(".aws", "a secrets folder", False),
    Protection(".gnupg", "a secrets folder", False),
    Protection(".github/workflows", "CI configuration", True),
    Protection(".github/actions", "CI configuration", True),
    Protection(".gitlab-ci.yml", "CI configuration", True),
    Protection(".circleci", "CI configuration", True),
    Protection("azure-pipelines.yml", "CI configuration", True),
    Protection("Jenkinsfile", "CI configuration", True),
    Protection(".travis.yml", "CI configuration", True),
    Protection("bitbucket-pipelines.yml", "CI configuration", True),
    Protection(".buildkite", "CI configuration", True),
    Protection(".pre-commit-config.yaml", "git hook configuration", True),
    Protection(".husky", "git hook configuration", True),
    Protection(".devcontainer", "editor configuration", True),
    Protection(".vscode", "editor configuration", True),
    Protection(".idea", "editor configuration", True),
    Protection(".claude", "agent configuration", True),
    Protection("CLAUDE.md", "agent instructions", True),
    Protection("CLAUDE.local.md", "agent instructions", True),
    Protection("AGENTS.md", "agent instructions", True),
    Protection("GEMINI.md", "agent instructions", True),
    Protection(".gemini", "agent configuration", True),
    Protection(".codex", "agent configuration", True),
    Protection(".cursor", "agent configuration", True),
    Protection(".cursorrules", "agent instructions", True),
    Protection(".windsurfrules", "agent instructions", True),
    Protection(".aider*", "agent configuration", True),
    Protection(".github/copilot-instructions.md", "agent instructions", True),
    Protection(".github/instructions", "agent instructions", True),
    Protection(".github/prompts", "agent instructions", True),
    Protection(".mcp.json", "agent configuration", True),  # the MCP servers an agent starts: commands
    Protection(".clinerules", "agent instructions", True),
    Protection(".roo", "agent configuration", True),
    Protection(".continue", "agent configuration", True),
    Protection(".zed", "editor configuration", True),
    Protection(".envrc", "shell configuration", True),  # direnv runs it in whoever enters the folder
)

#: Names the ``.env.*`` pattern lets through: templates that hold no secret by convention.
NOT_SECRET = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist"})

_BINARY_PROBE = 8192

_O_PATH: int = getattr(os, "O_PATH", 0)
_PROC_FD = os.path.isdir("/proc/self/fd")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)

# -- protected names ------------------------------------------------------


def _fold(name: str) -> str:
    """A name as a case-insensitive file system may see it (NFC, case folded, Windows' trailing dots gone)."""
    folded = unicodedata.normalize("NFC", name).casefold()
    return folded.rstrip(" .") or folded


_FOLDED = tuple((tuple(_fold(p) for p in prot.pattern.split("/")), prot) for prot in PROTECTED_PATTERNS)
_NOT_SECRET = frozenset(_fold(n) for n in NOT_SECRET)


def _protection(parts: Sequence[str], extra: Sequence[tuple[tuple[str, ...], str]]) -> Protection | None:
    """The protection ``parts`` (workdir-relative components) fall under, unreadable ones first.

    ``extra``: more protected paths, as folded components and as shown.
    """
    folded = [_fold(p) for p in parts]
    for fixed, shown in extra:
        if tuple(folded[: len(fixed)]) == fixed:
            return Protection(shown, "a plan file", False)
    found: Protection | None = None
    for pattern, prot in _FOLDED:
        n = len(pattern)
        for i in range(len(folded) - n + 1):
            if all(fnmatchcase(folded[i + j], pattern[j]) for j in range(n)):
                if n == 1 and folded[i] in _NOT_SECRET:
                    continue
                if not prot.readable:
                    return prot
                found = found or prot
    return found


# -- paths ----------------------------------------------------------------


def _parts(path: object, what: str = "path") -> list[str]:
    """The components of a workdir-relative path; refuses what could name anything else."""
    if not isinstance(path, str):
        raise ToolError(f"{what} must be a string")
    if not path:
        raise ToolError(f"empty {what}")
    if "\x00" in path:
        raise ToolError(f"{what} contains a NUL byte")
    if path.startswith(("/", "~")):
        raise ToolError(f"{what} {_shown(path)} is absolute: paths are relative to the workdir")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ToolError(f"{what} {_shown(path)} uses '..': paths must stay inside the workdir")
    return parts


def _inside(real: str, root: str) -> bool:
    """``real`` is ``root`` or below it, by path components (never a string prefix)."""
    return real == root or os.path.commonpath((root, real)) == root


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


# -- opening, confined to the workdir --------------------------------------


class _Confined:
    """What a :class:`~planrun.agenttools.Toolbox` opens, confined to its workdir (the attributes are set there)."""

    _root: str
    _root_id: tuple[int, int]
    _protected: tuple[tuple[tuple[str, ...], str], ...]
    _protected_paths: list[tuple[str, ...]]

    def _protected_rels(self, path: str) -> list[tuple[str, ...]]:
        """A protected path as components inside the workdir: as written and as resolved (none if outside)."""
        full = os.path.normpath(os.path.join(self._root, path))
        found = []
        for candidate in (full, _realpath(full)):
            if candidate and candidate != self._root and _inside(candidate, self._root):
                found.append(tuple(os.path.relpath(candidate, self._root).split(os.sep)))
        return found

    def _open_root(self) -> int:
        try:
            fd = os.open(self._root, _DIR_FLAGS)
        except OSError as exc:
            raise ToolError(f"the workdir cannot be opened: {_strerror(exc)}") from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._root_id:
            os.close(fd)
            raise ToolError("the workdir was moved or replaced")
        return fd

    def _refuse_protected(self, rel: str, parts: Sequence[str], write: bool) -> None:
        prot = _protection(parts, self._protected)
        if prot is not None and (write or not prot.readable):
            verb = "written" if write else "read"
            raise ToolError(f"{_shown(rel)} is protected ({prot.reason}, {prot.pattern}): it cannot be {verb}")

    def _open_read(self, path: str, want: str) -> tuple[int, os.stat_result, str]:
        """Open ``path`` to read (``want``: ``file``, ``dir`` or ``any``), then verify what was opened.

        Symlinks that stay inside the workdir are followed; the protections
        apply to the path as written and to the real path.
        :returns: the descriptor, its stat, and its real path relative to the workdir.
        """
        parts = _parts(path)
        rel = "/".join(parts) or "."
        self._refuse_protected(rel, parts, write=False)
        root_fd = self._open_root()
        os.close(root_fd)
        full = os.path.join(self._root, *parts)
        use_path = bool(_O_PATH) and _PROC_FD
        flags = (_O_PATH if use_path else os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY) | os.O_CLOEXEC
        try:
            fd = os.open(full, flags)
        except OSError as exc:
            real = _realpath(full)
            if real is None or not _inside(real, self._root):
                raise ToolError(f"{_shown(rel)} resolves outside the workdir") from None
            if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise ToolError(f"{_shown(rel)} does not exist") from None
            raise ToolError(f"{_shown(rel)} cannot be opened: {_strerror(exc)}") from None
        try:
            real = _fd_realpath(fd, full)
            if real is None or not _inside(real, self._root):
                raise ToolError(f"{_shown(rel)} resolves outside the workdir")
            real_rel = os.path.relpath(real, self._root)
            real_parts = [] if real_rel == "." else real_rel.split(os.sep)
            self._refuse_protected(rel, real_parts, write=False)
            st = os.fstat(fd)
            is_dir = stat.S_ISDIR(st.st_mode)
            if want == "file" and not stat.S_ISREG(st.st_mode):
                hint = ": use list_dir" if is_dir else ""
                raise ToolError(f"{_shown(rel)} is {_kind(st.st_mode)}{hint}")
            if want == "dir" and not is_dir:
                raise ToolError(f"{_shown(rel)} is not a directory")
            if want == "any" and not (is_dir or stat.S_ISREG(st.st_mode)):
                raise ToolError(f"{_shown(rel)} is {_kind(st.st_mode)}")
            if use_path:  # reopen the very object checked, through its /proc name
                try:
                    opened = os.open(f"/proc/self/fd/{fd}", (_DIR_FLAGS if is_dir else os.O_RDONLY | os.O_CLOEXEC))
                except OSError as exc:
                    raise ToolError(f"{_shown(rel)} cannot be read: {_strerror(exc)}") from None
                os.close(fd)
                fd = opened
                again = os.fstat(fd)
                if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
                    raise ToolError(f"{_shown(rel)} changed while it was opened")
            return fd, st, "/".join(real_parts) or "."
        except BaseException:
            os.close(fd)
            raise

    def _open_parent(self, path: str, *, create: bool) -> tuple[int, str, str]:
        """Walk to the folder of ``path`` for a write, never through a symlink; create missing folders.

        :returns: the folder's descriptor, the final name and the path as shown.
        """
        parts = _parts(path)
        rel = "/".join(parts)
        if not parts:
            raise ToolError(f"path {_shown(path)} is the workdir itself, not a file")
        if path.endswith("/"):
            raise ToolError(f"path {_shown(path)} ends with '/': name a file")
        self._refuse_protected(rel, parts, write=True)
        fd = self._open_root()
        try:
            for i, part in enumerate(parts[:-1]):
                here = "/".join(parts[: i + 1])
                try:
                    child = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise ToolError(f"{_shown(rel)} does not exist") from None
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as exc:
                        raise ToolError(f"folder {_shown(here)} cannot be created: {_strerror(exc)}") from None
                    child = self._open_dir_nofollow(fd, part, here)
                except OSError:
                    child = self._open_dir_nofollow(fd, part, here)
                os.close(fd)
                fd = child
            real = _fd_realpath(fd, os.path.join(self._root, *parts[:-1]))
            if real is None or not _inside(real, self._root):
                raise ToolError(f"{_shown(rel)} resolves outside the workdir")
            return fd, parts[-1], rel
        except BaseException:
            os.close(fd)
            raise

    def _open_dir_nofollow(self, fd: int, part: str, here: str) -> int:
        try:
            return os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except OSError:
                raise ToolError(f"{_shown(here)} cannot be opened: {_strerror(exc)}") from None
            if stat.S_ISLNK(st.st_mode):
                raise ToolError(self._symlink_refusal(fd, part, here)) from None
            raise ToolError(f"{_shown(here)} is {_kind(st.st_mode)}, not a folder") from None

    def _symlink_refusal(self, fd: int, name: str, here: str) -> str:
        """The refusal for a write through the symlink ``name`` in folder ``fd``, naming its target if inside."""
        msg = f"{_shown(here)} is a symlink: the tools never write through symlinks"
        real = _realpath(os.path.join(self._root, here))
        if real is None:
            return msg
        if _inside(real, self._root) and real != self._root:
            return f"{msg}; write its target {_shown(os.path.relpath(real, self._root))} instead"
        return f"{msg}, and it leads outside the workdir"

    def _target(self, fd: int, name: str, rel: str) -> os.stat_result | None:
        """The existing regular file a write would replace (``None``: none); refuses anything else."""
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be examined: {_strerror(exc)}") from None
        if stat.S_ISLNK(st.st_mode):
            raise ToolError(self._symlink_refusal(fd, name, rel))
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{_shown(rel)} is {_kind(st.st_mode)}: only regular files are written")
        if st.st_nlink > 1:
            raise ToolError(f"{_shown(rel)} has {st.st_nlink} hard links: writing it would change the others too")
        return st

    def _replace(self, fd: int, name: str, rel: str, data: bytes, old: os.stat_result | None) -> None:
        """Put ``data`` at ``name`` in folder ``fd``: a new file, renamed over the old one (never opened)."""
        tmp = temp_name(name)
        try:
            tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fd)
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be written: {_strerror(exc)}") from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(tfd, view) :]
                if old is not None:
                    os.fchmod(tfd, stat.S_IMODE(old.st_mode) & 0o1777)  # no set-id bit survives an agent's edit
                    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                        try:
                            os.fchown(tfd, old.st_uid, old.st_gid)
                        except OSError:
                            pass
            finally:
                os.close(tfd)
            now = self._target(fd, name, rel)
            if (now is None) != (old is None) or (
                now is not None and old is not None and (now.st_dev, now.st_ino) != (old.st_dev, old.st_ino)
            ):
                raise ToolError(f"{_shown(rel)} changed while it was written; try again")
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            forget_paths()
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise ToolError(f"{_shown(rel)} cannot be written: {_strerror(exc)}") from None
            raise
