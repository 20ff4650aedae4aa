"""Run one child process safely: own session, no stdin, capped output, group kill, no orphans."""

from __future__ import annotations

import os
import select
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ProcessResult", "run_process"]

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
    """

    command: str
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration: float

    def output_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of stdout followed by stderr, for failure reports.

        Lines are split on ``"\\n"``; a final newline does not start an empty line.

        :param lines: how many lines to keep; ``0`` or less gives ``""``.
        """
        if lines <= 0:
            return ""
        return "\n".join((_lines(self.stdout) + _lines(self.stderr))[-lines:])


def _lines(text: str) -> list[str]:
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


class _Capped:
    """Keeps the first and last ``limit // 2`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.omitted = 0

    def add(self, data: bytes) -> None:
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

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if not self.omitted:
            return head + tail
        sep = "\n" if head and not head.endswith("\n") else ""
        return f"{head}{sep}[... {self.omitted} bytes omitted ...]\n{tail}"


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

    def __init__(self, proc: subprocess.Popen[bytes], max_output: int) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.pid = proc.pid
        self.out = _Capped(max_output)
        self.err = _Capped(max_output)
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

    Caveat: the group is the unit of cleanup, so a descendant that leaves it
    (``setsid``, ``setpgid``, a daemonizing server) escapes the kill; at
    most a bounded amount of what it writes to the inherited pipes is read.

    :param command: a shell command line, or an argument vector.
    :param cwd: the directory to run in.
    :param timeout: seconds before the process group is killed.
    :param env: the complete environment for the child; ``None`` inherits
        :data:`os.environ`.
    :param max_output: bytes kept per stream (half from the start, half from
        the end).
    :param kill_grace: seconds between SIGTERM and SIGKILL on timeout.
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
    start = time.monotonic()
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
    pump: _Pump | None = None
    timed_out = False
    try:
        pump = _Pump(proc, max_output)
        pump.start()
        if not pump.until_exit(start + timeout):
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            pump.until_exit(time.monotonic() + kill_grace)
        # The child is not reaped yet (dead, or alive past the grace), so its pid still
        # names our group: the KILL cannot reach a stranger that reused the number.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        pump.drain()
    except BaseException:
        _abort(proc, None if pump is None else pump.pidfd, min(kill_grace, _ABORT_GRACE))
        raise
    finally:
        if pump is not None:
            pump.close()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert pump is not None
    return ProcessResult(
        command=display,
        returncode=None if timed_out else proc.returncode,
        stdout=pump.out.text(),
        stderr=pump.err.text(),
        timed_out=timed_out,
        duration=time.monotonic() - start,
    )
