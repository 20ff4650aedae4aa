"""Hook specifications: the plugin author's manual for planrun.

Every hook takes keyword arguments; an implementation may accept fewer
arguments than the spec lists (pluggy's opt-in arguments). Hooks only grow by
new arguments, never by renaming or removing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from contextlib import AbstractContextManager
    from pathlib import Path

    from planrun.config import Config
    from planrun.executors import Executor
    from planrun.model import Plan, Task
    from planrun.pluginmanager import PlanrunPluginManager
    from planrun.reports import ItemReport
    from planrun.session import CollectedPlan, Item, Session
    from planrun.types import CheckKind, ExecutionContext, ExecutionResult, ExecutorKind, Location

hookspec = pluggy.HookspecMarker("planrun")
hookimpl = pluggy.HookimplMarker("planrun")


# -------------------------------------------------------------------------
# Initialization: options and configuration.
# -------------------------------------------------------------------------


@hookspec(historic=True)
def planrun_addoption(parser: argparse.ArgumentParser, pluginmanager: PlanrunPluginManager) -> None:
    """Add command line options.

    :param parser: an :class:`argparse.ArgumentParser`; add options with
        ``parser.add_argument`` (or to a group from ``parser.add_argument_group``).
        ``[tool.planrun]`` keys of the same name (dashes as underscores) become
        their defaults.
    :param pluginmanager: the plugin manager.
    :return: ignored.

    Called once, while the command line is parsed, by every implementation.
    Historic: a plugin registered later is called on registration. Use in
    conftest plugins: only the rootdir ``conftest.py`` is loaded early enough
    to add options.
    """


@hookspec(historic=True)
def planrun_configure(config: Config) -> None:
    """Options are parsed; set up plugin state.

    :param config: the run's :class:`~planrun.config.Config`.
    :return: ignored.

    Called once, after the command line and ``[tool.planrun]`` are parsed and
    before the session starts, by every implementation. Register objects that
    exist only when an option asks for them (a report writer, say) here.
    Historic: a plugin registered later is called on registration.
    """


# -------------------------------------------------------------------------
# Registries: what criteria and tasks can be turned into.
# -------------------------------------------------------------------------


@hookspec
def planrun_register_checks(config: Config) -> list[CheckKind]:
    """Return the check kinds this plugin provides.

    :param config: the run's config.
    :return: a list of :class:`planrun.CheckKind` (name, pydantic argument
        model, check function). Two plugins registering the same name is an
        error naming both. ``planrun schema`` adds each kind's argument
        model to the JSON Schema it prints.

    Called by every implementation (the lists are joined), once per set of
    conftests, before the first plan they serve is compiled. Use in conftest
    plugins: a ``conftest.py`` serves the plans in its folder and below (the
    rootdir's serves all), as in pytest.
    """


@hookspec
def planrun_register_executors(config: Config) -> list[ExecutorKind]:
    """Return the executors this plugin provides.

    :param config: the run's config.
    :return: a list of :class:`planrun.ExecutorKind` (name, factory).
        Duplicate names are an error naming both plugins.

    Called by every implementation (the lists are joined), once per run,
    before any task runs.
    """


@hookspec(firstresult=True)
def planrun_compile_criterion(text: str, location: Location, config: Config) -> dict[str, Any] | None:
    """Turn a string criterion into the mapping form, or return ``None``.

    :param text: the criterion as written in the plan.
    :param location: where it is written (``path``, ``line``, ``col``).
    :param config: the run's config.
    :return: a mapping with exactly one check kind, such as
        ``{"command": {"run": "make"}}``. The result is data, so
        ``--collect-only`` can show it. ``None``: not a sentence this
        plugin understands.

    Called once per string criterion while a plan is compiled (collection).
    firstresult: stops at the first non-``None`` result. If every
    implementation returns ``None``, the criterion is a compile error at
    ``location`` whose hint names the closest sentence forms: a plugin
    declares its forms in an optional module (or object) attribute
    ``SENTENCE_FORMS``, a list of ``(form, check kind, ways people write
    it)`` tuples with the placeholders CMD, TEXT, PATH, METHOD, URL and NNN,
    e.g. ``("`CMD` passes", "command", ("`CMD` passes", "`CMD` succeeds"))``
    (see the built-in ``strings`` plugin).
    """


# -------------------------------------------------------------------------
# Collection.
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def planrun_collect_file(file_path: str, config: Config) -> Plan | None:
    """Load one plan file.

    :param file_path: the path of a collected file.
    :param config: the run's config.
    :return: a :class:`planrun.model.Plan`, or ``None`` for files this plugin
        does not understand. Raise :class:`planrun.PlanError` for a file it
        understands but that is invalid.

    Called once per file collected (a path argument, or a ``*.plan.yaml``
    found in a folder argument). firstresult: stops at the first
    non-``None`` result. The built-in YAML loader is the ``trylast``
    default.
    """


@hookspec
def planrun_collection_modifyitems(session: Session, config: Config, items: list[Item]) -> None:
    """Filter or reorder the collected items in place.

    :param session: the session.
    :param config: the run's config.
    :param items: the items; remove deselected ones and pass them to
        ``session.deselect(items)`` so the report counts them.
    :return: ignored; change ``items`` in place.

    Called once, after every plan is collected and compiled, by every
    implementation (``-k``, ``--lf`` and the node-id selection are built on
    it).
    """


@hookspec
def planrun_collection_finish(session: Session) -> None:
    """Collection and selection are done; ``session.items`` is final.

    :param session: the session.
    :return: ignored.

    Called once, after ``planrun_collection_modifyitems`` and before the
    first item runs (or ``--collect-only`` prints), by every implementation.
    """


# -------------------------------------------------------------------------
# Running.
# -------------------------------------------------------------------------


@hookspec
def planrun_report_collectionfinish(config: Config, items: list[Item]) -> str | list[str] | None:
    """Lines for the terminal, printed right after the ``collected ...`` line.

    :param config: the run's config.
    :param items: the selected items.
    :return: a line, a list of lines, or ``None``.

    Called once, after collection and selection, by every implementation
    (not with ``-q``); the lines appear in plugin order, each through
    :func:`planrun.printable`. The place for what selection did, such as
    ``--shard`` or ``--lf``.
    """


@hookspec
def planrun_sessionstart(session: Session) -> None:
    """The session starts, after configure and before collection.

    :param session: the session.
    :return: ignored.

    Called once per run, by every implementation; the terminal prints its
    header here.
    """


@hookspec(firstresult=True)
def planrun_runtestloop(session: Session) -> bool | None:
    """Run the collected items: the whole run phase.

    :param session: the session; ``session.items`` holds the selected items
        in order and ``session.plans`` the collected plans.
    :return: ``True`` when this implementation ran them; ``None`` to leave it
        to the next.

    Called once per run that collected without errors (not with
    ``--collect-only``). firstresult: stops at the first non-``None`` result.
    The core's ``trylast`` default runs the
    plans one after another in this process; the ``workers`` plugin (``-n``)
    runs them in worker processes and replays their events in the main
    process in the order of a serial run. An implementation must report every
    item through ``session.log_start``, ``session.log_executed`` and
    ``session.log`` (or replay them), honour ``session.shouldstop`` between
    items, and let :exc:`KeyboardInterrupt` through after stopping what it
    started.
    """


@hookspec(firstresult=True)
def planrun_make_workspace(cplan: CollectedPlan, base: Path, config: Config) -> AbstractContextManager[Path] | None:
    """Provide the folder a plan runs in, instead of its ``workspace:`` mode.

    :param cplan: the collected plan (``cplan.plan``, ``cplan.display``, ``cplan.path``).
    :param base: the tree the plan runs against (``--workdir``, the plan's
        ``workdir``, else the rootdir).
    :param config: the run's config.
    :return: a context manager whose ``__enter__`` returns the workdir and
        whose ``__exit__`` cleans it up after the plan's items ran, or
        ``None`` to leave the choice to the next implementation (the core's
        default: ``inplace``, ``temp`` or ``copy``).

    Called once per plan, before its first item runs. firstresult: stops at
    the first non-``None`` result. The core sets ``cplan.workdir`` to
    the folder entered, so reporters and ``planrun_runtest_logreport``
    implementations can find it. ``--sandbox`` (a git worktree per plan) is
    built on this hook.
    """


@hookspec(firstresult=True)
def planrun_task_execute(task: Task, executor: Executor, context: ExecutionContext) -> ExecutionResult | None:
    """Perform one task.

    :param task: the task as written in the plan.
    :param executor: the executor chosen for it.
    :param context: workdir, timeout and the plan being run.
    :return: an :class:`planrun.ExecutionResult`, or ``None`` to leave the
        task to the next implementation.

    Called once per attempt of each task that is performed (not for skipped
    or blocked tasks, nor with ``--verify-only``). firstresult: stops at the
    first non-``None`` result. The core's ``trylast`` default calls
    ``executor.execute(task, context)``; a ``wrapper=True`` implementation can
    time, retry or record the call.
    """


@hookspec
def planrun_runtest_logstart(nodeid: str, location: Location) -> None:
    """An item is about to run.

    :param nodeid: the item's node id.
    :param location: where the item is written in its plan file.
    :return: ignored.

    Called once per item that runs, before anything of it happens (before
    the baseline, the executor or its criteria), by every implementation.
    Items skipped for a failed dependency get it too, just before their
    report. With workers (``-n``) it is replayed in the main process, in
    the order of a serial run. The state store records ``in_progress``
    here.
    """


@hookspec
def planrun_task_executed(nodeid: str, attempt: int, status: str) -> None:
    """An executor finished one attempt of a task; its criteria are not asserted yet.

    :param nodeid: the task's node id.
    :param attempt: the attempt number, from 1.
    :param status: the executor's status: ``"done"``, ``"failed"`` or
        ``"blocked"`` (see :class:`planrun.ExecutionResult`).
    :return: ignored.

    Called once per attempt that returned a result, right after the
    executor returned and before any criterion is evaluated, by every
    implementation. The state store records ``executed`` here, so a run
    killed between executing and verifying is resumed by verifying, not by
    performing the task again.
    """


@hookspec
def planrun_task_progress(nodeid: str, attempt: int, status: dict[str, Any]) -> None:
    """An executor is working on a task: what it is doing now.

    :param nodeid: the task's node id.
    :param attempt: the attempt number, from 1.
    :param status: what the executor reports, e.g. ``turn``, ``tool``,
        ``tokens_in``, ``tokens_out``; keys are optional.
    :return: ignored.

    Called by executors through :meth:`planrun.ExecutionContext.progress`,
    often (every model turn or tool call), and every implementation runs, so
    implementations must be cheap. The terminal shows it as a transient
    status line on a TTY.
    """


@hookspec
def planrun_runtest_makereport(report: ItemReport) -> None:
    """An item's report is complete; add to it before anyone sees it.

    :param report: the :class:`planrun.ItemReport`, which implementations
        may change (add tokens, cost, notes).
    :return: ignored.

    Called once per report, where the item ran (in a ``-n`` worker, in
    that worker), right before :func:`planrun_runtest_logreport`, by every
    implementation. ``llm_judge`` adds the tokens its verdicts cost here.
    """


@hookspec
def planrun_runtest_logreport(report: ItemReport) -> None:
    """One item finished.

    :param report: the :class:`planrun.ItemReport` of a task, the
        prerequisites, an edge case or the verification.
    :return: ignored.

    Called once per item, when it is finished (passed, failed, skipped,
    blocked, errored or deselected by a failed dependency), by every
    implementation. The only feed that reporters (terminal, JUnit, JSON,
    state) consume.
    """


@hookspec
def planrun_terminal_summary(terminalreporter: Any, exitstatus: int, config: Config) -> None:
    """Add a section to the terminal summary.

    :param terminalreporter: the terminal reporter; ``write_line(text)`` and
        ``write_sep(char, title)`` print.
    :param exitstatus: the exit status the run will return.
    :param config: the run's config.
    :return: ignored.

    Called once, at the end of the terminal summary (after the failures and
    warnings, before the short summary info and the final line), by every
    implementation; not with ``--collect-only``.
    """


@hookspec
def planrun_sessionfinish(session: Session, exitstatus: int) -> None:
    """The run is over; write files here.

    :param session: the session.
    :param exitstatus: the exit status the run will return.
    :return: ignored.

    Called once per run that started, by every implementation, also when the
    run was interrupted or collection failed; the terminal prints its summary
    after the other implementations ran (a ``wrapper``).
    """
