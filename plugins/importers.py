"""Importers: Markdown plans and Taskmaster ``tasks.json`` collected as plans.

Each importer is a ``planrun_collect_file`` hook: it returns a
:class:`planrun.Plan` for the files it knows (``*.md``, ``*.markdown``; a
Taskmaster ``tasks.json``) and ``None`` for anything else, so the core's YAML
loader still reads every other file. Errors are located in the source file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

import planrun
from planrun import Location, Plan, PlanError, find_cycle, read_upto

if TYPE_CHECKING:
    from planrun.config import Config

ACTIONS = {"create", "modify", "delete", "install", "run", "configure", "test", "other"}
_ACTION_SYNONYMS = {"add": "create", "new": "create", "edit": "modify", "update": "modify", "remove": "delete"}


class Marks:
    """Where each node of an imported plan was written: loc tuples -> 1-based ``(line, col)``."""

    def __init__(self) -> None:
        self.value_marks: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.key_marks: dict[tuple[Any, ...], tuple[int, int]] = {}

    def locate(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        """The mark of the longest prefix of ``loc`` that names a node; ``(1, 1)`` if none."""
        for k in range(len(loc), 0, -1):
            try:
                mark = self.value_marks.get(tuple(loc[:k]))
            except TypeError:
                continue
            if mark is not None:
                return mark
        return self.value_marks.get((), (1, 1))

    def locate_key(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        """The mark of the heading or field that introduces ``loc``, else :meth:`locate`."""
        try:
            mark = self.key_marks.get(tuple(loc))
        except TypeError:
            mark = None
        return mark if mark is not None else self.locate(loc)


class ImportedSource:
    """The ``Plan._source`` of an imported plan: its file and its :class:`Marks`."""

    def __init__(self, path: str, doc: Marks) -> None:
        self.path = path
        self.doc = doc

    def locate(self, loc: tuple[Any, ...], *, key: bool = False) -> Location:
        line, col = self.doc.locate_key(loc) if key else self.doc.locate(loc)
        return Location(self.path, line, col)

    def error(self, loc: tuple[Any, ...], message: str, *, key: bool = False) -> PlanError:
        where = self.locate(loc, key=key)
        return PlanError(message, where.path, where.line or None, where.col or None)


def read_text(path: Path, display: str, max_bytes: int) -> str:
    """A regular file's UTF-8 text, bounded; judged by the file that was opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise PlanError(f"cannot read the plan file: {exc.strerror}", display) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PlanError("not a regular file", display)
        if st.st_size > max_bytes:
            raise _too_big(display, st.st_size, max_bytes)
        data = read_upto(functools.partial(os.read, fd), max_bytes, st.st_size)
    except OSError as exc:
        raise PlanError(f"cannot read the plan file: {exc.strerror}", display) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise _too_big(display, len(data), max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PlanError(f"not UTF-8 (byte 0x{data[exc.start]:02x})", display, line, col) from None
    text = text.removeprefix("\ufeff")
    bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise PlanError(f"control character {bad.group()!r} in the file", display, line, col)
    return text


def _too_big(display: str, size: int, limit: int) -> PlanError:
    return PlanError(
        f"plan file is {size} bytes, over the {limit}-byte limit (raise it with --max-plan-bytes)", display, 1, 1
    )


def slug(text: str) -> str:
    """``Set up the User model`` -> ``set-up-the-user-model`` (``[a-z0-9][a-z0-9_-]*``)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:60].rstrip("-") or "task"


def unique(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


# -- Markdown ----------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})(?:\s+(.*))?$")  # the closing #s are stripped in Python (no backtracking)
_TASK = re.compile(r"^task\s+([0-9][0-9.]*)\s*[:.\-\u2013\u2014]?\s*(.*)$", re.IGNORECASE)
_TASK_UNNUMBERED = re.compile(r"^task()\s*[:\-\u2013\u2014]\s*(.*)$", re.IGNORECASE)  # "Task: Name", numbered in order
_FIELD = re.compile(r"^(?:[-*+]\s+)?\*\*([^*]+?)\*\*\s*:?\s*(?::\s*)?(.*)$")
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(.*)$")
_TASKREF = re.compile(r"^task\s+([0-9][0-9.]*)\b", re.IGNORECASE)
_FIELDS = {
    "file": "files",
    "files": "files",
    "action": "action",
    "description": "description",
    "success criteria": "criteria",
    "criteria": "criteria",
    "acceptance criteria": "criteria",
    "dependencies": "depends_on",
    "depends on": "depends_on",
    "command": "run",
    "commands": "run",
    "complexity": "complexity",
}


class _Item:
    """One bullet or line of text, with where it starts."""

    def __init__(self, text: str, line: int, col: int) -> None:
        self.text, self.line, self.col = text, line, col


def _bullets(lines: list[tuple[int, str]]) -> list[_Item]:
    """Top-level bullets (continuation lines joined); text lines count as bullets when there are none."""
    items: list[_Item] = []
    base: int | None = None
    blank = False
    for no, raw in lines:
        m = _BULLET.match(raw)
        if m and (base is None or len(m.group(1)) <= base):
            base = len(m.group(1))
            items.append(_Item(m.group(2).strip(), no, m.start(2) + 1))
        elif raw.strip() and items and not m and (not blank or raw[:1] in " \t"):
            items[-1].text += " " + raw.strip()  # a wrapped item (after a blank line only if indented)
        blank = not raw.strip()
    if not items:  # plain lines, one criterion each
        items = [_Item(raw.strip(), no, len(raw) - len(raw.lstrip()) + 1) for no, raw in lines if raw.strip()]
    return [i for i in items if i.text]


def _strip_code(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == "`" and text[-1] == "`" and "`" not in text[1:-1]:
        return text[1:-1].strip()
    return text


def _criterion(item: _Item) -> str:
    return item.text


class _MarkdownImporter:
    def __init__(self, text: str, display: str, stem: str) -> None:
        self.lines = text.splitlines()
        self.display = display
        self.stem = stem
        self.marks = Marks()
        self.errors: list[PlanError] = []
        self.data: dict[str, Any] = {}

    def mark(self, loc: tuple[Any, ...], line: int, col: int, *, key: bool = False) -> None:
        (self.marks.key_marks if key else self.marks.value_marks)[loc] = (line, col)

    def fail(self, message: str, line: int, col: int = 1) -> None:
        self.errors.append(PlanError(message, self.display, line, col))

    def sections(self) -> list[tuple[int, int, str, list[tuple[int, str]]]]:
        """``(line, level, title, body lines)`` per heading; lines before the first heading under level 0."""
        out: list[tuple[int, int, str, list[tuple[int, str]]]] = [(1, 0, "", [])]
        fence = False
        for no, raw in enumerate(self.lines, 1):
            if raw.lstrip().startswith(("```", "~~~")):
                fence = not fence
            m = None if fence else _HEADING.match(raw)
            if m:
                out.append((no, len(m.group(1)), (m.group(2) or "").strip().rstrip("#").strip(), []))
            else:
                out[-1][3].append((no, raw))
        return out

    def run(self) -> Plan:
        data = self.data
        title_line = 0
        tasks: list[dict[str, Any]] = []
        numbers: dict[str, int] = {}
        pending_deps: list[tuple[int, list[_Item]]] = []
        edge_cases: list[dict[str, Any]] = []
        top = ""
        for line, level, title, body in self.sections():
            low = title.lower().strip()
            task = _TASK.match(title.strip()) or _TASK_UNNUMBERED.match(title.strip())
            if level == 1 and not title_line:
                title_line = line
                name = re.sub(r"^plan\s*:\s*", "", title, flags=re.IGNORECASE).strip()
                data["plan"] = name
                self.mark(("plan",), line, 1)
                self.mark((), line, 1)
                continue
            if task and level >= 2:
                self.task(line, task, body, tasks, numbers, pending_deps)
                continue
            if level == 2:
                top = low
            if low in ("overview", "summary", "goal"):
                data["overview"] = self.paragraph(body)
                self.mark(("overview",), line, 1)
            elif low in ("prerequisites", "verification", "verification checklist", "assumptions"):
                key = "prerequisites" if low == "prerequisites" else low.split()[0]
                items = _bullets(body)
                self.mark((key,), line, 1, key=True)
                self.mark((key,), line, 1)
                data[key] = [_criterion(i) for i in items]
                for j, item in enumerate(items):
                    self.mark((key, j), item.line, item.col)
            elif low in ("edge cases", "edge-cases"):
                self.edge_bullets(body, edge_cases, line)
            elif level >= 3 and top in ("edge cases", "edge-cases"):
                self.edge_section(line, title, body, edge_cases)
        if not title_line:
            raise PlanError("not a Markdown plan: no '# Plan: NAME' heading", self.display, 1, 1)
        if not data.get("plan"):
            self.fail("the plan has no title: write '# Plan: NAME'", title_line)
        if not tasks:
            self.fail("the plan has no tasks: write '### Task 1: NAME' sections", title_line)
        for i, items in pending_deps:
            deps: list[str] = []
            for item in items:
                for part in re.split(r"\s*(?:,|;|\band\b)\s*", item.text):
                    part = _strip_code(part).strip().rstrip(".")
                    if not part or part.lower() in ("none", "n/a", "-", "no dependencies"):
                        continue
                    ref = _TASKREF.match(part)
                    number = ref.group(1).rstrip(".") if ref else part
                    col = item.col + max(item.text.find(part), 0)
                    if number not in numbers:
                        known = ", ".join(f"Task {n}" for n in numbers) or "none"
                        self.fail(f"dependency {part!r} names no task of this plan (tasks: {known})", item.line, col)
                        continue
                    ident = tasks[numbers[number]]["id"]
                    if ident not in deps:
                        self.mark(("tasks", i, "depends_on", len(deps)), item.line, col)
                        deps.append(ident)
            if deps:
                tasks[i]["depends_on"] = deps
        data["id"] = slug(self.stem)
        data["tasks"] = tasks
        if edge_cases:
            data["edge_cases"] = edge_cases
        if self.errors:
            raise _group(self.errors)
        source = ImportedSource(self.display, self.marks)
        return build_plan(data, source)

    def paragraph(self, body: list[tuple[int, str]]) -> str:
        return "\n".join(raw.rstrip() for _, raw in body).strip()

    def task(
        self,
        line: int,
        m: re.Match[str],
        body: list[tuple[int, str]],
        tasks: list[dict[str, Any]],
        numbers: dict[str, int],
        pending_deps: list[tuple[int, list[_Item]]],
    ) -> None:
        i = len(tasks)
        number, name = m.group(1).rstrip(".") or str(i + 1), m.group(2).strip()
        col = m.start(2) + 1 + len(self.lines[line - 1]) - len(self.lines[line - 1].lstrip("# "))
        if not name:
            self.fail(f"Task {number} has no name: write '### Task {number}: NAME'", line, col)
        if number in numbers:
            self.fail(f"Task {number} is defined twice", line)
        numbers[number] = i
        taken = {t["id"] for t in tasks}
        task: dict[str, Any] = {"id": unique(slug(name or f"task-{number}"), taken), "name": name or f"Task {number}"}
        tasks.append(task)
        self.mark(("tasks", i), line, 1)
        self.mark(("tasks", i), line, 1, key=True)
        self.mark(("tasks", i, "name"), line, col)
        self.mark(("tasks", i, "id"), line, col)
        fields: list[tuple[str, int, int, str, list[tuple[int, str]]]] = []
        fence = False
        for no, raw in body:
            if raw.lstrip().startswith(("```", "~~~")):
                fence = not fence
                if fields:
                    fields[-1][4].append((no, raw))
                continue
            fm = None if fence else _FIELD.match(raw.strip())
            # An unknown **Field** (Notes, Risks...) is tolerated: it ends the field before it, and is ignored.
            key = _FIELDS.get(fm.group(1).strip().rstrip(":").lower(), "ignored") if fm else None
            if fm and key and not raw.startswith((" ", "\t")):
                indent = len(raw) - len(raw.lstrip())
                fields.append((key, no, indent + fm.start(2) + 1, fm.group(2), []))
            elif fields:
                fields[-1][4].append((no, raw))
        for key, no, vcol, inline, rest in fields:
            loc = ("tasks", i, key)
            self.mark(loc, no, vcol)
            if key == "criteria":
                items = _bullets(rest)
                if inline.strip():
                    items.insert(0, _Item(inline.strip(), no, vcol))
                task["criteria"] = [_criterion(it) for it in items]
                for j, it in enumerate(items):
                    self.mark((*loc, j), it.line, it.col)
            elif key == "depends_on":
                items = _bullets(rest)
                if inline.strip():
                    items.insert(0, _Item(inline.strip(), no, vcol))
                pending_deps.append((i, items))
            elif key == "files":
                items = _bullets(rest) or []
                parts: list[str] = []
                for it in ([_Item(inline, no, vcol)] if inline.strip() else []) + items:
                    parts += [_strip_code(p) for p in it.text.split(",") if _strip_code(p)]
                task["files"] = parts
            elif key == "run":
                code = [raw for _, raw in rest if not raw.lstrip().startswith(("```", "~~~"))]
                fenced = any(raw.lstrip().startswith(("```", "~~~")) for _, raw in rest)
                if inline.strip():
                    task["run"] = _strip_code(inline)
                elif fenced:
                    task["run"] = "\n".join(c.rstrip() for c in code).strip()
                else:
                    bullets = _bullets(rest)
                    task["run"] = (
                        _strip_code(bullets[0].text) if len(bullets) == 1 else [_strip_code(b.text) for b in bullets]
                    )
            elif key == "action":
                word = (inline.strip().split() or [""])[0].strip("`*.,").lower()
                task["action"] = _ACTION_SYNONYMS.get(word, word)
            elif key == "complexity":
                task["complexity"] = inline.strip().strip("`*.").lower()
            elif key == "ignored":
                continue
            else:  # description
                text = "\n".join([inline.rstrip()] + [raw.rstrip() for _, raw in rest]).strip()
                task["description"] = text

    def edge_bullets(self, body: list[tuple[int, str]], edge_cases: list[dict[str, Any]], line: int) -> None:
        """``- **Case**: handling`` bullets; nested bullets under one are its criteria."""
        current: dict[str, Any] | None = None
        for no, raw in body:
            m = _BULLET.match(raw)
            if not m:
                continue
            text = m.group(2).strip()
            indent = len(m.group(1))
            if indent == 0:
                fm = re.match(r"^\*\*(.+?)\*\*\s*:?\s*(.*)$", text)
                case, handling = (fm.group(1).rstrip(":"), fm.group(2)) if fm else (text, "")
                current = {"case": case, "handling": handling.lstrip(": ").strip()}
                k = len(edge_cases)
                edge_cases.append(current)
                self.mark(("edge_cases", k), no, m.start(2) + 1)
                self.mark(("edge_cases", k, "case"), no, m.start(2) + 1)
            elif current is not None:
                k = len(edge_cases) - 1
                criteria = current.setdefault("criteria", [])
                self.mark(("edge_cases", k, "criteria", len(criteria)), no, m.start(2) + 1)
                criteria.append(text)

    def edge_section(
        self, line: int, title: str, body: list[tuple[int, str]], edge_cases: list[dict[str, Any]]
    ) -> None:
        """``### Case`` with a handling paragraph and an optional criteria list."""
        k = len(edge_cases)
        case: dict[str, Any] = {"case": title.strip()}
        self.mark(("edge_cases", k), line, 1)
        text: list[str] = []
        crit_at = None
        for idx, (_no, raw) in enumerate(body):
            fm = _FIELD.match(raw.strip())
            if fm and _FIELDS.get(fm.group(1).strip().lower()) == "criteria":
                crit_at = idx
                break
            fm2 = re.match(r"^\*\*handling\*\*\s*:?\s*(.*)$", raw.strip(), re.IGNORECASE)
            text.append(fm2.group(1) if fm2 else raw)
        case["handling"] = "\n".join(t.rstrip() for t in text).strip()
        if crit_at is not None:
            items = _bullets(body[crit_at + 1 :])
            case["criteria"] = [_criterion(it) for it in items]
            for j, it in enumerate(items):
                self.mark(("edge_cases", k, "criteria", j), it.line, it.col)
        edge_cases.append(case)


def _group(errors: list[PlanError]) -> PlanError:
    first = errors[0]
    first.errors = errors  # type: ignore[attr-defined]
    return first


def build_plan(data: dict[str, Any], source: ImportedSource) -> Plan:
    """Validate ``data`` and check its task graph; errors are located through ``source``."""
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "plan"
            errors.append(source.error(loc, f"{where}: {err['msg'].removeprefix('Value error, ')}"))
        raise _group(errors) from None
    plan._source = source
    errors = []
    ids = [t.id for t in plan.tasks]
    for i, task in enumerate(plan.tasks):
        for j, dep in enumerate(task.depends_on):
            if dep not in ids:
                errors.append(
                    source.error(("tasks", i, "depends_on", j), f"task {task.id!r} depends on unknown task {dep!r}")
                )
            elif dep == task.id:
                errors.append(source.error(("tasks", i, "depends_on", j), f"task {task.id!r} depends on itself"))
    if not errors:
        cycle = find_cycle(plan)
        if cycle:
            errors.append(
                source.error(("tasks", ids.index(cycle[0]), "depends_on"), "dependency cycle: " + " -> ".join(cycle))
            )
    if errors:
        raise _group(errors)
    return plan


def import_markdown(text: str, display: str, stem: str) -> Plan:
    """A Markdown plan -> a validated :class:`planrun.Plan` located in the Markdown."""
    return _MarkdownImporter(text, display, stem).run()


# -- Taskmaster ----------------------------------------------------------------


def taskmaster_tasks(data: Any) -> list[Any] | None:
    """The task list of a Taskmaster file (plain or tagged), or ``None`` if it is not one."""
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        tasks = data["tasks"]
    elif isinstance(data, dict) and len(data) >= 1 and all(isinstance(v, dict) and "tasks" in v for v in data.values()):
        tag = "master" if "master" in data else next(iter(data))
        tasks = data[tag]["tasks"]
    else:
        return None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "title" in t and "id" in t for t in tasks):
        return None
    return tasks


def listed_subtasks(task: dict[str, Any], errors: list[PlanError], display: str) -> list[dict[str, Any]]:
    value = task.get("subtasks") or []
    if not isinstance(value, list) or not all(isinstance(s, dict) and "id" in s for s in value):
        errors.append(PlanError(f"task {task.get('id')!r}: subtasks must be a list of tasks with ids", display))
        return []
    return value


def import_taskmaster(tasks: list[Any], display: str, title: str) -> Plan:
    """Taskmaster tasks and subtasks -> tasks ``task-N`` and ``task-N-M``; a parent depends on its subtasks."""
    marks = Marks()
    source = ImportedSource(display, marks)
    out: list[dict[str, Any]] = []
    errors: list[PlanError] = []

    def tid(ref: Any, parent: Any = None) -> str:
        text = str(ref)
        if parent is not None and re.fullmatch(r"\d+", text):
            text = f"{parent}.{text}"
        return "task-" + slug(text)

    known: set[str] = set()
    for t in tasks:
        if isinstance(t["id"], bool) or not isinstance(t["id"], (int, str)):
            errors.append(PlanError(f"task id {t['id']!r} is not a number or a string", display))
            continue
        known.add(tid(t["id"]))
        for s in t.get("subtasks") if isinstance(t.get("subtasks"), list) else []:
            if isinstance(s, dict) and isinstance(s.get("id"), (int, str)):
                known.add(tid(s["id"], t["id"]))
    if errors:
        raise _group(errors)

    def entry(item: dict[str, Any], ident: str, deps: list[str]) -> dict[str, Any]:
        task: dict[str, Any] = {"id": ident, "name": str(item.get("title") or ident)}
        text = "\n\n".join(str(item[k]).strip() for k in ("description", "details") if item.get(k))
        if text:
            task["description"] = text
        for dep in deps:
            if dep not in known:
                errors.append(PlanError(f"{item.get('title')!r} depends on unknown task {dep!r}", display))
        if deps:
            task["depends_on"] = deps
        if item.get("testStrategy"):
            task["criteria"] = [str(item["testStrategy"]).strip()]
        return task

    def listed(item: dict[str, Any], key: str) -> list[Any]:
        value = item.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
            errors.append(PlanError(f"task {item.get('id')!r}: {key} must be a list of task ids", display))
            return []
        return value

    for t in tasks:
        parent = tid(t["id"])
        parent_deps = [tid(d) for d in listed(t, "dependencies")]
        subs = listed_subtasks(t, errors, display)
        for s in subs:
            deps = [tid(d, t["id"]) for d in listed(s, "dependencies")] or parent_deps
            out.append(entry(s, tid(s["id"], t["id"]), deps))
        out.append(entry(t, parent, parent_deps + [tid(s["id"], t["id"]) for s in subs]))
    if errors:
        raise _group(errors)
    return build_plan({"plan": title, "id": slug(title), "tasks": out}, source)


# -- the hook ----------------------------------------------------------------


def import_file(path: Path, display: str, max_bytes: int) -> Plan | None:
    """The plan an importer makes of ``path``, or ``None`` if no importer knows the format."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        stem = path.name[: -len(path.suffix)]
        return import_markdown(read_text(path, display, max_bytes), display, stem)
    if suffix == ".json":
        text = read_text(path, display, max_bytes)
        try:
            data = json.loads(text)
        except ValueError as exc:
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            raise PlanError(f"invalid JSON: {getattr(exc, 'msg', exc)}", display, line, col) from None
        tasks = taskmaster_tasks(data)
        if tasks is None:
            return None  # some other JSON: the YAML loader may know it (a plan written as JSON)
        title = path.parent.parent.name if path.parent.name == "tasks" else path.stem
        return import_taskmaster(tasks, display, (title.strip(".") or "tasks") + " (Taskmaster)")
    return None


@planrun.hookimpl
def planrun_collect_file(file_path: str, config: Config) -> Plan | None:
    path = Path(file_path)
    return import_file(path, config.display_path(path), config.option.max_plan_bytes)
