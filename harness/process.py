"""Run one child process safely: own session, no stdin, capped output, group kill, no orphans."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import select
import selectors
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["ProcessResult", "child_pids", "descendants", "make_subreaper", "reap_new_children", "run_process"]

_CHUNK = 65536
"""Bytes asked for per read (the default pipe capacity on Linux)."""

_FINAL_READS = 64
"""Reads per stream after the group is killed: 4 MiB, more than a pipe can hold
even when resized up to the default ``pipe-max-size``; bounds the drain when an
escaped writer keeps the pipe busy."""

_ABORT_GRACE = 0.5
"""Longest wait between SIGTERM and SIGKILL when an exception interrupts the wait."""

_MAX_WAIT = 3600.0
"""Longest single select, so an infinite timeout stays a valid poll argument."""

_POLL_FIRST = 0.0002
_POLL_MAX = 0.05
"""Without a pidfd, the child's exit is checked after selects this short: the wait
doubles while nothing happens and starts again small after output."""


@dataclass
class ProcessResult:
    """What a finished (or killed) process left behind.

    :param command: the display form of what ran: the shell string as given,
        or the argument vector joined with :func:`shlex.join`.
    :param returncode: the exit status as :mod:`subprocess` reports it: a
        negative number ``-N`` means the process was ended by signal ``N``
        (through ``/bin/sh -c`` the shell may report that as ``128 + N``
        instead); ``None`` when the process was killed for running past its
        timeout.
    :param stdout: standard output, decoded as UTF-8 with ``errors="replace"``
        and capped (see :func:`run_process`).
    :param stderr: standard error, the same way.
    :param timed_out: the timeout passed and the process group was killed.
    :param duration: wall-clock seconds from start to return.
    :param stdout_omitted: bytes of stdout the cap left out (the middle).
    :param stderr_omitted: the same for stderr.
    :param stdout_bytes: bytes of stdout read in all (``-1``: not counted).
    :param stderr_bytes: the same for stderr.
    :param stdout_seen: the ``watch_stdout`` strings that occurred anywhere in
        stdout as it was read, cut middle included.
    :param stderr_seen: the same for ``watch_stderr``.
    :param stdout_sha256: with ``hash_output``, the SHA-256 (hex) of all of
        stdout as it was read, the capped-away middle included; else ``None``.
    :param stderr_sha256: the same for stderr.
    """

    command: str
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration: float
    stdout_omitted: int = 0
    stderr_omitted: int = 0
    stdout_bytes: int = -1
    stderr_bytes: int = -1
    stdout_seen: frozenset[str] = field(default_factory=frozenset)
    stderr_seen: frozenset[str] = field(default_factory=frozenset)
    stdout_sha256: str | None = None
    stderr_sha256: str | None = None

    def output_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of stdout followed by stderr, for failure reports.

        Lines are split on ``"\\n"``; a final newline does not start an empty line.
        A stream that was capped says how much of it the tail leaves out: a line
        ``[... N bytes of stdout not shown ...]`` stands where its shown part is cut
        (at the top, or where the cap's own marker would have been).

        :param lines: how many lines to keep; ``0`` or less gives ``""``.
        """
        if lines <= 0:
            return ""
        out, err = _lines(self.stdout), _lines(self.stderr)
        keep_err = min(lines, len(err))
        keep_out = min(lines - keep_err, len(out))
        shown: list[str] = []
        for name, text, parts, keep, omitted, total in (
            ("stdout", self.stdout, out, keep_out, self.stdout_omitted, self.stdout_bytes),
            ("stderr", self.stderr, err, keep_err, self.stderr_omitted, self.stderr_bytes),
        ):
            shown.extend(_cut(name, text, parts, keep, omitted, total))
        return "\n".join(shown)


def _marker(omitted: int) -> str:
    return f"[... {omitted} bytes omitted ...]"


def _cut(name: str, text: str, parts: list[str], keep: int, omitted: int, total: int) -> list[str]:
    """The last ``keep`` of a stream's ``parts``; for a capped stream, with a line saying what is not shown.

    ``total`` is how many bytes the stream had (``-1``: unknown, count the text).
    """
    first = len(parts) - keep
    shown = parts[first:]
    if not omitted:
        return shown
    marker = _marker(omitted)
    try:
        at = parts.index(marker)  # the cap's marker: output cannot come before the head, so the first such line
    except ValueError:
        return shown
    real = [line for i, line in enumerate(shown, first) if i != at]
    shown_bytes = sum(len(line.encode("utf-8", "replace")) + 1 for line in real)
    if real and not text.endswith("\n"):
        shown_bytes -= 1  # the last line has no newline
    if 0 < at and first < at:  # the head's last line is shown: was its newline the cap's own separator?
        offset = sum(len(line) + 1 for line in parts[:at])
        head = text[:offset].encode("utf-8", "replace")
        tail = text[offset + len(marker) + 1 :].encode("utf-8", "replace")
        if len(head) == len(tail) + 1:  # head and tail keep the same number of bytes: one was added
            shown_bytes -= 1
    if total < 0:
        total = len(text.encode("utf-8", "replace")) - len(marker) - 1 + omitted
    note = f"[... {max(total - shown_bytes, 0)} bytes of {name} not shown ...]"
    if first <= at:  # the cap's marker is among the shown lines: the note takes its place
        return [note if i == at else line for i, line in enumerate(shown, first)]
    return [note, *shown]


def _lines(text: str) -> list[str]:
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


class _Capped:
    """Keeps the first and last ``limit // 2`` bytes of a stream and counts the rest.

    It also looks for ``needles`` in everything that passes, the cut middle
    included: each chunk is searched together with the last ``len(needle) - 1``
    bytes before it, so a needle split across reads is found. With ``digest``
    everything that passes is hashed (SHA-256) too.
    """

    def __init__(self, limit: int, needles: Iterable[str] = (), digest: bool = False) -> None:
        self.sha = hashlib.sha256() if digest else None
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.omitted = 0
        self.total = 0
        self.seen: set[str] = set()
        self.wanted = {n: n.encode("utf-8") for n in needles}
        self.overlap = max((len(b) for b in self.wanted.values()), default=1) - 1
        self.carry = b""
        for needle, raw in list(self.wanted.items()):
            if not raw:
                self.seen.add(needle)
                del self.wanted[needle]

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if self.sha is not None:
            self.sha.update(data)
        if self.wanted:
            self._watch(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            if len(data) <= room:
                return
            data = data[room:]
        self.tail += data
        extra = len(self.tail) - self.half
        if extra > 0:
            del self.tail[:extra]  # cheap: bytearray drops a prefix by moving its start
            self.omitted += extra

    def _watch(self, data: bytes) -> None:
        window = self.carry + data
        for needle, raw in list(self.wanted.items()):
            if raw in window:
                self.seen.add(needle)
                del self.wanted[needle]
        self.carry = window[len(window) - self.overlap :] if self.overlap else b""

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if not self.omitted:
            return head + tail
        sep = "\n" if head and not head.endswith("\n") else ""
        return f"{head}{sep}{_marker(self.omitted)}\n{tail}"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left in the group (or nothing we may signal)


def _exited(pid: int) -> bool:
    """True once the child has exited, without reaping it (its pid keeps the group id taken)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # reaped behind our back (SIGCHLD ignored): gone all the same


def _wait_exit(pid: int, pidfd: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the child to exit, without reading or reaping."""
    deadline = time.monotonic() + timeout
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(min(max(timeout, 0.0), _MAX_WAIT) * 1000))
    pause = _POLL_FIRST
    while not _exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)
    return True


class _Pump:
    """Reads both pipes into their caps while watching for the child's exit."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        max_output: int,
        watch_stdout: Iterable[str] = (),
        watch_stderr: Iterable[str] = (),
        digest: bool = False,
    ) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.pid = proc.pid
        self.out = _Capped(max_output, watch_stdout, digest)
        self.err = _Capped(max_output, watch_stderr, digest)
        self.sinks = {proc.stdout.fileno(): self.out, proc.stderr.fileno(): self.err}
        self.open = set(self.sinks)
        self.sel: selectors.BaseSelector = (
            selectors.PollSelector() if hasattr(selectors, "PollSelector") else selectors.SelectSelector()
        )
        self.pidfd: int | None = None

    def start(self) -> None:
        """Register the pipes, and a pidfd for the child when the system has them."""
        for fd in self.sinks:
            self.sel.register(fd, selectors.EVENT_READ)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            return  # old kernel, other OS, or a sandbox that forbids it: poll instead
        self.sel.register(self.pidfd, selectors.EVENT_READ)

    def until_exit(self, deadline: float) -> bool:
        """Read output until the child exits (True) or ``deadline`` passes (False).

        The child is not reaped, so its pid still names the process group.
        """
        pause = _POLL_FIRST
        while True:
            remaining = min(max(deadline - time.monotonic(), 0.0), _MAX_WAIT)
            if self.pidfd is not None:
                events = self.sel.select(remaining)
            else:
                remaining = min(remaining, pause)
                pause = min(pause * 2, _POLL_MAX)
                if self.open:
                    events = self.sel.select(remaining)
                else:
                    time.sleep(remaining)  # finer than poll(), which counts whole milliseconds
                    events = []
            exited = False
            for key, _ in events:
                if key.fd == self.pidfd:
                    exited = True
                else:
                    self._read(key.fd)
            if exited or (self.pidfd is None and _exited(self.pid)):
                return True
            if time.monotonic() >= deadline:
                return False
            if events:
                pause = _POLL_FIRST  # output (or EOF) often comes just before the exit

    def _read(self, fd: int) -> bool:
        """One read from ``fd``; False when nothing more can come now (EOF or empty)."""
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.open.discard(fd)
            self.sel.unregister(fd)
            return False
        self.sinks[fd].add(chunk)
        return True

    def drain(self) -> None:
        """Read what the pipes still hold without blocking (writers are dead or dying)."""
        for fd in list(self.open):
            os.set_blocking(fd, False)
            for _ in range(_FINAL_READS):
                if not self._read(fd):
                    break

    def close(self) -> None:
        self.sel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


# -- escaped descendants ----------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36

_REAP_ROUNDS = 200
_REAP_TIME = 10.0
"""Bounds of :func:`reap_new_children`: kill rounds, and seconds spent waiting for killed children."""

_RUNNING: set[int] = set()
_RUNNING_LOCK = threading.Lock()
"""Pids of the children :func:`run_process` calls are running now (in any thread): never strays."""


def die_with_parent() -> None:
    """Linux: SIGKILL this process (a worker, a task performed beside others) when its parent dies.

    ``kill -9`` of planrun must not leave it running.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call took effect
        os._exit(3)


def make_subreaper() -> bool:
    """Make this process the child subreaper (Linux): orphaned descendants re-parent to it, not to PID 1.

    Then :func:`reap_new_children` can find a descendant that left its process
    group or session (``setsid``, a double fork). Idempotent; True when set.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def temp_for_child(prefix: str) -> str:
    """A folder made here for a process about to be forked: its ``tempfile`` folder (:func:`use_temp`).

    Whatever the child leaves there (a temporary workspace, a step script),
    killed or not, the parent removes with the folder once it has reaped the
    child (:func:`remove_temp`), so nothing is left behind a worker that died.
    """
    import tempfile

    return tempfile.mkdtemp(prefix=prefix)


def use_temp(folder: str) -> None:
    """In the forked child: make ``folder`` (from :func:`temp_for_child`) where ``tempfile`` puts everything."""
    import tempfile

    tempfile.tempdir = folder


def remove_temp(folder: str) -> None:
    """Remove a child's temp folder (after it was reaped); ``rmtree`` follows no symlink out of it."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


class _Proc:
    __slots__ = ("pid", "ppid", "pgid", "sid", "zombie")

    def __init__(self, pid: int, ppid: int, pgid: int, sid: int, zombie: bool) -> None:
        self.pid, self.ppid, self.pgid, self.sid, self.zombie = pid, ppid, pgid, sid, zombie


def _table() -> dict[int, _Proc]:
    """Every process this one can see in ``/proc``: parent, group, session, zombie or not."""
    procs: dict[int, _Proc] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return procs
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # exited meanwhile
        try:
            stat = os.read(fd, 4096)  # os.read: a third of the cost of open(); this runs twice per command
        except OSError:
            continue
        finally:
            os.close(fd)
        fields = stat[stat.rfind(b")") + 2 :].split()  # the name in parentheses may hold anything
        if len(fields) < 4:
            continue
        pid = int(name)
        procs[pid] = _Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0] in (b"Z", b"X"))
    return procs


def child_pids() -> frozenset[int]:
    """The pids of this process's children now (zombies included)."""
    me = os.getpid()
    return frozenset(p.pid for p in _table().values() if p.ppid == me)


def _subtree(table: Mapping[int, _Proc], roots: Iterable[int]) -> set[int]:
    kids: dict[int, list[int]] = {}
    for p in table.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    found: set[int] = set()
    todo = [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(kids.get(pid, ()))
    return found


def descendants(pid: int | None = None) -> list[int]:
    """The pids of every live (not zombie) descendant of ``pid`` (default: this process), sorted."""
    root = os.getpid() if pid is None else pid
    table = _table()
    return sorted(p for p in _subtree(table, [root]) - {root} if not table[p].zombie)


def reap_new_children(before: Iterable[int], *, sessions: Iterable[int] = ()) -> list[int]:
    """SIGKILL every child of this process not in ``before``, with all its descendants, and reap them.

    ``before`` is a :func:`child_pids` snapshot taken before something ran:
    the children that appeared since (escaped descendants re-parented to this
    subreaper, see :func:`make_subreaper`) are strays, the others are left
    alone (a server a caller started is not ours to kill). Children of
    :func:`run_process` calls still running in other threads are left alone
    too. Each stray's whole tree is killed, and every process group a killed
    process leads; so is every process in ``sessions`` (the session a
    command's shell led, which a ``setpgid`` escapee keeps). A descendant still
    held by a stray re-parents here when the stray dies, so this repeats until
    nothing new is left (bounded). Only strays are waited for.

    :returns: the pids killed, sorted.
    """
    me = os.getpid()
    mygroup = os.getpgid(0)
    keep = set(before)
    sids = set(sessions) - {os.getsid(0)}
    killed: set[int] = set()
    deadline = time.monotonic() + _REAP_TIME
    for _ in range(_REAP_ROUNDS):
        with _RUNNING_LOCK:
            running = set(_RUNNING)
        table = _table()
        strays = {p.pid for p in table.values() if p.ppid == me and p.pid not in keep and p.pid not in running}
        members = {p.pid for p in table.values() if p.sid in sids and p.pid != me}
        victims = _subtree(table, strays | members) - {me}
        live = {pid for pid in victims if not table[pid].zombie}
        if not strays and not live:
            break
        for pid in live:
            _kill(pid)
        for pgid in {table[pid].pgid for pid in live} & victims - {mygroup}:
            _signal_group(pgid, signal.SIGKILL)  # a group led by a stray: members elsewhere in the tree
        killed |= live
        pending = False
        for pid in strays:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            pending = pending or not done
        if pending:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)
    return sorted(killed)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_strays(before: frozenset[int], sessions: Iterable[int]) -> None:
    """:func:`reap_new_children`, done again if a signal handler's exception interrupts it."""
    try:
        reap_new_children(before, sessions=sessions)
    except BaseException:
        reap_new_children(before, sessions=sessions)
        raise


def _abort(proc: subprocess.Popen[bytes], pidfd: int | None, grace: float) -> None:
    """Kill the group (TERM, ``grace``, KILL) and reap the child, whatever interrupts us."""
    if proc.returncode is not None:
        return  # already reaped, which only happens after the group was killed
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        _wait_exit(proc.pid, pidfd, grace)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def run_process(
    command: str | Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    max_output: int = 1 << 20,
    kill_grace: float = 2.0,
    watch_stdout: Sequence[str] = (),
    watch_stderr: Sequence[str] = (),
    hash_output: bool = False,
) -> ProcessResult:
    """Run ``command`` to completion or for at most ``timeout`` seconds.

    A string runs through ``/bin/sh -c``; a sequence is executed directly
    (``PATH`` looked up in ``env`` when given). The child starts a new session,
    so it leads its own process group and gets no controlling terminal
    (a Ctrl-C in the terminal does not reach it). Its stdin is ``/dev/null``,
    no other descriptor is inherited, and stdout and stderr are separate
    pipes read as they fill. Each stream keeps its first and last
    ``max_output // 2`` bytes; the middle is replaced by a line
    ``[... N bytes omitted ...]``, so memory stays bounded however much
    the child writes.

    When the child exits, every process still in its group is sent SIGKILL
    (a background ``sleep 300 &`` cannot outlive the call, nor keep it waiting
    by holding the pipes open); output still buffered in the pipes is then
    read without blocking. The exit is seen through a pidfd on Linux >= 5.3,
    otherwise by polling between short waits.

    When ``timeout`` passes, the group gets SIGTERM; once the child exits or
    ``kill_grace`` seconds pass (output is still read meanwhile) the group gets
    SIGKILL, and the result has ``timed_out=True`` and ``returncode=None``.

    Any exception while waiting (:exc:`KeyboardInterrupt`, or whatever a
    signal handler of the caller raises) kills the group the same way, with a
    grace of at most half a second, reaps the child and closes the pipes
    before it propagates.

    A descendant that leaves the group (``setsid``, ``setpgid``, a double
    fork, a daemonizing server) is killed too, with its own descendants, when
    the child has exited or the call is interrupted (see
    :func:`reap_new_children`): one that kept the child's session is found by
    its session id; one that left it is found when it re-parents to this
    process, which needs :func:`make_subreaper` (Linux; planrun calls it at
    session start). Without that, such a process re-parents to PID 1 out of
    reach. At most a bounded amount of what escapees write to the inherited
    pipes is read.

    Strings in ``watch_stdout`` and ``watch_stderr`` are looked for in the
    whole stream as it is read (the capped-away middle included; a string
    split across reads is found); the result's ``stdout_seen`` and
    ``stderr_seen`` say which occurred.

    :param command: a shell command line, or an argument vector.
    :param cwd: the directory to run in.
    :param timeout: seconds before the process group is killed.
    :param env: the complete environment for the child; ``None`` inherits
        :data:`os.environ`.
    :param max_output: bytes kept per stream (half from the start, half from
        the end).
    :param kill_grace: seconds between SIGTERM and SIGKILL on timeout.
    :param watch_stdout: strings to look for in all of stdout (compared as UTF-8 bytes).
    :param watch_stderr: the same for stderr.
    :param hash_output: hash each whole stream as it is read (the result's
        ``stdout_sha256``/``stderr_sha256``), for the evidence record.
    :returns: what happened; a negative ``returncode`` is a signal number
        (see :class:`ProcessResult`).
    :raises OSError: the command could not be started (``cwd`` or the
        executable of a sequence command missing or not usable); no file
        descriptor is left open.
    :raises ValueError: an empty sequence, or a negative ``max_output`` or
        ``kill_grace``.
    """
    if max_output < 0:
        raise ValueError(f"max_output must be >= 0, not {max_output}")
    if kill_grace < 0:
        raise ValueError(f"kill_grace must be >= 0, not {kill_grace}")
    if isinstance(command, str):
        args: str | list[str] = command
        display = command
    else:
        args = list(command)
        if not args:
            raise ValueError("empty command")
        display = shlex.join(os.fsdecode(a) for a in args)
    before = child_pids()
    start = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None
    pump: _Pump | None = None
    timed_out = False
    swept = False
    try:
        proc = subprocess.Popen(  # on failure Popen closes its own pipes and re-raises
            args,
            shell=isinstance(args, str),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
        )
        with _RUNNING_LOCK:
            _RUNNING.add(proc.pid)
        try:
            pump = _Pump(proc, max_output, watch_stdout, watch_stderr, hash_output)
            pump.start()
            if not pump.until_exit(start + timeout):
                timed_out = True
                _signal_group(proc.pid, signal.SIGTERM)
                pump.until_exit(time.monotonic() + kill_grace)
            # The child is not reaped yet (dead, or alive past the grace), so its pid still
            # names our group: the KILL cannot reach a stranger that reused the number.
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            # Escapees next (their session keeps the child's pid taken): then the pipes reach EOF.
            reap_new_children(before, sessions=(proc.pid,))
            swept = True
            pump.drain()
        except BaseException:
            _abort(proc, None if pump is None else pump.pidfd, min(kill_grace, _ABORT_GRACE))
            raise
    finally:
        if proc is not None:
            with _RUNNING_LOCK:
                _RUNNING.discard(proc.pid)
        if pump is not None:
            pump.close()
        if proc is not None:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if not swept:  # interrupted, even inside Popen: kill whatever it started
            _reap_strays(before, () if proc is None else (proc.pid,))
    assert pump is not None
    return ProcessResult(
        command=display,
        returncode=None if timed_out else proc.returncode,
        stdout=pump.out.text(),
        stderr=pump.err.text(),
        timed_out=timed_out,
        duration=time.monotonic() - start,
        stdout_omitted=pump.out.omitted,
        stderr_omitted=pump.err.omitted,
        stdout_bytes=pump.out.total,
        stderr_bytes=pump.err.total,
        stdout_seen=frozenset(pump.out.seen),
        stderr_seen=frozenset(pump.err.seen),
        stdout_sha256=None if pump.out.sha is None else pump.out.sha.hexdigest(),
        stderr_sha256=None if pump.err.sha is None else pump.err.sha.hexdigest(),
    )
