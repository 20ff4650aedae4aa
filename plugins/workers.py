"""``-n N``: plans run in worker processes; the main process replays their events in serial order.

Workers are forked after collection, so each has the collected plans, the
selected items and every plugin exactly as the main process has them. A
worker asks for a plan, runs it with the ordinary runner, and sends every
event the runner emits (item started, task executed, item report, progress,
a stop request, new warnings) back over a pipe. The main process replays
them through the same hooks a serial run calls, plan by plan in collection
order, so reporters, the state store and the exit code see what a serial run
would show (only durations differ). Nothing but the main process prints or
writes reports.

Parts of a plan: when there are fewer plans than twice the workers, a plan
whose items are all only verified (nothing performed, in place, no plugin's
workspace) is split into up to N parts, each run as a plan of its own, so one
big plan uses every worker. A cut never separates a task from a task it
depends on (a dependency's outcome decides whether its dependent is skipped);
a part without the plan's prerequisites evaluates them again, unreported, so
it skips what a serial run would skip, and a plan is split only when its
prerequisites only read files. Replayed part by part, in order, the parts
show exactly what the whole plan shows.

Stopping: ``-x``/``--maxfail`` and an executor's stop request stop handing
out plans and interrupt every worker (SIGTERM: its steps are killed); events
after the stop point are dropped, as a serial run would never have produced
them. Ctrl-C or SIGTERM interrupt every worker (each reports its
current item as interrupted); a worker that does not end within a grace is
killed. A worker that dies is an internal error naming the plan it ran.
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import struct
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from planrun import hookimpl

if TYPE_CHECKING:
    from planrun import ItemReport
    from planrun.session import CollectedPlan, Item, Session

_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}
#: Seconds a worker gets to report its interrupted item before it is killed.
GRACE = 10.0
_HEADER = struct.Struct("!I")


def _workers(text: str) -> int:
    if text == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers or 'auto', got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return n


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workers")
    group.add_argument(
        "-n",
        "--numprocesses",
        type=_workers,
        default=0,
        metavar="N",
        help="run plans in N worker processes ('auto': one per CPU; 0 or 1: in this process)",
    )


@hookimpl(tryfirst=True)
def planrun_runtestloop(session: Session) -> bool | None:
    n = session.config.option.numprocesses
    if n <= 1 or not hasattr(os, "fork"):
        return None
    found = parts(session, session.plan_items(), n)
    # The workers left over take tasks of a plan side by side (planrun.taskgroup): with one plan, all of them.
    session.tasks_beside = max(1, n // max(1, len(found)))
    if len(found) <= 1:
        return None
    Pool(session, found, min(n, len(found))).run()
    return True


class Part(NamedTuple):
    """What a worker runs as one plan: a plan's items (all of them, or a part), and prerequisites to evaluate first."""

    cplan: CollectedPlan
    items: list[Item]
    prerequisites: Item | None = None  # the plan's, when another part reports them (see PlanRunner.run)


def parts(session: Session, plans: list[tuple[CollectedPlan, list[Item]]], n: int) -> list[Part]:
    """The plans as parts, in run order: whole plans, or, when there are too few to keep ``n`` workers busy, split."""
    if len(plans) >= 2 * n:
        return [Part(cplan, items) for cplan, items in plans]
    found: list[Part] = []
    for cplan, items in plans:
        found.extend(split(session, cplan, items, n))
    return found


def split(session: Session, cplan: CollectedPlan, items: list[Item], n: int) -> list[Part]:
    """``items`` in up to ``n`` parts of about as many criteria each, cut only where no dependency crosses.

    Only a plan whose items are all verified (no executor), in place, with no
    plugin's workspace, and whose prerequisites (if any) only read files.
    """
    whole = [Part(cplan, items)]
    if len(items) < 2 or cplan.head.workspace != "inplace":
        return whole
    if cplan.scope.hook.planrun_make_workspace.get_hookimpls():  # --sandbox: one workspace per plan
        return whole
    if any(session.executor_name_for(item) is not None for item in items):
        return whole
    prerequisites = items[0] if items[0].kind == "prerequisites" else None
    if prerequisites is not None:
        kinds = cplan.scope.registry.kinds
        if not all(kind in kinds and kinds[kind].inprocess for kind in prerequisites.kinds):
            return whole  # evaluated again by each part: only if that changes nothing
    # cuttable[i]: a cut before items[i] separates no task from a task it depends on.
    cuttable = [True] * (len(items) + 1)
    position = {item.item_id: i for i, item in enumerate(items) if item.kind == "task"}
    for j, item in enumerate(items):
        for dep in item.depends_on:
            p = position.get(dep)
            if p is not None and p < j:
                for i in range(p + 1, j + 1):
                    cuttable[i] = False
    weights = [max(1, len(item.kinds)) for item in items]
    total = sum(weights)
    cuts: list[int] = []
    done = 0
    for i in range(1, len(items)):
        done += weights[i - 1]
        if cuttable[i] and done * n >= total * (len(cuts) + 1):
            cuts.append(i)
            if len(cuts) == n - 1:
                break
    if not cuts:
        return whole
    bounds = [0, *cuts, len(items)]
    found = []
    for start, end in zip(bounds, bounds[1:]):
        found.append(Part(cplan, items[start:end], prerequisites if start > 0 else None))
    return found


# -- the pipe: length-prefixed pickles between a worker and the main process ---------


_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _send(fd: int, message: tuple[Any, ...]) -> None:
    """Write one whole frame; an interrupting signal waits until it is written (a torn frame is garbage)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        while view:
            view = view[os.write(fd, view) :]
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Reader:
    """Reassembles messages from the bytes a worker's pipe delivers."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False

    def read(self) -> list[tuple[Any, ...]]:
        """The complete messages available now (one ``os.read``); sets :attr:`eof` at the end."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
        self.buffer += chunk
        messages = []
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                break
            data = bytes(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            messages.append(pickle.loads(data))  # our own child, same code: trusted
        return messages


# -- the worker side -------------------------------------------------------------------


def _worker_main(session: Session, plans: list[Part], tasks: int, events: int) -> None:
    """In the forked child: run the plans the main process hands out, forwarding every event."""
    from planrun import process

    process.make_subreaper()  # escapees of this worker's steps re-parent here, where the step's reaping finds them
    process.die_with_parent()
    config = session.config
    current = [-1]
    warned = [len(config.warnings)]

    def emit(*message: Any) -> None:
        _send(events, (current[0], *message))

    def log_start(item: Item) -> None:
        workdir = item.cplan.workdir
        emit("start", item.nodeid, item.location, None if workdir is None else os.fspath(workdir))

    def log_executed(item: Item, attempt: int, status: str) -> None:
        emit("executed", item.nodeid, attempt, status)

    def log(report: ItemReport) -> None:
        emit("report", report)
        if session.shouldstop:
            emit("shouldstop", session.shouldstop)

    class _Progress:
        def __call__(self, nodeid: str, attempt: int, status: dict[str, Any]) -> None:
            emit("progress", nodeid, attempt, status)

    session.log_start = log_start  # type: ignore[method-assign]
    session.log_executed = log_executed  # type: ignore[method-assign]
    session.log = log  # type: ignore[method-assign]
    config.hook.planrun_task_progress = _Progress()  # executors call it through config.hook

    reader = _Reader(tasks)
    while True:
        messages: list[tuple[Any, ...]] = []
        while not messages and not reader.eof:
            messages = reader.read()
        if not messages or messages[0][0] is None:
            return
        for index in messages[0][0]:
            current[0] = index
            if not session.shouldstop:
                cplan, items, prerequisites = plans[index]
                session.run_plan(cplan, items, prerequisites)
            if len(config.warnings) > warned[0]:
                emit("warnings", config.warnings[warned[0] :])
                warned[0] = len(config.warnings)
            emit("done")


def _child(session: Session, plans: list[Part], tasks: int, events: int) -> None:
    code = 0
    try:
        _worker_main(session, plans, tasks, events)
    except KeyboardInterrupt:
        code = 0
        try:
            _send(events, (-1, "interrupted"))
        except OSError:
            pass
    except BaseException:
        code = 3
        try:
            _send(events, (-1, "crashed", traceback.format_exc()))
        except OSError:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # never return into the parent's stack (or pytest's)


# -- the main side ---------------------------------------------------------------------


class _Worker:
    def __init__(self, pid: int, tasks: int, events: int) -> None:
        self.pid = pid
        self.tasks = tasks  # write end: plan indexes to run
        self.reader = _Reader(events)
        self.unit: list[int] = []  # the plans it was handed and has not finished, in order
        self.exited: int | None = None  # its wait status, once reaped
        self.said_bye = False
        self.interrupted = False  # it reported an interrupt (a signal reached it)


class Pool:
    """Forks the workers, hands out plans, replays events in serial order."""

    def __init__(self, session: Session, plans: list[Part], n: int) -> None:
        self.session = session
        self.plans = plans
        self.units = units(session, plans)
        self.n = min(n, len(self.units))
        self.next_unit = 0
        self.buffers: dict[int, list[tuple[Any, ...]]] = {i: [] for i in range(len(plans))}
        self.finished: set[int] = set()
        self.cursor = 0  # the first plan not yet replayed to its end
        self.stopped = False  # replay reached a stop: later events are dropped
        self.workers: list[_Worker] = []
        self.temps: list[str] = []

    def run(self) -> None:
        if self.n <= 1:  # every plan shares one workdir with another: nothing can run beside anything
            for cplan, items, prerequisites in self.plans:
                if self.session.shouldstop:
                    break
                self.session.run_plan(cplan, items, prerequisites)
            return
        try:
            self._start()
            self._loop()
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            self._shutdown()

    def _start(self) -> None:
        from planrun import process

        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(self.n):
            temp = process.temp_for_child("planrun-worker-")
            self.temps.append(temp)  # its tempfile folder: removed once every worker is reaped, whatever it left
            task_r, task_w = os.pipe()
            event_r, event_w = os.pipe()
            with warnings.catch_warnings():  # Python 3.12 warns about fork with threads alive; ours are idle
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                process.use_temp(temp)
                os.close(task_w)
                os.close(event_r)
                for other in self.workers:
                    os.close(other.tasks)
                    os.close(other.reader.fd)
                _child(self.session, self.plans, task_r, event_w)
            os.close(task_r)
            os.close(event_w)
            worker = _Worker(pid, task_w, event_r)
            self.workers.append(worker)
            self._hand_out(worker)

    def _hand_out(self, worker: _Worker) -> None:
        if self.next_unit < len(self.units) and not self.session.shouldstop:
            worker.unit = list(self.units[self.next_unit])
            self.next_unit += 1
            _send(worker.tasks, (tuple(worker.unit),))
        else:
            worker.unit = []
            if not worker.said_bye:
                worker.said_bye = True
                try:
                    _send(worker.tasks, (None,))
                except OSError:
                    pass

    def _loop(self) -> None:
        """Read and replay the workers' events until every worker is done.

        Ctrl-C and SIGTERM are let in only while it waits: a message read is
        always buffered or replayed whole, so an interrupt never loses a
        report a worker sent (the workers were forked before: they keep the
        signals).
        """
        import select

        old = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        try:
            while True:
                alive = [w for w in self.workers if not w.reader.eof]
                if not alive:
                    break
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
                try:
                    ready, _, _ = select.select([w.reader.fd for w in alive], [], [])
                finally:
                    signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
                for worker in alive:
                    if worker.reader.fd in ready:
                        for message in worker.reader.read():
                            self._receive(worker, message)
                        if worker.reader.eof:
                            self._ended(worker)
            self._replay()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _receive(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        index, kind = message[0], message[1]
        if kind == "crashed":
            self._fail(worker, f"it crashed:\n{message[2]}")
        if kind == "interrupted":
            worker.interrupted = True
            return
        if kind == "progress":  # live status: only the plan being shown now; stale otherwise
            if index == self.cursor and not self.stopped:
                self._apply(index, message[1:])
            return
        self.buffers[index].append(message[1:])
        if kind == "done":
            self.finished.add(index)
            if index in worker.unit:
                worker.unit.remove(index)
            self._replay()
            if not worker.unit:
                self._hand_out(worker)
        elif index == self.cursor:
            self._replay()

    def _replay(self) -> None:
        """Replay the buffered events of the plans in order, as far as they are known."""
        session = self.session
        while self.cursor < len(self.plans):
            events = self.buffers[self.cursor]
            while events:
                event = events.pop(0)
                if self.stopped:
                    continue
                self._apply(self.cursor, event)
                if session.shouldstop and not self.stopped:
                    self._stop_all()
            if self.cursor not in self.finished:
                return
            self.cursor += 1

    def _apply(self, index: int, event: tuple[Any, ...]) -> None:
        session, hook = self.session, self.session.config.hook
        kind = event[0]
        if kind == "start":
            if event[3] is not None:  # where the worker runs it, as a serial run's reporters see it
                self.plans[index].cplan.workdir = Path(event[3])
            hook.planrun_runtest_logstart(nodeid=event[1], location=event[2])
        elif kind == "executed":
            hook.planrun_task_executed(nodeid=event[1], attempt=event[2], status=event[3])
        elif kind == "report":
            session.log(event[1])
        elif kind == "progress":
            hook.planrun_task_progress(nodeid=event[1], attempt=event[2], status=event[3])
        elif kind == "shouldstop":
            session.shouldstop = session.shouldstop or event[1]
        elif kind == "warnings":
            session.config.warnings.extend(event[1])

    def _stop_all(self) -> None:
        """Replay reached a stop (``-x``, an executor's request): no new plans, and every worker ends now.

        A serial run would not have started what the workers run at this
        moment, so they are interrupted (their steps killed) and whatever
        they report from here on is dropped.
        """
        self.stopped = True
        for worker in self.workers:
            if worker.exited is None and not worker.reader.eof:
                _signal(worker.pid, signal.SIGTERM)

    def _ended(self, worker: _Worker) -> None:
        _, status = os.waitpid(worker.pid, 0)
        worker.exited = status
        if self.stopped:
            return  # asked to stop: however it ended, what it did after the stop point is not reported
        if worker.interrupted:  # SIGINT or SIGTERM reached a worker alone: the run is interrupted
            raise KeyboardInterrupt("SIGINT")
        if worker.unit:
            self._fail(worker, _describe(status))
        elif os.waitstatus_to_exitcode(status) != 0:
            self._fail(worker, _describe(status))

    def _fail(self, worker: _Worker, how: str) -> None:
        plan = self.plans[worker.unit[0]][0].display if worker.unit else "no plan"
        self._replay_known()
        raise RuntimeError(f"worker {worker.pid} died while running {plan}: {how}")

    def _replay_known(self) -> None:
        """Before an error ends the run: replay what arrived, in order, so the report shows it."""
        for index in range(self.cursor, len(self.plans)):
            self.finished.add(index)
        self._replay()

    def _interrupt(self) -> None:
        """Ctrl-C or SIGTERM: every worker reports its current item as interrupted, then the events are replayed."""
        for worker in self.workers:
            if worker.exited is None:
                _signal(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        import select

        while time.monotonic() < deadline:
            alive = [w for w in self.workers if not w.reader.eof]
            if not alive:
                break
            try:
                ready, _, _ = select.select([w.reader.fd for w in alive], [], [], max(0.0, deadline - time.monotonic()))
            except KeyboardInterrupt:
                continue  # a second Ctrl-C: keep collecting until the grace ends
            for worker in alive:
                if worker.reader.fd in ready:
                    for message in worker.reader.read():
                        if message[1] not in ("crashed", "interrupted", "progress"):
                            self.buffers[message[0]].append(message[1:])
                            if message[1] == "done":
                                self.finished.add(message[0])
        self.stopped = False
        self._replay_known()

    def _shutdown(self) -> None:
        """Every worker ended and reaped. One still running (the run ends on an error) is asked first (SIGTERM:
        it kills its steps and removes its temporary workspace and files), and killed only after the grace.
        Then each worker's temp folder goes, with whatever a worker that was killed left in it."""
        from planrun import process

        running = []
        for worker in self.workers:
            for fd in (worker.tasks, worker.reader.fd):  # nothing more is read: a report it writes fails at once
                try:
                    os.close(fd)
                except OSError:
                    pass
            if worker.exited is None:
                try:
                    pid, status = os.waitpid(worker.pid, os.WNOHANG)
                except ChildProcessError:
                    pid, status = worker.pid, 0
                if pid == 0:
                    _signal(worker.pid, signal.SIGTERM)
                    running.append(worker)
                else:
                    worker.exited = status
        deadline = time.monotonic() + GRACE
        for worker in running:
            status = 0
            while True:
                try:
                    pid, status = os.waitpid(worker.pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid:
                    break
                if time.monotonic() > deadline:
                    _signal(worker.pid, signal.SIGKILL)
                    try:
                        _, status = os.waitpid(worker.pid, 0)
                    except ChildProcessError:
                        pass
                    break
                time.sleep(0.02)
            worker.exited = status
        for temp in self.temps:  # every worker reaped: what one that died left behind goes too
            process.remove_temp(temp)


def units(session: Session, plans: list[Part]) -> list[list[int]]:
    """The plans grouped into what may run beside each other, in order.

    A plan whose tasks are performed (not only verified) in place changes its
    workdir, so every plan with that workdir (performed or verify-only: a
    reader must see what a serial run would show it) runs on one worker, in
    order. Plans in their own workspace (``temp``, ``copy``) and verify-only
    plans of a workdir nothing changes are each a unit of their own.
    """
    import os.path

    config = session.config
    bases: list[str | None] = []
    written: set[str] = set()
    for cplan, items, _ in plans:
        if cplan.head.workspace != "inplace":
            bases.append(None)
            continue
        base = os.path.realpath(cplan.base_workdir(config.rootdir, config.option.workdir))
        bases.append(base)
        if any(session.executor_name_for(item) is not None for item in items):
            written.add(base)
    groups: dict[str, list[int]] = {}
    result: list[list[int]] = []
    for index, base in enumerate(bases):
        if base is None or base not in written:
            result.append([index])
        elif base in groups:
            groups[base].append(index)
        else:
            groups[base] = [index]
            result.append(groups[base])
    return result


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code} before it finished the plan"
