"""``--json PATH``: the whole run as one JSON document, in the versioned shape of ``docs/json-report.md``.

Every collected plan with every reported item and every criterion: outcomes,
locations, durations, attempts, tokens, cost, the vacuous and regression
flags, messages and evidence tails. Strings are written as ASCII JSON
escapes, so whatever the outputs held (control characters, lone surrogates)
reads back exactly.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import (
    CriterionResult,
    ItemReport,
    Location,
    UsageError,
    __version__,
    check_report_path,
    hookimpl,
    json_counts,
    json_dumps,
    printable,
    write_report,
)

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import Session

FORMAT = "planrun-report"
VERSION = 1
#: Characters of evidence kept per criterion and per item (the tail).
EVIDENCE_TAIL = 65536


def _tail(text: str) -> str:
    return text if len(text) <= EVIDENCE_TAIL else text[-EVIDENCE_TAIL:]


def location(where: Location) -> dict[str, Any]:
    return {"file": where.path, "line": where.line or None, "col": where.col or None}


def criterion(c: CriterionResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.name,
        "kind": c.kind,
        "outcome": c.outcome,
        "location": location(c.location),
        "message": c.message,
        "evidence": _tail(c.evidence),
        "duration": round(c.duration, 6),
        "vacuous": c.vacuous,
        "regression_of": c.regression_of,
    }
    record = getattr(c, "record", None)
    if record is not None:
        out["record"] = record
    return out


def item(report: ItemReport) -> dict[str, Any]:
    return {
        "nodeid": report.nodeid,
        "id": report.item_id,
        "kind": report.kind,
        "name": report.name,
        "outcome": report.outcome,
        "location": location(report.location),
        "duration": round(report.duration, 6),
        "attempts": report.attempts,
        "tokens_in": report.tokens_in,
        "tokens_out": report.tokens_out,
        "cost": report.cost,
        "executor": report.executor,
        "message": report.message,
        "evidence": _tail(report.evidence),
        "summary": report.summary,
        "warnings": report.warnings,
        "criteria": [criterion(c) for c in report.criteria],
    }


def document(session: Session) -> dict[str, Any]:
    """The JSON report of ``session`` (version 1)."""
    config = session.config
    by_plan: dict[str, list[ItemReport]] = {}
    for report in session.reports:
        by_plan.setdefault(report.plan, []).append(report)
    plans: list[dict[str, Any]] = []
    for cplan in session.plans:
        reports = by_plan.pop(cplan.display, [])
        plans.append(
            {"path": cplan.display, "id": cplan.head.id, "title": cplan.head.title, "items": [item(r) for r in reports]}
        )
    for display, reports in by_plan.items():  # a plugin's report for a plan the session did not collect
        plans.append({"path": display, "id": None, "title": "", "items": [item(r) for r in reports]})
    errors = [{"file": e.path, "line": e.line, "col": e.col, "message": e.message} for e in session.collection_errors]
    warnings = [*config.warnings, *(w for r in session.reports for w in r.warnings)]
    import datetime  # only when a report is written: planrun's start stays light

    started = datetime.datetime.fromtimestamp(session.start_time, datetime.timezone.utc)
    return {
        "format": FORMAT,
        "version": VERSION,
        "planrun_version": __version__,
        "rootdir": str(config.rootdir),
        "started": started.isoformat(timespec="microseconds"),
        "duration": round(session.duration, 6),
        "exitstatus": int(session.exitstatus),
        "counts": json_counts(plans, len(session.deselected), len(errors)),
        "warnings": warnings,
        "collection_errors": errors,
        "plans": plans,
    }


class JsonReport:
    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown

    @hookimpl
    def planrun_sessionfinish(self, session: Session) -> None:
        write_report(self.path, json_dumps(document(session)), f"--json {self.shown}")

    @hookimpl
    def planrun_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", f"generated json file: {printable(str(self.path))}")


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("machine outputs")
    group.add_argument(
        "--json",
        dest="json_report",
        metavar="PATH",
        default=None,
        help="write the run as JSON to PATH (the shape is in docs/json-report.md)",
    )


@hookimpl
def planrun_configure(config: Config) -> None:
    value = config.getoption("json_report")
    if value is None:
        return
    shown = printable(value)
    if not value:
        raise UsageError("--json: the path is empty")
    path = Path(os.path.abspath(config.invocation_dir / value))
    check_report_path(path, f"--json {shown}")
    config.pluginmanager.register(JsonReport(path, shown), "jsonreport-writer")
