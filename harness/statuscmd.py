"""``planrun status [PATHS]`` (a progress table per plan) and ``planrun graph PLAN`` (Mermaid), from the store.

Neither takes the run lock: state files are replaced atomically, so a reader
sees a whole version while a run writes; corrupt files are reported and
ignored (only a run, holding the lock, moves them aside).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from planrun.config import ArgumentParser, ExitCode, ParserExit
from planrun.errors import PlanError, PlanrunError, one_file
from planrun.graph import mermaid
from planrun.reports import printable
from planrun.statestore import StateStore, file_hash, plan_key


def _parser(prog: str, usage: str, description: str) -> ArgumentParser:
    return ArgumentParser(prog=prog, usage=usage, description=description)


def _parse(parser: argparse.ArgumentParser, args: list[str]) -> argparse.Namespace:
    return parser.parse_intermixed_args(args)


def _setup(paths: list[str]) -> tuple[Any, StateStore]:
    from planrun.cli import build_config

    config = build_config(list(paths))
    return config, StateStore(config.planrun_dir, config.warnings, quarantine=False)


def _load(path: Path, config: Any) -> Any:
    from planrun.planfile import read_plan

    return read_plan(path, config.display_path(path), max_bytes=config.option.max_plan_bytes)


def _when(stamp: float | None) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def _status_word(entry: dict[str, Any] | None) -> tuple[str, str]:
    if entry is None:
        return "pending", "-"
    return entry["status"], entry["outcome"] or "-"


def status(args: list[str], plugins: list[object] | None = None) -> int:
    """``planrun status [PATHS]``: a table per plan (task, status, outcome, attempts, tokens, last run, duration)."""
    from rich.console import Console
    from rich.table import Table

    parser = _parser(
        "planrun status",
        "planrun status [PATHS ...]",
        "Show the recorded progress of each plan (default: every plan recorded under .planrun/state).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATHS")
    try:
        option = _parse(parser, args)
        config, store = _setup(option.paths)
        plans = _plans(config, store, option.paths)
    except ParserExit as exc:
        return exc.status
    except PlanrunError as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    no_color = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    console = Console(no_color=no_color, highlight=False, emoji=False, markup=False, soft_wrap=False)
    if not plans:
        console.print("no recorded plans (nothing has run under this rootdir yet)")
    for display, plan, record, problem in plans:
        title = printable(display)
        if problem:
            title += f" ({printable(problem)})"
        elif record is None:
            title += " (never run)"
        elif record["plan_hash"] != file_hash(plan_path(config, display)):
            title += " (changed since the last run)"
        console.print(title, soft_wrap=True)
        table = Table(show_lines=False)
        for column in ("task", "status", "outcome", "attempts", "tokens", "last run", "duration"):
            table.add_column(
                column, justify="right" if column in ("attempts", "tokens", "duration") else "left", no_wrap=True
            )
        entries = record["items"] if record is not None else {}
        task_ids = [t.id for t in plan.tasks] if plan is not None else [k for k in entries if k in _task_keys(entries)]
        for task_id in task_ids:
            entry = entries.get(task_id)
            state, outcome = _status_word(entry)
            tokens = (entry["tokens_in"] + entry["tokens_out"]) if entry else 0
            table.add_row(
                printable(task_id),
                state,
                outcome,
                str(entry["attempts"]) if entry else "0",
                str(tokens),
                _when(entry["started"] if entry else None),
                _duration(entry["duration"] if entry else None),
            )
        console.print(table)
    for warning in config.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    return ExitCode.OK


def plan_path(config: Any, key: str) -> Path:
    path = Path(key)
    return path if path.is_absolute() else config.rootdir / path


def _task_keys(entries: dict[str, Any]) -> set[str]:
    return {k for k, v in entries.items() if v["kind"] == "task"}


def _plans(config: Any, store: StateStore, paths: list[str]) -> list[tuple[str, Any, Any, str]]:
    """(display, plan or None, record or None, problem) per plan: PATHS collected as a run does, else the recorded."""
    from planrun.session import Session

    found = []
    if paths:
        session = Session(config)
        files = [path for path, _ in session._plan_files()]
    else:
        files = [plan_path(config, record["plan"]) for record in store.records()]
    for path in files:
        key = plan_key(path, config.rootdir)
        record = store.load(key)
        try:
            plan, problem = _load(path, config), ""
        except PlanError as exc:
            plan = None
            problem = "plan file missing" if not path.exists() else f"cannot load: {str(exc).splitlines()[0]}"
        found.append((key, plan, record, problem))
    return found


def graph(args: list[str], plugins: list[object] | None = None) -> int:
    """``planrun graph PLAN``: the task graph as Mermaid, each task coloured by its last recorded outcome."""
    parser = _parser(
        "planrun graph",
        "planrun graph PLAN",
        "Print a plan's task graph as a Mermaid flowchart, coloured by the last recorded outcomes.",
    )
    parser.add_argument("plan", metavar="PLAN")
    try:
        option = _parse(parser, args)
        config, store = _setup([option.plan])
        path = one_file(option.plan)
        plan = _load(path, config)
    except ParserExit as exc:
        return exc.status
    except PlanError as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except PlanrunError as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    record = store.load(plan_key(path, config.rootdir))
    outcomes: dict[str, str] = {}
    if record is not None:
        for task in plan.tasks:
            entry = record["items"].get(task.id)
            if entry is not None:
                outcomes[task.id] = entry["outcome"] or entry["status"]
    from planrun.commandguard import write_data

    write_data(mermaid(plan, outcomes))
    for warning in config.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    return ExitCode.OK
