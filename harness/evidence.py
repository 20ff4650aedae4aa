"""The evidence record (``--evidence``): git state of a tree, and ``planrun verify-evidence PATH``.

The record itself is written by the ``evidence`` plugin; its shape is
documented in ``docs/evidence.md``. Verification re-hashes every file a
criterion read, relative to the recorded workdir and through
:meth:`planrun.CheckContext.open` (confined: never through a symlink out), and
every plan file; it never runs a recorded command.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from planrun.atomic import opened
from planrun.gitenv import run_git
from planrun.outcomes import CheckFailed
from planrun.reports import printable
from planrun.types import CheckContext, _relative_path, forget_paths

#: ``"format"`` of an evidence document.
EVIDENCE_FORMAT = "planrun-evidence"
#: ``"version"`` of the shape this planrun writes and reads.
EVIDENCE_VERSION = 1

_MAX_EVIDENCE_BYTES = 1 << 30
_GIT_TIMEOUT = 300.0
_EMPTY_TREES = frozenset(
    {
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904",  # sha1
        "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",  # sha256
    }
)
_SHOWN_CHANGES = 20
_HEX = re.compile(r"[0-9a-f]{64}")

# -- git state ------------------------------------------------------------------


def _git(args: list[str], cwd: str, index: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_git(args, cwd, timeout=_GIT_TIMEOUT, env={"GIT_INDEX_FILE": index} if index else None)


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


def _inside(path: str, root: str) -> bool:
    return path == root or os.path.commonpath((path, root)) == root


def git_state(workdir: os.PathLike[str] | str, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The git state of ``workdir``'s tree as it is now, uncommitted changes included.

    ``tree`` is the tree hash of the working tree (tracked and untracked
    files, not ignored ones), made in a temporary index (``GIT_INDEX_FILE``,
    a copy of the real one so unchanged files are not hashed again): the real
    index is never touched. ``exclude`` names paths (absolute, or relative to
    the repository's top) left out of it, such as ``.planrun/`` and the
    evidence file itself; those inside the repository are listed, relative, in
    ``excluded``. ``dirty`` says whether that tree differs from ``HEAD``'s.

    :returns: ``{"repository": False, "reason": ...}`` outside a repository
        (or without git); else ``repository``, ``toplevel``, ``prefix`` (the
        workdir below the top, ``""`` at it), ``commit`` (``None`` before the
        first commit), ``tree``, ``dirty``, ``excluded`` and, when git failed
        to make the tree, ``error``.
    """
    cwd = os.fspath(workdir)
    try:
        where = _git(["rev-parse", "--show-toplevel", "--absolute-git-dir", "--show-prefix"], cwd)
    except (OSError, subprocess.SubprocessError) as exc:
        return {
            "repository": False,
            "reason": f"git cannot be run: {exc.strerror if isinstance(exc, OSError) else exc}",
        }
    if where.returncode != 0:
        message = _first_line(where.stderr)
        if "not a git repository" in message:
            return {"repository": False, "reason": "not a git repository"}
        return {"repository": False, "reason": message or f"git rev-parse exited with {where.returncode}"}
    lines = os.fsdecode(where.stdout).split("\n")
    top, gitdir, prefix = (lines + ["", "", ""])[:3]
    state: dict[str, Any] = {"repository": True, "toplevel": top, "prefix": prefix, "commit": None}
    real_top = os.path.realpath(top)
    excluded = []
    for path in exclude:
        full = os.path.realpath(os.path.join(real_top, path))
        if _inside(full, real_top) and full != real_top:
            excluded.append(Path(os.path.relpath(full, real_top)).as_posix())
    state["excluded"] = sorted(set(excluded))
    try:
        head = _git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], top)
        head_tree = None
        if head.returncode == 0:
            state["commit"] = head.stdout.decode().strip()
            head_tree = _head_tree(top, state["excluded"])
        tree, error = _worktree_tree(top, gitdir, state["excluded"])
    except (OSError, subprocess.SubprocessError) as exc:
        tree, error, head_tree = None, f"git failed: {exc}", None
    state["tree"] = tree
    state["dirty"] = None if tree is None else (tree != head_tree if head_tree else tree not in _EMPTY_TREES)
    if error:
        state["error"] = error
    return state


def _worktree_tree(top: str, gitdir: str, excluded: list[str]) -> tuple[str | None, str | None]:
    """``(tree hash, None)`` of the working tree, or ``(None, why)``; through a temporary index only."""
    folder = tempfile.mkdtemp(prefix="planrun-evidence-")
    error = "git add failed"
    try:
        index = os.path.join(folder, "index")
        for seed in (True, False):  # a copy of the real index first (fast); if git refuses it, an empty one
            if seed:
                try:
                    shutil.copyfile(os.path.join(gitdir, "index"), index)
                except OSError:
                    continue
            elif os.path.exists(index):
                os.unlink(index)
            added = _git(["add", "-A", "--", ".", *(f":(exclude,literal){p}" for p in excluded)], top, index)
            if added.returncode != 0:
                error = f"git add failed: {_first_line(added.stderr)}"
                continue
            tree, error = _write_tree(top, index, excluded)
            if tree:
                return tree, None
        return None, error
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_tree(top: str, index: str, excluded: list[str]) -> tuple[str | None, str]:
    """The tree of ``index`` with the ``excluded`` paths taken out (tracked ones too)."""
    if excluded:
        removed = _git(
            ["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *(f":(literal){p}" for p in excluded)], top, index
        )
        if removed.returncode != 0:
            return None, f"git rm --cached failed: {_first_line(removed.stderr)}"
    written = _git(["write-tree"], top, index)
    if written.returncode != 0:
        return None, f"git write-tree failed: {_first_line(written.stderr)}"
    return written.stdout.decode().strip(), ""


def _head_tree(top: str, excluded: list[str]) -> str | None:
    """``HEAD``'s tree, with the ``excluded`` paths taken out when it holds any."""
    tree = _git(["rev-parse", "HEAD^{tree}"], top).stdout.decode().strip() or None
    if not excluded or tree is None:
        return tree
    listed = _git(["ls-tree", "--name-only", "HEAD", "--", *(f":(literal){p}" for p in excluded)], top)
    if listed.returncode != 0 or not listed.stdout.strip():
        return tree
    folder = tempfile.mkdtemp(prefix="planrun-evidence-")
    try:
        index = os.path.join(folder, "index")
        if _git(["read-tree", "HEAD"], top, index).returncode != 0:
            return tree
        return _write_tree(top, index, excluded)[0] or tree
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tree_changes(top: str, old: str, new: str) -> list[str]:
    """``git diff-tree --name-status OLD NEW`` lines (``M path``), if both trees are in the repository."""
    try:
        diff = _git(["diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new], top)
    except (OSError, subprocess.SubprocessError):
        return []
    if diff.returncode != 0:
        return []
    parts = os.fsdecode(diff.stdout).split("\0")
    return [f"{parts[i]} {parts[i + 1]}" for i in range(0, len(parts) - 1, 2)]


def sha256_of(path: os.PathLike[str] | str) -> str:
    """SHA-256 (hex) of the regular file ``path``; a FIFO or device is never read (:exc:`OSError`)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    f, _ = opened(fd)
    if f is None:
        raise OSError(0, "not a regular file")
    with f:
        return _hash_stream(f)[0]


def _hash_stream(f: Any) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return sha.hexdigest(), size
        sha.update(chunk)
        size += len(chunk)


# -- reading an evidence file ---------------------------------------------------


class Malformed(Exception):
    """The evidence file is unreadable or not of the documented shape (exit 4)."""


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
        raise Malformed(f"{where}: expected {names}, got {_JSON_NAMES.get(type(value), type(value).__name__)}")
    return value


_JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _key(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise Malformed(f"{where}: missing key {key!r}")
    return _expect(obj[key], kind, f"{where}.{key}")


def _relpath(value: Any, where: str) -> str:
    """A recorded path: relative, no ``..`` (a file named ``~x`` is a file of the workdir like any other)."""
    _expect(value, str, where)
    try:
        _relative_path(value if not value.startswith("~") else "./" + value)  # empty, NUL, absolute, ..
        return value
    except ValueError as exc:
        raise Malformed(f"{where}: {exc}: refused (a record names paths inside the workdir only)") from None


def _sha(value: Any, where: str) -> str | None:
    if value is not None and not (isinstance(value, str) and _HEX.fullmatch(value)):
        raise Malformed(f"{where}: not a SHA-256 (64 lowercase hex digits)")
    return value


def _check_record(record: dict[str, Any], where: str) -> None:
    for i, entry in enumerate(_key(record, "files", list, where)):
        at = f"{where}.files[{i}]"
        _expect(entry, dict, at)
        _relpath(_key(entry, "path", str, at), f"{at}.path")
        kind = _key(entry, "type", str, at)
        if kind == "file":
            _sha(_key(entry, "sha256", (str, type(None)), at), f"{at}.sha256")
    for i, entry in enumerate(_key(record, "globs", list, where)):
        at = f"{where}.globs[{i}]"
        _expect(entry, dict, at)
        _relpath(_key(entry, "pattern", str, at), f"{at}.pattern")
        for j, found in enumerate(_key(entry, "found", list, at)):
            _relpath(found, f"{at}.found[{j}]")
    for i, entry in enumerate(_key(record, "commands", list, where)):
        at = f"{where}.commands[{i}]"
        _expect(entry, dict, at)
        _key(entry, "command", str, at)
    for i, entry in enumerate(record.get("requests", [])):  # http checks (absent in records without any)
        at = f"{where}.requests[{i}]"
        _expect(entry, dict, at)
        _key(entry, "url", str, at)


def check_document(doc: Any) -> dict[str, Any]:
    """``doc`` if it is an evidence document of the version this planrun reads; else :exc:`Malformed`.

    Every path a record names is checked here, before anything is read: an
    absolute path or one with ``..`` refuses the whole document.
    """
    _expect(doc, dict, "the document")
    if doc.get("format") != EVIDENCE_FORMAT:
        raise Malformed(f"not a planrun evidence file (format {doc.get('format')!r}, expected {EVIDENCE_FORMAT!r})")
    version = doc.get("version")
    if version != EVIDENCE_VERSION or isinstance(version, bool):
        raise Malformed(
            f"evidence version {version!r} is not supported (this planrun reads version {EVIDENCE_VERSION})"
        )
    rootdir = _key(doc, "rootdir", str, "the document")
    if not os.path.isabs(rootdir):
        raise Malformed("rootdir: not an absolute path")
    for i, plan in enumerate(_key(doc, "plans", list, "the document")):
        at = f"plans[{i}]"
        _expect(plan, dict, at)
        _key(plan, "path", str, at)
        if _key(plan, "file", (str, type(None)), at) is not None:
            _relpath(plan["file"], f"{at}.file")
        _sha(_key(plan, "sha256", (str, type(None)), at), f"{at}.sha256")
        if not os.path.isabs(_key(plan, "workdir", str, at)):
            raise Malformed(f"{at}.workdir: not an absolute path")
        if _key(plan, "workdir_rel", (str, type(None)), at) is not None:
            _relpath(plan["workdir_rel"], f"{at}.workdir_rel")
        git = _key(plan, "git", dict, at)
        if _key(git, "repository", bool, f"{at}.git"):
            for j, path in enumerate(_key(git, "excluded", list, f"{at}.git")):
                _relpath(path, f"{at}.git.excluded[{j}]")
            _key(git, "tree", (str, type(None)), f"{at}.git")
            _key(git, "commit", (str, type(None)), f"{at}.git")
        for j, item in enumerate(_key(plan, "items", list, at)):
            iat = f"{at}.items[{j}]"
            _expect(item, dict, iat)
            _key(item, "nodeid", str, iat)
            for k, criterion in enumerate(_key(item, "criteria", list, iat)):
                cat = f"{iat}.criteria[{k}]"
                _expect(criterion, dict, cat)
                for key in ("name", "kind", "outcome"):
                    _key(criterion, key, str, cat)
                record = _key(criterion, "record", (dict, type(None)), cat)
                if record is not None:
                    _check_record(record, f"{cat}.record")
    return doc


def load_evidence(path: str) -> dict[str, Any]:
    """Read and check an evidence file; :exc:`Malformed` with a one-line reason."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise Malformed(f"cannot be read: {exc.strerror or exc}") from None
    f, st = opened(fd)
    if f is None:
        raise Malformed("not a regular file")
    with f:
        if st.st_size > _MAX_EVIDENCE_BYTES:
            raise Malformed(f"{st.st_size} bytes, more than the {_MAX_EVIDENCE_BYTES}-byte limit")
        try:
            raw = f.read(_MAX_EVIDENCE_BYTES + 1)
        except OSError as exc:
            raise Malformed(f"cannot be read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:  # also UnicodeDecodeError
        raise Malformed(f"not JSON: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise Malformed("not JSON this planrun reads: nested too deeply") from None
    return check_document(doc)


# -- verify-evidence --------------------------------------------------------------

_USAGE = """usage: planrun verify-evidence PATH [--rootdir DIR]

Re-check an evidence file written by `planrun --evidence PATH` against the tree as it is now:
every file a criterion read (its SHA-256, read confined to the recorded workdir), every glob a
criterion matched, every plan file, and the git tree. Exit 0 when all match, 1 naming each that
no longer does, 4 for an unreadable or malformed evidence file.

options:
  --rootdir DIR  verify a checkout at DIR instead of the recorded rootdir (workdirs and plan
                 files are taken relative to it)"""


class _Verifier:
    def __init__(self, evidence: str) -> None:
        self.evidence = evidence  # the evidence file's real path: a glob may have matched an older one
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.files = 0
        self.globs = 0
        self.commands = 0
        self.seen: set[tuple[str, str]] = set()

    def plan(self, plan: dict[str, Any], base: str, rebased: bool) -> None:
        name = printable(plan["path"])
        if plan["file"] is not None and plan["sha256"] is not None:
            self._plan_file(name, base, plan["file"], plan["sha256"])
        elif plan["sha256"] is not None:
            self.notes.append(f"{name}: the plan file lies outside the rootdir: not verified")
        workdir = plan["workdir"]
        if rebased:
            if plan["workdir_rel"] is None:
                self.notes.append(f"{name}: the workdir {printable(workdir)} lies outside the rootdir: verified there")
            else:
                workdir = os.path.join(base, plan["workdir_rel"])
        records = [
            (f"{item['nodeid']} criterion {n}", c["record"])
            for item in plan["items"]
            for n, c in enumerate(item["criteria"], 1)
            if c["record"] is not None
        ]
        if not os.path.isdir(workdir):
            if records:
                self.problems.append(
                    f"{name}: the workdir {printable(workdir)} no longer exists (a temp or copy workspace"
                    " is removed after the run): nothing recorded there can be verified"
                )
            return
        ctx = CheckContext(Path(workdir), 60.0)
        for where, record in records:
            self._record(ctx, workdir, printable(where), record)
        self._git(name, plan["git"], workdir)

    def _plan_file(self, name: str, base: str, rel: str, digest: str) -> None:
        self.files += 1
        try:
            with CheckContext(Path(base), 60.0).open(rel) as f:
                now, _ = _hash_stream(f)
        except CheckFailed as exc:
            self.problems.append(f"{name}: plan file {printable(exc.message)}")
            return
        except OSError as exc:
            self.problems.append(f"{name}: plan file {printable(rel)} cannot be read: {exc.strerror or exc}")
            return
        if now != digest:
            self.problems.append(
                f"{name}: plan file {printable(rel)} changed (sha256 {digest[:16]} recorded, {now[:16]} now)"
            )

    def _record(self, ctx: CheckContext, workdir: str, where: str, record: dict[str, Any]) -> None:
        self.commands += len(record["commands"])
        for entry in record["files"]:
            rel, kind = entry["path"], entry["type"]
            if kind not in ("file", "directory") or (workdir, rel) in self.seen or self._is_evidence(workdir, rel):
                continue
            self.seen.add((workdir, rel))
            self.files += 1
            why = self._file(ctx, entry) if kind == "file" else self._directory(ctx, rel)
            if why:
                self.problems.append(f"{printable(why)} (checked by {where})")
        for glob in record["globs"]:
            self.globs += 1
            try:
                found, outside = ctx.glob(glob["pattern"])
            except CheckFailed as exc:
                self.problems.append(
                    f"glob {printable(glob['pattern'])}: {printable(exc.message)} (checked by {where})"
                )
                continue
            before = {p for p in glob["found"] if not self._is_evidence(workdir, p)}
            now = {p for p in found if not self._is_evidence(workdir, p)}
            changes = [f"{p} now exists" for p in sorted(now - before)]
            changes += [f"{p} no longer exists" for p in sorted(before - now - set(outside))]
            changes += [f"{p} resolves outside the workdir" for p in outside]
            if changes:
                shown = ", ".join(changes[:10]) + (f" and {len(changes) - 10} more" if len(changes) > 10 else "")
                what = f"glob {printable(glob['pattern'])} no longer matches what it did: {printable(shown)}"
                self.problems.append(f"{what} (checked by {where})")

    def _is_evidence(self, workdir: str, rel: str) -> bool:
        """``rel`` is the evidence file being verified (rewritten by every run that writes it)."""
        return os.path.realpath(os.path.join(workdir, rel)) == self.evidence

    def _file(self, ctx: CheckContext, entry: dict[str, Any]) -> str:
        rel = entry["path"]
        try:
            with ctx.open(rel) as f:
                if entry.get("sha256") is None:
                    return ""  # recorded as existing, too big to hash: it still exists as a file
                now, size = _hash_stream(f)
        except CheckFailed as exc:
            return exc.message
        except OSError as exc:
            return f"{rel} cannot be read: {exc.strerror or exc}"
        if now == entry["sha256"]:
            return ""
        sizes = f"{entry.get('size')} bytes" if isinstance(entry.get("size"), int) else "?"
        return f"{rel} changed: {sizes} with sha256 {entry['sha256'][:16]} recorded, now {size} bytes with {now[:16]}"

    def _directory(self, ctx: CheckContext, rel: str) -> str:
        try:
            found, outside = ctx.glob(rel.rstrip("/") + "/")
        except CheckFailed as exc:
            return exc.message
        if outside:
            return f"{rel} resolves outside the workdir"
        return "" if found else f"{rel} is no longer a directory (missing, or something else now)"

    def _git(self, name: str, recorded: dict[str, Any], workdir: str) -> None:
        if not recorded["repository"]:
            return
        now = git_state(workdir, recorded["excluded"])
        if not now["repository"]:
            self.problems.append(f"{name}: the workdir is no longer in a git repository ({printable(now['reason'])})")
            return
        old_tree, new_tree = recorded["tree"], now["tree"]
        if old_tree and new_tree and old_tree != new_tree:
            line = f"{name}: the git tree differs: {old_tree} was checked, the working tree is {new_tree} now"
            changes = _tree_changes(now["toplevel"], old_tree, new_tree)
            if changes:
                shown = changes[:_SHOWN_CHANGES]
                more = f" and {len(changes) - len(shown)} more" if len(changes) > len(shown) else ""
                line += f" ({', '.join(shown)}{more})"
            self.problems.append(printable(line))
        elif old_tree and not new_tree:
            self.problems.append(f"{name}: the git tree cannot be computed now: {printable(now.get('error', ''))}")
        if recorded["commit"] != now["commit"]:
            self.notes.append(f"{name}: HEAD is {now['commit']} now, {recorded['commit']} was recorded")


def _parse_args(args: list[str]) -> tuple[str, str | None] | int:
    path: str | None = None
    rootdir: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            print(_USAGE)
            return 0
        if arg == "--rootdir" and i + 1 < len(args):
            rootdir, i = args[i + 1], i + 2
            continue
        if arg.startswith("--rootdir="):
            rootdir = arg.partition("=")[2]
        elif arg.startswith("-") and arg != "-" or path is not None:
            print(f"ERROR: planrun verify-evidence: unexpected argument {printable(arg)!r}", file=sys.stderr)
            print(_USAGE.splitlines()[0], file=sys.stderr)
            return 4
        else:
            path = arg
        i += 1
    if path is None:
        print("ERROR: planrun verify-evidence: the evidence file is missing", file=sys.stderr)
        print(_USAGE.splitlines()[0], file=sys.stderr)
        return 4
    return path, rootdir


def main(args: list[str], plugins: list[object] | None = None) -> int:
    """``planrun verify-evidence PATH [--rootdir DIR]``: exit 0 all match, 1 some do not, 4 bad evidence file."""
    parsed = _parse_args(args)
    if isinstance(parsed, int):
        return parsed
    path, rootdir = parsed
    try:
        doc = load_evidence(path)
    except Malformed as exc:
        print(f"ERROR: {printable(path)}: {printable(str(exc))}", file=sys.stderr)
        return 4
    if rootdir is not None and not os.path.isdir(rootdir):
        print(f"ERROR: --rootdir {printable(rootdir)} is not a directory", file=sys.stderr)
        return 4
    base = os.path.abspath(rootdir) if rootdir is not None else doc["rootdir"]
    forget_paths()
    verifier = _Verifier(os.path.realpath(path))
    for plan in doc["plans"]:
        verifier.plan(plan, base, rootdir is not None)
    plans = len(doc["plans"])
    print(
        f"verify-evidence {printable(path)}: {plans} plan{'s' * (plans != 1)}, {verifier.files} files,"
        f" {verifier.globs} globs checked; {verifier.commands} recorded commands not re-run"
    )
    for note in verifier.notes:
        print(f"note: {printable(note)}")
    for problem in verifier.problems:
        print(f"MISMATCH {printable(problem)}")
    if verifier.problems:
        print(f"FAILED: {len(verifier.problems)} no longer match{'es' * (len(verifier.problems) == 1)}")
        return 1
    print("OK: everything recorded matches the tree")
    return 0
