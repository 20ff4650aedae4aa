"""The scope guard: a task changes only its own ``files``, never its plan or the files that judge it.

Around every executor call it takes a snapshot of the workdir, then compares:
in a git repository, ``git status`` plus content hashes of the files that were
already dirty (so a file modified again is seen); elsewhere a walk comparing
size, mtime, ctime and (for small files) content hashes. What changed outside
the task's ``files`` and the always-allowed globs (config ``scope_allow``,
default: lock files and bytecode) fails the task under ``--scope=strict`` (the
default for agent executors), is a warning under ``warn`` (the default for
``shell``) and is ignored under ``off``. Whatever the mode, a task fails when
it changed a plan file, or a file that existed before it and that one of its
own criteria reads (a script or test file a ``command`` criterion names, a
file a file or data criterion inspects) unless its ``files`` declare it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import ExecutionResult, Executor, UsageError, criteria_reads, hookimpl, opened, printable
from planrun import run_git as _run_git

if TYPE_CHECKING:
    import argparse

    from planrun import ExecutionContext, Task
    from planrun.config import Config
    from planrun.session import Session

MODES = ("strict", "warn", "off")

#: ``scope_allow`` when the config does not set it: what package managers and Python write on their own.
DEFAULT_ALLOW = (
    "*.lock",
    "package-lock.json",
    "poetry.lock",
    "uv.lock",
    "Cargo.lock",
    "bun.lock*",
    "yarn.lock",
    "pnpm-lock.yaml",
    "__pycache__/**",
    "*.pyc",
)

PLAN_SUFFIXES = (".plan.yaml", ".plan.yml")

#: Folders the walk never enters (and whose changes are never reported).
WALK_SKIP = frozenset({".git", ".planrun", "node_modules", ".venv", "__pycache__"})

#: Bounds of the walk: entries listed, bytes hashed per file and in all.
MAX_ENTRIES = 200_000
MAX_HASH_FILE = 1 << 20
MAX_HASH_TOTAL = 64 << 20
#: Git: a dirty file bigger than this is compared by its stamps, not its content.
MAX_GIT_HASH_FILE = 16 << 20

GIT_TIMEOUT = 60.0

#: Paths named in a message; the evidence lists up to MAX_EVIDENCE.
MAX_NAMED = 10
MAX_EVIDENCE = 200


def run_git(args: list[str], cwd: Path, timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd`` in its own process group; on a timeout the group is killed."""
    return _run_git(args, cwd, timeout=timeout)


# -- globs ------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A workdir-relative glob as a regex: ``*`` and ``?`` stay in one folder, ``**`` spans folders."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[!", i) or pattern.startswith("[]", i) else i + 1)
            if end < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                body = re.sub(r"([\\\[&~|^])", r"\\\1", body[1:] if negate else body)
                out.append("[" + ("^" if negate else "") + body + "]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _clean(pattern: str) -> str:
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts) + ("/" if pattern.endswith("/") and parts else "")


def _glob_escape(path: str) -> str:
    """``path`` as a glob matching only itself (a file named ``a[1].sh`` is not a pattern)."""
    return re.sub(r"([*?[])", r"[\1]", path)


class Globs:
    """Workdir-relative globs; a pattern naming a folder (or ending in ``/``) covers everything below it.

    With ``anywhere``, a pattern without a slash matches at any depth (``*.lock``,
    ``package-lock.json``) and one with a slash also below any folder
    (``__pycache__/**``), as in ``.gitignore``.
    """

    def __init__(self, patterns: Iterable[str], *, anywhere: bool = False) -> None:
        regexes = []
        for raw in patterns:
            pattern = _clean(raw)
            if not pattern or os.path.isabs(raw) or ".." in pattern.split("/"):
                continue  # names nothing inside the workdir
            base = pattern.rstrip("/")
            for p in (base, base + "/**"):
                regexes.append(glob_regex(("**/" + p) if anywhere else p))
        self.regexes = regexes

    def match(self, path: str) -> bool:
        return any(r.match(path) for r in self.regexes)


# -- snapshots --------------------------------------------------------------

_MISSING = ("missing",)


def _hash_file(path: str, limit: int) -> str | None:
    """The sha256 of a regular file of at most ``limit`` bytes (never following a symlink), else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    f, st = opened(fd)
    if f is None:
        return None
    with f:
        if st.st_size > limit:
            return None
        digest = hashlib.sha256()
        while chunk := f.read(1 << 16):
            digest.update(chunk)
        return digest.hexdigest()


def _state(path: str, limit: int) -> tuple[Any, ...]:
    """What a path is now: missing, a link and its target, a folder, or a file with its stamps and hash.

    The hash is ``None`` for a file over ``limit`` bytes (then only its stamps count).
    """
    try:
        st = os.lstat(path)
    except OSError:
        return _MISSING
    if stat.S_ISLNK(st.st_mode):
        try:
            return ("link", os.readlink(path))
        except OSError:
            return ("link", None)
    if stat.S_ISDIR(st.st_mode):
        return ("dir",)
    stamps = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if not stat.S_ISREG(st.st_mode):
        return ("other", stamps, None)
    return ("file", stamps, _hash_file(path, limit) if st.st_size <= limit else None)


def _same(before: tuple[Any, ...], after: tuple[Any, ...], path: str = "") -> bool:
    """Nothing changed: same kind, and same stamps or (both known) the same bytes and mode.

    An ``after`` file taken without its hash is hashed from ``path`` when its stamps differ.
    """
    if before[0] != after[0]:
        return False
    if before[0] != "file":
        return before == after
    if before[1] == after[1]:
        return True
    if before[2] is None or before[1][0] != after[1][0]:
        return False
    digest = after[2] if after[2] is not None else (_hash_file(path, MAX_GIT_HASH_FILE) if path else None)
    return bool(digest == before[2])


class Snapshot:
    """The workdir's state before a task, compared with the state after it (:meth:`changes`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.note = ""  # why the comparison is partial, for a warning
        self.top = _git_toplevel(workdir)
        self.status: dict[str, str] = {}
        if self.top is not None:
            status = self._git_status()
            if status is None:
                self.top = None
            else:
                self.status = status
        if self.top is not None:
            self.head = self._git_head()
            self.dirty = {p: _state(os.path.join(self.top, p), MAX_GIT_HASH_FILE) for p in self.status}
        else:
            self.entries = self._walk()

    # -- git --------------------------------------------------------------

    def _git_status(self) -> dict[str, str] | None:
        """``{repo-relative path: XY}`` of every modified, untracked and deleted file; ``None`` if git fails."""
        assert self.top is not None
        try:
            done = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"], self.top)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        found: dict[str, str] = {}
        fields = done.stdout.split(b"\0")
        i = 0
        while i < len(fields):
            entry = fields[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2].decode("ascii", "replace"), os.fsdecode(entry[3:])
            found[path.rstrip("/")] = code
            if code[0] in "RC":  # the source path follows (renames are off, but be safe)
                if i < len(fields) and fields[i]:
                    found[os.fsdecode(fields[i]).rstrip("/")] = code
                i += 1
        return found

    def _git_head(self) -> str:
        """The commit HEAD names (``""`` before the first commit)."""
        assert self.top is not None
        try:
            done = run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], self.top)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.decode("ascii", "replace").strip() if done.returncode == 0 else ""

    def _committed(self, head: str) -> dict[str, str] | None:
        """``{repo-relative path: A|M|D}`` between the HEAD before the task and ``head`` (a task that committed)."""
        assert self.top is not None
        if self.head:
            args = ["diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", self.head, head, "--"]
        else:  # the first commit was made by the task: everything in it is new
            args = ["ls-tree", "-r", "-z", "--name-only", head]
        try:
            done = run_git(args, self.top)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        fields = [os.fsdecode(f) for f in done.stdout.split(b"\0") if f]
        if not self.head:
            return dict.fromkeys(fields, "A")
        return {fields[i + 1]: fields[i][:1] for i in range(0, len(fields) - 1, 2)}

    # -- walk -------------------------------------------------------------

    def _walk(self, hashing: bool = True) -> dict[str, tuple[Any, ...]]:
        """Every entry below the workdir (bounded); ``hashing``: small files' contents too (before the task)."""
        entries: dict[str, tuple[Any, ...]] = {}
        budget = MAX_HASH_TOTAL
        pending = [""]
        root = os.fspath(self.workdir)
        while pending:
            rel = pending.pop()
            try:
                with os.scandir(os.path.join(root, rel) if rel else root) as it:
                    listed = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            for entry in listed:
                if entry.name in WALK_SKIP:
                    continue
                if len(entries) >= MAX_ENTRIES:
                    self.note = f"the workdir has over {MAX_ENTRIES} entries; changes beyond them were not seen"
                    return entries
                path = rel + entry.name
                state = _state(entry.path, min(MAX_HASH_FILE, budget) if hashing else -1)
                entries[path] = state
                if state[0] == "dir":
                    pending.append(path + "/")
                elif state[0] == "file" and state[2] is not None:
                    budget -= state[1][1]
        return entries

    # -- comparison -------------------------------------------------------

    def changes(self) -> dict[str, str]:
        """``{workdir-relative path: "added" | "modified" | "deleted"}`` since the snapshot."""
        if self.top is not None:
            return self._git_changes()
        after = Snapshot.__new__(Snapshot)
        after.workdir, after.note = self.workdir, ""
        entries = after._walk(hashing=False)  # a file is read again only when its stamps changed
        self.note = self.note or after.note
        found: dict[str, str] = {}
        root = os.fspath(self.workdir)
        for path, state in entries.items():
            before = self.entries.get(path)
            if before is None:
                if state[0] != "dir":
                    found[path] = "added"
            elif before[0] == "dir" and state[0] != "dir":
                found[path] = "added"  # a folder replaced by a file (its contents show as deleted)
            elif before[0] != "dir" and not _same(before, state, os.path.join(root, path)):
                found[path] = "deleted" if state[0] == "dir" else "modified"
        for path, state in self.entries.items():
            if path not in entries and state[0] != "dir":
                found[path] = "deleted"
        return found

    def _git_changes(self) -> dict[str, str]:
        assert self.top is not None
        status = self._git_status()
        if status is None:
            self.note = "git status failed after the task; its changes were not checked"
            return {}
        found: dict[str, str] = {}
        head = self._git_head()
        committed: dict[str, str] = {}
        if head != self.head:  # the task committed, reset, or switched branches: what moved counts too
            moved = self._committed(head) if head else None
            if moved is None:
                self.note = "HEAD moved during the task and git could not say what changed"
            committed = moved or {}
        for path in sorted(set(self.status) | set(status) | set(committed)):
            if ".planrun" in path.split("/"):
                continue  # planrun's own folder
            full = os.path.join(self.top, path)
            now = _state(full, MAX_GIT_HASH_FILE)
            if path in committed and path not in self.dirty and path not in status:
                kind = {"A": "added", "D": "deleted"}.get(committed[path], "modified")
                found[self._relative(full)] = kind
                continue
            if path in self.dirty:
                before = self.dirty[path]
                if _same(before, now):
                    continue
                existed = before != _MISSING
            else:
                existed = status.get(path, "  ") not in ("??", "A ", "AM", "AD")
            exists = now != _MISSING
            kind = "modified" if existed == exists else ("added" if exists else "deleted")
            found[self._relative(full)] = kind
        return found

    def _relative(self, full: str) -> str:
        rel = os.path.relpath(full, self.workdir)
        return rel.replace(os.sep, "/")


_TOPLEVELS: dict[str, Path | None] = {}


def _git_toplevel(workdir: Path) -> Path | None:
    """The top of the git work tree holding ``workdir``, or ``None`` (not a repository, or git missing).

    No ``.git`` in the workdir or above it: not a repository, without running
    git. Otherwise git says (once per workdir and run: a task's snapshots
    both ask).
    """
    key = os.fspath(workdir)
    if key not in _TOPLEVELS:
        _TOPLEVELS[key] = _ask_git_toplevel(workdir) if _has_dot_git(workdir) else None
    return _TOPLEVELS[key]


def _has_dot_git(workdir: Path) -> bool:
    path = Path(os.path.abspath(workdir))
    return any(os.path.lexists(folder / ".git") for folder in (path, *path.parents))


def _ask_git_toplevel(workdir: Path) -> Path | None:
    try:
        done = run_git(["rev-parse", "--show-toplevel"], workdir)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    top = os.fsdecode(done.stdout.rstrip(b"\n"))
    return Path(top) if top else None


# -- what a task's criteria read ----------------------------------------------


# -- the guard ------------------------------------------------------------------


def shown(path: str) -> str:
    """A path from the workdir, safe to print on one line: control characters, newlines and tabs escaped."""
    return printable(path).replace("\n", "\\n").replace("\t", "\\t")


def _listed(paths: list[str]) -> str:
    shown_ = ", ".join(shown(p) for p in paths[:MAX_NAMED])
    return shown_ + (f" and {len(paths) - MAX_NAMED} more" if len(paths) > MAX_NAMED else "")


def _evidence(title: str, paths: list[str], kinds: dict[str, str]) -> str:
    lines = [title]
    lines.extend(f"  {kinds[p]}: {shown(p)}" for p in paths[:MAX_EVIDENCE])
    if len(paths) > MAX_EVIDENCE:
        lines.append(f"  ... and {len(paths) - MAX_EVIDENCE} more")
    return "\n".join(lines)


def default_mode(executor: Executor) -> str:
    """``strict`` for agent executors (re-run on failure, or not ``shell``), ``warn`` for shell."""
    if executor.max_attempts > 1 or executor.name != "shell":
        return "strict"
    return "warn"


class ScopeGuard:
    """The ``planrun_task_execute`` wrapper that takes the snapshots and judges the changes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.mode: str | None = config.option.scope or _ini_mode(config)
        self.allow = Globs(_ini_allow(config), anywhere=True)
        self.plan_files: dict[str, str] = {}  # real path -> display path of each collected plan file
        self.first_attempt: dict[str, tuple[dict[str, Any], Snapshot]] = {}  # nodeid -> state before attempt 1

    @hookimpl
    def planrun_collection_finish(self, session: Session) -> None:
        _TOPLEVELS.clear()  # a new run: repositories may have come or gone
        self.plan_files = {os.path.realpath(cplan.path): cplan.display for cplan in session.plans}

    @hookimpl(wrapper=True)
    def planrun_task_execute(
        self, task: Task, executor: Executor, context: ExecutionContext
    ) -> Generator[None, ExecutionResult, ExecutionResult]:
        workdir = Path(context.workdir)
        mode = self.mode or default_mode(executor)
        declared = Globs(task.files)
        theirs = Globs(_glob_escape(p) for p in context.beside)
        patterns, named = criteria_reads(context.checks, workdir)
        reads = Globs(patterns)
        # What existed before the task and a criterion reads: the files that judge it.
        judges = Globs(_glob_escape(p) for p in named)
        # The collected plans wherever they are (outside the workdir, or reached through a link).
        # A retry is judged against the tree before the task's first attempt: an attempt
        # cannot make an earlier attempt's stray change its own starting point.
        first = self.first_attempt.get(context.nodeid) if context.attempt > 1 else None
        if first is None:
            first = self.first_attempt[context.nodeid] = (
                {real: _state(real, MAX_GIT_HASH_FILE) for real in self.plan_files},
                Snapshot(workdir),
            )
        plans_before, before = first
        result = yield
        changes = before.changes()
        plans = [
            self.plan_files[real]
            for real, state in plans_before.items()
            if not _same(state, _state(real, MAX_GIT_HASH_FILE))
        ]
        changes.update((name, "modified") for name in plans if name not in changes)
        if not changes and not before.note:
            return result
        existed = {path for path, kind in changes.items() if kind != "added"}
        outside: list[str] = []
        judged: list[str] = []
        for path in sorted(changes):
            full = os.path.normpath(os.path.join(workdir, path))
            collected = self.plan_files.get(os.path.realpath(full))
            if path in plans or collected in plans:
                continue  # a collected plan file, seen changed by its hash
            if path.endswith(PLAN_SUFFIXES) or collected is not None:
                plans.append(path)
                continue
            if declared.match(path) or theirs.match(path):
                continue  # its own, or a file of a task performed beside it (that task's guard judges it)
            if judges.match(path):
                judged.append(path)
                continue
            if (path not in existed and reads.match(path)) or self.allow.match(path):
                continue  # a file the criteria ask for, created by the task; or always allowed
            outside.append(path)
        failures: list[tuple[str, str]] = []
        plans = sorted(set(plans))
        if plans:
            failures.append((f"scope: changed a plan file: {_listed(plans)}", _evidence("plan files:", plans, changes)))
        if judged:
            failures.append(
                (
                    f"scope: changed a file its criteria read: {_listed(judged)}",
                    _evidence("files its criteria read:", judged, changes),
                )
            )
        if outside and mode == "strict":
            failures.append(
                (
                    f"scope: changed files outside the task's files: {_listed(outside)}",
                    _evidence("outside the task's files:", outside, changes),
                )
            )
        warnings = list(result.warnings)
        if before.note:
            warnings.append(f"scope: {before.note}")
        if outside and mode == "warn":
            warnings.append(f"scope: changed files outside the task's files: {_listed(outside)}")
        if not failures or result.status == "blocked":
            warnings.extend(message for message, _ in failures)
            return dataclasses.replace(result, warnings=warnings)
        message = "; ".join(m for m, _ in failures)
        evidence = "\n".join(e for _, e in failures)
        if result.status == "failed" and result.message:
            message = f"{message} (and the executor failed: {result.message})"
            evidence = f"{evidence}\n{result.evidence}" if result.evidence else evidence
        # Files outside the task's own can be put back, and the executor is told so on a retry;
        # a changed plan or a changed file that judges the task cannot be undone by it.
        retryable = result.status == "done" and not plans and not judged
        return dataclasses.replace(
            result, status="failed", message=message, evidence=evidence, warnings=warnings, retryable=retryable
        )


def _ini_mode(config: Config) -> str | None:
    value = config.inicfg.get("scope")
    if value is None:
        return None
    if value not in MODES:
        raise UsageError(f"[tool.planrun] scope must be one of {', '.join(MODES)}, got {value!r}")
    return str(value)


def _ini_allow(config: Config) -> tuple[str, ...]:
    value = config.inicfg.get("scope_allow")
    if value is None:
        return DEFAULT_ALLOW
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"[tool.planrun] scope_allow must be a list of glob strings, got {value!r}")
    return tuple(value)


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scope guard")
    group.add_argument(
        "--scope",
        choices=MODES,
        default=None,
        help="changes outside a task's files: strict fails the task (default for agent executors), warn reports"
        " them (default for shell), off ignores them; a changed plan file or a file the task's criteria read"
        " always fails it (config: scope)",
    )


@hookimpl
def planrun_configure(config: Config) -> None:
    config.pluginmanager.register(ScopeGuard(config), "scope-guard")
