"""Durable progress: the run lock, the state store's writer, ``--lf``, ``--ff`` and ``--resume``.

Everything is recorded from the four event hooks only (``planrun_runtest_logstart``,
``planrun_task_executed``, ``planrun_runtest_logreport``,
``planrun_sessionfinish``), so runs whose items ran elsewhere (workers replaying
their events) are recorded the same way. A task an executor performs is
written (fsynced) when it starts, when the executor returns and when its
outcome is known; items that are only verified are kept in memory and written
once per plan, so a verify-only gate pays one small write per plan.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from planrun import RunLock, StateStore, hookimpl, printable, statestore

if TYPE_CHECKING:
    from planrun import ItemReport, Location
    from planrun.config import Config
    from planrun.session import CollectedPlan, Item, Session


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("state (.planrun/state)")
    g.add_argument(
        "--lf",
        "--last-failed",
        action="store_true",
        dest="last_failed",
        help="run only the items that failed, errored, were blocked or interrupted last time (and what they need)",
    )
    g.add_argument(
        "--ff",
        "--failed-first",
        action="store_true",
        dest="failed_first",
        help="run the plans and items that failed last time first (dependencies still first)",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue the last run: tasks that passed are re-verified, not re-executed; unfinished ones re-run",
    )


@hookimpl(tryfirst=True)
def planrun_sessionstart(session: Session) -> None:
    """Take the run lock (not for ``--co``) before anything is printed or collected."""
    config = session.config
    recording = not config.option.collectonly
    lock = None
    if recording:
        lock = RunLock(config.planrun_dir)
        lock.acquire()
    store = StateStore(config.planrun_dir, config.warnings, quarantine=recording)
    if recording:
        store.clean()
    config.pluginmanager.register(Recorder(session, store, lock, recording), "staterecorder")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Recorder:
    """The per-run writer of the store, and the ``--lf``/``--ff``/``--resume`` selection."""

    def __init__(self, session: Session, store: StateStore, lock: RunLock | None, recording: bool) -> None:
        self.session = session
        self.config: Config = session.config
        self.store = store
        self.lock = lock
        self.recording = recording
        self.run_id = statestore.new_run_id()
        self.loaded: dict[str, dict[str, Any] | None] = {}  # key -> the record as read (None: none)
        self.records: dict[str, dict[str, Any]] = {}  # key -> this run's record, being updated
        self.keys: dict[int, str] = {}  # id(cplan) -> key
        self.items: dict[str, Item] = {}  # nodeid -> item
        self.plans: dict[str, CollectedPlan] = {}  # display -> plan (for the regressions report)
        self.dirty: set[str] = set()  # full records changed in memory only
        self.lazy: dict[str, dict[str, list[Any]]] = {}  # key -> item id -> batch row, for verified-only items
        self.cplans: dict[str, CollectedPlan] = {}
        self.filed: set[str] = set()  # records whose own file this run wrote
        self.current: str | None = None
        self.performed: set[str] = set()  # node ids an executor was chosen for in this run
        self.executed: set[str] = set()  # node ids whose executor returned in this run
        self.header: list[str] = []

    # -- reading ------------------------------------------------------------

    def key_of(self, cplan: CollectedPlan) -> str:
        key = self.keys.get(id(cplan))
        if key is None:
            key = self.keys[id(cplan)] = statestore.plan_key(cplan.path, self.config.rootdir)
        return key

    def previous(self, cplan: CollectedPlan) -> dict[str, Any] | None:
        key = self.key_of(cplan)
        if key not in self.loaded:
            self.loaded[key] = self.store.load(key)
        return self.loaded[key]

    def failed_ids(self, cplan: CollectedPlan, items: list[Item]) -> set[str]:
        record = self.previous(cplan)
        if record is None:
            return set()
        entries = record["items"]
        regressions = entries.get("regressions")
        if regressions is not None and statestore.counts_as_failed(regressions):
            return {item.item_id for item in items}  # something broke late in the plan: all of it again
        return {
            item.item_id
            for item in items
            if item.item_id in entries and statestore.counts_as_failed(entries[item.item_id])
        }

    # -- selection ----------------------------------------------------------

    @hookimpl(trylast=True)
    def planrun_collection_modifyitems(self, session: Session, config: Config, items: list[Item]) -> None:
        opt = config.option
        if opt.last_failed:
            self._last_failed(session, items)
        elif opt.failed_first:
            self._failed_first(session, items)
        if opt.resume:
            self._resume(items)

    @staticmethod
    def _by_plan(items: list[Item]) -> list[tuple[CollectedPlan, list[Item]]]:
        groups: dict[int, tuple[CollectedPlan, list[Item]]] = {}
        for item in items:
            groups.setdefault(id(item.cplan), (item.cplan, []))[1].append(item)
        return list(groups.values())

    def _last_failed(self, session: Session, items: list[Item]) -> None:
        groups = self._by_plan(items)
        failed = {id(cplan): self.failed_ids(cplan, plan_items) for cplan, plan_items in groups}
        total = sum(len(ids) for ids in failed.values())
        if not total:
            self.header.append(f"run-last-failure: no previously failed items, running all {len(items)}")
            return
        chosen = session.select(items, {id(item) for item in items if item.item_id in failed[id(item.cplan)]})
        skipped = len(groups) - chosen
        self.header.append(
            f"run-last-failure: rerun previous {_plural(total, 'failure')}"
            + (f" (skipped {_plural(skipped, 'plan')})" if skipped else "")
        )

    def _failed_first(self, session: Session, items: list[Item]) -> None:
        groups = self._by_plan(items)
        failed = {id(cplan): self.failed_ids(cplan, plan_items) for cplan, plan_items in groups}
        total = sum(len(ids) for ids in failed.values())
        if not total:
            self.header.append("run-last-failure: no previously failed items, running in the usual order")
            return
        ordered: list[Item] = []
        for cplan, plan_items in sorted(groups, key=lambda g: not failed[id(g[0])]):  # stable: failing plans first
            ordered.extend(_failed_first_order(plan_items, failed[id(cplan)]))
        rank = {id(cplan): n for n, (cplan, _) in enumerate(sorted(groups, key=lambda g: not failed[id(g[0])]))}
        session.plans.sort(key=lambda cplan: rank.get(id(cplan), len(rank)))
        items[:] = ordered
        self.header.append(f"run-last-failure: rerun previous {_plural(total, 'failure')} first")

    def _resume(self, items: list[Item]) -> None:
        verified = first = rerun = without = fresh = 0
        for cplan, plan_items in self._by_plan(items):
            record = self.previous(cplan)
            tasks = [item for item in plan_items if item.kind == "task"]
            if record is None:
                without += 1
                continue
            if cplan.head.workspace != "inplace":
                fresh += 1  # nothing of a temp or copy workspace survives the run: all of it again
                continue
            entries = record["items"]
            current = statestore.task_hashes(cplan.plan)
            changed = _first_changed(tasks, entries, current)
            for n, item in enumerate(tasks):
                entry = entries.get(item.item_id)
                if (changed is not None and n >= changed) or entry is None or item.verify_only:
                    continue
                if entry["outcome"] == "passed":
                    item.verify_only = True
                    item.verify_note = "passed before: verified, not performed again (--resume)"
                    verified += 1
                elif entry["outcome"] is None and entry["status"] == "executed" and entry["exec_status"] == "done":
                    item.verify_first = True
                    item.verify_note = "executed before the run stopped: verified, not performed again (--resume)"
                    first += 1
                else:
                    rerun += 1
            if changed is not None:
                self.header.append(
                    f"resume: {printable(cplan.display)} changed since the last run:"
                    f" re-running from task {printable(tasks[changed].item_id)} on"
                )
        if without and not (verified or first or rerun or fresh):
            self.header.append("resume: no recorded state: running everything")
            return
        parts = [f"{verified} passed before (verified, not performed)"]
        if first:
            parts.append(f"{first} executed before (verified first)")
        if without:
            parts.append(f"{_plural(without, 'plan')} without state run in full")
        if fresh:
            parts.append(f"{_plural(fresh, 'plan')} with a temp/copy workspace run in full")
        self.header.append("resume: " + ", ".join(parts))

    @hookimpl(tryfirst=True)
    def planrun_collection_finish(self, session: Session) -> None:
        for item in session.items:
            self.items[item.nodeid] = item
        for cplan in session.plans:
            self.plans[cplan.display] = cplan
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if self.header and reporter is not None and getattr(reporter, "verbosity", 0) >= 0:
            for line in self.header:
                reporter.write_line(line)

    # -- writing ------------------------------------------------------------

    def materialize(self, cplan: CollectedPlan) -> tuple[str, dict[str, Any]]:
        """The full record of a plan something is performed in: the previous one, this run's rows folded in."""
        key = self.key_of(cplan)
        record = self.records.get(key)
        if record is None:
            record = self.previous(cplan) or statestore.new_record(key)
            # Regressions are re-checked whenever the plan's tasks are performed: an old report would
            # make every --lf rerun the whole plan.
            record["items"].pop("regressions", None)
            record["plan_hash"] = _plan_hash(cplan)
            record["run_id"] = self.run_id
            self.records[key] = record
            rows = self.lazy.pop(key, None)
            if rows:
                folded = statestore.merge(record, _rows_record(record, rows))
                assert folded is not None
                record["items"] = folded["items"]
        return key, record

    def save(self, key: str) -> None:
        """Write the plan's own file now (fsynced): for the tasks an executor performs."""
        if not self.recording:
            return
        self.dirty.discard(key)
        self.filed.add(key)
        try:
            self.store.save(self.records[key])
        except OSError as exc:
            self._cannot_write(exc)

    def _cannot_write(self, exc: OSError) -> None:
        """A state that cannot be written costs the next --resume its knowledge, never this run its results."""
        self.recording = False
        where = exc.filename or self.store.dir
        self.config.warnings.append(f"cannot write the state under {where}: {exc.strerror or exc}; state not recorded")

    def flush(self) -> None:
        """Write what is kept in memory: performed plans to their files, the verified-only ones in one batch."""
        for key in sorted(self.dirty):
            if self.recording:
                self.save(key)
        if self.lazy and self.recording:
            updates = {key: (_plan_hash(self.cplans[key]), rows) for key, rows in self.lazy.items()}
            complete = [key for key, rows in self.lazy.items() if len(rows) >= len(self.cplans[key].items)]
            self.lazy = {}
            try:
                self.store.save_batch(updates, self.run_id, written=self.filed, complete=complete)
            except OSError as exc:
                self._cannot_write(exc)

    def _switch(self, key: str) -> None:
        if self.current is not None and self.current != key and self.current in self.dirty:
            self.save(self.current)  # the previous plan is done: the rest of its outcomes
        self.current = key

    def _entry(self, record: dict[str, Any], item_id: str, kind: str) -> dict[str, Any]:
        entry = record["items"].get(item_id)
        if entry is None:
            entry = record["items"][item_id] = statestore.new_item(kind)
        return entry  # type: ignore[no-any-return]

    @hookimpl
    def planrun_runtest_logstart(self, nodeid: str, location: Location) -> None:
        item = self.items.get(nodeid)
        if item is None or not self.recording:
            return
        self._switch(self.key_of(item.cplan))
        if item.kind != "task" or self.session.executor_name_for(item) is None:
            return  # only verified: recorded with its outcome, in memory until the plan or the run ends
        key, record = self.materialize(item.cplan)
        entry = self._entry(record, item.item_id, item.kind)
        entry["started"], entry["run_id"] = time.time(), self.run_id
        self.performed.add(nodeid)
        if item.verify_first:
            return  # still "executed": a kill while it is verified leads to verifying it again
        entry.update(status="in_progress", outcome=None, exec_status=None, finished=None, duration=None)
        self.save(key)

    @hookimpl
    def planrun_task_executed(self, nodeid: str, attempt: int, status: str) -> None:
        item = self.items.get(nodeid)
        if item is None or not self.recording or item.kind != "task":
            return
        key, record = self.materialize(item.cplan)
        entry = self._entry(record, item.item_id, item.kind)
        entry.update(status="executed", outcome=None, exec_status=status, attempts=attempt)
        entry["task_hash"] = statestore.task_hashes(item.cplan.plan).get(item.item_id)  # the version that was performed
        self.executed.add(nodeid)
        self.save(key)

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        if not self.recording:
            return
        item = self.items.get(report.nodeid)
        cplan = item.cplan if item is not None else self.plans.get(report.plan)
        if cplan is None:
            return
        key = self.key_of(cplan)
        self._switch(key)
        if key not in self.records and report.outcome != "interrupted":
            self.cplans[key] = cplan
            self.lazy.setdefault(key, {})[report.item_id] = statestore.batch_row(report, self.run_id)
            return
        key, record = self.materialize(cplan)
        entry = self._entry(record, report.item_id, report.kind)
        if report.outcome != "interrupted":
            if any(c.regression_of is None for c in report.criteria):
                entry["status"] = "verified"
            elif report.nodeid not in self.executed:
                entry["status"] = "pending"
        if report.attempts:
            entry.update(
                attempts=report.attempts, tokens_in=report.tokens_in, tokens_out=report.tokens_out, cost=report.cost
            )
        now = time.time()
        entry.update(
            outcome=report.outcome,
            started=entry["started"] if report.nodeid in self.performed else now - report.duration,
            finished=now,
            duration=round(report.duration, 6),
            run_id=self.run_id,
            criteria=[
                {"name": c.name, "outcome": c.outcome, "message": c.message.split("\n", 1)[0][:200]}
                for c in report.criteria
            ],
        )
        if report.nodeid in self.performed or report.outcome == "interrupted":
            self.save(key)
        else:
            self.dirty.add(key)

    @hookimpl
    def planrun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        try:
            if self.recording:
                self.flush()
        finally:
            if self.lock is not None:
                self.lock.release()


def _plan_hash(cplan: CollectedPlan) -> str | None:
    """The SHA-256 of the plan file as this run read it: the bytes it was collected from, when they are known.

    So the state names the version of the plan that ran, even if the file was
    edited while it ran (``planrun status`` then says it changed). A plan read
    from elsewhere (``--plans-from-ref``'s copy) or by a collector that does not
    say what it read: the file as it is now.
    """
    if cplan.sha256 is not None and cplan.source_file == cplan.path:
        return cplan.sha256
    return statestore.file_hash(cplan.path)


def _rows_record(record: dict[str, Any], rows: dict[str, list[Any]]) -> dict[str, Any]:
    """This run's verify-only rows as a batch record, to fold into a plan's full record."""
    raw = {"plan_hash": record["plan_hash"], "run_id": record["run_id"], "updated": 0.0, "items": rows}
    made = statestore.batch_record(record["plan"], raw)
    assert not isinstance(made, str), made  # rows this run made
    return made


def _first_changed(tasks: list[Item], entries: dict[str, Any], current: dict[str, str]) -> int | None:
    """The index of the first task changed since it was last performed, or inserted before one that was."""
    last_performed = max(
        (n for n, item in enumerate(tasks) if (entries.get(item.item_id) or {}).get("task_hash")), default=-1
    )
    for n, item in enumerate(tasks):
        entry = entries.get(item.item_id)
        recorded = entry["task_hash"] if entry is not None else None
        if recorded is not None and recorded != current.get(item.item_id):
            return n
        if recorded is None and n < last_performed and (entry is None or entry["outcome"] is None):
            return n  # a task added before tasks that were performed
    return None


def _failed_first_order(items: list[Item], failed: set[str]) -> list[Item]:
    """The plan's items with the failed ones first, each after what it depends on; prerequisites stay first."""
    head = [item for item in items if item.kind == "prerequisites"]
    tasks = [item for item in items if item.kind == "task"]
    rest = [item for item in items if item.kind not in ("prerequisites", "task")]
    by_id = {item.item_id: item for item in tasks}
    position = {item.item_id: n for n, item in enumerate(tasks)}
    emitted: set[str] = set()
    ordered: list[Item] = []

    def emit_with_dependencies(item: Item) -> None:
        need: set[str] = set()
        stack = [item.item_id]
        while stack:
            current = by_id.get(stack.pop())
            if current is None or current.item_id in need or current.item_id in emitted:
                continue
            need.add(current.item_id)
            assert current.task is not None
            stack.extend(current.task.depends_on)
        for item_id in sorted(need, key=position.__getitem__):  # the plan's own (dependency) order
            emitted.add(item_id)
            ordered.append(by_id[item_id])

    for item in tasks:
        if item.item_id in failed:
            emit_with_dependencies(item)
    ordered.extend(item for item in tasks if item.item_id not in emitted)
    rest.sort(key=lambda item: item.item_id not in failed)
    return head + ordered + rest
