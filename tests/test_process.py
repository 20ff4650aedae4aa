"""planrun.process: one child process, its output, its timeout and everything it leaves behind."""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from planrun.process import ProcessResult, run_process

REAP_WAIT = 10.0
"""Seconds to wait for a killed orphan to disappear. It is reparented to init,
which reaps it on its own schedule (some container inits only every ~2 s)."""


def _gone(pid: int, within: float = REAP_WAIT) -> bool:
    """True once ``pid`` no longer exists; a zombie still counts as existing."""
    deadline = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # exists, owned by someone else
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


def _assert_gone(*pids: int) -> None:
    deadline = time.monotonic() + REAP_WAIT
    for pid in pids:
        assert _gone(pid, max(deadline - time.monotonic(), 0.0)), f"pid {pid} still exists (state {_state(pid)})"


def _pid(path: Path) -> int:
    return int(path.read_text().strip())


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@contextmanager
def _raise_after(seconds: float, exc: BaseException) -> Iterator[None]:
    """Raise ``exc`` from a SIGALRM handler ``seconds`` from now, as a signal handler would."""

    def handler(signum: int, frame: object) -> None:
        raise exc

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(params=["pidfd", "poll"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with a pidfd watching the child, then with the polling fallback."""
    if request.param == "pidfd":
        if not hasattr(os, "pidfd_open"):
            pytest.skip("no os.pidfd_open here")
    else:

        def no_pidfd(pid: int, flags: int = 0) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    return str(request.param)


# -- exit status and streams ------------------------------------------------


def test_exit_code_and_streams_are_captured_separately(tmp_path: Path) -> None:
    result = run_process("echo out; echo err >&2; echo more; exit 3", cwd=tmp_path, timeout=30)
    assert result.returncode == 3
    assert result.stdout == "out\nmore\n"
    assert result.stderr == "err\n"
    assert result.timed_out is False
    assert result.command == "echo out; echo err >&2; echo more; exit 3"
    assert result.duration >= 0


def test_success_gives_zero(tmp_path: Path) -> None:
    result = run_process("true", cwd=tmp_path, timeout=30)
    assert (result.returncode, result.stdout, result.stderr, result.timed_out) == (0, "", "", False)


def test_sequence_is_executed_without_a_shell(tmp_path: Path) -> None:
    result = run_process(["printf", "%s|", "a b", "$HOME", ";"], cwd=tmp_path, timeout=30)
    assert result.returncode == 0
    assert result.stdout == "a b|$HOME|;|"
    assert result.command == "printf '%s|' 'a b' '$HOME' ';'"


def test_death_by_signal_gives_negative_returncode(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    result = run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=30)
    assert result.returncode == -signal.SIGKILL
    assert result.timed_out is False


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    result = run_process(r"printf 'a\377b'; printf '\303\251' >&2", cwd=tmp_path, timeout=30)
    assert result.stdout == "a\ufffdb"
    assert result.stderr == "\u00e9"


# -- what the child gets ----------------------------------------------------


def test_cwd_and_env_are_respected(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLANRUN_PROBE": "hello there"}
    result = run_process(
        'pwd; echo "$PLANRUN_PROBE"; echo "[${HOME-unset}]"', cwd=tmp_path / "sub", timeout=30, env=env
    )
    assert result.returncode == 0
    assert result.stdout.splitlines() == [str(tmp_path / "sub"), "hello there", "[unset]"]


def test_env_none_inherits_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANRUN_INHERITED", "yes-inherited")
    result = run_process('echo "$PLANRUN_INHERITED"', cwd=str(tmp_path), timeout=30)
    assert result.stdout == "yes-inherited\n"


def test_stdin_is_dev_null(tmp_path: Path) -> None:
    # Our own stdin becomes a pipe nobody writes to: a child inheriting it would block in cat.
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        result = run_process("cat; echo rc=$?; readlink /proc/self/fd/0", cwd=tmp_path, timeout=10)
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)
    assert result.timed_out is False
    assert result.stdout == "rc=0\n/dev/null\n"


def test_child_leads_its_own_session(tmp_path: Path) -> None:
    code = "import os; print(os.getpid(), os.getpgid(0), os.getsid(0))"
    result = run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=30)
    pid, pgid, sid = map(int, result.stdout.split())
    assert pid == pgid == sid
    assert sid != os.getsid(0)


def test_no_other_descriptor_is_inherited(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        os.set_inheritable(fd, True)
        code = "import json, os; print(json.dumps(sorted(int(f) for f in os.listdir('/proc/self/fd'))))"
        result = run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=30)
    finally:
        os.close(fd)
    fds = json.loads(result.stdout)
    assert fd not in fds
    assert fds[:3] == [0, 1, 2]
    assert len(fds) == 4  # 0, 1, 2 and the descriptor listdir itself used


# -- output -----------------------------------------------------------------


def test_big_output_on_both_streams_does_not_deadlock(tmp_path: Path) -> None:
    # Each stream gets several pipe buffers' worth while the other one is full.
    code = (
        "import sys\n"
        "for i in range(40):\n"
        "    sys.stderr.write('e' * 50000); sys.stderr.flush()\n"
        "    sys.stdout.write('o' * 50000); sys.stdout.flush()\n"
    )
    result = run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=60, max_output=10_000_000)
    assert result.timed_out is False
    assert result.returncode == 0
    assert result.stdout == "o" * 2_000_000
    assert result.stderr == "e" * 2_000_000


def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    result = run_process(
        "printf 0123456789ABCDEFGHIJ; printf abcdefghijklmnopqrstuvwxyz >&2", cwd=tmp_path, timeout=30, max_output=10
    )
    assert result.stdout == "01234\n[... 10 bytes omitted ...]\nFGHIJ"
    assert result.stderr == "abcde\n[... 16 bytes omitted ...]\nvwxyz"


def test_output_within_the_cap_is_kept_whole(tmp_path: Path) -> None:
    result = run_process("printf 0123456789; printf 'ab\\n' >&2", cwd=tmp_path, timeout=30, max_output=10)
    assert result.stdout == "0123456789"
    assert result.stderr == "ab\n"


def test_cap_marker_is_a_line_of_its_own(tmp_path: Path) -> None:
    result = run_process("seq 1 1000", cwd=tmp_path, timeout=30, max_output=20)
    lines = result.stdout.split("\n")
    assert lines[:5] == ["1", "2", "3", "4", "5"]
    omitted = len("".join(f"{i}\n" for i in range(1, 1001))) - 20
    assert f"[... {omitted} bytes omitted ...]" in lines
    assert result.stdout.endswith(" bytes omitted ...]\n\n999\n1000\n")  # the last 10 bytes


def test_huge_output_keeps_memory_bounded(tmp_path: Path) -> None:
    total = 200_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, a high-water mark
    result = run_process(f"yes | head -c {total}", cwd=tmp_path, timeout=120)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.returncode == 0
    half = (1 << 20) // 2
    assert result.stdout == "y\n" * (half // 2) + f"[... {total - 2 * half} bytes omitted ...]\n" + "y\n" * (half // 2)
    assert grown_kib < 64 * 1024, f"peak memory grew by {grown_kib} KiB"


# -- timeout ----------------------------------------------------------------


def test_timeout_kills_the_child(tmp_path: Path, exit_watch: str) -> None:
    result = run_process("echo started; echo $$ > main.pid; exec sleep 30", cwd=tmp_path, timeout=0.5)
    assert result.timed_out is True
    assert result.returncode is None
    assert result.stdout == "started\n"
    assert result.duration >= 0.5
    _assert_gone(_pid(tmp_path / "main.pid"))


def test_timeout_terms_the_group_and_keeps_reading_during_the_grace(tmp_path: Path) -> None:
    # The shell handles TERM by printing and exiting; its background sleep dies of it.
    script = 'trap "echo got-term; exit 7" TERM; sleep 30 & echo $! > bg.pid; wait'
    result = run_process(script, cwd=tmp_path, timeout=1, kill_grace=30)
    assert result.timed_out is True
    assert result.returncode is None
    assert result.stdout == "got-term\n"
    assert result.duration < 30, "waited out the whole grace although the child had exited"
    _assert_gone(_pid(tmp_path / "bg.pid"))


def test_child_ignoring_term_is_killed_after_the_grace(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 100000 & echo $! > bg.pid; echo $$ > main.pid; sleep 100000"
    result = run_process(script, cwd=tmp_path, timeout=0.5, kill_grace=0.5)
    assert result.timed_out is True
    assert result.returncode is None
    assert result.duration >= 1.0  # timeout, then the full grace: TERM did nothing
    _assert_gone(_pid(tmp_path / "main.pid"), _pid(tmp_path / "bg.pid"))


def test_timeout_while_output_floods(tmp_path: Path) -> None:
    result = run_process("yes", cwd=tmp_path, timeout=0.5, max_output=1000)
    assert result.timed_out is True
    assert result.stdout.startswith("y\n" * 250 + "[... ")
    assert result.stdout.endswith(" bytes omitted ...]\n" + "y\n" * 250)


# -- no orphans -------------------------------------------------------------


def test_background_child_is_killed_when_the_child_exits(tmp_path: Path, exit_watch: str) -> None:
    # The background sleep holds both pipes open: waiting for EOF would hit the timeout.
    result = run_process("sleep 300 & echo $! > bg.pid; echo done", cwd=tmp_path, timeout=60)
    assert result.timed_out is False
    assert result.returncode == 0
    assert result.stdout == "done\n"
    _assert_gone(_pid(tmp_path / "bg.pid"))


def test_output_written_just_before_exit_is_never_lost(tmp_path: Path) -> None:
    # A 1 MiB pipe lets the child write 900 kB and exit before much of it is
    # read, so the exit is often seen with data still buffered: the final drain
    # must get it (without it, a run in five or so loses data).
    code = "import fcntl, os\nfcntl.fcntl(1, fcntl.F_SETPIPE_SZ, 1 << 20)\nos.write(1, b'x' * 900_000)\nos._exit(0)\n"
    lengths = [
        len(run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=60, max_output=1 << 21).stdout)
        for _ in range(30)
    ]
    assert lengths == [900_000] * 30


def test_output_left_in_the_pipe_is_read_after_exit(tmp_path: Path) -> None:
    script = "(printf late; exec sleep 300) & echo $! > bg.pid; sleep 0.3; echo done"
    result = run_process(script, cwd=tmp_path, timeout=60)
    assert result.timed_out is False
    assert sorted([result.stdout[:4], result.stdout[4:]]) == ["done\n", "late"]
    _assert_gone(_pid(tmp_path / "bg.pid"))


# -- interrupts -------------------------------------------------------------


def test_keyboard_interrupt_kills_the_group_and_propagates(tmp_path: Path, exit_watch: str) -> None:
    script = "sleep 300 & echo $! > bg.pid; echo $$ > main.pid; sleep 300"
    with pytest.raises(KeyboardInterrupt), _raise_after(1.0, KeyboardInterrupt()):
        run_process(script, cwd=tmp_path, timeout=60)
    _assert_gone(_pid(tmp_path / "main.pid"), _pid(tmp_path / "bg.pid"))


class _Stop(Exception):
    """What a caller's own signal handler might raise."""


def test_handler_exception_kills_a_term_ignoring_group_and_propagates(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 100000 & echo $! > bg.pid; echo $$ > main.pid; sleep 100000"
    started = time.monotonic()
    with pytest.raises(_Stop), _raise_after(1.0, _Stop()):
        run_process(script, cwd=tmp_path, timeout=60, kill_grace=60)
    assert time.monotonic() - started < 60, "the interrupt waited for the full kill_grace"
    _assert_gone(_pid(tmp_path / "main.pid"), _pid(tmp_path / "bg.pid"))


# -- starting failures and descriptors ---------------------------------------


def test_missing_cwd_raises_oserror_without_leaking_fds(tmp_path: Path) -> None:
    before = _open_fds()
    with pytest.raises(OSError):
        run_process("true", cwd=tmp_path / "nope", timeout=30)
    with pytest.raises(OSError):
        run_process(["true"], cwd=tmp_path / "nope", timeout=30)
    assert _open_fds() == before


def test_missing_executable_raises_oserror_without_leaking_fds(tmp_path: Path) -> None:
    before = _open_fds()
    with pytest.raises(FileNotFoundError):
        run_process(["planrun-no-such-program-xyz"], cwd=tmp_path, timeout=30)
    assert _open_fds() == before


def test_missing_program_in_a_shell_string_is_exit_127(tmp_path: Path) -> None:
    result = run_process("planrun-no-such-program-xyz", cwd=tmp_path, timeout=30)
    assert result.returncode == 127
    assert "not found" in result.stderr


def test_runs_leave_no_descriptor_open(tmp_path: Path, exit_watch: str) -> None:
    before = _open_fds()
    run_process("echo hi; echo ho >&2", cwd=tmp_path, timeout=30)
    run_process("sleep 300 & echo $! > bg.pid", cwd=tmp_path, timeout=30)
    run_process("sleep 30", cwd=tmp_path, timeout=0.2)
    with pytest.raises(KeyboardInterrupt), _raise_after(0.3, KeyboardInterrupt()):
        run_process("sleep 30", cwd=tmp_path, timeout=30)
    assert _open_fds() == before
    _assert_gone(_pid(tmp_path / "bg.pid"))


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run_process([], cwd=tmp_path, timeout=30)
    with pytest.raises(ValueError):
        run_process("true", cwd=tmp_path, timeout=30, max_output=-1)
    with pytest.raises(ValueError):
        run_process("true", cwd=tmp_path, timeout=30, kill_grace=-1)


# -- output_tail ------------------------------------------------------------


def _result(stdout: str, stderr: str) -> ProcessResult:
    return ProcessResult(command="x", returncode=1, stdout=stdout, stderr=stderr, timed_out=False, duration=0.0)


def test_output_tail_puts_stderr_after_stdout() -> None:
    result = _result("a\nb\nc\n", "d\ne")
    assert result.output_tail(2) == "d\ne"
    assert result.output_tail(3) == "c\nd\ne"
    assert result.output_tail() == "a\nb\nc\nd\ne"
    assert result.output_tail(0) == ""


def test_output_tail_joins_streams_without_a_final_newline() -> None:
    assert _result("no newline", "err\n").output_tail() == "no newline\nerr"
    assert _result("", "").output_tail() == ""
    assert _result("\n\nx\n", "").output_tail(2) == "\nx"


def test_output_tail_of_a_real_run(tmp_path: Path) -> None:
    result = run_process("seq 1 30; echo boom >&2; exit 1", cwd=tmp_path, timeout=30)
    tail = result.output_tail(3).split("\n")
    assert tail == ["29", "30", "boom"]
    assert len(result.output_tail().split("\n")) == 20


# -- watched strings: looked for in the whole stream ---------------------------


def test_watched_string_in_the_cut_middle_is_seen(tmp_path: Path) -> None:
    result = run_process("seq 1 200000", cwd=tmp_path, timeout=60, max_output=1000, watch_stdout=["\n100000\n", "nope"])
    assert "100000" not in result.stdout  # cut from what is kept
    assert result.stdout_seen == frozenset({"\n100000\n"})
    assert result.stdout_omitted > 0


def test_watched_string_split_across_reads_is_seen(tmp_path: Path) -> None:
    # Two writes with a pause: the needle straddles the two reads.
    code = "import os, time\nos.write(1, b'x' * 70000 + b'NEE')\ntime.sleep(0.3)\nos.write(1, b'DLE' + b'y' * 1000)\n"
    result = run_process(
        [sys.executable, "-c", code], cwd=tmp_path, timeout=60, max_output=100, watch_stdout=["NEEDLE"]
    )
    assert result.stdout_seen == frozenset({"NEEDLE"})
    assert "NEEDLE" not in result.stdout


def test_watched_strings_on_stderr_and_absent_ones(tmp_path: Path) -> None:
    script = "seq 1 100000 >&2; echo tail-out"
    result = run_process(
        script, cwd=tmp_path, timeout=60, max_output=100, watch_stdout=["54321", "tail-out"], watch_stderr=["54321", ""]
    )
    assert result.stdout_seen == frozenset({"tail-out"})
    assert result.stderr_seen == frozenset({"54321", ""})  # the empty string is in every stream


def test_watched_unicode_is_matched_as_utf8(tmp_path: Path) -> None:
    result = run_process("printf 'caf\\303\\251 ok'", cwd=tmp_path, timeout=30, watch_stdout=["café", "cafe"])
    assert result.stdout_seen == frozenset({"café"})


# -- the tail says what a capped stream leaves out ----------------------------


def test_output_tail_of_a_capped_stream_says_how_many_bytes_are_not_shown(tmp_path: Path) -> None:
    result = run_process("seq 1 100000", cwd=tmp_path, timeout=60, max_output=1000)
    total = len("".join(f"{i}\n" for i in range(1, 100001)))
    tail = result.output_tail(3).split("\n")
    shown = len("99998\n99999\n100000\n")
    assert tail == [f"[... {total - shown} bytes of stdout not shown ...]", "99998", "99999", "100000"]
    assert result.stdout_bytes == total


def test_output_tail_puts_the_note_where_a_short_tail_meets_the_cut(tmp_path: Path) -> None:
    # The kept tail has fewer lines than asked for: the note stands where the cap's marker was.
    result = run_process(
        "printf 'a\\nb\\n'; head -c 5000 /dev/zero | tr '\\0' x; printf '\\nend\\n'",
        cwd=tmp_path,
        timeout=30,
        max_output=20,
    )
    lines = result.output_tail(20).split("\n")
    assert lines[:2] == ["a", "b"]
    assert lines[3] == f"[... {4 + 5000 + 5 - 20} bytes of stdout not shown ...]"  # all but the 20 kept
    assert lines[-1] == "end"
    assert "bytes omitted" not in result.output_tail(20)


def test_output_tail_of_an_uncapped_stream_has_no_note(tmp_path: Path) -> None:
    result = run_process("seq 1 100; seq 1 5 >&2", cwd=tmp_path, timeout=30)
    assert result.output_tail(3) == "3\n4\n5"
    assert "not shown" not in result.output_tail()


def test_output_tail_notes_each_capped_stream(tmp_path: Path) -> None:
    result = run_process("seq 1 1000; seq 1 1000 >&2", cwd=tmp_path, timeout=30, max_output=100)
    total = len("".join(f"{i}\n" for i in range(1, 1001)))
    shown = len("997\n998\n999\n1000\n")
    assert result.output_tail(4).split("\n") == [
        f"[... {total} bytes of stdout not shown ...]",  # none of it: the tail is all stderr
        f"[... {total - shown} bytes of stderr not shown ...]",
        "997",
        "998",
        "999",
        "1000",
    ]
