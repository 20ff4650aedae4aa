"""Plans as they are at a git ref (``--plans-from-ref``), and what the working tree changed in them.

:func:`materialise` writes a ref's plan files and ``conftest.py`` files into a
temporary mirror of the repository, so the session collects the ref's plans
with the ref's conftests; :func:`compare_plans` and :func:`compare_files` say
what the working tree removed or weakened. The comparison is data
(:class:`Change`), for the terminal and any other report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun.atomic import opened
from planrun.datapath import MISSING
from planrun.errors import PlanError, UsageError
from planrun.gitenv import run_git
from planrun.planfile import read_plan, shown
from planrun.reports import printable
from planrun.types import Location

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan
    from planrun.session import Session

PLAN_SUFFIXES = (".plan.yaml", ".plan.yml")
SKIP_DIRS = frozenset({"node_modules", "venv", "__pycache__", "site-packages", "build", "dist"})
GIT_TIMEOUT = 120.0
#: Regular files in a git tree (executable or not); links and submodules are no plan files.
_BLOB_MODES = ("100644", "100755")


def _git(top: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return run_git(["-C", str(top), *args], None, timeout=GIT_TIMEOUT, input=data)
    except subprocess.TimeoutExpired:
        raise UsageError(f"--plans-from-ref: git {args[0]} took over {GIT_TIMEOUT:g}s in {top}") from None


def _first_line(raw: bytes) -> str:
    lines = raw.decode("utf-8", "replace").strip().splitlines()
    return printable(lines[0]) if lines else ""


def repository_top(rootdir: Path) -> Path:
    """The top of the git repository holding ``rootdir``.

    :raises UsageError: ``rootdir`` is in no git repository.
    """
    try:
        done = _git(rootdir, "rev-parse", "--show-toplevel")
    except OSError as exc:
        raise UsageError(f"--plans-from-ref: cannot run git: {exc.strerror or exc}") from None
    out = done.stdout.decode("utf-8", "surrogateescape").strip()
    if done.returncode or not out:
        why = _first_line(done.stderr)
        raise UsageError(f"--plans-from-ref: {rootdir} is not in a git repository" + (f" ({why})" if why else ""))
    return Path(os.path.realpath(out))


def resolve_commit(top: Path, ref: str) -> str:
    """The commit id ``ref`` names.

    :raises UsageError: an unknown ref, or one naming a tree, a blob or a tag of one.
    """
    if not ref or ref.startswith("-") or any(c in ref for c in "\0\n\r") or ref != ref.strip():
        raise UsageError(f"--plans-from-ref: {printable(repr(ref))} is not a git ref")
    found = _git(top, "rev-parse", "--verify", "--quiet", ref)
    if found.returncode:
        raise UsageError(
            f"--plans-from-ref: unknown ref {printable(repr(ref))} in {top} (a CI checkout may need a git fetch first)"
        )
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode:
        kind = _git(top, "cat-file", "-t", found.stdout.decode().strip()).stdout.decode().strip() or "object"
        raise UsageError(f"--plans-from-ref: {printable(repr(ref))} names a {printable(kind)}, not a commit")
    return commit.stdout.decode().strip()


def list_tree(top: Path, commit: str) -> dict[str, str]:
    """The regular files of ``commit``: repository-relative path -> blob id."""
    done = _git(top, "ls-tree", "-r", "-z", "--full-tree", commit)
    if done.returncode:
        raise UsageError(f"--plans-from-ref: cannot list {commit}: {_first_line(done.stderr)}")
    files: dict[str, str] = {}
    for entry in done.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        mode, kind, blob = meta.decode().split(" ")
        if kind == "blob" and mode in _BLOB_MODES:
            files[os.fsdecode(name)] = blob
    return files


def read_blobs(top: Path, blobs: Iterable[str]) -> dict[str, bytes]:
    """The contents of ``blobs`` (one ``git cat-file --batch``)."""
    wanted = sorted(set(blobs))
    if not wanted:
        return {}
    done = _git(top, "cat-file", "--batch", data="".join(f"{b}\n" for b in wanted).encode())
    if done.returncode:
        raise UsageError(f"--plans-from-ref: cannot read the ref's files: {_first_line(done.stderr)}")
    out, pos, found = done.stdout, 0, {}
    for blob in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split(" ")
        if len(header) != 3:
            raise UsageError(f"--plans-from-ref: cannot read blob {blob}")
        size = int(header[2])
        found[blob] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return found


def _collected(rel: str, under: str) -> bool:
    """Whether the plan file ``rel`` is one a folder argument ``under`` collects (as the session walks)."""
    if not rel.endswith(PLAN_SUFFIXES):
        return False
    rest = rel[len(under) + 1 :] if under else rel
    folders = rest.split("/")[:-1]
    return not any(f.startswith(".") or f in SKIP_DIRS or f.endswith(PLAN_SUFFIXES) for f in folders)


@dataclass
class RefPlans:
    """A ref's plans, materialised for collection."""

    ref: str
    commit: str
    top: Path  # the repository, in the working tree
    mirror: Path  # its copy, holding the ref's plan files and conftests
    args: list[str]  # the PATHS to collect, in the mirror
    rootdir: Path = Path()
    plans: dict[str, bytes] = field(default_factory=dict)  # repository-relative path -> the ref's bytes
    added: dict[str, bytes] = field(default_factory=dict)  # plan files only the working tree has
    conftests: dict[str, bytes] = field(default_factory=dict)  # the ref's conftest.py files
    changes: list[Change] = field(default_factory=list)  # what the working tree changed (see compare)

    @property
    def conftest_root(self) -> Path:
        """The mirror's copy of the rootdir (where conftest chains end)."""
        if self.rootdir.is_relative_to(self.top):
            return self.mirror / self.rootdir.relative_to(self.top)
        return self.mirror

    def in_mirror(self, path: str | Path) -> bool:
        return Path(os.path.abspath(path)).is_relative_to(self.mirror)

    @property
    def weakenings(self) -> list[Change]:
        return [c for c in self.changes if c.weakening]

    def cleanup(self) -> None:
        shutil.rmtree(self.mirror, ignore_errors=True)


def materialise(ref: str, rootdir: Path, paths: list[str]) -> RefPlans:
    """Write the plan files under ``paths`` and every ``conftest.py`` as they are at ``ref`` into a mirror.

    Plan files under ``paths`` that only the working tree has are copied in
    too (adding checks cannot weaken the gate); they run with the ref's
    conftests like the others.

    :param paths: the PATHS arguments (node ids allowed), as the session would collect them.
    :raises UsageError: not a git repository, an unknown ref or one that is no
        commit, a path outside the repository or found neither at the ref nor in the tree.
    """
    from planrun.session import _walk as walk

    top = repository_top(rootdir)
    commit = resolve_commit(top, ref)
    tree = list_tree(top, commit)
    selected: dict[str, str] = {}
    added: dict[str, Path] = {}
    mapped: list[tuple[str, str, str]] = []  # (repository-relative path, "::", ids)
    for arg in paths:
        name, sep, ids = arg.partition("::")
        real = Path(os.path.realpath(name))
        if not real.is_relative_to(top):  # compares path components
            raise UsageError(f"--plans-from-ref: {printable(name)} is outside the repository {top}")
        rel = real.relative_to(top).as_posix()
        rel = "" if rel == "." else rel
        if rel in tree:
            selected[rel] = tree[rel]
        else:
            prefix = f"{rel}/" if rel else ""
            selected.update({p: b for p, b in tree.items() if p.startswith(prefix) and _collected(p, rel)})
        if real.is_dir():
            for f in walk(real):
                frel = Path(os.path.realpath(f)).relative_to(top).as_posix() if _inside(f, top) else None
                if frel is not None and frel not in tree and frel.endswith(PLAN_SUFFIXES):
                    added[frel] = f
        elif real.is_file() and rel not in tree:
            added[rel] = real
        elif not real.exists() and rel not in tree and not any(p.startswith(f"{rel}/") for p in tree):
            raise UsageError(
                f"--plans-from-ref: {printable(name)} is neither in {printable(ref)} nor in the working tree"
            )
        mapped.append((rel, sep, ids))
    folders = [rel for rel, _, _ in mapped if (top / rel).is_dir()]  # a folder arg stays a folder in the mirror
    conftest_blobs = {p: b for p, b in tree.items() if p == "conftest.py" or p.endswith("/conftest.py")}
    contents = read_blobs(top, [*selected.values(), *conftest_blobs.values()])
    mirror = Path(os.path.realpath(tempfile.mkdtemp(prefix="planrun-ref-")))
    result = RefPlans(ref, commit, top, mirror, [], Path(os.path.realpath(rootdir)))
    try:
        for rel, blob in selected.items():
            result.plans[rel] = contents[blob]
            _write(mirror, rel, contents[blob])
        for rel, blob in conftest_blobs.items():
            result.conftests[rel] = contents[blob]
            _write(mirror, rel, contents[blob])
        for rel, path in added.items():
            data = _read_limited(path)
            if data is not None:
                result.added[rel] = data
                _write(mirror, rel, data)
        for rel in folders:
            mirror.joinpath(*rel.split("/")).mkdir(parents=True, exist_ok=True)
    except BaseException:
        result.cleanup()
        raise
    result.args = [str(mirror / rel) + (sep + ids if sep else "") if rel else str(mirror) for rel, sep, ids in mapped]
    return result


def _inside(path: Path, top: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(top)


#: A plan file copied from the working tree is read up to this; the loader refuses what is bigger than its limit.
_COPY_LIMIT = 64 << 20


def _read_limited(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    f, _ = opened(fd)
    if f is None:
        return None
    with f:
        return f.read(_COPY_LIMIT)


def _write(mirror: Path, rel: str, data: bytes) -> None:
    target = mirror.joinpath(*rel.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as f:
        f.write(data)


def load_plan(path: Path, display: str, max_bytes: int) -> Plan | PlanError:
    """A plan file loaded as the core loads it, or the error it gives."""
    try:
        return read_plan(path, display, max_bytes=max_bytes)
    except PlanError as exc:
        return exc


# -- the comparison -------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between the ref's plans and the working tree's."""

    path: str  # the plan (or conftest) file, as reports show it
    line: int  # where, in the working tree's file (0: nowhere, e.g. removed)
    subject: str  # "task build", "verification", "edge case 'x'", "plan", "conftest.py"
    what: str  # "criterion removed: ...", "equals: 3 -> 2", "now skipped (...)"
    weakening: bool

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return printable(f"{where}: {self.subject}: {self.what}")


#: A criterion as written -> the form compared (see :func:`compare`).
Normalise = Callable[[Any], Any]

COMMON_KEYS = ("name", "timeout", "retry_for", "skip")


def _kind(raw: Any) -> str | None:
    if isinstance(raw, dict):
        kinds = [k for k in raw if k not in COMMON_KEYS]
        return str(kinds[0]) if len(kinds) == 1 else None
    return None


def describe(raw: Any) -> str:
    """A criterion in one short line."""
    if isinstance(raw, str):
        return shown(raw)
    if isinstance(raw, dict):
        parts = [f"{k}: {_flow(v)}" for k, v in raw.items()]
        text = "{" + ", ".join(parts) + "}"
        return text if len(text) <= 120 else text[:100] + f"... ({len(text)} characters)"
    return shown(raw)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return shown(value)


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """A mapping's values by dotted key (a scalar shorthand is the key itself)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _stronger(key: str, before: Any, after: Any) -> bool:
    """Whether a changed value can only make the criterion stricter (a raised minimum, a lowered maximum)."""
    last = key.rsplit(".", 1)[-1]
    if last == "name":
        return True  # the display name
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
    if numbers and last.startswith("min"):
        return bool(after > before)
    if numbers and last.startswith("max"):
        return bool(after < before)
    return False


class _Comparer:
    def __init__(self, display: str, new: Plan, normalise: Normalise) -> None:
        self.display = display
        self.new = new
        self.normalise = normalise
        self.changes: list[Change] = []

    def line(self, loc: tuple[Any, ...]) -> int:
        source = self.new._source
        return source.locate(loc).line if source is not None else 0

    def add(self, line: int, subject: str, what: str, weakening: bool) -> None:
        self.changes.append(Change(self.display, line, subject, what, weakening))

    def norm(self, raw: Any) -> Any:
        try:
            return self.normalise(raw)
        except Exception:  # a compiler or argument model that fails on it: compare it as written
            return raw

    def criteria(self, subject: str, old: list[Any], new: list[Any], loc: tuple[Any, ...], owner_line: int) -> None:
        before = [(raw, self.norm(raw)) for raw in old]
        after = [(j, raw, self.norm(raw)) for j, raw in enumerate(new)]
        rest_old = []
        for raw, norm in before:  # unchanged criteria, wherever they moved
            same = next((a for a in after if a[2] == norm), None)
            if same is not None:
                after.remove(same)
            else:
                rest_old.append((raw, norm))
        unmatched = []
        for raw, norm in rest_old:  # the same check kind, changed
            kind = _kind(norm)
            pair = next((a for a in after if kind is not None and _kind(a[2]) == kind), None)
            if pair is None and isinstance(norm, str):
                pair = next((a for a in after if isinstance(a[2], str)), None)
            if pair is None:
                unmatched.append((raw, norm))
                continue
            after.remove(pair)
            self.changed(subject, (raw, norm), (pair[1], pair[2]), self.line((*loc, pair[0])))
        for raw, norm in unmatched:
            manual = next((a for a in after if _kind(a[2]) == "manual"), None)
            if manual is not None and _kind(norm) != "manual":
                after.remove(manual)
                self.add(self.line((*loc, manual[0])), subject, f"now manual: {describe(raw)}", True)
            else:
                self.add(owner_line, subject, f"criterion removed: {describe(raw)}", True)
        for j, raw, _ in after:
            self.add(self.line((*loc, j)), subject, f"criterion added: {describe(raw)}", False)

    def changed(self, subject: str, before: tuple[Any, Any], after: tuple[Any, Any], line: int) -> None:
        """One criterion, as written and as compared, before and after."""
        (old_raw, old), (new_raw, new) = before, after
        if isinstance(old, str) or isinstance(new, str):
            self.add(line, subject, f"criterion changed: {describe(old_raw)} -> {describe(new_raw)}", True)
            return
        old_skip, new_skip = old.get("skip"), new.get("skip")
        if new_skip is not None and old_skip is None:
            self.add(line, subject, f"now skipped ({shown(new_skip)}): {describe(old_raw)}", True)
        a = _leaves({k: v for k, v in old.items() if k != "skip"})
        b = _leaves({k: v for k, v in new.items() if k != "skip"})
        diffs, weak = [], False
        for key in [*a, *(k for k in b if k not in a)]:
            x, y = a.get(key, _ABSENT), b.get(key, _ABSENT)
            if x == y:
                continue
            weak = weak or x is _ABSENT or y is _ABSENT or not _stronger(key, x, y)
            diffs.append(f"{key}: {_value(x)} -> {_value(y)}")
        if diffs:  # one change per criterion, however many of its values changed
            self.add(line, subject, ", ".join(diffs), weak)

    def plan(self, old: Plan) -> list[Change]:
        new = self.new
        if old.workdir != new.workdir:
            self.add(self.line(("workdir",)), "plan", f"workdir: {_value(old.workdir)} -> {_value(new.workdir)}", True)
        self.criteria("prerequisites", old.prerequisites, new.prerequisites, ("prerequisites",), 0)
        tasks = {t.id: (i, t) for i, t in enumerate(new.tasks)}
        for task in old.tasks:
            if task.id not in tasks:
                self.add(0, f"task {task.id}", "task removed", True)
                continue
            i, now = tasks[task.id]
            subject, line = f"task {task.id}", self.line(("tasks", i))
            grown = [f for f in now.files if f not in task.files]
            if task.files and grown:
                self.add(line, subject, "files widened: + " + ", ".join(shown(f) for f in grown), True)
            self.criteria(subject, task.criteria, now.criteria, ("tasks", i, "criteria"), line)
        old_ids = {t.id for t in old.tasks}
        for i, task in enumerate(new.tasks):
            if task.id not in old_ids:
                self.add(self.line(("tasks", i)), f"task {task.id}", "task added", False)
        cases = {c.case: (i, c) for i, c in enumerate(new.edge_cases)}
        for case in old.edge_cases:
            subject = f"edge case {shown(case.case)}"
            if case.case not in cases:
                self.add(0, subject, "edge case removed", True)
                continue
            i, now_case = cases[case.case]
            loc = ("edge_cases", i, "criteria")
            self.criteria(subject, case.criteria, now_case.criteria, loc, self.line(("edge_cases", i)))
        old_cases = {c.case for c in old.edge_cases}
        for i, new_case in enumerate(new.edge_cases):
            if new_case.case not in old_cases:
                self.add(self.line(("edge_cases", i)), f"edge case {shown(new_case.case)}", "edge case added", False)
        self.criteria("verification", old.verification, new.verification, ("verification",), 0)
        return self.changes


class _Absent:
    def __repr__(self) -> str:
        return "(none)"


_ABSENT: Any = _Absent()


def _value(value: Any) -> str:
    return "(none)" if value is _ABSENT or value is None else _flow(value)


def compare_plans(display: str, old: Plan, new: Plan | PlanError | None, normalise: Normalise) -> list[Change]:
    """What the working tree's version ``new`` of a plan changed against the ref's ``old``.

    :param new: the working tree's plan, the error it gives, or ``None`` (the file is gone).
    """
    if new is None:
        return [Change(display, 0, "plan", "plan file deleted", True)]
    if isinstance(new, PlanError):
        first = str(new).splitlines()[0] if str(new) else type(new).__name__
        return [Change(display, new.line or 0, "plan", f"does not load in the working tree: {first}", True)]
    return _Comparer(display, new, normalise).plan(old)


def compare_files(what: str, ref: dict[str, bytes], tree: dict[str, bytes]) -> list[Change]:
    """Files (conftests) that differ: changed, added or removed, each a weakening."""
    changes = []
    for rel in sorted(set(ref) | set(tree)):
        if rel not in tree:
            changes.append(Change(rel, 0, what, f"removed (the gate uses {what} as it is at the ref)", True))
        elif rel not in ref:
            changes.append(Change(rel, 0, what, "added in the working tree (not used by the gate)", True))
        elif ref[rel] != tree[rel]:
            changes.append(Change(rel, 0, what, "differs from the ref (the gate uses the ref's)", True))
    return changes


def working_conftests(top: Path, walk_root: Path) -> dict[str, bytes]:
    """Every ``conftest.py`` under ``walk_root`` in the working tree (hidden and tool folders skipped)."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(walk_root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        if "conftest.py" in filenames:
            path = Path(dirpath, "conftest.py")
            data = _read_limited(path)
            if data is not None and _inside(path, top):
                found[Path(os.path.realpath(path)).relative_to(top).as_posix()] = data
    return found


def plans_from_ref(session: Session, ref: str) -> RefPlans:
    """Make ``session`` collect the plans of ``ref`` (with its conftests) and compare them with the working tree's.

    The session's PATHS map into the mirror, whose plans are served by the
    ref's conftests. :attr:`RefPlans.changes` lists the differences.
    The caller removes the mirror (:meth:`RefPlans.cleanup`) when the session ends.

    :raises UsageError: see :func:`materialise`.
    """
    config = session.config
    refs = materialise(ref, config.rootdir, session.path_arguments())
    try:
        session.collect_paths = refs.args
        session.mirror = (refs.mirror, refs.top, refs.conftest_root)
        refs.changes = compare(refs, session)
    except BaseException:
        refs.cleanup()
        raise
    return refs


def compare(refs: RefPlans, session: Session) -> list[Change]:
    """Every plan of the ref against the working tree's file of the same path, then the conftests and config.

    Criteria compare by what they mean to the ref's check kinds: a sentence by
    the mapping it compiles to, a mapping by its validated arguments (defaults
    filled in), with the conftests that serve the ref's plan.
    """
    config = session.config
    max_bytes = config.option.max_plan_bytes
    changes: list[Change] = []
    for rel in sorted(refs.plans):
        real = refs.top / rel
        display = config.display_path(real)
        old = load_plan(refs.mirror / rel, display, max_bytes)
        if isinstance(old, PlanError):
            continue  # the ref's plan does not load: the run reports it (a collection error)
        new = load_plan(real, display, max_bytes) if os.path.lexists(real) else None
        scope = session.scope_for((refs.mirror / rel).parent)
        changes.extend(compare_plans(display, old, new, _normaliser(scope, config)))
    for rel in sorted(refs.added):
        changes.append(Change(config.display_path(refs.top / rel), 0, "plan", "plan file added (it runs too)", False))
    root = refs.rootdir
    prefix = root.relative_to(refs.top).as_posix() if root.is_relative_to(refs.top) else None
    ref_conftests = {}
    for rel, data in refs.conftests.items():
        under = "" if prefix in (None, ".") else f"{prefix}/"
        if rel.startswith(under) and _collected_conftest(rel[len(under) :]):
            ref_conftests[config.display_path(refs.top / rel)] = data
    tree = {config.display_path(refs.top / rel): data for rel, data in working_conftests(refs.top, root).items()}
    changes.extend(compare_files("conftest.py", ref_conftests, tree))
    changes.extend(compare_config(refs, config))
    return changes


def compare_config(refs: RefPlans, config: Config) -> list[Change]:
    """The config file's ``[tool.planrun]`` (paths, addopts...) against the ref's: a difference is a weakening."""
    from planrun.config import read_inicfg

    inipath = config.inipath
    if inipath is None or not Path(os.path.realpath(inipath)).is_relative_to(refs.top):
        return []
    rel = Path(os.path.realpath(inipath)).relative_to(refs.top).as_posix()
    shown_path = config.display_path(Path(inipath))
    blob = list_tree(refs.top, refs.commit).get(rel)
    if blob is None:
        before: dict[str, Any] = {}
    else:
        copy = Path(tempfile.mkdtemp(prefix=".config-", dir=refs.mirror)) / Path(rel).name  # read_inicfg goes by name
        copy.write_bytes(read_blobs(refs.top, [blob])[blob])
        try:
            before = read_inicfg(copy)
        except UsageError:
            before = {"<unreadable>": True}
    after = config.inicfg
    if before == after:
        return []
    keys = sorted(k for k in set(before) | set(after) if before.get(k, _ABSENT) != after.get(k, _ABSENT))
    what = ", ".join(f"{k}: {_value(before.get(k, _ABSENT))} -> {_value(after.get(k, _ABSENT))}" for k in keys)
    return [Change(shown_path, 0, "[tool.planrun]", f"differs from the ref ({what})", True)]


def _normaliser(scope: Any, config: Config) -> Normalise:
    """A criterion as its check kind sees it (see :func:`compare`); what does not compile stays as written."""
    kinds = scope.registry.kinds

    def normalise(raw: Any) -> Any:
        mapping = raw
        if isinstance(raw, str):
            mapping = scope.hook.planrun_compile_criterion(text=raw, location=Location("<plan>"), config=config)
            if not isinstance(mapping, dict):
                return raw
        kind = _kind(mapping)
        if kind not in kinds:
            return dict(mapping) if isinstance(mapping, dict) else mapping
        try:
            args = kinds[kind].args.model_validate(mapping[kind])
        except Exception:  # invalid arguments: the run reports them; compare as written
            return dict(mapping)
        return {**{k: v for k, v in mapping.items() if k != kind}, kind: _plain(args.model_dump(by_alias=True))}

    return normalise


def _plain(value: Any) -> Any:
    """Dumped arguments with :data:`planrun.MISSING` (an unset value) left out."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _collected_conftest(rel: str) -> bool:
    folders = rel.split("/")[:-1]
    return not any(f.startswith(".") or f in SKIP_DIRS for f in folders)
