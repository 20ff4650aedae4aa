"""planrun: plans of atomic tasks whose success criteria are checked, pytest style."""

from __future__ import annotations

import os

from planrun.atomic import ignored_folder, write_atomic
from planrun.config import ExitCode, whole_number
from planrun.datapath import MISSING, lookup, parse_path
from planrun.errors import CompileError, PlanError, PlanrunError, PluginError, UsageError
from planrun.evidence import EVIDENCE_FORMAT, EVIDENCE_VERSION, git_state, sha256_of
from planrun.gitenv import git_argv, git_env, run_git
from planrun.graph import mermaid
from planrun.hookspecs import hookimpl, hookspec
from planrun.mergereports import (
    XmlElement,
    check_report_path,
    json_counts,
    json_dumps,
    junit_root,
    plan_order_key,
    write_report,
    xml_document,
    xml_text,
)
from planrun.model import Plan, Task
from planrun.outcomes import CheckFailed, Skipped, fail, skip
from planrun.planfile import find_cycle, read_plan
from planrun.planref import Change, RefPlans, plans_from_ref
from planrun.reports import CriterionResult, ItemReport, human, money, printable
from planrun.statestore import RunLock, StateStore
from planrun.types import (
    ArgsModel,
    CheckContext,
    CheckKind,
    ExecutionContext,
    ExecutionResult,
    Executor,
    ExecutorError,
    ExecutorKind,
    Location,
    RelPath,
    StepTimeout,
    set_recording,
)

__version__ = "0.1.0"


def copy_workdir(src: os.PathLike[str], dst: os.PathLike[str], *, avoid: os.PathLike[str]) -> list[str]:
    """Copy a workdir as ``workspace: copy`` does; see :func:`planrun.session.copy_workdir`."""
    from pathlib import Path

    from planrun.session import copy_workdir as _copy

    return _copy(Path(src), Path(dst), avoid=Path(avoid))


def main(args: list[str] | None = None, plugins: list[object] | None = None) -> int:
    """Run planrun in-process; see :func:`planrun.cli.main`."""
    from planrun.cli import main as _main

    return _main(args, plugins)


__all__ = [
    "EVIDENCE_FORMAT",
    "EVIDENCE_VERSION",
    "StateStore",
    "RunLock",
    "MISSING",
    "ArgsModel",
    "CheckContext",
    "Change",
    "CheckFailed",
    "CheckKind",
    "CompileError",
    "CriterionResult",
    "ExecutionContext",
    "ExecutionResult",
    "Executor",
    "ExecutorError",
    "ExecutorKind",
    "ExitCode",
    "ItemReport",
    "Location",
    "Plan",
    "PlanError",
    "PlanrunError",
    "PluginError",
    "RefPlans",
    "RelPath",
    "Skipped",
    "StepTimeout",
    "Task",
    "UsageError",
    "__version__",
    "copy_workdir",
    "fail",
    "find_cycle",
    "git_argv",
    "git_env",
    "git_state",
    "hookimpl",
    "hookspec",
    "ignored_folder",
    "human",
    "lookup",
    "main",
    "mermaid",
    "money",
    "parse_path",
    "plans_from_ref",
    "printable",
    "set_recording",
    "sha256_of",
    "read_plan",
    "run_git",
    "skip",
    "whole_number",
    "write_atomic",
    "XmlElement",
    "check_report_path",
    "json_counts",
    "json_dumps",
    "junit_root",
    "plan_order_key",
    "xml_document",
    "xml_text",
    "write_report",
]
