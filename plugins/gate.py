"""Gating merges: ``--plans-from-ref REF`` (with ``--allow-weakening``) and ``--readers-only``.

``--plans-from-ref REF`` collects the plans (and ``conftest.py`` files) as they
are at git REF and runs them against the working tree; the "changed criteria"
section lists what the working tree's plans removed or weakened, and any
weakening fails the run (exit 1) unless ``--allow-weakening``.
``--readers-only`` refuses (exit 4), before anything runs, every criterion that
does more than read files and every task that would be executed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

from planrun import ExitCode, Plan, RefPlans, UsageError, hookimpl, plans_from_ref, printable, read_plan

#: Check kinds that are readers besides those declaring ``inprocess=True``.
READER_KINDS = frozenset({"manual"})


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gating merges")
    group.add_argument(
        "--plans-from-ref",
        dest="plans_from_ref",
        metavar="REF",
        default=None,
        help="run the plans (and conftest.py files) as they are at git REF against the working tree, and fail on "
        "any criterion the working tree's plans weaken against REF",
    )
    group.add_argument(
        "--allow-weakening",
        dest="allow_weakening",
        action="store_true",
        default=False,
        help="with --plans-from-ref: list weakened criteria without failing the run",
    )
    group.add_argument(
        "--readers-only",
        dest="readers_only",
        action="store_true",
        default=False,
        help="refuse (exit 4) plans that need a command, http, a judge or an executor: only file and data checks",
    )


@hookimpl
def planrun_configure(config: Any) -> None:
    ref, allow = config.getoption("plans_from_ref"), config.getoption("allow_weakening")
    if allow and any(_abbreviates(word, "--allow-weakening") for word in _config_addopts(config.inicfg)):
        raise UsageError(
            f"{config.inipath}: --allow-weakening in addopts is refused (the change under review could set it);"
            " pass it on the command line"
        )
    if allow and ref is None:
        raise UsageError("--allow-weakening needs --plans-from-ref REF")
    if ref is not None:
        # The working tree's rootdir conftest was imported before the options were known (it may add
        # options); none of its hooks runs from now on: the ref's conftests serve the ref's plans.
        pm = config.pluginmanager
        tree_conftest = pm.get_plugin(str(config.rootdir / "conftest.py"))
        if tree_conftest is not None:
            pm.unregister(tree_conftest)
    if ref is not None or config.getoption("readers_only"):
        config.pluginmanager.register(Gate(config), "gate-session")


def _abbreviates(word: str, option: str) -> bool:
    """Whether ``word`` is ``option`` or an abbreviation argparse accepts for it (``--allow-w``)."""
    name = word.split("=", 1)[0]
    return name.startswith("--") and len(name) > 2 and option.startswith(name)


def _config_addopts(inicfg: dict[str, Any]) -> list[str]:
    value = inicfg.get("addopts", [])
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError:
            return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


class Gate:
    """One run's gate: the ref's plans, their comparison and the readers-only refusal."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.ref: str | None = config.getoption("plans_from_ref")
        self.refs: RefPlans | None = None

    @hookimpl(trylast=True)  # last: if another plugin's sessionstart fails, no mirror is left behind
    def planrun_sessionstart(self, session: Any) -> None:
        if self.ref is None:
            return
        self.refs = plans_from_ref(session, self.ref)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and reporter.verbosity >= 0:
            reporter.write_line(
                printable(
                    f"plans from: {self.ref} (commit {self.refs.commit[:12]}): their lines are the ref's,"
                    " run against the working tree"
                )
            )

    @hookimpl(tryfirst=True)
    def planrun_collect_file(self, file_path: str, config: Any) -> Plan | None:
        """A plan file of the mirror: loaded with the working tree's path for its locations."""
        refs = self.refs
        if refs is None or not refs.in_mirror(file_path):
            return None
        path = Path(file_path)
        display = config.display_path(refs.top / Path(file_path).relative_to(refs.mirror))
        return read_plan(path, display, max_bytes=config.option.max_plan_bytes)

    @hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        if not self.config.getoption("readers_only"):
            return
        offenders = readers_only_offenders(session)
        if not offenders:
            return
        for line in offenders:
            print(printable(line), file=sys.stderr)
        n = len(offenders)
        raise UsageError(
            f"--readers-only: {n} {'criterion or task needs' if n == 1 else 'criteria or tasks need'} more than "
            "reading files (a command, http, a judge or an executor); nothing ran"
        )

    @hookimpl(wrapper=True)
    def planrun_sessionfinish(self, session: Any) -> Generator[None, None, None]:
        """A weakening fails the run before the other plugins report it; the mirror goes after they did."""
        refs = self.refs
        option = self.config.option
        if refs is not None and refs.weakenings and not option.allow_weakening and not option.collectonly:
            if session.exitstatus in (ExitCode.OK, ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = ExitCode.TESTS_FAILED
            n = len(refs.weakenings)
            self.config.warnings.append(  # so the final line is not green
                printable(
                    f"{n} weakening{'' if n == 1 else 's'} of the plans against {self.ref}: the run fails"
                    " (see 'changed criteria'; --allow-weakening accepts them)"
                )
            )
        try:
            return (yield)
        finally:
            if refs is not None:
                refs.cleanup()

    @hookimpl
    def planrun_terminal_summary(self, terminalreporter: Any) -> None:
        refs = self.refs
        if refs is None:
            return
        tr = terminalreporter
        allow = self.config.option.allow_weakening
        tr.write_sep("=", printable(f"changed criteria against {self.ref} ({refs.commit[:12]})"))
        for change in refs.changes:
            label = "harmless" if not change.weakening else "weakening, allowed" if allow else "WEAKENING"
            tr.write_line(f"{change}  [{label}]", "red" if change.weakening and not allow else None)
        weak = len(refs.weakenings)
        if not weak:
            tr.write_line(printable(f"no weakening: the working tree keeps every criterion of {self.ref}"), "green")
        elif allow:
            tr.write_line(f"{weak} weakening{'s' if weak != 1 else ''} allowed (--allow-weakening)", "yellow")
        else:
            tr.write_line(
                printable(
                    f"GATE FAILED: {weak} weakening{'s' if weak != 1 else ''} against {self.ref}"
                    " (pass --allow-weakening to accept)"
                ),
                "red bold",
            )


def readers_only_offenders(session: Any) -> list[str]:
    """``file:line kind`` of every selected criterion that is no reader, ``file:line executor NAME`` of every task
    that would be executed."""
    offenders: list[str] = []
    for item in session.items:
        name = session.executor_name_for(item)
        if name is not None:
            loc = item.location
            offenders.append(f"{loc.path}:{loc.line} executor {name}")
        for check in item.checks:
            if check.skip is not None or check.inprocess or check.kind in READER_KINDS:
                continue
            loc = check.location
            offenders.append(f"{loc.path}:{loc.line} {check.kind}")
    return offenders
