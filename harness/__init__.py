"""planrun: plans of atomic tasks whose success criteria are checked, pytest style.

The public names are imported on first use (PEP 562): ``import planrun`` or
``from planrun import hookimpl`` loads only the modules that name needs, so
``planrun --version`` and a plugin's import stay cheap. To export a name, add it
to ``_EXPORTS`` (its module), to the ``TYPE_CHECKING`` imports and to ``__all__``
(tests/test_version.py checks the three agree).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planrun.atomic import ignored_folder, opened, read_upto, write_atomic
    from planrun.commandguard import CommandGuard, neutralised, write_commands, write_data
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
    from planrun.reads import criteria_reads
    from planrun.reports import CriterionResult, ItemReport, human, lines_of, money, outcome_counts, printable
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
        command_environment,
        set_recording,
    )

__version__ = "0.1.0"

#: module -> the public names it defines, imported by ``__getattr__`` when first asked for.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "planrun.atomic": ("ignored_folder", "opened", "read_upto", "write_atomic"),
    "planrun.commandguard": ("CommandGuard", "neutralised", "write_commands", "write_data"),
    "planrun.config": ("ExitCode", "whole_number"),
    "planrun.datapath": ("MISSING", "lookup", "parse_path"),
    "planrun.errors": ("CompileError", "PlanError", "PlanrunError", "PluginError", "UsageError"),
    "planrun.evidence": ("EVIDENCE_FORMAT", "EVIDENCE_VERSION", "git_state", "sha256_of"),
    "planrun.gitenv": ("git_argv", "git_env", "run_git"),
    "planrun.graph": ("mermaid",),
    "planrun.hookspecs": ("hookimpl", "hookspec"),
    "planrun.mergereports": (
        "XmlElement",
        "check_report_path",
        "json_counts",
        "json_dumps",
        "junit_root",
        "plan_order_key",
        "write_report",
        "xml_document",
        "xml_text",
    ),
    "planrun.model": ("Plan", "Task"),
    "planrun.outcomes": ("CheckFailed", "Skipped", "fail", "skip"),
    "planrun.planfile": ("find_cycle", "read_plan"),
    "planrun.planref": ("Change", "RefPlans", "plans_from_ref"),
    "planrun.reports": ("CriterionResult", "ItemReport", "human", "lines_of", "money", "outcome_counts", "printable"),
    "planrun.statestore": ("RunLock", "StateStore"),
    "planrun.types": (
        "ArgsModel",
        "CheckContext",
        "CheckKind",
        "ExecutionContext",
        "ExecutionResult",
        "Executor",
        "ExecutorError",
        "ExecutorKind",
        "Location",
        "RelPath",
        "StepTimeout",
        "command_environment",
        "set_recording",
    ),
    "planrun.reads": ("criteria_reads",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, then keep the name here (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'planrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


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
    "criteria_reads",
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
    "outcome_counts",
    "printable",
    "lines_of",
    "opened",
    "read_upto",
    "CommandGuard",
    "neutralised",
    "write_commands",
    "write_data",
    "command_environment",
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
