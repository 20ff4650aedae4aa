"""``--junitxml PATH``: a JUnit XML report, one ``<testsuite>`` per plan, one ``<testcase>`` per item.

The shape CI systems read (GitLab, Jenkins, GitHub actions that read JUnit):
``classname`` is the plan path without its suffix, dots for slashes
(``plans/deploy.plan.yaml`` -> ``plans.deploy``), ``name`` the item id,
``file`` and ``line`` point at the item in the plan file. Unmet criteria and
blocked tasks are ``<failure>``, executor problems, crashed checks and
interrupted items ``<error>``, skipped items ``<skipped>``; a plan that does
not load is a ``<testcase>`` with an ``<error>`` at its ``file:line``.
Whatever bytes an output held, the file is well-formed XML 1.0.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import (
    CriterionResult,
    ItemReport,
    PlanError,
    UsageError,
    XmlElement,
    check_report_path,
    hookimpl,
    junit_root,
    printable,
    write_report,
    xml_document,
)

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import Session

#: Characters of one criterion's evidence, and of the executor's output, kept in ``<system-out>`` (the tail).
EVIDENCE_TAIL = 4000
OUTPUT_TAIL = 16000
#: The whole ``<system-out>`` of one testcase.
SYSTEM_OUT_MAX = 64000

_SUFFIXES = (".plan.yaml", ".plan.yml", ".yaml", ".yml")


def classname(display: str) -> str:
    """``plans/deploy.plan.yaml`` -> ``plans.deploy`` (Jenkins shows package ``plans``, class ``deploy``)."""
    for suffix in _SUFFIXES:
        if display.endswith(suffix) and len(display) > len(suffix):
            display = display[: -len(suffix)]
            break
    return ".".join(part for part in display.split("/") if part) or display


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters before this cut]\n" + text[-limit:]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _criterion_line(n: int, total: int, c: CriterionResult) -> str:
    return f"criterion {n}/{total} {c.name} [{c.outcome}] at {c.location}"


def _failing(report: ItemReport) -> list[tuple[int, CriterionResult]]:
    return report.failed_criteria


def _details(report: ItemReport) -> str:
    """The text of a ``<failure>`` or ``<error>``: the item's message, then every failing criterion."""
    parts: list[str] = []
    if report.message:
        parts.append(report.message)
        if report.evidence:
            parts.append(_tail(report.evidence, EVIDENCE_TAIL))
    total = len(report.criteria)
    for n, c in _failing(report):
        lines = [_criterion_line(n, total, c)]
        if c.message:
            lines.append(c.message)
        if c.evidence:
            lines.append(_tail(c.evidence, EVIDENCE_TAIL))
        parts.append("\n".join(lines))
    if not parts:
        parts.append(f"{report.nodeid} {report.outcome}")
    return "\n\n".join(parts) + f"\n\n{report.location}"


def _message(report: ItemReport) -> str:
    """The first failing criterion and its first message line, else the item's own message."""
    failing = _failing(report)
    if report.message and (report.outcome != "failed" or not failing or report.executor):
        return _first_line(report.message)
    if failing:
        n, c = failing[0]
        first = _first_line(c.message) or c.outcome
        return f"criterion {n}/{len(report.criteria)} {c.name}: {first}"
    return report.outcome


def _result(report: ItemReport) -> XmlElement | None:
    outcome = report.outcome
    if outcome == "failed":
        return ("failure", {"type": "planrun.CriteriaNotMet", "message": _message(report)}, _details(report), [])
    if outcome == "blocked":
        return ("failure", {"type": "planrun.Blocked", "message": _message(report)}, _details(report), [])
    if outcome in ("error", "interrupted"):
        if outcome == "interrupted":
            kind = "planrun.Interrupted"
        elif report.message and report.executor:
            kind = "planrun.ExecutorError"
        elif report.message:
            kind = "planrun.Error"
        else:
            kind = "planrun.CriterionError"
        return ("error", {"type": kind, "message": _message(report)}, _details(report), [])
    if outcome == "skipped":
        reason = report.short_reason or "skipped"
        return ("skipped", {"type": "planrun.skip", "message": reason}, f"{report.location}: {reason}", [])
    return None


def _system_out(report: ItemReport) -> str:
    parts: list[str] = []
    total = len(report.criteria)
    for n, c in enumerate(report.criteria, 1):
        if c.evidence:
            parts.append(f"--- {_criterion_line(n, total, c)}\n{_tail(c.evidence, EVIDENCE_TAIL)}")
    if report.evidence:
        parts.append(f"--- executor evidence\n{_tail(report.evidence, EVIDENCE_TAIL)}")
    if report.output:
        parts.append(f"--- executor output ({report.executor})\n{_tail(report.output, OUTPUT_TAIL)}")
    return _tail("\n".join(parts), SYSTEM_OUT_MAX)


def _properties(report: ItemReport) -> XmlElement:
    values: list[tuple[str, str]] = [
        ("attempts", str(report.attempts)),
        ("tokens_in", str(report.tokens_in)),
        ("tokens_out", str(report.tokens_out)),
    ]
    if report.cost is not None:
        values.append(("cost", f"{report.cost:.6f}"))
    if report.executor:
        values.append(("executor", report.executor))
    return ("properties", {}, "", [("property", {"name": k, "value": v}, "", []) for k, v in values])


def testcase(report: ItemReport) -> XmlElement:
    attrs = {
        "classname": classname(report.plan),
        "name": report.item_id,
        "file": report.location.path or report.plan,
        "line": str(report.location.line or 1),
        "time": f"{report.duration:.3f}",
    }
    children: list[XmlElement] = [_properties(report)]
    result = _result(report)
    if result is not None:
        children.append(result)
    out = _system_out(report)
    if out:
        children.append(("system-out", {}, out, []))
    return ("testcase", attrs, "", children)


def _timestamp(seconds: float) -> str:
    # The Ant/Jenkins schema's form: no fraction, no zone; always UTC.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def testsuite(name: str, cases: list[XmlElement], counts: dict[str, int], duration: float, start: float) -> XmlElement:
    import socket  # only when a report is written: planrun's start stays light

    attrs = {
        "name": name,
        "tests": str(len(cases)),
        "failures": str(counts.get("failures", 0)),
        "errors": str(counts.get("errors", 0)),
        "skipped": str(counts.get("skipped", 0)),
        "time": f"{duration:.3f}",
        "timestamp": _timestamp(start),
        "hostname": socket.gethostname() or "localhost",
    }
    return ("testsuite", attrs, "", cases)


#: Item outcome -> the suite's counter it adds to (passed adds to none).
_COUNTED = {
    "failed": "failures",
    "blocked": "failures",
    "error": "errors",
    "interrupted": "errors",
    "skipped": "skipped",
}


def collection_suites(errors: list[PlanError], start: float) -> list[XmlElement]:
    """One suite per plan file that does not load, one ``<testcase>`` with an ``<error>`` per problem."""
    by_file: dict[str, list[PlanError]] = {}
    for err in errors:
        by_file.setdefault(err.path or "(collection)", []).append(err)
    suites = []
    for path, errs in by_file.items():
        cases: list[XmlElement] = []
        for n, err in enumerate(errs, 1):
            attrs = {
                "classname": classname(path),
                "name": "collection" if len(errs) == 1 else f"collection[{n}]",
                "file": path,
                "line": str(err.line or 1),
                "time": "0.000",
            }
            error: XmlElement = (
                "error",
                {"type": "planrun.PlanInvalid", "message": _first_line(err.message)},
                str(err),
                [],
            )
            cases.append(("testcase", attrs, "", [error]))
        suites.append(testsuite(path, cases, {"errors": len(cases)}, 0.0, start))
    return suites


class JunitXml:
    """Collects the start time of each item; writes the report when the session finishes."""

    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown
        self.started: dict[str, float] = {}

    @hookimpl
    def planrun_runtest_logstart(self, nodeid: str) -> None:
        self.started.setdefault(nodeid, time.time())

    def document(self, session: Session) -> str:
        by_plan: dict[str, list[ItemReport]] = {}
        for report in session.reports:
            by_plan.setdefault(report.plan, []).append(report)
        order = [cplan.display for cplan in session.plans]
        order += [p for p in by_plan if p not in order]
        suites = collection_suites(session.collection_errors, session.start_time)
        for display in order:
            reports = by_plan.get(display)
            if not reports:
                continue
            counts: dict[str, int] = {}
            for r in reports:
                key = _COUNTED.get(r.outcome)
                if key:
                    counts[key] = counts.get(key, 0) + 1
            start = min((self.started.get(r.nodeid, session.start_time) for r in reports), default=session.start_time)
            cases = [testcase(r) for r in reports]
            suites.append(testsuite(display, cases, counts, sum(r.duration for r in reports), start))
        return xml_document(junit_root(suites, session.duration))

    @hookimpl
    def planrun_sessionfinish(self, session: Session) -> None:
        write_report(self.path, self.document(session), f"--junitxml {self.shown}")

    @hookimpl
    def planrun_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", f"generated xml file: {printable(str(self.path))}")


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("machine outputs")
    group.add_argument(
        "--junitxml",
        "--junit-xml",
        dest="junitxml",
        metavar="PATH",
        default=None,
        help="write a JUnit XML report to PATH: one testsuite per plan, one testcase per item",
    )


@hookimpl
def planrun_configure(config: Config) -> None:
    value = config.getoption("junitxml")
    if value is None:
        return
    shown = printable(value)
    if not value:
        raise UsageError("--junitxml: the path is empty")
    path = Path(os.path.abspath(config.invocation_dir / value))
    check_report_path(path, f"--junitxml {shown}")
    config.pluginmanager.register(JunitXml(path, shown), "junitxml-writer")
