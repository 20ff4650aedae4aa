"""No process outlives planrun: escaped descendants (setsid, setpgid, double forks) are killed and reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.process import child_pids, reap_new_children, run_process
from planrun.testing import Planrunner

from .conftest import leftover_processes

BODY = "echo $$ > esc.pid\nexec sleep 300\n"
"""What the escaped process runs: it writes its own pid, then sleeps as that pid."""

ESCAPES = {
    # A new session (and group): out of reach of the step's group kill.
    "setsid": "setsid sh body.sh &",
    # The middle process exits at once: the sleeper re-parents (to PID 1 without a subreaper).
    "double-fork": "( (sh body.sh &) & )",
    # A new group in the same session.
    "setpgid": f'{sys.executable} -c \'import os; os.setpgid(0, 0); os.execvp("sh", ["sh", "body.sh"])\' &',
    # TERM is ignored (inherited through exec): only KILL ends it.
    "ignores-term": "setsid sh -c \"trap '' TERM; exec sh body.sh\" &",
}

WAIT = "while [ ! -s esc.pid ]; do sleep 0.01; done\n"


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of ``pid``, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def assert_gone(pid: int, within: float = 10.0) -> None:
    """``pid`` is gone: not running, not a zombie waiting for us, not re-parented to PID 1."""
    deadline = time.monotonic() + within
    while (stat := _stat(pid)) is not None and time.monotonic() < deadline:
        if stat[0] == "Z" and stat[1] != os.getpid():
            pass  # a zombie of another parent: wait for it to be reaped
        time.sleep(0.02)
    assert stat is None, f"pid {pid} is still there (state {stat[0]}, parent {stat[1]})"


def _escapee(path: Path) -> int:
    return int((path / "esc.pid").read_text())


@pytest.fixture
def escape(planrunner: Planrunner, request: pytest.FixtureRequest) -> str:
    planrunner.makefile("body.sh", BODY)
    how = request.param
    planrunner.makefile("start.sh", ESCAPES[how] + "\n" + WAIT)
    return str(how)


@pytest.mark.parametrize("escape", sorted(ESCAPES), indirect=True)
def test_escaped_process_of_a_step_is_killed(planrunner: Planrunner, escape: str) -> None:
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, run: sh start.sh, criteria: [{file_exists: esc.pid}]}\n"
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert_gone(_escapee(planrunner.path))


@pytest.mark.parametrize("escape", sorted(ESCAPES), indirect=True)
def test_escaped_process_of_a_command_check_is_killed(planrunner: Planrunner, escape: str) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: sh start.sh}]}\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert_gone(_escapee(planrunner.path))


@pytest.mark.parametrize("escape", ["setsid", "ignores-term"], indirect=True)
def test_step_ignoring_term_past_its_timeout_is_killed_with_its_escapee(planrunner: Planrunner, escape: str) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    run: |\n      trap '' TERM\n      sh start.sh\n"
        "      echo $$ > step.pid\n      sleep 300\n    criteria: [{file_exists: never}]\n",
    )
    result = planrunner.run("--timeout", "1", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(errors=1)
    assert_gone(int((planrunner.path / "step.pid").read_text()))
    assert_gone(_escapee(planrunner.path))


def test_escapee_holding_the_pipes_does_not_keep_the_step_waiting(tmp_path: Path) -> None:
    (tmp_path / "body.sh").write_text("echo $$ > esc.pid\nexec sleep 300\n")
    result = run_process("setsid sh body.sh & " + WAIT + "echo done", cwd=tmp_path, timeout=60)
    assert (result.returncode, result.stdout, result.timed_out) == (0, "done\n", False)
    assert_gone(_escapee(tmp_path))


def test_escapee_with_children_of_its_own_is_killed_whole(tmp_path: Path) -> None:
    # The escapee's own child is reparented here only once the escapee dies: reaping repeats.
    (tmp_path / "tree.sh").write_text("sleep 300 & echo $! > grandchild.pid\necho $$ > esc.pid\nwait\n")
    result = run_process(
        "setsid sh tree.sh & while [ ! -s esc.pid ] || [ ! -s grandchild.pid ]; do sleep 0.01; done",
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0
    assert_gone(_escapee(tmp_path))
    assert_gone(int((tmp_path / "grandchild.pid").read_text()))


def test_interrupted_run_kills_its_escapee(tmp_path: Path) -> None:
    (tmp_path / "body.sh").write_text(BODY)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(KeyboardInterrupt):
            run_process("setsid sh body.sh & " + WAIT + "sleep 300", cwd=tmp_path, timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert_gone(_escapee(tmp_path))


def test_children_the_caller_started_are_left_alone(planrunner: Planrunner) -> None:
    # planrun runs in-process here, as inside an application: its own server must survive the run.
    planrunner.makefile("body.sh", BODY)
    planrunner.makefile("start.sh", ESCAPES["setsid"] + "\n" + WAIT)
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: sh start.sh, criteria: [{command: 'true'}]}\n")
    server = subprocess.Popen(["sleep", "300"])
    try:
        before = child_pids()
        assert server.pid in before
        result = planrunner.run("p.plan.yaml")
        assert result.ret == ExitCode.OK, result
        assert server.poll() is None, "planrun killed a process it did not start"
        assert reap_new_children(before) == []
    finally:
        server.kill()
        server.wait()
    assert_gone(_escapee(planrunner.path))


def test_reap_new_children_kills_only_what_appeared(tmp_path: Path) -> None:
    old = subprocess.Popen(["sleep", "300"])
    try:
        before = child_pids()
        new = subprocess.Popen(["sleep", "300"])
        killed = reap_new_children(before)
        assert killed == [new.pid]
        assert old.poll() is None
        assert_gone(new.pid)
        assert new.wait() == 0  # reaped already: subprocess sees ECHILD and says 0
    finally:
        old.kill()
        old.wait()


# -- the suite's own check: nothing it started is left -------------------------


def test_leftover_detection_finds_an_escaped_process(tmp_path: Path) -> None:
    # The shell exits at once; its setsid'd sleep re-parents to this pytest (a subreaper, see conftest).
    proc = subprocess.run(
        ["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    pid = int(proc.stdout)
    deadline = time.monotonic() + 30
    while b"sleep" not in Path(f"/proc/{pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)  # until setsid has exec'd sleep
    try:
        assert any(line.startswith(f"{pid} ") and line.endswith("sleep 300") for line in leftover_processes())
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not any(line.startswith(f"{pid} ") for line in leftover_processes())


def test_session_that_leaves_a_process_fails(tmp_path: Path) -> None:
    conftest = Path(__file__).with_name("conftest.py").read_text()
    (tmp_path / "conftest.py").write_text(conftest.replace("from .conftest", "from conftest"))
    (tmp_path / "test_leak.py").write_text(
        "import subprocess\n\n"
        "import time\n"
        "from pathlib import Path\n\n"
        "def test_leaks():\n"
        "    subprocess.run(['sh', '-c', 'setsid sleep 300 & echo $! > leak.pid'], check=True)\n"
        "    pid = Path('leak.pid').read_text().strip()\n"
        "    while not Path(f'/proc/{pid}/cmdline').read_bytes().startswith(b'sleep'):\n"
        "        time.sleep(0.01)  # until setsid has exec'd sleep ('setsid sleep 300' holds 'sleep' too)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_leak.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    pid = int((tmp_path / "leak.pid").read_text())
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert "ERROR: the test session left processes running:" in proc.stdout
    assert any(line.startswith(f"  {pid} ") and line.endswith("sleep 300") for line in proc.stdout.splitlines()), (
        pid,
        proc.stdout,
    )
    assert_gone(pid)  # and the hook killed it
