"""Timeouts, orphans and interrupts, through real subprocesses of planrun."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from planrun import ExitCode
from planrun.testing import Planrunner


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone: it is only waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _wait_for(path: Path, within: float = 20.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_step_over_the_task_timeout_is_killed_and_errors(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "slow",
        "plan: slow\ntasks:\n  - id: t\n    name: T\n    run: 'echo $$ > sleeper.pid; exec sleep 30'\n    criteria: [{file_exists: done.txt}]\n",
    )
    result = planrunner.run("--timeout", "1", "slow.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "ERROR slow.plan.yaml::t - timed out: step 1/1 killed after 1s (the task's timeout): `echo $$ > sleeper.pid; exec sleep 30`"
        ]
    )
    assert _gone(int(Path("sleeper.pid").read_text()))


def test_background_child_of_a_step_does_not_outlive_it(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "bg",
        "plan: bg\ntasks:\n  - id: t\n    name: T\n    run: 'sleep 300 & echo $! > child.pid; touch done.txt'\n    criteria: [{file_exists: done.txt}]\n",
    )
    result = planrunner.run("bg.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert _gone(int(Path("child.pid").read_text())), "the step's background child is still running"


def test_background_child_of_a_command_check_does_not_outlive_it(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "bg", "plan: bg\ntasks:\n  - id: t\n    name: T\n    criteria: [{command: 'sleep 300 & echo $! > child.pid'}]\n"
    )
    assert planrunner.run("bg.plan.yaml").ret == ExitCode.OK
    assert _gone(int(Path("child.pid").read_text()))


SLOW_PLAN = """
plan: slow
workspace: inplace
tasks:
  - id: quick
    name: Quick
    run: touch quick.txt
    criteria: [{file_exists: quick.txt}]
  - id: hang
    name: Hang
    depends_on: [quick]
    run: 'sleep 300 & echo $! > child.pid; echo $$ > step.pid; wait'
    criteria: [{file_exists: never.txt}]
  - id: after
    name: After
    depends_on: [hang]
    run: touch after.txt
    criteria: [{file_exists: after.txt}]
"""


def _interrupt(planrunner: Planrunner, sig: signal.Signals) -> None:
    planrunner.makeplan("slow", SLOW_PLAN)
    proc = planrunner.popen("slow.plan.yaml")
    try:
        child = int(_wait_for(planrunner.path / "child.pid"))
        step = int(_wait_for(planrunner.path / "step.pid"))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert any(line.startswith("slow.plan.yaml .!") for line in lines), out
    assert f"KeyboardInterrupt{'' if sig == signal.SIGINT else ' (SIGTERM)'}" in out
    assert "INTERRUPTED slow.plan.yaml::hang - interrupted" in out
    assert lines[-1].startswith("=") and "1 passed, 1 interrupted in" in lines[-1], out
    assert _gone(child) and _gone(step), "a process of the interrupted step is still running"
    assert not (planrunner.path / "after.txt").exists()


def test_sigint_during_a_step_kills_it_and_prints_the_partial_report(planrunner: Planrunner) -> None:
    _interrupt(planrunner, signal.SIGINT)


def test_sigterm_behaves_like_sigint(planrunner: Planrunner) -> None:
    _interrupt(planrunner, signal.SIGTERM)


def test_verify_only_never_imports_openai(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: 'false', criteria: [{file_absent: x}]}\n")
    planrunner.makefile(
        "probe.py",
        "import sys\nfrom planrun import main\ncode = main(['--verify-only', 'p.plan.yaml'])\n"
        "print('OPENAI_LOADED' if any(m == 'openai' or m.startswith('openai.') for m in sys.modules) else 'OPENAI_ABSENT')\n"
        "sys.exit(code)\n",
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "probe.py"], capture_output=True, text=True, timeout=60, env={**os.environ})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "OPENAI_ABSENT"
    # The probe is able to fail: importing it is noticed.
    proc = subprocess.run(
        [sys.executable, "-c", "import openai, sys; print('openai' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == "True"


# -- command checks: literal expectations over the whole stream, regexes ------


def test_stdout_contains_sees_a_line_in_the_capped_middle(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: {run: 'seq 1 1000000', stdout_contains: '500000'}}]}\n",
    )
    result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result


def test_stderr_contains_sees_past_the_cap_too(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: {run: 'seq 1 1000000 >&2', stderr_contains: \"\\n500000\\n\"}}]}\n",
    )
    result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result


def test_absent_string_past_the_cap_fails_and_the_tail_says_what_is_cut(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: {run: 'seq 1 1000000', stdout_contains: 'x500000'}}]}\n",
    )
    result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    total = len("".join(f"{i}\n" for i in range(1, 1000001)))
    shown = len("".join(f"{i}\n" for i in range(999981, 1000001)))
    result.stdout.fnmatch_lines(
        [
            "  `seq 1 1000000` stdout does not contain 'x500000'",
            "  output tail:",
            f"  [... {total - shown} bytes of stdout not shown ...]",
            "  999981",
        ]
    )


def test_huge_regex_repeat_is_a_located_compile_error(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n"
        "    criteria:\n      - command: {run: 'echo a', stdout_matches: 'a{4294967296}'}\n",
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert result.no_traceback(), result
    result.stdout.fnmatch_lines(["p.plan.yaml:7:*invalid regex 'a{4294967296}'*"])
    assert not Path("ran.txt").exists()


def test_bad_regex_syntax_is_still_a_located_compile_error(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n      - command: {run: 'true', stdout_matches: '(a'}\n",
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert result.no_traceback(), result
    result.stdout.fnmatch_lines(["p.plan.yaml:6:*invalid regex '(a'*"])


def test_stdout_matches_runs_under_the_commands_own_timeout(planrunner: Planrunner) -> None:
    # Catastrophic backtracking: the command's 1 s timeout stops it, not the kind's 60 s default.
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n"
        "      - command: {run: 'printf \"%060d!\" 0', stdout_matches: '^(0|00)*$', timeout: 1}\n",
    )
    result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*timed out: regex '^(0|00)*$' ran longer than 1s*"])
