"""Run one child process safely: own session, no stdin, capped output, group kill, no orphans."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class ProcessResult:
    """What a finished (or killed) process left behind.

    :param returncode: the exit status; a negative number is the signal that
        ended it (as :mod:`subprocess` reports it); ``None`` when it was
        killed for running past its timeout.
    """

    command: str
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration: float

    def output_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of stdout then stderr, for failure reports."""
        text = self.stdout
        if self.stderr:
            text = (text + ("\n" if text and not text.endswith("\n") else "") + self.stderr)
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])


class _Capped:
    """Keeps the first and last ``limit // 2`` bytes of a stream and counts the middle."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        extra = len(self.tail) - self.half
        if extra > 0:
            self.dropped += extra
            del self.tail[:extra]

    def text(self) -> str:
        out = self.head.decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[... {self.dropped} bytes omitted ...]\n"
        return out + self.tail.decode("utf-8", "replace")


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """TERM the group, give it ``grace`` seconds, then KILL whatever is left."""
    pgid = proc.pid
    if _signal_group(pgid, signal.SIGTERM):
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(pgid, signal.SIGKILL)  # the leader may be gone while children live on
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
    """Run ``command`` and wait for it, at most ``timeout`` seconds.

    A string runs through ``/bin/sh -c``; a sequence is executed directly.
    The child gets its own session (so its process group can be killed as a
    whole and a terminal's Ctrl-C does not reach it), stdin from /dev/null,
    and separate stdout/stderr pipes read as they fill, each capped at
    ``max_output`` bytes (head and tail kept, the middle counted).

    When the child exits, whatever it left running in its group is killed:
    a background ``sleep 300 &`` cannot outlive the step or hold its pipes.
    On timeout the group gets SIGTERM, then SIGKILL after ``kill_grace``.
    Any exception during the wait (Ctrl-C included) kills the group before it
    propagates. A grandchild that calls ``setsid`` itself escapes the group.

    :raises OSError: the command could not be started (missing ``cwd`` or
        executable).
    """
    shell = isinstance(command, str)
    display = command if isinstance(command, str) else " ".join(command)
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        shell=shell,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capped(max_output), _Capped(max_output)
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    sel = selectors.DefaultSelector()
    pidfd = -1
    timed_out = False
    try:
        for fd in streams:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            pidfd = -1  # no pidfd: poll the child between short waits
        deadline = start + timeout
        open_fds = set(streams)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            wait = remaining if pidfd >= 0 else min(remaining, 0.05)
            for key, _ in sel.select(wait):
                fd = key.fd
                if fd == pidfd:
                    continue
                _drain(fd, streams[fd], sel, open_fds)
            if proc.poll() is not None:
                break
            if not open_fds and pidfd < 0:
                # pipes closed: the child is about to exit
                try:
                    proc.wait(timeout=min(max(deadline - time.monotonic(), 0), 0.05))
                except subprocess.TimeoutExpired:
                    continue
                break
        if timed_out:
            _kill_group(proc, kill_grace)
        else:
            _signal_group(proc.pid, signal.SIGKILL)  # orphans of a finished step
            proc.wait()
        for fd in list(open_fds):
            _drain(fd, streams[fd], sel, open_fds, final=True)
    except BaseException:
        _kill_group(proc, min(kill_grace, 0.5))
        raise
    finally:
        sel.close()
        if pidfd >= 0:
            os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    return ProcessResult(
        command=display,
        returncode=None if timed_out else proc.returncode,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        duration=time.monotonic() - start,
    )


def _drain(fd: int, sink: _Capped, sel: selectors.BaseSelector, open_fds: set[int], final: bool = False) -> None:
    """Read what ``fd`` has without blocking; unregister it at EOF."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            open_fds.discard(fd)
            try:
                sel.unregister(fd)
            except (KeyError, ValueError):
                pass
            return
        sink.add(chunk)
        if not final and len(chunk) < 65536:
            return
