"""``--evidence PATH``: one JSON document of what every criterion checked and saw, on which tree.

The shape is documented in ``docs/evidence.md``; ``planrun verify-evidence
PATH`` re-checks it against the tree. Recording is switched on for the run
(:func:`planrun.set_recording`): each check's files (with their SHA-256) and
commands (exit code, duration, SHA-256 of the whole output, its kept tail)
land in ``CriterionResult.record``. Off, nothing is recorded or hashed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path
from typing import Any

from planrun import (
    EVIDENCE_FORMAT,
    EVIDENCE_VERSION,
    ItemReport,
    __version__,
    check_report_path,
    git_state,
    hookimpl,
    printable,
    set_recording,
    sha256_of,
    write_report,
)


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evidence")
    group.add_argument(
        "--evidence",
        metavar="PATH",
        default=None,
        help="write a JSON record of what each criterion read and ran (file hashes, commands, output hashes), with"
        " the git commit and tree checked; `planrun verify-evidence PATH` re-checks it",
    )


@hookimpl
def planrun_configure(config: Any) -> None:
    value = config.option.evidence
    set_recording(bool(value))
    if not value:
        return
    path = Path(os.path.abspath(value))
    check_report_path(path, f"--evidence {printable(value)}")
    config.pluginmanager.register(EvidenceWriter(config, path), "evidence-writer")


def _relative(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` (POSIX form) when inside it, else ``None``."""
    if path != root and os.path.commonpath((path, root)) != root:
        return None
    return Path(os.path.relpath(path, root)).as_posix()


class EvidenceWriter:
    """Collects the reports and each plan's git state; writes the document at the end of the session."""

    def __init__(self, config: Any, path: Path) -> None:
        self.config = config
        self.path = path
        self.created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.session: Any = None
        self.reports: dict[str, list[ItemReport]] = {}  # plan display -> its reports
        self.last: dict[str, Any] = {}  # node id of each plan's last selected item -> the plan
        self.git: dict[int, dict[str, Any]] = {}  # id(cplan) -> git state when its last item was done
        self.hashes: dict[int, str | None] = {}

    def _exclude(self) -> list[str]:
        return [str(self.config.planrun_dir), str(self.path)]

    @hookimpl
    def planrun_sessionstart(self, session: Any) -> None:
        set_recording(True)
        self.session = session

    @hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        for cplan in session.plans:
            # The plan that runs: the bytes it was loaded from (the file may have changed since), else the file read.
            if cplan.sha256 is not None:
                self.hashes[id(cplan)] = cplan.sha256
                continue
            try:
                self.hashes[id(cplan)] = sha256_of(cplan.source_file)
            except OSError:
                self.hashes[id(cplan)] = None
        last = {id(item.cplan): item for item in session.items}
        self.last = {item.nodeid: item.cplan for item in last.values()}

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        self.reports.setdefault(report.plan, []).append(report)
        cplan = self.last.pop(report.nodeid, None)
        # The tree as the plan's criteria saw it: a temp or copy workspace is gone by the end of the session.
        if cplan is not None and cplan.workdir is not None:
            self.git[id(cplan)] = git_state(cplan.workdir, self._exclude())

    @hookimpl
    def planrun_sessionfinish(self, session: Any, exitstatus: int) -> None:
        set_recording(False)
        data = json.dumps(self.document(session, exitstatus), indent=1) + "\n"
        write_report(self.path, data, f"--evidence {printable(str(self.path))}")

    def document(self, session: Any, exitstatus: int) -> dict[str, Any]:
        config = self.config
        pm = config.pluginmanager
        rootdir = os.path.realpath(config.rootdir)
        plans = []
        for cplan in session.plans:
            workdir = cplan.workdir or cplan.base_workdir(config.rootdir, config.option.workdir)
            real = os.path.realpath(workdir)
            git = self.git.get(id(cplan))
            if git is None:
                git = (
                    git_state(real, self._exclude())
                    if os.path.isdir(real)
                    else {"repository": False, "reason": "the workdir no longer exists"}
                )
            plans.append(
                {
                    "path": cplan.display,
                    "file": _relative(os.path.abspath(cplan.path), os.path.abspath(config.rootdir)),
                    "sha256": self.hashes.get(id(cplan)),
                    "workdir": real,
                    "workdir_rel": _relative(real, rootdir),
                    "workspace": cplan.head.workspace,
                    "git": git,
                    "items": [_item(r) for r in self.reports.get(cplan.display, [])],
                }
            )
        return {
            "format": EVIDENCE_FORMAT,
            "version": EVIDENCE_VERSION,
            "created": self.created,
            "planrun": __version__,
            "plugins": {name: pm.versions.get(name, "") for name in pm.plugin_names()},
            "rootdir": rootdir,
            "exitstatus": int(exitstatus),
            "verify_only": bool(config.option.verify_only),
            "plans": plans,
        }


def _item(report: ItemReport) -> dict[str, Any]:
    return {
        "nodeid": report.nodeid,
        "item_id": report.item_id,
        "kind": report.kind,
        "outcome": report.outcome,
        "message": report.message,
        "criteria": [
            {
                "name": c.name,
                "kind": c.kind,
                "location": {"path": c.location.path, "line": c.location.line, "col": c.location.col},
                "outcome": c.outcome,
                "message": c.message,
                "duration": round(c.duration, 6),
                "vacuous": c.vacuous,
                "regression_of": c.regression_of,
                "record": c.record,
            }
            for c in report.criteria
        ],
    }
