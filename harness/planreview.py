"""A submitted plan, reviewed as ``planrun`` would collect it: validated, compiled, linted, each problem located.

The plan (JSON from the planner's ``submit_plan``) is written as YAML in
``planrun import``'s style into a private temporary folder and loaded by the
``planrun_collect_file`` hooks, so it meets the loader's checks (numbers,
schema, task graph), then the compiler of the output folder's scope (plugins
and ``conftest.py`` check kinds) and the linter. Each problem keeps the line
and column in that YAML, which is byte for byte the file written at the end,
and the path of the node there (``tasks[2].criteria[0]``), found by mapping
the line and column back through the loader's marks: the path is what the
model is told, the line what the person sees.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun.errors import CompileError, PlanError
from planrun.loader import MAX_DEPTH
from planrun.reports import printable

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan
    from planrun.session import Scope


@dataclass
class Problem:
    """One problem of a plan: where (line and column in its YAML, the path in the plan) and what."""

    line: int
    col: int
    where: str
    text: str

    def for_model(self) -> str:
        """``tasks[2].criteria[0]: message`` (messages that start with their path keep it once)."""
        return self.text if self.text.startswith(f"{self.where}:") else f"{self.where}: {self.text}"


class _Marks:
    """``(line, col)`` in a loaded YAML document -> the dotted path of the node written there."""

    def __init__(self, doc: Any) -> None:
        self.at: dict[tuple[int, int], tuple[Any, ...]] = {}
        for marks in (getattr(doc, "value_marks", {}), getattr(doc, "key_marks", {})):
            for loc, mark in sorted(marks.items(), key=lambda kv: len(kv[0])):
                self.at.setdefault(tuple(mark), loc)  # the shortest path for a mark; values before keys
        self.sorted = sorted(self.at)

    def loc(self, line: int | None, col: int | None) -> tuple[Any, ...]:
        if not line:
            return ()
        mark = (line, col or 1)
        if mark in self.at:
            return self.at[mark]
        before = [m for m in self.sorted if m <= mark]
        return self.at[before[-1]] if before else ()

    def where(self, line: int | None, col: int | None) -> str:
        return dotted(self.loc(line, col))


def dotted(loc: tuple[Any, ...]) -> str:
    """``("tasks", 2, "criteria", 0)`` -> ``tasks[2].criteria[0]`` (``plan`` for the whole plan)."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return printable(out) or "plan"


_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def parse_dotted(text: str) -> tuple[Any, ...]:
    """The inverse of :func:`dotted` (``plan`` or nonsense: ``()``)."""
    text = text.strip()
    if text in ("", "plan"):
        return ()
    loc: list[Any] = []
    pos = 0
    for m in _PATH_PART.finditer(text):
        if m.start() != pos:
            break
        loc.append(int(m.group(1)) if m.group(1) is not None else m.group(2))
        pos = m.end()
    return tuple(loc)


class PlanReview:
    """Reviews submitted plans as planrun would collect them: validate, compile, lint.

    :param config: the run's config.
    :param scope: the hooks and check kinds of the output's folder.
    :param out: the plan file the result will be written to (its name gives the default id).
    :param require_assumptions: a plan without ``assumptions`` is a problem (no ``--interactive``).
    """

    def __init__(self, config: Config, scope: Scope, out: Path, *, require_assumptions: bool) -> None:
        self.config = config
        self.scope = scope
        self.out = out
        self.require_assumptions = require_assumptions
        self._tmp = tempfile.TemporaryDirectory(prefix="planrun-plan-")
        self._file = Path(self._tmp.name) / out.name
        rootdir = config.rootdir
        self.schema = os.path.relpath(rootdir / "plan.schema.json", Path(os.path.abspath(out)).parent)

    def close(self) -> None:
        self._tmp.cleanup()

    def review(self, raw: Any) -> tuple[Plan | None, str | None, list[Problem]]:
        """``(plan, text, problems)``: ``plan`` and the YAML ``text`` to write are ``None`` when it does not load."""
        from pydantic import ValidationError

        from planrun.importcmd import _Dumper, plan_yaml
        from planrun.model import Plan

        if not isinstance(raw, dict):
            return None, None, [Problem(0, 0, "plan", f"the plan must be a JSON object, got {json_type(raw)}")]
        bad = _unwritable(raw)
        if bad is not None:
            return None, None, [Problem(0, 0, dotted(bad[0]), bad[1])]
        try:
            model = Plan.model_validate(raw)
        except ValidationError:
            import yaml

            text = yaml.dump(raw, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
            _, problems = self._load(text)
            return None, None, problems or [Problem(0, 0, "plan", "the plan does not validate")]
        text = plan_yaml(model, self.schema)
        plan, problems = self._load(text)
        if plan is None:
            return None, None, problems
        problems = self._static(plan)
        return model, text, problems

    def _load(self, text: str) -> tuple[Plan | None, list[Problem]]:
        """The plan in ``text`` as collection loads it, or the located problems."""
        from planrun.loader import load_yaml_text

        self._file.write_text(text, encoding="utf-8")
        try:
            plan = self.scope.hook.planrun_collect_file(file_path=str(self._file), config=self.config)
        except PlanError as exc:
            try:
                marks = _Marks(load_yaml_text(text, str(self._file)))
            except PlanError:
                marks = _Marks(None)
            errors = getattr(exc, "errors", None) or [exc]
            return None, [Problem(e.line or 0, e.col or 0, marks.where(e.line, e.col), e.message) for e in errors]
        if plan is None:
            return None, [Problem(0, 0, "plan", "no planrun_collect_file hook reads plan files")]
        return plan, []

    def _static(self, plan: Plan) -> list[Problem]:
        """Compile errors, else lint findings; then what only this plan's run would refuse."""
        from planrun.lint import lint_plan
        from planrun.session import CollectedPlan

        source = plan._source
        marks = _Marks(getattr(source, "doc", None))

        def at(loc: tuple[Any, ...], text: str) -> Problem:
            where = source.locate(loc)
            return Problem(where.line, where.col, dotted(loc), text)

        try:
            checks = self.scope.compiler.compile_plan(plan)
        except CompileError as exc:
            errors = getattr(exc, "errors", None) or [exc]
            return [Problem(e.line or 0, e.col or 0, marks.where(e.line, e.col), e.message) for e in errors]
        display = self.config.display_path(self.out)
        cplan = CollectedPlan(self.out, display, plan, checks, self.scope)
        problems = [
            Problem(f.line, f.col, marks.where(f.line, f.col), f"{f.code} {f.message} (hint: {f.hint})")
            for f in lint_plan(cplan)
        ]
        if self.require_assumptions and not plan.assumptions:
            problems.append(
                at(
                    ("assumptions",),
                    "missing: nobody could answer questions, so record what you assumed"
                    " (assumptions: a list of strings)",
                )
            )
        if plan.executor is not None and plan.executor not in self.scope.executors:
            known = ", ".join(sorted(self.scope.executors.kinds))
            problems.append(at(("executor",), f"unknown executor {plan.executor!r} (known: {known})"))
        if plan.workdir is not None:
            root = Path(os.path.realpath(self.config.rootdir))
            target = Path(os.path.realpath(Path(os.path.abspath(self.out)).parent / plan.workdir))
            if not target.is_relative_to(root):
                problems.append(at(("workdir",), f"{plan.workdir!r} resolves outside the rootdir"))
        return problems


def _unwritable(raw: Any) -> tuple[tuple[Any, ...], str] | None:
    """Where ``raw`` cannot become a plan file, and why: nesting past the loader's limit, or a string
    that is not Unicode text (JSON's ``\\ud800`` escapes); ``None`` when it can. Walked without recursion."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(raw, ())]
    while stack:
        node, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            return loc[:MAX_DEPTH], f"nesting deeper than {MAX_DEPTH} levels"
        if isinstance(node, dict):
            stack.extend((v, (*loc, k)) for k, v in node.items())
            stack.extend((k, loc) for k in node)
        elif isinstance(node, list):
            stack.extend((v, (*loc, i)) for i, v in enumerate(node))
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                return loc, f"not valid Unicode text: a lone surrogate U+{ord(node[exc.start]):04X}"
    return None


def json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
