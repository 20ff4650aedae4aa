"""planrun: plans of atomic tasks whose success criteria are checked, pytest style."""

from __future__ import annotations

import os

from planrun.atomic import write_atomic
from planrun.config import ExitCode, whole_number
from planrun.datapath import MISSING, lookup, parse_path
from planrun.errors import CompileError, PlanError, PlanrunError, PluginError, UsageError
from planrun.gitenv import git_env
from planrun.graph import mermaid
from planrun.hookspecs import hookimpl, hookspec
from planrun.model import Plan, Task
from planrun.outcomes import CheckFailed, Skipped, fail, skip
from planrun.reports import CriterionResult, ItemReport, printable
from planrun.statestore import (
    RunLock,
    StateStore,
    batch_record,
    batch_row,
    counts_as_failed,
    file_hash,
    merge,
    new_item,
    new_record,
    new_run_id,
    plan_key,
    task_hashes,
)
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
    "batch_record",
    "merge",
    "batch_row",
    "task_hashes",
    "plan_key",
    "new_run_id",
    "new_record",
    "new_item",
    "file_hash",
    "counts_as_failed",
    "StateStore",
    "RunLock",
    "MISSING",
    "ArgsModel",
    "CheckContext",
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
    "RelPath",
    "Skipped",
    "StepTimeout",
    "Task",
    "UsageError",
    "__version__",
    "copy_workdir",
    "fail",
    "git_env",
    "hookimpl",
    "hookspec",
    "lookup",
    "main",
    "mermaid",
    "parse_path",
    "printable",
    "skip",
    "whole_number",
    "write_atomic",
]
