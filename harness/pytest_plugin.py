"""``pytest plans/``: plan files as pytest items (the ``pytest11`` entry point ``planrun``).

Each ``*.plan.yaml`` / ``*.plan.yml`` file pytest collects becomes a
:class:`PlanFile` whose items are the plan's items (prerequisites, tasks in
dependency order, edge cases, verification), named by their item ids, so node
ids are planrun's: ``plans/x.plan.yaml::task-id``.

One planrun :class:`~planrun.config.Config` and :class:`~planrun.session.Session`
serve the whole pytest session: plan files are collected by planrun's own
collection (plugins, conftest.py files and compilers apply) and run by its
:class:`~planrun.runner.PlanRunner`. A plan's tasks share a workdir and
state (dependency outcomes, regressions, baselines), so when the first item
of a plan runs, every selected item of that plan runs, in order, in one
workspace; each pytest item then reports the outcome planrun gave it.
Under pytest-xdist, xdist's default distribution (``-n N`` alone, ``--dist
load``) sends each plan file to one worker as a whole (every other test is
distributed as ``load`` does); every item of a plan also carries
``xdist_group(name=PLANFILE)`` for ``--dist loadgroup``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from planrun.errors import PlanError, PlanrunError
from planrun.hookspecs import hookimpl
from planrun.reports import ItemReport, lines_of
from planrun.reports import printable as _printable
from planrun.session import PLAN_SUFFIXES
from planrun.types import RUNNING_ENV


def shown(text: str) -> str:
    """``text`` fit for pytest to print: :func:`planrun.printable`, and under GitHub Actions no workflow command.

    Here pytest owns the output, so planrun's guard on the streams is off
    (plugins/github.py): what a plan's steps or files wrote, shown in a
    failure, a skip reason or a collection error, is neutralised here instead.
    """
    text = _printable(text)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from planrun.commandguard import neutralised

        text = neutralised(text)
    return text


if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import CollectedPlan, Item, Session

_STATE = pytest.StashKey["_PlanrunState"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("planrun", "planrun plan files (*.plan.yaml)")
    group.addoption(
        "--planrun-verify-only",
        action="store_true",
        default=False,
        help="check every criterion against the tree as it is; perform nothing (planrun --verify-only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): keep the marked items on one pytest-xdist worker")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's default distribution (``load``, what ``-n`` gives): as ``load``, but a plan file is one unit.

    A plan's tasks share a workdir and state, so all of a plan's items go to one
    worker; every other test is its own unit, as under ``load``. Other ``--dist``
    modes are xdist's (``loadfile``, ``loadscope`` and ``loadgroup`` also keep a
    plan together; ``worksteal`` and ``each`` do not).
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class PlanScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(PLAN_SUFFIXES) else nodeid

    return PlanScheduling(config, log)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    # Inside a step or check that planrun runs, a `pytest` collects tests, not plans: a plan whose
    # criterion is "`pytest` passes" would otherwise run itself again, without end.
    if os.environ.get(RUNNING_ENV):
        return None
    if file_path.name.endswith(PLAN_SUFFIXES):
        return PlanFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None and not session.config.option.collectonly:
        state.collection_finish(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None:
        state.finish()


class _Stopper:
    """``-x`` / ``--maxfail``: a plan being run stops where pytest would."""

    def __init__(self, state: _PlanrunState) -> None:
        self.state = state
        self.failures = 0

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        maxfail = self.state.pytest_config.option.maxfail
        if report.outcome not in ("failed", "error", "blocked") or not maxfail:
            return
        self.failures += 1
        psession = self.state.pytest_session
        done = psession.testsfailed if psession is not None else 0
        if done + self.failures >= maxfail:
            self.state.session.shouldstop = f"stopping after {done + self.failures} failures"


class _PlanrunState:
    """The planrun side of one pytest session: its Config, Session and the outcomes of the plans run."""

    def __init__(self, pytest_config: pytest.Config) -> None:
        from planrun.cli import build_config
        from planrun.session import Session

        self.pytest_config = pytest_config
        self.pytest_session: pytest.Session | None = None
        args = [
            str(pytest_config.rootpath),
            "-p",
            "no:state",
        ]  # pytest keeps its own cache (--lf); workers share no lock
        if pytest_config.option.planrun_verify_only:
            args.append("--verify-only")
        config: Config = build_config(args)
        config.hook.planrun_configure.call_historic(kwargs=dict(config=config))
        # pytest reports; planrun's terminal reporter would write into pytest's output.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)
        config.pluginmanager.register(_Stopper(self), "pytest-stopper")
        self.config = config
        self.session: Session = Session(config)
        config.hook.planrun_sessionstart(session=self.session)
        self.results: dict[int, dict[str, ItemReport]] = {}  # id(cplan) -> item id -> report
        self.extra: dict[int, list[ItemReport]] = {}  # id(cplan) -> reports of no pytest item (regressions)
        self.crashed: dict[int, str] = {}  # id(cplan) -> why its run did not finish
        self.last: dict[int, PlanItem | None] = {}  # id(cplan) -> its last selected pytest item

    def collect(self, path: Path) -> CollectedPlan | None:
        session = self.session
        errors, plans = len(session.collection_errors), len(session.plans)
        self.config.option.paths = [str(path)]
        try:
            session.collect()
        except PlanError as exc:
            raise pytest.Collector.CollectError(shown(str(exc))) from None
        except PlanrunError as exc:
            raise pytest.Collector.CollectError(f"{path}: {shown(str(exc))}") from None
        new = session.collection_errors[errors:]
        if new:
            raise pytest.Collector.CollectError("\n".join(shown(str(e)) for e in new))
        return session.plans[-1] if len(session.plans) > plans else None

    def collection_finish(self, psession: pytest.Session) -> None:
        self.pytest_session = psession
        try:
            self.config.hook.planrun_collection_finish(session=self.session)
        except PlanrunError as exc:  # e.g. an agent executor that is not configured
            raise pytest.UsageError(f"planrun: {shown(str(exc))}") from None

    def result(self, item: PlanItem) -> tuple[ItemReport | None, list[ItemReport]]:
        """The report of ``item`` (running its plan first), and extra reports to show on the plan's last item."""
        cplan = item.plan_item.cplan
        key = id(cplan)
        if key not in self.results and key not in self.crashed:
            self._run(cplan, item.session)
        if key in self.crashed:
            raise RuntimeError(f"planrun could not run {cplan.display}: {self.crashed[key]}")
        extra = self.extra.get(key, []) if self.last.get(key) is item else []
        return self.results[key].get(item.plan_item.item_id), extra

    def _run(self, cplan: CollectedPlan, psession: pytest.Session) -> None:
        from planrun.runner import PlanRunner

        self.pytest_session = psession
        key = id(cplan)
        selected = [i for i in psession.items if isinstance(i, PlanItem) and i.plan_item.cplan is cplan]
        cplan.selected_ids = {i.plan_item.item_id for i in selected}
        self.last[key] = selected[-1] if selected else None
        items: list[Item] = list(cplan.items)
        # planrun's own selection: the dependencies of what pytest selected come along (SPEC section 4).
        self.config.hook.planrun_collection_modifyitems(session=self.session, config=self.config, items=items)
        start = len(self.session.reports)
        results: dict[str, ItemReport] = {}
        try:
            if not self.session.shouldstop:
                with self.session.workspace(cplan) as workdir:
                    PlanRunner(self.session, cplan, workdir).run(items)
        except Exception as exc:
            self.crashed[key] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            ids = {i.item_id for i in cplan.items}
            for report in self.session.reports[start:]:
                if report.item_id in ids:
                    results[report.item_id] = report
                else:
                    self.extra.setdefault(key, []).append(report)
            self.results[key] = results

    def finish(self) -> None:
        exitstatus = self.pytest_session.exitstatus if self.pytest_session is not None else 0
        self.config.hook.planrun_sessionfinish(session=self.session, exitstatus=int(exitstatus))


def _state(config: pytest.Config) -> _PlanrunState:
    state = config.stash.get(_STATE, None)
    if state is None:
        state = config.stash[_STATE] = _PlanrunState(config)
    return state


class PlanFailed(Exception):
    """An item planrun reported failed, errored or blocked; carries the text planrun shows for it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def render(report: ItemReport) -> str:
    """What planrun's terminal shows under a failed item's header: message, evidence, each failed criterion."""
    lines: list[str] = []

    def block(text: str, indent: str = "  ") -> None:
        lines.extend(indent + line for line in lines_of(text))

    if report.message:
        block(report.message, indent="")
        if report.evidence:
            block(report.evidence)
        lines.append(f"  {report.location}")
    total = len(report.criteria)
    for n, c in report.failed_criteria:
        lines.append(f"criterion {n}/{total}  {c.name}")
        if c.message:
            block(c.message)
        if c.evidence:
            block(c.evidence)
        lines.append(f"  {c.location}")
    return shown("\n".join(lines))


class PlanFile(pytest.File):
    """A plan file: collected by planrun, its items as pytest items."""

    def collect(self) -> list[PlanItem]:  # type: ignore[override]
        try:
            state = _state(self.config)
        except PlanrunError as exc:  # a bad [tool.planrun] or PLANRUN_ADDOPTS
            raise pytest.Collector.CollectError(f"planrun: {shown(str(exc))}") from None
        cplan = state.collect(self.path)
        if cplan is None:
            return []
        return [PlanItem.from_parent(self, name=item.item_id, plan_item=item) for item in cplan.items]


class PlanItem(pytest.Item):
    """One planrun item: the prerequisites, a task, an edge case or the verification."""

    def __init__(self, *, plan_item: Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_item = plan_item
        self.add_marker(pytest.mark.xdist_group(name=plan_item.cplan.display))
        self.extra_keyword_matches.update(k for k in plan_item.keywords if k)

    def runtest(self) -> None:
        report, extra = _state(self.config).result(self)
        failed = report is not None and report.outcome in ("failed", "error", "blocked")
        if failed or extra:
            texts = [render(report)] if failed and report is not None else []
            texts += [f"{shown(f'{r.nodeid} ({r.name}):')}\n{render(r)}" for r in extra]
            raise PlanFailed("\n\n".join(texts))
        if report is None:
            reason = _state(self.config).session.shouldstop or "not run"
            raise pytest.skip.Exception(
                shown(f"not run: {reason}" if reason != "not run" else reason), _use_item_location=True
            )
        if report.outcome == "skipped":
            raise pytest.skip.Exception(shown(report.short_reason or "skipped"), _use_item_location=True)
        if report.outcome == "interrupted":
            raise KeyboardInterrupt

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, PlanFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.plan_item.location.line
        return self.path, (line - 1 if line else None), self.plan_item.item_id
