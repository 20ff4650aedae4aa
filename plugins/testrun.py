"""The ``tests`` check kind: a test command whose JUnit XML must show enough tests, all passing.

The command runs with ``{junit}`` replaced by a path in a fresh private
temporary folder outside the workdir; the criterion holds only when the
command exits 0, the XML is there and parses, no test failed or errored, at
least ``min_tests`` ran (skipped ones do not count) and every ``must_pass``
test ran and passed. A run that collects nothing therefore fails.

The XML is parsed with expat directly and refused when it has a DOCTYPE (so no
entity can be declared, expanded or fetched), or more than ``MAX_XML_BYTES``.

Test ids in ``must_pass`` are pytest node ids, matched against the JUnit
``classname`` and ``name`` pytest writes: ``tests/test_a.py::TestC::test_x[1]``
is ``classname="tests.test_a.TestC" name="test_x[1]"`` (the path without
``.py``, ``/`` made ``.``, then any classes). An id without ``[...]`` also
matches each of its parametrized cases. An id without ``::`` (another
runner's) is matched against ``classname.name``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import xml.parsers.expat
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator, model_validator

from planrun import ArgsModel, CheckContext, CheckFailed, CheckKind, StepTimeout, fail, hookimpl, opened

MAX_XML_BYTES = 32 << 20
"""The largest JUnit XML read; a bigger one fails the criterion."""

MAX_LISTED = 10
"""Failing tests named in a report; the rest are counted."""

MAX_MESSAGE = 300
"""Characters of a failure's message (its first line) shown per test."""

MAX_TEXT = 64 << 10
"""Characters of a failure's text kept while parsing (its ``E`` lines name a collection error's cause)."""

_PLACEHOLDER = "{junit}"


class TestsArgs(ArgsModel):
    __test__ = False  # not a pytest test class

    run: str = Field(min_length=1)
    min_tests: int = Field(default=1, ge=0)
    must_pass: list[str] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value

    @field_validator("run")
    @classmethod
    def _has_placeholder(cls, run: str) -> str:
        if _PLACEHOLDER not in run:
            raise ValueError(
                "run must contain {junit}, the path where the command writes its JUnit XML"
                " (for pytest: --junitxml={junit})"
            )
        return run

    @field_validator("must_pass")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        for test_id in ids:
            if not test_id.strip():
                raise ValueError("must_pass: a test id is empty")
        return ids


@dataclass
class _Case:
    classname: str
    name: str
    outcome: str = "passed"  # passed, failed, error, skipped
    message: str = ""
    text: list[str] = field(default_factory=list)  # of the failure or error element, bounded

    @property
    def label(self) -> str:
        return f"{self.classname}.{self.name}" if self.classname else self.name


@dataclass
class _Reader:
    cases: list[_Case] = field(default_factory=list)
    current: _Case | None = None
    in_text: bool = False

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "testcase":
            self.current = _Case(attrs.get("classname", ""), attrs.get("name", ""))
            self.cases.append(self.current)
        elif self.current is not None and tag in ("failure", "error", "skipped"):
            rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
            outcome = "failed" if tag == "failure" else tag
            if rank[outcome] > rank[self.current.outcome]:
                self.current.outcome = outcome
                self.current.message = attrs.get("message", "") or attrs.get("type", "")
                self.current.text = []
            self.in_text = outcome == self.current.outcome and outcome != "skipped"

    def end(self, tag: str) -> None:
        if tag == "testcase":
            self.current = None
        self.in_text = False

    def data(self, text: str) -> None:
        if self.in_text and self.current is not None and sum(map(len, self.current.text)) < MAX_TEXT:
            self.current.text.append(text)


class _Refused(Exception):
    pass


def _refuse_doctype(*args: object) -> None:
    raise _Refused("it has a DOCTYPE (refused: entities could expand without bound or read other files)")


def _refuse_entity(*args: object) -> int:
    raise _Refused("it declares or refers to external entities (refused)")


def parse_junit(data: bytes) -> list[_Case]:
    """The test cases of a JUnit XML document; raises ``ValueError`` saying why it cannot be read."""
    reader = _Reader()
    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except xml.parsers.expat.ExpatError as exc:
        why = xml.parsers.expat.ErrorString(exc.code)
        raise ValueError(f"it does not parse: {why} at line {exc.lineno}, column {exc.offset + 1}") from None
    return reader.cases


def _junit_key(test_id: str) -> tuple[str, str]:
    """``(classname, name)`` of a pytest node id, or ``("", id)`` for an id without ``::``."""
    if "::" not in test_id:
        return "", test_id
    path, *rest = test_id.split("::")
    module = path[:-3] if path.endswith(".py") else path
    module = module.strip("/").replace("/", ".")
    return ".".join([module, *rest[:-1]]), rest[-1]


def _matches(test_id: str, case: _Case) -> bool:
    classname, name = _junit_key(test_id)
    if not classname:
        full = case.label
        return full == name or ("[" not in name and full.startswith(name + "["))
    if case.classname != classname:
        return False
    return case.name == name or ("[" not in name and case.name.startswith(name + "["))


def _read_xml(path: str) -> bytes:
    """The bytes of the JUnit XML at ``path`` (our private folder); fails on a missing, odd or huge file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        fail("the command wrote no JUnit XML (is {junit} passed where the runner writes its report?)")
    except OSError as exc:
        fail(f"the JUnit XML cannot be opened: {exc.strerror or exc}")
    f, _ = opened(fd)
    if f is None:
        fail("the JUnit XML is not a regular file")
    with f:
        data = f.read(MAX_XML_BYTES + 1)
    if len(data) > MAX_XML_BYTES:
        fail(f"the JUnit XML is larger than {MAX_XML_BYTES} bytes")
    return data


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def _why(case: _Case) -> str:
    """A failing case's message; for an error, with the last ``E`` line of its text (pytest's cause)."""
    message = _first_line(case.message) or "(no message)"
    if case.outcome == "error":
        cause = [ln[1:].strip() for ln in "".join(case.text).splitlines() if ln.startswith("E ")]
        if cause and cause[-1] and cause[-1] not in message:
            message += f": {_first_line(cause[-1])}"
    return message


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def tests(args: TestsArgs, ctx: CheckContext) -> None:
    folder = tempfile.mkdtemp(prefix="planrun-junit-")
    try:
        junit = os.path.join(folder, "junit.xml")
        command = args.run.replace(_PLACEHOLDER, shlex.quote(junit))
        try:
            result = ctx.run(command, timeout=args.timeout)
        except OSError as exc:
            fail(f"`{args.run}` could not be started: {exc.strerror or exc}")
        if result.timed_out:
            raise StepTimeout(f"`{args.run}` did not finish in {args.timeout or ctx.timeout:g}s")
        tail = "output tail:\n" + (result.output_tail() or "(no output)")
        exited = f"`{args.run}` exited with {result.returncode}"
        try:
            data = _read_xml(junit)
        except CheckFailed as exc:  # say the exit code too
            fail(f"{exited}; {exc.message}" if result.returncode else exc.message, tail)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not data.strip():
        fail(f"{exited}; the JUnit XML is empty" if result.returncode else "the JUnit XML is empty", tail)
    try:
        cases = parse_junit(data)
    except ValueError as exc:
        fail(f"the JUnit XML cannot be used: {exc}", tail)
    problems: list[str] = []
    evidence: list[str] = []
    bad = [c for c in cases if c.outcome in ("failed", "error")]
    ran = [c for c in cases if c.outcome != "skipped"]
    if bad:
        failed = sum(c.outcome == "failed" for c in bad)
        errors = len(bad) - failed
        parts = [f"{failed} failed"] if failed else []
        parts += [_count(errors, "error")] if errors else []
        counts = ", ".join(parts)
        problems.append(f"{counts} of {_count(len(cases), 'test')}")
        for case in bad[:MAX_LISTED]:
            what = "ERROR " if case.outcome == "error" else "FAILED "
            evidence.append(f"{what}{case.label}: {_why(case)}")
        if len(bad) > MAX_LISTED:
            evidence.append(f"... and {len(bad) - MAX_LISTED} more")
    if not cases:
        problems.append("no tests ran (the JUnit XML lists none)")
    elif not ran:
        problems.append(f"all {len(cases)} tests were skipped, none ran")
    elif len(ran) < args.min_tests:
        problems.append(f"only {_count(len(ran), 'test')} ran, at least {args.min_tests} expected")
    for test_id in args.must_pass:
        found = [c for c in cases if _matches(test_id, c)]
        if not found:
            problems.append(f"required test {test_id} did not run")
        elif all(c.outcome == "skipped" for c in found):
            problems.append(f"required test {test_id} was skipped")
        elif any(c.outcome in ("failed", "error") for c in found):
            problems.append(f"required test {test_id} did not pass")
    if result.returncode != 0 and not problems:
        problems.append(exited)
    if problems:
        fail("; ".join(problems), "\n".join(evidence) if evidence else tail)


def _describe(args: TestsArgs) -> str:
    extra = f", at least {args.min_tests}" if args.min_tests != 1 else ""
    if args.must_pass:
        extra += f", must pass: {', '.join(args.must_pass)}"
    return f"tests `{args.run}`{extra}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("tests", TestsArgs, tests, _describe, default_timeout=300)]
