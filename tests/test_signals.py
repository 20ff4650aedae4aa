"""SIGINT and SIGTERM to the planrun process: any number of them, the partial report once, exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

from .test_orphans import BODY, assert_gone

TERM, INT = signal.SIGTERM, signal.SIGINT

PLAN = """
plan: slow
tasks:
  - id: quick
    name: Quick
    run: touch quick.txt
    criteria: [{file_exists: quick.txt}]
  - id: hang
    name: Hang
    depends_on: [quick]
    run: |
      setsid sh body.sh &
      sleep 300 & echo $! > child.pid
      while [ ! -s esc.pid ]; do sleep 0.01; done
      echo $$ > step.pid
      wait
    criteria: [{file_exists: never.txt}]
  - id: after
    name: After
    depends_on: [hang]
    run: touch after.txt
    criteria: [{file_exists: after.txt}]
"""


def _wait_for(path: Path, within: float = 30.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def _interrupt(planrunner: Planrunner, signals: list[signal.Signals], gap: float) -> tuple[str, str]:
    planrunner.makefile("body.sh", BODY)
    planrunner.makeplan("slow", PLAN)
    proc = planrunner.popen("slow.plan.yaml")
    try:
        step = _wait_for(planrunner.path / "step.pid")
        for sig in signals:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                break  # already gone: nothing more to absorb
            time.sleep(gap)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, (proc.returncode, out, err)
    assert "Traceback" not in out + err, out + err
    # The partial report, exactly once, naming a signal that was sent (signals pending together are
    # handled in signal-number order, so SIGINT may come first when the two arrive close together).
    names = {INT: "KeyboardInterrupt", TERM: "KeyboardInterrupt (SIGTERM)"}
    banners = [line.strip("! ") for line in out.splitlines() if "KeyboardInterrupt" in line]
    assert len(banners) == 1 and banners[0] in {names[s] for s in signals}, out
    if len(set(signals)) == 1:
        assert banners[0] == names[signals[0]], out
    assert out.count("short plan summary info") == 1, out
    assert out.count("INTERRUPTED slow.plan.yaml::hang - interrupted") == 1, out
    lines = out.splitlines()
    assert lines[-1].startswith("=") and "1 passed, 1 interrupted in" in lines[-1], out
    assert sum("interrupted in" in line for line in lines) == 1, out
    # Nothing left: the step, its background child, the escapee; the next task never ran.
    for name in ("step.pid", "child.pid", "esc.pid"):
        assert_gone(int((planrunner.path / name).read_text()))
    assert step
    assert not (planrunner.path / "after.txt").exists()
    return out, err


@pytest.mark.parametrize(
    ("signals", "gap"),
    [
        ([TERM], 0.0),
        ([INT], 0.0),
        ([TERM, TERM], 0.01),
        ([INT, INT], 0.0),
        ([INT, INT], 0.05),
        ([TERM, INT, TERM], 0.01),
        ([INT, TERM, INT], 0.05),
        ([TERM, INT] * 5, 0.0),
        ([INT, TERM] * 5, 0.01),
        ([TERM] * 10, 0.05),
    ],
    ids=lambda v: "-".join(s.name[3:] for s in v) if isinstance(v, list) else f"gap{v}",
)
def test_any_number_of_signals_give_one_partial_report_and_exit_2(
    planrunner: Planrunner, signals: list[signal.Signals], gap: float
) -> None:
    _interrupt(planrunner, signals, gap)


def test_signal_during_the_report_is_absorbed(planrunner: Planrunner) -> None:
    # A signal long after the first, while planrun reports and exits, changes nothing.
    planrunner.makefile("body.sh", BODY)
    planrunner.makeplan("slow", PLAN)
    proc = planrunner.popen("slow.plan.yaml")
    try:
        _wait_for(planrunner.path / "step.pid")
        proc.send_signal(TERM)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                proc.send_signal(INT)
            except ProcessLookupError:
                break
            time.sleep(0.002)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    assert "Traceback" not in out + err
    assert out.count("short plan summary info") == 1, out
    for name in ("step.pid", "child.pid", "esc.pid"):
        assert_gone(int((planrunner.path / name).read_text()))


def test_signal_handlers_come_back_after_an_in_process_run(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: 'true', criteria: [{command: 'true'}]}\n")
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert planrunner.run("p.plan.yaml").ret == ExitCode.OK
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_sigterm_to_planrun_kills_escapees_of_a_command_check(planrunner: Planrunner) -> None:
    planrunner.makefile("body.sh", BODY)
    planrunner.makefile(
        "check.sh", "setsid sh body.sh &\nwhile [ ! -s esc.pid ]; do sleep 0.01; done\necho $$ > step.pid\nsleep 300\n"
    )
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: sh check.sh}]}\n")
    proc = planrunner.popen("p.plan.yaml")
    try:
        _wait_for(planrunner.path / "step.pid")
        proc.send_signal(TERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    assert "Traceback" not in out + err
    for name in ("step.pid", "esc.pid"):
        assert_gone(int((planrunner.path / name).read_text()))


def test_console_script_interrupted_during_startup_exits_2(planrunner: Planrunner, tmp_path: Path) -> None:
    # A conftest that hangs while loading: the signal lands before any session exists.
    planrunner.makeconftest("open('loading', 'w').close()\nimport time\ntime.sleep(300)\n")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: 'true'}]}\n")
    proc = planrunner.popen("p.plan.yaml")
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "loading").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(INT)
        time.sleep(0.01)
        proc.send_signal(TERM)
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == ExitCode.INTERRUPTED, (proc.returncode, out, err)
    assert "Traceback" not in out + err


# A SIGINT sent from inside the import of one module, before planrun has
# installed any handler: the earliest a Ctrl-C can land.
_HOOK = """
import os, signal, sys
# Python's own Ctrl-C handler, as in a terminal: a shell that started this run in the background (CI) may
# have handed it SIGINT ignored, and Python then keeps it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
class _Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {target!r}:
            sys.meta_path.remove(self)
            open('fired', 'w').close()
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, _Interrupt())
sys.argv = ['planrun', 'p.plan.yaml']
import runpy
"""
_ENTRIES = {
    "console-script": "runpy.run_path({script!r}, run_name='__main__')",
    "python-m": "runpy.run_module('planrun', run_name='__main__', alter_sys=True)",
}


@pytest.mark.parametrize("entry", sorted(_ENTRIES))
@pytest.mark.parametrize("target", ["planrun.cli", "planrun.config", "planrun.pluginmanager", "pluggy", "argparse"])
def test_a_ctrl_c_while_planrun_is_still_importing_exits_2_in_one_line(
    planrunner: Planrunner, entry: str, target: str
) -> None:
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran.txt, criteria: [{file_exists: ran.txt}]}\n"
    )
    script = Path(sys.executable).parent / "planrun"
    code = _HOOK.format(target=target) + _ENTRIES[entry].format(script=str(script))
    proc = subprocess.run([sys.executable, "-c", code], cwd=planrunner.path, capture_output=True, text=True, timeout=60)
    assert (planrunner.path / "fired").exists(), f"{target} was imported before the hook: nothing was tested"
    assert proc.returncode == ExitCode.INTERRUPTED, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == "planrun: interrupted while starting: nothing ran\n"
    assert proc.stdout == ""
    assert not (planrunner.path / "ran.txt").exists()
    assert not (planrunner.path / ".planrun").exists()
