"""``-n``: plans in worker processes, reported exactly as a serial run reports them."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, hookimpl
from planrun.testing import Planrunner, RunResult

from .test_orphans import assert_gone

PLAN = """
plan: {name}
workspace: temp
tasks:
  - id: make
    name: Make it
    run: printf '{name}' > out.txt
    criteria: [{{file_exists: out.txt}}]
  - id: check
    name: Check it
    depends_on: [make]
    run: "true"
    criteria: [{{file_contains: {{path: out.txt, text: {want}}}}}]
  - id: after
    name: After the check
    depends_on: [check]
    run: "true"
    criteria: [{{file_exists: out.txt}}]
  - id: skipping
    name: Skips itself
    run: "true"
    criteria: [{{file_exists: out.txt, skip: not today}}]
"""


def _suite(planrunner: Planrunner, n: int = 6, failing: tuple[int, ...] = (2, 4)) -> None:
    for i in range(1, n + 1):
        name = f"p{i}"
        planrunner.makeplan(f"plans/{name}", PLAN.format(name=name, want="nope" if i in failing else name))


def _same(text: str) -> str:
    """The output without what may differ between runs: durations."""
    return re.sub(r" in \d+\.\d+s\b", " in Xs", text)


class Recorder:
    """Every event a reporter sees, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def planrun_runtest_logstart(self, nodeid: str) -> None:
        self.events.append(("start", nodeid))

    @hookimpl
    def planrun_task_executed(self, nodeid: str, attempt: int, status: str) -> None:
        self.events.append(("executed", nodeid, attempt, status))

    @hookimpl
    def planrun_runtest_logreport(self, report: Any) -> None:
        self.events.append(
            ("report", report.nodeid, report.outcome, report.message, [(c.name, c.outcome) for c in report.criteria])
        )


@pytest.mark.parametrize("workers", ["2", "3", "auto"])
def test_the_report_and_every_event_are_those_of_a_serial_run(planrunner: Planrunner, workers: str) -> None:
    _suite(planrunner)
    serial_events, parallel_events = Recorder(), Recorder()
    serial = planrunner.run("plans", plugins=[serial_events])
    parallel = planrunner.run("-n", workers, "plans", plugins=[parallel_events])
    assert serial.ret == parallel.ret == ExitCode.TESTS_FAILED
    assert _same(parallel.outstr) == _same(serial.outstr)
    assert parallel_events.events == serial_events.events
    # per plan 4 starts and 4 reports; 4 tasks executed, 3 where `check` fails and `after` is skipped
    assert len(serial_events.events) == 4 * (8 + 4) + 2 * (8 + 3)
    parallel.assert_outcomes(passed=14, failed=2, skipped=8, warnings=8)


def test_plans_do_run_beside_each_other(planrunner: Planrunner, tmp_path: Path) -> None:
    """Each plan waits for the other's mark: only two plans running at once can both pass."""
    meet = tmp_path / "meet"
    meet.mkdir()
    for me, other in (("a", "b"), ("b", "a")):
        planrunner.makeplan(
            f"plans/{me}",
            f"""
            plan: {me}
            workspace: temp
            tasks:
              - id: meet
                name: Meet the other plan
                run: |
                  touch {meet}/{me}
                  for i in $(seq 300); do [ -e {meet}/{other} ] && touch met && exit 0; sleep 0.05; done
                criteria: [{{file_exists: met}}]
            """,
        )
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=2)


def test_plans_that_change_one_workdir_in_place_never_run_beside_each_other(
    planrunner: Planrunner, tmp_path: Path
) -> None:
    """Same rendezvous, in place in one workdir: the plans run one after the other, so neither meets the other."""
    meet = tmp_path / "meet"
    meet.mkdir()
    for me, other in (("a", "b"), ("b", "a")):
        planrunner.makeplan(
            f"plans/{me}",
            f"""
            plan: {me}
            workdir: ../work
            tasks:
              - id: meet
                name: Meet the other plan
                files: ["*"]
                run: |
                  touch {meet}/{me}
                  seen=alone
                  for i in $(seq 20); do [ -e {meet}/{other} ] && seen=met && break; sleep 0.05; done
                  touch $seen-{me} ran-{me}
                criteria: [{{file_exists: ran-{me}}}]
            """,
        )
    (planrunner.path / "work").mkdir()
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.OK, result
    # a ran alone; b found only the mark a left behind
    assert sorted(p.name for p in (planrunner.path / "work").iterdir()) == ["alone-a", "met-b", "ran-a", "ran-b"]


def test_x_stops_every_worker_and_reports_what_a_serial_run_would(planrunner: Planrunner, tmp_path: Path) -> None:
    planrunner.makeplan(
        "plans/a_first",
        """
        plan: first
        workspace: temp
        tasks:
          - {id: fail, name: Fails, run: "sleep 0.5", criteria: [{file_exists: never.txt}]}
          - {id: next, name: Next, run: "true", criteria: [{file_absent: never.txt}]}
        """,
    )
    for i in range(1, 4):
        planrunner.makeplan(
            f"plans/b_slow{i}",
            f"""
            plan: slow{i}
            workspace: temp
            tasks:
              - id: slow
                name: Slow
                run: "echo $$ > {tmp_path}/slow{i}.pid; sleep 300"
                criteria: [{{file_exists: never.txt}}]
            """,
        )
    serial = planrunner.run("-x", "plans")
    parallel = planrunner.run("-x", "-n", "2", "plans")
    assert serial.ret == parallel.ret == ExitCode.TESTS_FAILED
    assert _same(parallel.outstr) == _same(serial.outstr)
    parallel.assert_outcomes(failed=1)
    for pid_file in tmp_path.glob("slow*.pid"):  # a worker had started one: its step is gone
        assert_gone(int(pid_file.read_text()))
    assert not (tmp_path / "slow3.pid").exists()  # never handed out


class _Crash:
    @hookimpl(tryfirst=True)
    def planrun_task_execute(self, task: Any, context: Any) -> None:
        if task.id == "crash":
            os._exit(7)


def test_a_worker_that_dies_is_an_internal_error_naming_its_plan(planrunner: Planrunner) -> None:
    _suite(planrunner, n=3, failing=())
    planrunner.makeplan(
        "plans/p2",
        """
        plan: p2
        workspace: temp
        tasks:
          - {id: crash, name: Crash, run: "true", criteria: [{file_exists: x}]}
        """,
    )
    result = planrunner.run("-n", "2", "plans", plugins=[_Crash()])
    assert result.ret == ExitCode.INTERNAL_ERROR, result
    assert re.search(r"worker \d+ died while running p2.plan.yaml: exit code 7", result.errstr), result.errstr
    assert "INTERNAL ERROR" in result.errstr


def test_when_a_worker_dies_the_others_clean_up_before_they_end(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The surviving worker is asked to stop (SIGTERM), not killed at once: its step is gone, and so are its
    temporary workspace and step script."""
    import tempfile

    temp = tmp_path_factory.mktemp("tmp")
    marks = tmp_path_factory.mktemp("marks")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where workspaces and step scripts go, in every worker
    planrunner.makeplan(
        "plans/a_slow",
        f"""
        plan: slow
        workspace: temp
        tasks:
          - {{id: slow, name: Slow, run: "echo $$ > {marks}/sleep.pid; exec sleep 60", criteria: [{{file_exists: x}}]}}
        """,
    )
    planrunner.makeplan(
        "plans/b_crash",
        f"""
        plan: crash
        workspace: temp
        tasks:
          - id: wait
            name: Wait for the other worker's step
            run: "while [ ! -s {marks}/sleep.pid ]; do sleep 0.02; done; touch x"
            criteria: [{{file_exists: x}}]
          - {{id: crash, name: Crash, depends_on: [wait], run: "true", criteria: [{{file_exists: x}}]}}
        """,
    )
    result = planrunner.run("-n", "2", "plans", plugins=[_Crash()])
    assert result.ret == ExitCode.INTERNAL_ERROR, result
    assert re.search(r"worker \d+ died while running b_crash.plan.yaml: exit code 7", result.errstr), result
    assert_gone(int((marks / "sleep.pid").read_text()))
    # No workspace and no step script is left: the survivor removed its own, and the main process removed the
    # temp folder of the worker that died, with the workspace it could not remove.
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize(
    "death",
    [
        pytest.param("kill -9 $PPID", id="SIGKILL"),
        pytest.param("kill -USR1 $PPID", id="SIGUSR1"),
        pytest.param('setsid sh -c "sleep 0.5; echo late > $(pwd)/late.txt" & kill -9 $PPID', id="SIGKILL-escapee"),
    ],
)
def test_a_worker_killed_mid_plan_leaves_no_temporary_workspace_or_file(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, death: str
) -> None:
    """Killed, a worker removes nothing itself: what it made in its temp folder goes with the folder."""
    import tempfile

    temp = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    _suite(planrunner, n=2, failing=())
    planrunner.makeplan(
        "plans/p3",
        f"""
        plan: p3
        workspace: temp
        tasks:
          - {{id: made, name: Made, run: "echo x > made.txt; pwd > {planrunner.path}/where", criteria: [{{file_exists: made.txt}}]}}
          - {{id: dies, name: Dies, depends_on: [made], run: {json.dumps(death)}, criteria: [{{file_exists: x}}]}}
        """,
    )
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.INTERNAL_ERROR, result
    assert re.search(r"worker \d+ died while running p3.plan.yaml: killed by SIG(KILL|USR1)", result.errstr), result
    workspace = Path((planrunner.path / "where").read_text().strip())
    assert workspace.is_relative_to(temp)  # it was made where tempfile makes folders, and is gone with them
    assert not workspace.exists()
    assert list(temp.iterdir()) == []
    if "setsid" in death:  # what the step left running was killed with the worker: nothing comes back
        time.sleep(1.0)
        assert list(temp.iterdir()) == []


def _wait_for(path: Path, within: float = 30.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def interrupt_when_running(
    planrunner: Planrunner, args: list[str], how: str, tmp_path: Path
) -> tuple[RunResult, list[int]]:
    """Start planrun, wait until both steps wrote ``sleep1.pid`` and ``sleep2.pid``, interrupt it (``how``)."""
    proc = planrunner.popen(*args, start_new_session=True)
    try:
        sleepers = [_wait_for(tmp_path / f"sleep{i}.pid") for i in (1, 2)]
        if how.startswith("SIGINT"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return RunResult(proc.returncode, out, err, 0.0), sleepers


@pytest.mark.parametrize("how", ["SIGINT to the group", "SIGTERM to planrun"])
def test_an_interrupt_stops_every_worker_and_reports_each_interrupted_item(
    planrunner: Planrunner, tmp_path: Path, how: str
) -> None:
    for i in (1, 2):
        planrunner.makeplan(
            f"plans/p{i}",
            f"""
            plan: p{i}
            workspace: temp
            tasks:
              - id: quick
                name: Quick
                run: touch q
                criteria: [{{file_exists: q}}]
              - id: hang
                name: Hang
                depends_on: [quick]
                run: "sleep 300 & echo $! > {tmp_path}/sleep{i}.pid; wait"
                criteria: [{{file_exists: never}}]
            """,
        )
    result, sleepers = interrupt_when_running(planrunner, ["-n", "2", "plans"], how, tmp_path)
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(["p1.plan.yaml .!*", "p2.plan.yaml .!*"])
    assert result.no_traceback(), result
    for pid in sleepers:
        assert_gone(pid)


@pytest.mark.parametrize(("value", "message"), [("-1", "must be 0 or more"), ("two", "expected a number of workers")])
def test_a_bad_worker_count_is_a_usage_error(planrunner: Planrunner, value: str, message: str) -> None:
    _suite(planrunner, n=2)
    result = planrunner.run("-n", value, "plans")
    assert result.ret == ExitCode.USAGE_ERROR
    assert message in result.errstr
    assert not list(planrunner.path.rglob("out.txt"))


def test_zero_or_one_worker_and_one_plan_run_in_this_process(planrunner: Planrunner) -> None:
    _suite(planrunner, n=1)
    pid = []

    class Where:
        @hookimpl
        def planrun_task_execute(self) -> None:
            pid.append(os.getpid())

    for n in ("0", "1", "4"):
        result = planrunner.run("-n", n, "plans", plugins=[Where()])
        assert result.ret == ExitCode.OK, result
    assert set(pid) == {os.getpid()}


class _Loop:
    """A replacement run loop: runs only the first plan (what a plugin can do with the hook)."""

    @hookimpl(tryfirst=True)
    def planrun_runtestloop(self, session: Any) -> bool:
        cplan, items = session.plan_items()[0]
        session.run_plan(cplan, items)
        return True


def test_a_plugin_can_replace_the_run_loop(planrunner: Planrunner) -> None:
    _suite(planrunner, n=3, failing=())
    result = planrunner.run("plans", plugins=[_Loop()])
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=3, skipped=1)


def _normalised_junit(path: Path) -> str:
    return re.sub(r' (time|timestamp|hostname)="[^"]*"', "", path.read_text())


def _normalised_json(path: Path) -> Any:
    import json

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("duration", "started")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads(path.read_text()))


def test_junit_and_json_reports_are_those_of_a_serial_run(planrunner: Planrunner, tmp_path: Path) -> None:
    _suite(planrunner, n=5)
    serial = planrunner.run("--junitxml", tmp_path / "s.xml", "--json", tmp_path / "s.json", "plans")
    parallel = planrunner.run("-n", "2", "--junitxml", tmp_path / "p.xml", "--json", tmp_path / "p.json", "plans")
    assert serial.ret == parallel.ret == ExitCode.TESTS_FAILED
    assert _normalised_junit(tmp_path / "p.xml") == _normalised_junit(tmp_path / "s.xml")
    assert _normalised_json(tmp_path / "p.json") == _normalised_json(tmp_path / "s.json")
    assert "<testcase" in (tmp_path / "p.xml").read_text()


def _state(root: Path) -> Any:
    from planrun import StateStore

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if k not in ("started", "finished", "duration", "run_id", "updated")
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(StateStore(root / ".planrun", None, quarantine=False).records())


def test_the_state_store_is_that_of_a_serial_run(planrunner: Planrunner) -> None:
    import shutil

    _suite(planrunner, n=5)
    assert planrunner.run("plans").ret == ExitCode.TESTS_FAILED
    serial = _state(planrunner.path / "plans")
    shutil.rmtree(planrunner.path / "plans" / ".planrun")
    assert planrunner.run("-n", "2", "plans").ret == ExitCode.TESTS_FAILED
    parallel = _state(planrunner.path / "plans")
    assert len(serial) == 5 and parallel == serial


def test_makereport_runs_where_the_item_ran_and_its_changes_reach_every_reporter(
    planrunner: Planrunner, tmp_path: Path
) -> None:
    import json

    _suite(planrunner, n=3, failing=())
    planrunner.makeconftest(
        """
        import os

        def planrun_runtest_makereport(report):
            report.tokens_in += 7
            report.notes.append(f"made in {os.getpid()}")
        """,
        folder="plans",
    )
    for n, out in (("0", "serial.json"), ("2", "parallel.json")):
        result = planrunner.run("-n", n, "--json", tmp_path / out, "plans")
        assert result.ret == ExitCode.OK, result
        items = [i for p in json.loads((tmp_path / out).read_text())["plans"] for i in p["items"]]
        assert len(items) == 12 and all(i["tokens_in"] == 7 for i in items)
        pids = {w.rsplit(" ", 1)[1] for i in items for w in i["warnings"] if "made in" in w}
        assert (pids == {str(os.getpid())}) == (n == "0")  # -n 2: made in the workers, not here
