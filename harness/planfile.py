"""Plan files: YAML with line marks -> a validated :class:`~planrun.model.Plan`."""

from __future__ import annotations

import datetime
import difflib
import math
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from planrun.errors import PlanError
from planrun.loader import YamlDoc, load_yaml, load_yaml_text
from planrun.model import SYNONYMS, Plan
from planrun.types import Location

# Every number a plan may hold is a count or seconds: finite, >= 0, < this.
MAX_NUMBER = 10**7


class PlanSource:
    """Where a plan came from: its file, its text, and the line marks of every node.

    The marks are big (an entry per YAML node) and only errors and lint need
    most of them: once a plan is collected, :meth:`release` drops them with the
    loaded data and keeps the text. The short locations asked for until then
    (items, top-level keys) are remembered; any other is found by loading the
    text again, which gives exactly the marks the first load gave.
    """

    __slots__ = ("path", "text", "_doc", "_located")

    def __init__(self, path: str, doc: YamlDoc | None = None, text: str | None = None) -> None:
        self.path = path
        self.text = text if text is not None else getattr(doc, "text", None)
        self._doc = doc
        self._located: dict[tuple[tuple[Any, ...], bool], Location] = {}

    @property
    def doc(self) -> YamlDoc | None:
        """The loaded document with its marks (loaded again from :attr:`text` after :meth:`release`)."""
        if self._doc is None and self.text is not None:
            self._doc = load_yaml_text(self.text, self.path, max_bytes=4 * len(self.text) + 4)
        return self._doc

    @doc.setter
    def doc(self, value: YamlDoc | None) -> None:
        self._doc = value

    def release(self) -> None:
        """Drop the marks and the loaded data (kept: the text, the locations asked for so far)."""
        if self.text is not None:
            self._doc = None

    def locate(self, loc: tuple[Any, ...], *, key: bool = False) -> Location:
        short = len(loc) <= _REMEMBERED
        if short:
            try:
                found = self._located.get((loc, key))
            except TypeError:  # an unhashable part names no node
                found, short = None, False
            if found is not None:
                return found
        doc = self.doc
        if doc is None:
            return Location(self.path)
        line, col = doc.locate_key(loc) if key else doc.locate(loc)
        where = Location(self.path, line, col)
        if short:
            self._located[(loc, key)] = where
        return where

    def error(self, loc: tuple[Any, ...], message: str, *, key: bool = False) -> PlanError:
        where = self.locate(loc, key=key)
        return PlanError(message, where.path, where.line or None, where.col or None)

    def __getstate__(self) -> tuple[str, str | None, dict[tuple[tuple[Any, ...], bool], Location]]:
        return (self.path, self.text, self._located)  # never the marks: they come back from the text

    def __setstate__(self, state: tuple[str, str | None, dict[tuple[tuple[Any, ...], bool], Location]]) -> None:
        self.path, self.text, self._located = state
        self._doc = None


#: Locations this long or shorter (``("tasks", 3)``, ``("workdir",)``) are remembered by :class:`PlanSource`.
_REMEMBERED = 2


def read_plan(path: Path, display: str, *, max_bytes: int) -> Plan:
    """Load, validate and check the task graph of one plan file.

    :raises PlanError: with ``file:line:col``; ``errors`` holds every problem found.
    """
    doc = load_yaml(path, display=display, max_bytes=max_bytes)
    source = PlanSource(display, doc)
    if doc.numbers is None:
        errors = list(_number_errors(doc.data, (), source))
    else:  # the loader listed them
        errors = [e for loc, value in doc.numbers for e in _number_errors(value, loc, source)]
    if not errors:
        try:
            plan = Plan.model_validate(doc.data)
        except ValidationError as exc:
            errors = [_translate(err, source) for err in _most_specific(exc.errors(include_url=False), source)]
    if errors:
        raise _group(errors)
    plan._source = source
    if plan.id is None:
        plan.id = _default_id(path)
    graph_errors = check_graph(plan, source)
    if graph_errors:
        raise _group(graph_errors)
    return plan


def _group(errors: list[PlanError]) -> PlanError:
    first = errors[0]
    first.errors = errors  # type: ignore[attr-defined]
    return first


def _default_id(path: Path) -> str:
    name = path.name
    for suffix in (".plan.yaml", ".plan.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _number_errors(node: Any, loc: tuple[Any, ...], source: PlanSource) -> typing.Iterator[PlanError]:
    """Numbers anywhere in a plan must be finite and in range (NaN, 1e12 are not)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _number_errors(v, (*loc, k), source)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _number_errors(v, (*loc, i), source)
    elif isinstance(node, float) and not math.isfinite(node):
        yield source.error(loc, f"{dotted_path(loc)}: {node} is not a finite number")
    elif isinstance(node, (int, float)) and not isinstance(node, bool) and not -MAX_NUMBER < node < MAX_NUMBER:
        limits = f"-{MAX_NUMBER:,} to {MAX_NUMBER:,}"
        yield source.error(loc, f"{dotted_path(loc)}: {shown(node)} is out of range ({limits})")


def shown(value: Any) -> str:
    """``repr(value)`` for messages, kept short: a 4,000-digit integer has no printable ``repr``."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        try:
            digits = len(str(abs(value)))
        except ValueError:  # past CPython's int -> str digit limit
            digits = int(value.bit_length() * math.log10(2)) + 1
        return f"a {digits}-digit {'negative ' if value < 0 else ''}number"
    if isinstance(value, float):
        return f"{value:g}"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def dotted_path(loc: tuple[Any, ...]) -> str:
    """``("tasks", 0, "id")`` as written: ``tasks[0].id`` (``plan`` for none); long or odd keys shown short."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{shown(part)}]"
        else:
            out += f".{_part(part)}" if out else _part(part)
    return out or "plan"


def _part(part: Any) -> str:
    return part if isinstance(part, str) and len(part) <= 80 else shown(part)


def _most_specific(errors: list[Any], source: PlanSource) -> list[Any]:
    """A union reports one error per branch; keep those no other error refines."""
    locs = [_data_loc(tuple(e["loc"]), source) for e in errors]
    kept, seen = [], set()
    for err, loc in zip(errors, locs):
        if loc in seen or any(other != loc and other[: len(loc)] == loc for other in locs):
            continue
        seen.add(loc)
        kept.append(err)
    return kept


_EXPECTED = {"string_type": "a string", "list_type": "a list", "model_type": "a mapping", "dict_type": "a mapping"}


def yaml_reads(value: Any) -> str | None:
    """``YAML reads this unquoted value as a number (1.1)``: for a value YAML 1.1 resolved from a plain scalar
    (``no``, ``1.10``, ``2024-01-01``), else ``None``. What a plan meant as text reads as something else."""
    if isinstance(value, bool):
        what, text = "a boolean", str(value)
    elif isinstance(value, datetime.date):
        what, text = "a date", value.isoformat()
    elif isinstance(value, (int, float)):
        what, text = "a number", shown(value)
    else:
        return None
    return f"YAML reads this unquoted value as {what} ({text})"


def what_it_is(value: Any) -> str:
    """What a value YAML gave is, for "expected X, got Y": ``a string ('x')``, ``a list``, ``a number (3)``."""
    if value is None:
        return "nothing (the value is empty)"
    if isinstance(value, str):
        return f"a string ({shown(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    read = yaml_reads(value)
    if read is not None:
        return read.removeprefix("YAML reads this unquoted value as ")
    return f"a {type(value).__name__}"


def _translate(err: Any, source: PlanSource) -> PlanError:
    """One pydantic error -> one located, readable PlanError."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        msg = f"unknown key {shown(key)}"
        hint = did_you_mean(str(key), fields_at(loc[:-1]))
        if hint:
            msg += f"; did you mean {hint!r}?"
        return source.error(loc, msg, key=True)
    if kind == "invalid_key":  # a key YAML reads as a date, a number, a boolean or null
        key, owner = err.get("input"), _data_loc(loc[:-1], source)
        where = f"{dotted_path(owner)}: " if owner else ""
        return not_a_name(source, (*owner, key), key, where)
    if kind == "missing":  # located at the mapping that lacks the key
        owner = _data_loc(loc[:-1], source)
        return source.error(owner, f"{dotted_path(owner)}: required key {shown(loc[-1])} missing")
    where = dotted_path(_data_loc(loc, source))
    value = err.get("input")
    msg = err["msg"]
    if value is None and kind in _EXPECTED:
        msg = f"expected {_EXPECTED[kind]}, but the value is empty"
    elif kind == "string_type" and yaml_reads(value) is not None:
        msg = f"expected a string, but {yaml_reads(value)}; quote it"
    elif kind == "string_type" and isinstance(value, dict):
        msg = "expected a string, got a mapping (an unquoted ': ' starts one); quote the string"
    elif kind == "list_type" and isinstance(value, str) and not _holds_mappings(_data_loc(loc, source)):
        msg = f"expected a list; write [{flow_item(value)}]"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch":
        msg = f"{value!r} does not match {err['ctx']['pattern']}"
    return source.error(loc, f"{where}: {msg}")


def not_a_name(
    source: PlanSource, loc: tuple[Any, ...], key: Any, where: str, error: type[PlanError] = PlanError
) -> PlanError:
    """The error of a mapping key at ``loc`` that YAML read as something else than a string: located, as written."""
    what = (
        "empty (null)"
        if key is None
        else "a boolean"
        if isinstance(key, bool)
        else "a date"
        if isinstance(key, datetime.date)
        else "a number"
        if isinstance(key, (int, float))
        else f"a {type(key).__name__}"
    )
    at = source.locate(loc, key=True)
    written = _written_at(source, at.line, at.col) or str(key)
    message = f"{where}the key {written!r} is {what} to YAML, not a name; quote it"
    return error(message, at.path, at.line or None, at.col or None)


def _written_at(source: PlanSource, line: int | None, col: int | None) -> str:
    """The plain scalar written at 1-based ``line``:``col`` of the plan's text (up to ``:``, ``,`` or ``}``)."""
    if not source.text or not line or not col:
        return ""
    lines = source.text.split("\n")
    if line > len(lines):
        return ""
    return re.split(r"[:,}\]]", lines[line - 1][col - 1 :], maxsplit=1)[0].strip()[:80]


def _data_loc(loc: tuple[Any, ...], source: PlanSource) -> tuple[Any, ...]:
    """Drop the union tags pydantic puts in ``loc`` (``str``, ``list[str]``...)."""
    if source.doc is None:
        return loc
    kept: tuple[Any, ...] = ()
    for part in loc:
        if (*kept, part) in source.doc.value_marks or isinstance(part, int):
            kept = (*kept, part)
    return kept


def fields_at(loc: tuple[Any, ...], root: type[BaseModel] = Plan) -> list[str]:
    """The keys valid at ``loc``, a mapping inside a ``root`` (the plan, or a check's arguments)."""
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return []
        model = inner
    return [f.alias or name for name, f in model.model_fields.items()]


def _holds_mappings(loc: tuple[Any, ...]) -> bool:
    """Whether the list field at ``loc`` holds models (``tasks``), not strings."""
    model: type[BaseModel] | None = Plan
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field else None
    field = model.model_fields.get(str(loc[-1])) if model is not None and loc else None
    return field is not None and _model_in(field.annotation) is not None


def flow_item(value: str) -> str:
    """``value`` as it can be written inside ``[...]``: bare if YAML reads it back unchanged, else quoted."""
    try:
        if yaml.safe_load(f"[{value}]") == [value]:
            return value
    except yaml.YAMLError:
        pass
    return "'" + value.replace("'", "''") + "'"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def did_you_mean(word: str, choices: list[str]) -> str | None:
    """The choice a misspelt or synonymous ``word`` most likely meant."""
    synonym = SYNONYMS.get(word.lower())
    if synonym in choices:
        return synonym
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def check_graph(plan: Plan, source: PlanSource) -> list[PlanError]:
    """Duplicate ids, unknown ``depends_on`` and cycles, each located."""
    errors: list[PlanError] = []
    seen: dict[str, int] = {}
    for i, task in enumerate(plan.tasks):
        if task.id in seen:
            first = source.locate(("tasks", seen[task.id], "id"))
            errors.append(
                source.error(("tasks", i, "id"), f"duplicate task id {task.id!r} (first defined at line {first.line})")
            )
        else:
            seen[task.id] = i
    for i, task in enumerate(plan.tasks):
        for j, dep in enumerate(task.depends_on):
            if dep not in seen:
                hint = did_you_mean(dep, list(seen))
                extra = f"; did you mean {hint!r}?" if hint else ""
                extra += f" (tasks in this plan: {_listing(list(seen))})"
                errors.append(
                    source.error(
                        ("tasks", i, "depends_on", j), f"task {task.id!r} depends on unknown task {dep!r}{extra}"
                    )
                )
            elif dep == task.id:
                errors.append(source.error(("tasks", i, "depends_on", j), f"task {task.id!r} depends on itself"))
    if errors:
        return errors
    cycle = find_cycle(plan)
    if cycle:
        index = seen[cycle[0]]
        errors.append(source.error(("tasks", index, "depends_on"), "dependency cycle: " + " -> ".join(cycle)))
    return errors


def _listing(names: list[str], limit: int = 10) -> str:
    """``a, b, c``, capped: a plan of 500 tasks does not print 500 ids."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def find_cycle(plan: Plan) -> list[str] | None:
    """A dependency cycle as ``[a, b, a]``, or ``None``. Iterative DFS (no recursion limit)."""
    deps = {t.id: t.depends_on for t in plan.tasks}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in deps:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(deps[node]):
                stack[-1] = (node, i + 1)
                nxt = deps[node][i]
                if state.get(nxt) == 1:
                    return path[path.index(nxt) :] + [nxt]
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def dependency_order(plan: Plan) -> list[int]:
    """Task indexes in dependency order, file order among equals (the graph is acyclic)."""
    index = {t.id: i for i, t in enumerate(plan.tasks)}
    done: set[int] = set()
    order: list[int] = []
    pending = list(range(len(plan.tasks)))
    while pending:
        rest = []
        for i in pending:
            if all(index[d] in done for d in plan.tasks[i].depends_on):
                done.add(i)
                order.append(i)
            else:
                rest.append(i)
        pending = rest
    return order
