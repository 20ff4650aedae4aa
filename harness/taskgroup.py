"""``-n``: independent tasks of one plan performed side by side, each in a forked process.

Which tasks (:func:`may_join`, :func:`overlap`): consecutive tasks of the
plan, each performed by an executor, whose dependencies have all passed,
that each declare ``files``, and that cannot see each other's work: no task
of the group writes (its ``files``) what another of them writes or what the
criteria of another read (the paths file and data criteria name, the files
commands name), and none but the first writes what a criterion of an earlier
task reads (so a regression is blamed on the task a serial run blames).
Paths and globs are compared by their leading literal components, so two of
them overlap unless a component tells them apart.

How: the baselines of all of them are taken first, then each task is
performed (executed, its criteria asserted, attempt after attempt) in a
process of its own, forked from the one running the plan, so every time
limit, cache and plugin is its own there. When every one has ended, the
runner completes and reports them one by one in plan order, exactly as a
serial run would report them (its hooks, the state store and the reports see
nothing else), only the durations differ.

Ctrl-C or SIGTERM reach each of them (each ends its steps); one that has not
ended within a grace is killed, and whatever their steps left behind is
killed too. Each process has a temp folder of its own (``tempfile``'s),
removed once it has been reaped, with whatever a killed one left there. A
process that dies without an answer makes its task an error.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from planrun import process

if TYPE_CHECKING:
    from planrun.runner import Performed

#: Seconds a task's process gets to end its steps after Ctrl-C or SIGTERM before it is killed.
GRACE = 5.0

_GLOB = frozenset("*?[")


def prefix(pattern: str) -> tuple[str, ...] | None:
    """The leading literal components of a workdir-relative path or glob; ``None``: it could be anywhere."""
    if os.path.isabs(pattern):
        return None
    out: list[str] = []
    for part in pattern.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." or _GLOB & set(part):
            return tuple(out) if part != ".." else None
        out.append(part)
    return tuple(out)


def overlap(a: Iterable[tuple[str, ...] | None], b: Iterable[tuple[str, ...] | None]) -> bool:
    """Whether a path of ``a`` and a path of ``b`` may name the same file (one's components begin the other's)."""
    b = list(b)
    for x in a:
        for y in b:
            if x is None or y is None:
                return True
            n = min(len(x), len(y))
            if x[:n] == y[:n]:
                return True
    return False


class Job:
    """One task to perform beside others: ``perform`` runs in the forked process and returns what it gave."""

    def __init__(self, nodeid: str, perform: Callable[[], Performed]) -> None:
        self.nodeid = nodeid
        self.perform = perform
        self.pid = 0
        self.fd = -1
        self.data = bytearray()
        self.status: int | None = None


def perform_beside(jobs: Sequence[Job]) -> list[Performed | str]:
    """Perform every job at once, each in a forked process; each one's :class:`Performed`, or why it has none.

    Returns when every process has ended. An exception here (Ctrl-C, SIGTERM)
    interrupts them all first: each is sent SIGTERM, then SIGKILL after
    :data:`GRACE`; nothing any of them started outlives the call.
    """
    before = process.child_pids()
    started: list[Job] = []
    temps: list[str] = []  # each process's tempfile folder: whatever one that was killed left there goes with it
    try:
        for job in jobs:
            temps.append(process.temp_for_child("planrun-task-"))
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; its coverage is not collected
                process.use_temp(temps[-1])
                os.close(read)
                _child(job, write)
            os.close(write)
            job.pid, job.fd = pid, read
            started.append(job)
        for job in started:
            while True:
                chunk = os.read(job.fd, 1 << 16)
                if not chunk:
                    break
                job.data += chunk
            _, job.status = os.waitpid(job.pid, 0)
    except BaseException:
        _interrupt(started)
        raise
    finally:
        for job in started:
            os.close(job.fd)
        process.reap_new_children(before)  # what the tasks' processes left behind, re-parented here
        for temp in temps:
            process.remove_temp(temp)
    return [_answer(job) for job in jobs]


def _answer(job: Job) -> Performed | str:
    try:
        message = pickle.loads(bytes(job.data))  # our own child, same code: trusted
    except Exception:
        message = None
    if isinstance(message, tuple) and message and message[0] == "done":
        return message[1]  # type: ignore[no-any-return]
    if isinstance(message, tuple) and message and message[0] == "crashed":
        return f"the process performing it beside other tasks crashed:\n{message[1]}"
    status = job.status or 0
    code = os.waitstatus_to_exitcode(status)
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return f"the process performing it beside other tasks ended ({how}) without an answer"


def _interrupt(jobs: Sequence[Job]) -> None:
    """SIGTERM every job's process still running; SIGKILL what is left after the grace; reap them all."""
    alive = [job for job in jobs if job.status is None]
    for job in alive:
        _signal(job.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    for job in alive:
        while job.status is None:
            try:
                pid, status = os.waitpid(job.pid, os.WNOHANG)
            except ChildProcessError:
                job.status = 0
                break
            if pid:
                job.status = status
            elif time.monotonic() >= deadline:
                _signal(job.pid, signal.SIGKILL)
                _, job.status = os.waitpid(job.pid, 0)
            else:
                time.sleep(0.01)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _child(job: Job, fd: int) -> None:  # pragma: no cover - runs in the forked process
    code = 0
    try:
        process.make_subreaper()  # what its steps leave behind re-parents here, where their reaping finds it
        process.die_with_parent()
        try:
            message: tuple[object, ...] = ("done", job.perform())
        except KeyboardInterrupt:
            message = ("interrupted",)
        except BaseException:
            message = ("crashed", traceback.format_exc())
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = pickle.dumps(("crashed", traceback.format_exc()), protocol=pickle.HIGHEST_PROTOCOL)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # the answer is written whole
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        code = 3
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)  # never return into the parent's stack (or pytest's)
