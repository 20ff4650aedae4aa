"""``planrun lint [PATHS]``: a static review of plans; nothing runs.

Plans are collected as ``planrun`` collects them (config, plugins, scoped
``conftest.py`` check kinds and compilers), then reviewed. Every finding has a
location, a stable code and a one-line fix hint:

=====  ==============================================================
PR001  the plan does not load: schema or task-graph error
PR002  a criterion does not compile
PR003  a task has no machine-checkable criterion (none, or only ``manual``)
PR004  a non-atomic task: more than 5 files, or files in 3+ top-level folders
PR005  two tasks may change the same file and neither depends on the other
PR006  a ``delete`` task without a ``file_absent`` criterion
PR007  a ``create`` task without a criterion on one of its files
PR008  an edge case without a machine-checkable criterion
PR009  a file criterion that can only be vacuous
=====  ==============================================================

The rules, precisely. Two file entries "name the same file" when they are
equal after normalisation (``./a`` is ``a``), when one is a folder holding
the other (``src`` and ``src/a.py``), or when one is a glob matching the other
or the glob's folder lies inside the other. PR004: the top-level folder of an
entry is its first component when it has several, the root otherwise (a bare
``src`` counts as the root: it may be a file). PR005 compares every pair of
tasks, whatever their actions (``files`` is what a task may change), unless
one depends on the other, transitively; it points at the later task's entry.
PR007 wants, for each file of a ``create`` task, a criterion of a file kind
(``file_exists``, ``file_contains``, ``file_not_contains``, ``data``) naming
it. PR009: a criterion of a file kind (those and ``file_absent``) of a task
that lists files names a path that neither the task's files nor the files of
a task it depends on (transitively) name. The task cannot change that file
(the scope guard stops it), so the criterion holds or fails whatever the task
does: it checks the repository, not the task's work. A task that lists no
files declares nothing, and PR009 does not apply to it.

A comment ``# planrun: noqa PR003`` (several codes: ``PR003, PR007``; every
code: ``# planrun: noqa``) on the line a finding points at, or on the first
line of its task, suppresses it. PR001 and PR002 cannot be suppressed: such a
plan does not run at all.

Exit codes: 0 clean, 1 findings, 2 plans that do not load (PR001/PR002),
4 usage error, 5 no plan collected.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planrun.config import ExitCode, ParserExit
from planrun.errors import CompileError, PlanError, PlanrunError
from planrun.reports import printable

if TYPE_CHECKING:
    from planrun.compiler import Check
    from planrun.session import CollectedPlan

FORMATS = ("text", "github", "json")
#: PR004: a task listing more files than this is not atomic.
MAX_FILES = 5
#: PR004: a task whose files lie in this many top-level folders (the root counts as one) is not atomic.
MAX_FOLDERS = 3
#: Check kinds whose arguments name files of the workdir.
FILE_KINDS = frozenset({"file_exists", "file_absent", "file_contains", "file_not_contains", "data"})

USAGE = """\
usage: planrun lint [--format=text|github|json] [planrun options] [PATHS...]

Review plans without running anything. Each finding is printed as
FILE:LINE:COL: CODE message (hint: ...). Suppress one with a
'# planrun: noqa CODE' comment on its line or on its task's first line.

  --format=text    one line per finding, then a summary (default)
  --format=github  GitHub Actions workflow commands (::warning ...)
  --format=json    a JSON list of {path, line, col, code, message, hint}

Exit codes: 0 clean, 1 findings, 2 plans that do not load, 4 usage error, 5 no plans."""

_NOQA = re.compile(r"#\s*planrun:\s*noqa\b(?P<codes>:?\s*PR\d{3}(?:\s*,?\s*PR\d{3})*)?", re.IGNORECASE)
_CODE = re.compile(r"PR\d{3}", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


@dataclass
class Finding:
    """One finding: where, which code, what is wrong and how to fix it."""

    path: str
    line: int
    col: int
    code: str
    message: str
    hint: str
    #: Lines where a noqa comment suppresses it (the finding's own and its task's first line).
    noqa_lines: set[int] = field(default_factory=set, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def main(args: list[str]) -> int:
    """Run ``planrun lint`` with ``args`` (what follows ``lint``); return the exit code."""
    from planrun.cli import build_config
    from planrun.session import Session

    if "-h" in args or "--help" in args:
        print(USAGE)
        return ExitCode.OK
    try:
        fmt, rest = _parse_format(args)
        config = build_config(rest)
        session = Session(config)
        session.collect()
    except ParserExit as exc:
        return exc.status
    except PlanrunError as exc:
        print(f"ERROR: {_one_line(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    findings = [_from_error(err) for err in session.collection_errors]
    for cplan in session.plans:
        findings.extend(_suppress(cplan, list(lint_plan(cplan))))
    findings.sort(key=lambda f: (f.path, f.line, f.col, f.code))
    broken = len({err.path for err in session.collection_errors})
    _report(fmt, findings, len(session.plans), broken)
    if session.collection_errors:
        return ExitCode.INTERRUPTED
    if findings:
        return ExitCode.TESTS_FAILED
    if not session.plans:
        print("ERROR: no plan files collected", file=sys.stderr)
        return ExitCode.NO_TESTS_COLLECTED
    return ExitCode.OK


def _parse_format(args: list[str]) -> tuple[str, list[str]]:
    from planrun.errors import UsageError

    fmt, rest = "text", []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--format":
            if i + 1 >= len(args):
                raise UsageError("--format needs a value: text, github or json")
            fmt = args[i + 1]
            i += 1
        elif arg.startswith("--format="):
            fmt = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    if fmt not in FORMATS:
        raise UsageError(f"--format={fmt}: unknown format (choose from {', '.join(FORMATS)})")
    return fmt, rest


def _one_line(text: str) -> str:
    return printable(text).replace("\r", "\\r").replace("\n", "\\n")


# -- reports ----------------------------------------------------------------


def _report(fmt: str, findings: list[Finding], nplans: int, broken: int = 0) -> None:
    from planrun.commandguard import write_commands, write_data

    if fmt == "json":
        write_data(json.dumps([f.as_dict() for f in findings], indent=2) + "\n", json_text=True)
        return
    if fmt == "github":
        commands = []
        for f in findings:
            props = f"file={_esc_prop(f.path)},line={f.line},col={f.col},title={_esc_prop(f.code)}"
            level = "error" if f.code in ("PR001", "PR002") else "warning"
            commands.append(f"::{level} {props}::{_esc_data(f'{f.message} (hint: {f.hint})')}")
        write_commands(commands)
    for f in findings if fmt == "text" else ():
        where = f"{f.path}:{f.line}:{f.col}" if f.line else f.path
        print(f"{_one_line(where)}: {f.code} {_one_line(f.message)} (hint: {_one_line(f.hint)})")
    total = nplans + broken
    plans = f"{total} plan" + ("" if total == 1 else "s") + (f" ({broken} did not load)" if broken else "")
    if fmt == "text":
        count = len(findings)
        print(f"{count} finding{'' if count == 1 else 's'} in {plans}" if count else f"no findings in {plans}")


def _esc_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's toolkit does."""
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _esc_prop(text: str) -> str:
    """A workflow command's property value, escaped as GitHub's toolkit does."""
    return _esc_data(text).replace(":", "%3A").replace(",", "%2C")


# -- findings ---------------------------------------------------------------


def _from_error(err: PlanError) -> Finding:
    if isinstance(err, CompileError):
        return Finding(err.path or "", err.line or 0, err.col or 0, "PR002", err.message, "write it as a check mapping")
    return Finding(err.path or "", err.line or 0, err.col or 0, "PR001", err.message, "fix the plan file")


def _suppress(cplan: CollectedPlan, findings: list[Finding]) -> list[Finding]:
    """``findings`` without those a ``# planrun: noqa`` comment suppresses."""
    doc = cplan.source.doc
    text = getattr(doc, "text", None)
    if not isinstance(text, str):
        try:
            text = cplan.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return findings
    noqa: dict[int, set[str] | None] = {}  # line -> codes (None: every code)
    for number, line in enumerate(text.splitlines(), 1):
        m = _NOQA.search(line)
        if m:
            codes = m.group("codes")
            noqa[number] = {c.upper() for c in _CODE.findall(codes)} if codes else None
    kept = []
    for f in findings:
        lines = {f.line} | f.noqa_lines
        if any(n in noqa and (noqa[n] is None or f.code in noqa[n]) for n in lines):  # type: ignore[operator]
            continue
        kept.append(f)
    return kept


def _norm(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/")).lstrip("/")


def _same(a: str, b: str) -> bool:
    """Whether two file entries can name the same file: equal, a folder and a file in it, or a glob match."""
    a, b = _norm(a), _norm(b)
    if a == b or a == "." or b == "." or b.startswith(a + "/") or a.startswith(b + "/"):
        return True
    return _glob_covers(a, b) or _glob_covers(b, a)


def _glob_covers(pattern: str, path: str) -> bool:
    """Whether glob ``pattern`` matches ``path`` or a file inside folder ``path``."""
    glob = _GLOB.search(pattern)
    if not glob:
        return False
    literal = pattern[: glob.start()]
    return fnmatch.fnmatchcase(path, pattern) or literal.startswith(path + "/")


def check_paths(check: Check) -> list[str]:
    """The workdir files a check of a file kind names (empty for other kinds)."""
    if check.kind not in FILE_KINDS:
        return []
    args = check.args
    out: list[str] = []
    for name in ("paths", "path", "file"):
        value = args.get(name) if isinstance(args, dict) else getattr(args, name, None)
        if check.kind == "data" and name == "path":
            continue  # data's path is the dotted path inside the file
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(str(v) for v in value)
    return out


def lint_plan(cplan: CollectedPlan) -> Iterator[Finding]:
    """Every finding (PR003-PR009) of one loaded plan, before suppression."""
    plan, source = cplan.plan, cplan.source
    display = cplan.display
    raw = source.doc.data if source.doc is not None else {}
    raw_tasks = raw.get("tasks", []) if isinstance(raw, dict) else []
    deps = _closure(plan)

    def at(loc: tuple[Any, ...], code: str, message: str, hint: str, task: int | None, key: bool = False) -> Finding:
        where = source.locate(loc, key=key)
        first = {source.locate(("tasks", task)).line} if task is not None else set()
        return Finding(display, where.line, where.col, code, message, hint, first)

    for i, task in enumerate(plan.tasks):
        rtask = raw_tasks[i] if i < len(raw_tasks) and isinstance(raw_tasks[i], dict) else {}
        checks = cplan.checks.get(("tasks", i), [])
        machine = [c for c in checks if c.kind != "manual"]
        if not machine:
            what = "only manual criteria" if checks else "no criteria"
            yield at(
                ("tasks", i),
                "PR003",
                f"task {task.id!r} has {what}: nothing machine-checks that it is done",
                "add a check such as file_contains, command or tests",
                i,
            )
        files_key = "files" if "files" in rtask else "file"
        top = {(_norm(f).split("/", 1)[0] if "/" in _norm(f) else ".") for f in task.files}
        if len(task.files) > MAX_FILES or len(top) >= MAX_FOLDERS:
            yield at(
                ("tasks", i, files_key),
                "PR004",
                f"task {task.id!r} is not atomic: {len(task.files)} files in {len(top)} top-level folders"
                f" ({', '.join(sorted(top))})",
                f"split it into tasks of at most {MAX_FILES} related files in fewer than {MAX_FOLDERS} folders",
                i,
                key=True,
            )
        if task.action == "delete" and not any(c.kind == "file_absent" for c in checks):
            yield at(
                ("tasks", i, "action"),
                "PR006",
                f"delete task {task.id!r} has no file_absent criterion",
                f"add '- file_absent: {task.files[0] if task.files else 'PATH'}'",
                i,
                key=True,
            )
        if task.action == "create":
            named = [p for c in checks if c.kind != "file_absent" for p in check_paths(c)]
            for path in task.files:
                if not any(_same(path, p) for p in named):
                    yield at(
                        _file_loc(rtask, i, path),
                        "PR007",
                        f"create task {task.id!r} has no criterion on its file {path!r}",
                        f"add '- file_exists: {path}' or a file_contains on it",
                        i,
                    )
        if task.files:
            known = list(task.files) + [f for d in deps[i] for f in plan.tasks[d].files]
            for check in checks:
                unlisted = [p for p in check_paths(check) if not any(_same(p, k) for k in known)]
                if unlisted:
                    loc = check.location
                    names = ", ".join(repr(p) for p in unlisted)
                    yield Finding(
                        display,
                        loc.line,
                        loc.col,
                        "PR009",
                        f"criterion {check.name!r} of task {task.id!r} checks {names}, which neither this task"
                        " nor a task it depends on lists: it holds or fails whatever the task does",
                        "list the file in the task's files, or check a file the task changes",
                        {source.locate(("tasks", i)).line},
                    )
    # PR005: two tasks that may change one file, neither waiting for the other.
    for j, later in enumerate(plan.tasks):
        for i in range(j):
            if i in deps[j] or j in deps[i]:
                continue
            earlier = plan.tasks[i]
            shared = [f for f in later.files if any(_same(f, g) for g in earlier.files)]
            if shared:
                rtask = raw_tasks[j] if j < len(raw_tasks) and isinstance(raw_tasks[j], dict) else {}
                yield at(
                    _file_loc(rtask, j, shared[0]),
                    "PR005",
                    f"tasks {earlier.id!r} and {later.id!r} both change {shared[0]!r} but neither depends on the other",
                    f"add depends_on: [{earlier.id}] to {later.id!r}, or merge the tasks",
                    j,
                )
    for i, case in enumerate(plan.edge_cases):
        checks = cplan.checks.get(("edge_cases", i), [])
        if not any(c.kind != "manual" for c in checks):
            yield at(
                ("edge_cases", i),
                "PR008",
                f"edge case {case.case!r} has no machine-checkable criterion",
                "add criteria that show it is handled (an http or command check)",
                None,
            )


def _file_loc(rtask: dict[str, Any], i: int, path: str) -> tuple[Any, ...]:
    """Where ``path`` is written in task ``i``: its ``files`` entry, else the ``file`` key."""
    files = rtask.get("files")
    if isinstance(files, list) and path in files:
        return ("tasks", i, "files", files.index(path))
    return ("tasks", i, "file")


def _closure(plan: Any) -> list[set[int]]:
    """For each task, the indexes of every task it depends on, transitively."""
    index = {task.id: i for i, task in enumerate(plan.tasks)}
    direct = [{index[d] for d in task.depends_on if d in index} for task in plan.tasks]
    out: list[set[int]] = []
    for i in range(len(plan.tasks)):
        seen: set[int] = set()
        stack = list(direct[i])
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(direct[d])
        out.append(seen)
    return out
