"""Acceptance: planrun killed with SIGKILL at 50 different moments of a multi-task shell run, then ``--resume``.

The moments are deterministic: the test project's conftest.py counts the run's
events (session start, each item's start, each executor return, each report,
session finish) and kills its own process at the Nth one, either just before
the state store handled it (``tryfirst``) or just after (``trylast``): that is
every gap between two state writes. More kills come from outside, while a step
runs. After each kill the state must parse, and one ``--resume`` must finish
the run with the outcomes of an uninterrupted run, each task performed at most
once more than that run needed (every step appends its task id to log.txt).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from planrun import ExitCode, StateStore
from planrun.atomic import TEMP_SUFFIX
from planrun.testing import Planrunner

CONFTEST = """
import os
import signal

import planrun

EVENTS = ("sessionstart", "logstart", "executed", "report", "sessionfinish")


class Killer:
    def __init__(self, spec):
        at, _, phase = spec.partition(":")
        self.at, self.phase, self.count = int(at or 0), phase, 0

    def before(self, name):
        self.count += 1
        if self.count == self.at and self.phase == "before":
            os.kill(os.getpid(), signal.SIGKILL)

    def after(self, name):
        with open("events.txt", "a") as f:
            f.write(name + "\\n")
        if self.count == self.at and self.phase == "after":
            os.kill(os.getpid(), signal.SIGKILL)


class Before:
    def __init__(self, killer):
        self.k = killer

    @planrun.hookimpl(tryfirst=True)
    def planrun_sessionstart(self):
        self.k.before("sessionstart")

    @planrun.hookimpl(tryfirst=True)
    def planrun_runtest_logstart(self):
        self.k.before("logstart")

    @planrun.hookimpl(tryfirst=True)
    def planrun_task_executed(self):
        self.k.before("executed")

    @planrun.hookimpl(tryfirst=True)
    def planrun_runtest_logreport(self):
        self.k.before("report")

    @planrun.hookimpl(tryfirst=True)
    def planrun_sessionfinish(self):
        self.k.before("sessionfinish")


class After:
    def __init__(self, killer):
        self.k = killer

    @planrun.hookimpl(trylast=True)
    def planrun_sessionstart(self):
        self.k.after("sessionstart")

    @planrun.hookimpl(trylast=True)
    def planrun_runtest_logstart(self):
        self.k.after("logstart")

    @planrun.hookimpl(trylast=True)
    def planrun_task_executed(self):
        self.k.after("executed")

    @planrun.hookimpl(trylast=True)
    def planrun_runtest_logreport(self):
        self.k.after("report")

    @planrun.hookimpl(trylast=True)
    def planrun_sessionfinish(self):
        self.k.after("sessionfinish")


@planrun.hookimpl
def planrun_configure(config):
    killer = Killer(os.environ.get("KILL_AT", ""))
    config.pluginmanager.register(Before(killer), "kill-before")
    config.pluginmanager.register(After(killer), "kill-after")
"""

# task id -> (depends_on, what the step does after logging, the criterion)
TASKS = {
    "t1": ([], "touch t1.done", "t1.done"),
    "t2": (["t1"], "touch t2.done", "t2.done"),
    "t3": ([], "exit 1", "t3.done"),  # its step fails
    "t4": (["t3"], "touch t4.done", "t4.done"),  # skipped: t3 failed
    "t5": ([], "true", "t5.done"),  # its step succeeds, its criterion does not hold
    "t6": (["t2"], "touch t6.done", "t6.done"),
    "t7": ([], "touch t7.done", "t7.done"),
}
PERFORMED = [t for t in TASKS if t != "t4"]


def plan_text() -> str:
    lines = ["plan: killed", "tasks:"]
    for task_id, (deps, rest, done) in TASKS.items():
        step = (
            f"echo {task_id} >> log.txt; "
            f"if [ -e hold-{task_id} ]; then echo $$ > step.pid; touch reached-{task_id}; "
            f"while [ -e hold-{task_id} ]; do sleep 0.05; done; fi; {rest}"
        )
        lines += [
            f"  - id: {task_id}",
            f"    name: {task_id}",
            f"    depends_on: [{', '.join(deps)}]",
            f"    run: {json.dumps(step)}",
            f"    criteria: [{{file_exists: {done}}}]",
        ]
    return "\n".join(lines) + "\n"


def make_project(folder: Path) -> None:
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[tool.planrun]\n")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "killed.plan.yaml").write_text(plan_text())


def run_killed(folder: Path, kill_at: str | None = None, hold: str | None = None) -> None:
    """Start planrun in ``folder`` and see it die by SIGKILL (at an event, or from outside during ``hold``'s step)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANRUN")}
    if kill_at is not None:
        env["KILL_AT"] = kill_at
    if hold is not None:
        (folder / f"hold-{hold}").touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", "-q", "killed.plan.yaml"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if hold is not None:
            reached = folder / f"reached-{hold}"
            deadline = time.monotonic() + 60  # hang guard only
            while not reached.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert reached.exists(), f"the step of {hold} was never reached"
            proc.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if hold is not None:
            pid = folder / "step.pid"
            if pid.exists():
                try:
                    os.killpg(int(pid.read_text()), signal.SIGKILL)  # planrun could not: it was killed
                except ProcessLookupError:
                    pass
            (folder / f"hold-{hold}").unlink()
    assert proc.returncode == -signal.SIGKILL, f"{kill_at or hold}: planrun was not killed ({proc.returncode}): {err}"


def final_outcomes(folder: Path) -> dict[str, tuple[str, str | None]]:
    warnings: list[str] = []
    record = StateStore(folder / ".planrun", warnings, quarantine=False).load("killed.plan.yaml")
    assert not warnings, warnings
    assert record is not None
    return {k: (v["status"], v["outcome"]) for k, v in record["items"].items()}


def executions(folder: Path) -> Counter[str]:
    log = folder / "log.txt"
    return Counter(log.read_text().split()) if log.exists() else Counter()


def counts(result: object) -> dict[str, int]:
    """The outcome counts of the summary line (warnings left out: they depend on what was performed)."""
    found = result.parseoutcomes()  # type: ignore[attr-defined]
    return {k: v for k, v in found.items() if k != "warnings"}


@pytest.mark.timeout(600)  # ~30 s alone; the default 120 s is too tight on a busy machine (hang guard only)
def test_resume_after_sigkill_at_50_moments(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    base = planrunner.path
    reference = base / "reference"
    make_project(reference)
    monkeypatch.chdir(reference)
    expected = planrunner.run("-q", "killed.plan.yaml")
    assert expected.ret == ExitCode.TESTS_FAILED, expected
    want_outcomes = final_outcomes(reference)
    assert {k: v[1] for k, v in want_outcomes.items()} == {
        "t1": "passed",
        "t2": "passed",
        "t3": "failed",
        "t4": "skipped",
        "t5": "failed",
        "t6": "passed",
        "t7": "passed",
    }
    needed = executions(reference)
    assert needed == Counter(PERFORMED)
    events = (reference / "events.txt").read_text().split()
    # session start, 7 starts, 6 executor returns, 7 reports, session finish
    assert len(events) == 22, events

    moments: list[tuple[str | None, str | None]] = [
        (f"{n}:{phase}", None) for n in range(1, len(events) + 1) for phase in ("before", "after")
    ]
    moments += [(None, task) for task in PERFORMED]  # killed from outside while the task's step runs
    assert len(moments) >= 50

    trials = []
    for n, (kill_at, hold) in enumerate(moments):
        folder = base / f"trial{n:02d}"
        make_project(folder)
        trials.append((folder, kill_at, hold))
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(run_killed, *trial) for trial in trials]:
            future.result()

    for folder, kill_at, hold in trials:
        moment = kill_at or f"during the step of {hold}"
        state = folder / ".planrun" / "state"
        for path in state.iterdir() if state.exists() else ():
            if not path.name.endswith(TEMP_SUFFIX):
                json.loads(path.read_text())  # every state file parses after the kill
        before = executions(folder)
        monkeypatch.chdir(folder)
        result = planrunner.run("-q", "--resume", "killed.plan.yaml")
        assert result.ret == expected.ret, f"{moment}: {result!r}"
        assert counts(result) == counts(expected), f"{moment}: {result!r}"
        assert final_outcomes(folder) == want_outcomes, moment
        done = executions(folder)
        for task in TASKS:
            assert needed[task] <= done[task] <= needed[task] + 1, (moment, task, before, done)
        assert not any(p.name.endswith(TEMP_SUFFIX) for p in state.iterdir()), moment
