"""The state store: records per event, atomic files, corrupt files set aside, the run lock, --lf/--ff/--resume,
``planrun status`` and ``planrun graph``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, StateStore, hookimpl
from planrun.atomic import TEMP_SUFFIX
from planrun.testing import Planrunner

# Four shell tasks: a passes, b fails (its step exits 1), c needs b, d passes on its own.
# Every step appends its task id to log.txt, so tests can count executions.
PLAN = """
plan: demo
tasks:
  - id: a
    name: A
    run: "echo a >> log.txt; touch a.done"
    criteria: [{file_exists: a.done}]
  - id: b
    name: B
    depends_on: [a]
    run: "echo b >> log.txt; exit 1"
    criteria: [{file_exists: b.done}]
  - id: c
    name: C
    depends_on: [b]
    run: "echo c >> log.txt; touch c.done"
    criteria: [{file_exists: c.done}]
  - id: d
    name: D
    run: "echo d >> log.txt; touch d.done"
    criteria: [{file_exists: d.done}]
"""

# A plan whose task "hold" waits while the file "hold" exists (after writing its pid to step.pid).
HOLD_PLAN = """
plan: held
tasks:
  - id: first
    name: First
    run: "echo first >> log.txt; touch first.done"
    criteria: [{file_exists: first.done}]
  - id: hold
    name: Hold
    depends_on: [first]
    run: |
      echo hold >> log.txt
      if [ -e hold ]; then echo $$ > step.pid; touch reached; while [ -e hold ]; do sleep 0.05; done; fi
      touch hold.done
    criteria: [{file_exists: hold.done}]
"""


def store(root: Path | str = ".") -> StateStore:
    return StateStore(Path(root) / ".planrun", [], quarantine=False)


def record(key: str = "demo.plan.yaml", root: Path | str = ".") -> dict[str, Any]:
    found = store(root).load(key)
    assert found is not None, f"no state for {key}"
    return found


def log() -> list[str]:
    return Path("log.txt").read_text().split() if Path("log.txt").exists() else []


def outcomes(rec: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {k: (v["status"], v["outcome"]) for k, v in rec["items"].items()}


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60  # hang guard only
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"planrun ended early ({proc.returncode}):\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


# -- what is written, when ---------------------------------------------------


class Spy:
    """Reads the state file from disk right after the store handled each event (trylast)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: list[tuple[str, str, tuple[str, str | None] | None]] = []

    def _disk(self, nodeid: str) -> tuple[str, str | None] | None:
        plan, _, item_id = nodeid.partition("::")
        path = store(self.root).path_for(plan)
        if not path.exists():
            return None
        entry = json.loads(path.read_text())["items"].get(item_id)
        return None if entry is None else (entry["status"], entry["outcome"])

    @hookimpl(trylast=True)
    def planrun_runtest_logstart(self, nodeid: str) -> None:
        self.seen.append(("start", nodeid, self._disk(nodeid)))

    @hookimpl(trylast=True)
    def planrun_task_executed(self, nodeid: str) -> None:
        self.seen.append(("executed", nodeid, self._disk(nodeid)))

    @hookimpl(trylast=True)
    def planrun_runtest_logreport(self, report: Any) -> None:
        self.seen.append(("report", report.nodeid, self._disk(report.nodeid)))


def test_each_event_of_a_performed_task_is_on_disk_before_the_next(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    spy = Spy(planrunner.path)
    result = planrunner.run("demo.plan.yaml", plugins=[spy])
    assert result.ret == ExitCode.TESTS_FAILED, result
    seen = {(event, nodeid.split("::")[1]): disk for event, nodeid, disk in spy.seen}
    assert seen[("start", "a")] == ("in_progress", None)
    assert seen[("executed", "a")] == ("executed", None)
    assert seen[("report", "a")] == ("verified", "passed")
    assert seen[("executed", "b")] == ("executed", None)
    assert seen[("report", "b")] == ("executed", "failed")  # the step failed: executed, criteria not asserted
    assert seen[("report", "c")] == ("pending", "skipped")
    rec = record()
    assert outcomes(rec) == {
        "a": ("verified", "passed"),
        "b": ("executed", "failed"),
        "c": ("pending", "skipped"),
        "d": ("verified", "passed"),
    }
    a = rec["items"]["a"]
    assert a["attempts"] == 1 and a["exec_status"] == "done" and a["task_hash"] and a["run_id"] == rec["run_id"]
    assert a["criteria"] == [{"name": "file_exists a.done", "outcome": "passed", "message": ""}]
    assert a["started"] <= a["finished"] and a["duration"] >= 0
    assert rec["plan_hash"] and len(rec["plan_hash"]) == 64


def test_verify_only_outcomes_are_written_once_at_the_end(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    spy = Spy(planrunner.path)
    result = planrunner.run("--verify-only", "demo.plan.yaml", plugins=[spy])
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert all(disk is None for _, _, disk in spy.seen), spy.seen  # nothing fsynced per item
    assert not store().path_for("demo.plan.yaml").exists()
    assert outcomes(record()) == {
        "a": ("verified", "failed"),
        "b": ("pending", "skipped"),
        "c": ("pending", "skipped"),
        "d": ("verified", "failed"),
    }


class EditsThePlan:
    """Rewrites the plan file while its first item runs (an editor saving it mid-run)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @hookimpl
    def planrun_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.path.write_text(self.path.read_text() + "# edited while it ran\n")


@pytest.mark.parametrize("cached", [False, True])
def test_the_plan_hash_is_of_the_version_that_ran(planrunner: Planrunner, cached: bool) -> None:
    import hashlib

    path = planrunner.makeplan("demo", PLAN)
    ran = hashlib.sha256(path.read_bytes()).hexdigest()
    if cached:
        planrunner.run("--verify-only", "demo.plan.yaml")  # the next run reads it from the cache
    planrunner.run("--verify-only", "demo.plan.yaml", plugins=[EditsThePlan(path)])
    assert record()["plan_hash"] == ran != hashlib.sha256(path.read_bytes()).hexdigest()
    result = planrunner.run("--verify-only", "-q", "demo.plan.yaml")  # the edited version, recorded as such
    assert result.ret == ExitCode.TESTS_FAILED
    assert record()["plan_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_verify_only_run_keeps_what_the_performing_run_knew(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    before = record()["items"]["a"]
    Path("a.done").unlink()
    assert planrunner.run("--verify-only", "demo.plan.yaml").ret == ExitCode.TESTS_FAILED
    after = record()["items"]["a"]
    assert (after["status"], after["outcome"]) == ("verified", "failed")
    assert after["attempts"] == 1 and after["task_hash"] == before["task_hash"] and after["exec_status"] == "done"


def test_files_are_whole_json_and_no_temp_file_is_left(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    planrunner.run("--verify-only", "demo.plan.yaml")
    names = sorted(p.name for p in Path(".planrun/state").iterdir())
    assert names == [store().path_for("demo.plan.yaml").name, "verified.jsonl"]
    for name in names:
        text = Path(".planrun/state", name).read_text()
        for line in text.splitlines() if name.endswith(".jsonl") else [text]:
            json.loads(line)


def test_stale_temp_files_of_a_killed_writer_are_removed(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    stale = [Path(".planrun/state", f".x.json.{n}{TEMP_SUFFIX}") for n in ("ab12", "cd34")]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    keep = Path(".planrun/state/notes.txt")
    keep.write_text("mine")
    planrunner.run("--verify-only", "demo.plan.yaml")
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine"


def test_collect_only_writes_no_state(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    assert planrunner.run("--co", "demo.plan.yaml").ret == ExitCode.OK
    assert not Path(".planrun/state").exists() or not any(Path(".planrun/state").iterdir())
    assert not Path(".planrun/lock").exists()


def test_p_no_state_disables_the_store_and_its_options(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    assert planrunner.run("-p", "no:state", "demo.plan.yaml").ret == ExitCode.TESTS_FAILED
    assert not Path(".planrun/state").exists() and not Path(".planrun/lock").exists()  # (the caches may be there)
    result = planrunner.run("-p", "no:state", "--lf", "demo.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert "unrecognized arguments: --lf" in result.errstr


def test_a_state_that_cannot_be_written_is_a_warning_not_a_crash(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    Path(".planrun").mkdir()
    Path(".planrun/state").write_text("a file where the folder goes")
    for args in (["demo.plan.yaml"], ["--verify-only", "demo.plan.yaml"]):
        result = planrunner.run(*args)
        assert result.ret == ExitCode.TESTS_FAILED, result
        result.stdout.re_match_lines([r"cannot write the state under .*state.*: .*; state not recorded"])
        assert result.no_traceback()
    assert log() == ["a", "b", "d"]  # the run itself went on
    assert Path(".planrun/state").read_text() == "a file where the folder goes"


# -- corrupt files --------------------------------------------------------------

CORRUPTIONS = {
    "truncated": b'{"format": 1, "plan": "demo.plan.yaml", "items": {"a": {"kind": "ta',
    "not-json": b"this is not json\n",
    "a-list": b"[1, 2, 3]",
    "wrong-version": json.dumps({"format": 99, "plan": "demo.plan.yaml", "items": {}}).encode(),
    "binary": bytes(range(256)),
    "wrong-shape": json.dumps(
        {
            "format": 1,
            "plan": "demo.plan.yaml",
            "plan_hash": None,
            "run_id": None,
            "updated": 0,
            "items": {"a": {"kind": "task", "status": "passed-for-sure"}},
        }
    ).encode(),
    "another-plan": json.dumps(
        {"format": 1, "plan": "other.plan.yaml", "plan_hash": None, "run_id": None, "updated": 0, "items": {}}
    ).encode(),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_plan_file_is_moved_aside_with_a_warning(planrunner: Planrunner, kind: str) -> None:
    planrunner.makeplan("demo", PLAN)
    path = store().path_for("demo.plan.yaml")
    path.parent.mkdir(parents=True)
    path.write_bytes(CORRUPTIONS[kind])
    result = planrunner.run("--resume", "demo.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.re_match_lines([rf"state file \.planrun/state/{path.name} is corrupt \(.+\): moved aside to .*"])
    asides = list(path.parent.glob(f"{path.name}.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_bytes() == CORRUPTIONS[kind]  # nothing lost
    assert log() == ["a", "b", "d"]  # treated as absent: everything ran
    assert outcomes(record())["a"] == ("verified", "passed")  # and a fresh state was written
    assert result.no_traceback()


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b'{"format": 1, "plans": {}}',  # the format before JSON lines
        b'{"format": 3}\n',
        b'{"format": 2}\n{"plans": 1}\n',
        b'{"format": 2}\n{"key": 12, "items": {}}\n',
        b'{"format": 2}\nnot json\n',
        b"\xff\xfe",
        b"",
    ],
)
def test_a_corrupt_batch_file_is_moved_aside(planrunner: Planrunner, content: bytes) -> None:
    planrunner.makeplan("demo", PLAN)
    batch = Path(".planrun/state/verified.jsonl")
    batch.parent.mkdir(parents=True)
    batch.write_bytes(content)
    result = planrunner.run("--verify-only", "demo.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert "state file .planrun/state/verified.jsonl is corrupt" in result.outstr
    assert [p.read_bytes() for p in batch.parent.glob("verified.jsonl.corrupt-*")] == [content]
    assert outcomes(record())["a"] == ("verified", "failed")


def test_a_corrupt_plan_entry_inside_the_batch_is_ignored_with_a_warning(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    batch = Path(".planrun/state/verified.jsonl")
    batch.parent.mkdir(parents=True)
    bad = {"plan_hash": None, "run_id": "r", "updated": 1.0, "items": {"a": ["task", "verified", "passed"]}}
    batch.write_text('{"format": 2}\n' + json.dumps({"key": "demo.plan.yaml", **bad}) + "\n")
    result = planrunner.run("--resume", "demo.plan.yaml")
    assert "plan 'demo.plan.yaml' is corrupt (item 'a' is not a list of 7): ignored" in result.outstr
    assert log() == ["a", "b", "d"]  # the bad entry passed nothing


def test_status_only_reports_a_corrupt_file(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    path = store().path_for("demo.plan.yaml")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage")
    result = planrunner.run("status", "demo.plan.yaml")
    assert result.ret == ExitCode.OK
    assert f"state file .planrun/state/{path.name} is corrupt (not JSON" in result.errstr
    assert path.read_bytes() == b"\x00garbage"  # a reader moves nothing
    result.stdout.fnmatch_lines(["demo.plan.yaml (never run)"])


# -- one run at a time -----------------------------------------------------------


def test_a_second_run_exits_4_naming_the_holder(planrunner: Planrunner) -> None:
    planrunner.makeplan("held", HOLD_PLAN)
    Path("hold").touch()
    first = planrunner.popen("held.plan.yaml")
    try:
        wait_for(Path("reached"), first)
        second = planrunner.runsubprocess("held.plan.yaml")
        assert second.ret == ExitCode.USAGE_ERROR, second
        lock = planrunner.path / ".planrun" / "lock"
        second.stderr.re_match_lines(
            [rf"ERROR: another planrun run holds {lock} \(pid {first.pid}, started \d{{4}}-.+\)"]
        )
        assert second.outstr == ""  # before any header
        assert log() == ["first", "hold"]  # the second executed nothing
        # Readers need no lock.
        assert planrunner.runsubprocess("status").ret == ExitCode.OK
        assert planrunner.runsubprocess("--co", "held.plan.yaml").ret == ExitCode.OK
    finally:
        Path("hold").unlink()
        out, err = first.communicate(timeout=60)
    assert first.returncode == ExitCode.OK, out + err
    assert outcomes(record("held.plan.yaml"))["hold"] == ("verified", "passed")


def test_the_lock_of_a_killed_holder_is_free_at_once(planrunner: Planrunner) -> None:
    planrunner.makeplan("held", HOLD_PLAN)
    Path("hold").touch()
    first = planrunner.popen("held.plan.yaml")
    wait_for(Path("reached"), first)
    first.kill()
    first.communicate(timeout=60)
    os.killpg(int(Path("step.pid").read_text()), signal.SIGKILL)  # its step: planrun had no chance to
    Path("hold").unlink()
    assert outcomes(record("held.plan.yaml"))["hold"] == ("in_progress", None)
    result = planrunner.run("--resume", "held.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert log() == ["first", "hold", "hold"]  # first verified, hold re-run
    assert outcomes(record("held.plan.yaml"))["hold"] == ("verified", "passed")


def test_a_lock_file_that_is_a_symlink_is_refused(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    Path(".planrun").mkdir()
    Path("elsewhere").write_text("x")
    os.symlink("../elsewhere", ".planrun/lock")
    result = planrunner.run("demo.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert "ERROR: cannot open the run lock" in result.errstr and "a symlink" in result.errstr
    assert log() == [] and Path("elsewhere").read_text() == "x"


# -- --lf and --ff ------------------------------------------------------------------


def test_lf_without_state_runs_everything_and_says_so(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    result = planrunner.run("--lf", "demo.plan.yaml")
    result.stdout.fnmatch_lines(["run-last-failure: no previously failed items, running all 4"])
    assert log() == ["a", "b", "d"]


def test_lf_reruns_the_failures_with_their_dependencies_verified(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    result = planrunner.run("--lf", "-v", "demo.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["run-last-failure: rerun previous 1 failure", "collected 4 items / 2 deselected / 2 selected*"]
    )
    assert log() == ["a", "b", "d", "b"]  # a verified, not performed; d deselected
    result.assert_outcomes(passed=1, failed=1, deselected=2)


def test_lf_counts_interrupted_and_unfinished_tasks_as_failures(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    path = store().path_for("demo.plan.yaml")
    data = json.loads(path.read_text())
    data["items"]["d"].update(status="in_progress", outcome=None)  # killed while d ran
    data["items"]["a"].update(outcome="interrupted")
    path.write_text(json.dumps(data))
    result = planrunner.run("--lf", "demo.plan.yaml")
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 3 failures"])
    assert log()[3:] == ["a", "b", "d"]


def test_lf_across_plans_skips_the_plans_that_passed(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.makeplan(
        "ok",
        "plan: ok\ntasks:\n  - id: t\n    name: T\n    run: 'echo ok >> log.txt'\n    criteria: [{file_exists: log.txt}]\n",
    )
    planrunner.run(".")
    result = planrunner.run("--lf", ".")
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure (skipped 1 plan)"])
    assert log().count("ok") == 1


def test_ff_runs_failing_plans_and_items_first_after_their_dependencies(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "aaa",
        "plan: aaa\ntasks:\n  - id: t\n    name: T\n    run: 'echo aaa >> log.txt'\n    criteria: [{file_exists: log.txt}]\n",
    )
    planrunner.makeplan("demo", PLAN)
    planrunner.run(".")
    Path("log.txt").unlink()
    result = planrunner.run("--ff", "-v", ".")
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure first"])
    order = [
        line.split()[0]
        for line in result.outstr.splitlines()
        if line.startswith(("demo.plan.yaml::", "aaa.plan.yaml::"))
        and line.split()[1:2] in (["PASSED"], ["FAILED"], ["SKIPPED"])
    ]
    assert order == [
        "demo.plan.yaml::a",
        "demo.plan.yaml::b",
        "demo.plan.yaml::c",
        "demo.plan.yaml::d",
        "aaa.plan.yaml::t",
    ]
    assert log() == ["a", "b", "d", "aaa"]


def test_ff_puts_a_failed_task_before_unrelated_ones(planrunner: Planrunner) -> None:
    plan = PLAN.replace("exit 1", "touch b.done").replace(
        '"echo d >> log.txt; touch d.done"', '"echo d >> log.txt; exit 1"'
    )
    planrunner.makeplan("demo", plan)
    planrunner.run("demo.plan.yaml")
    result = planrunner.run("--ff", "-v", "demo.plan.yaml")
    order = [
        line.split()[0]
        for line in result.outstr.splitlines()
        if line.startswith("demo.plan.yaml::") and line.split()[1:2] in (["PASSED"], ["FAILED"], ["SKIPPED"])
    ]
    assert order == ["demo.plan.yaml::d", "demo.plan.yaml::a", "demo.plan.yaml::b", "demo.plan.yaml::c"]


def test_ff_without_failures_keeps_the_order(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    result = planrunner.run("--ff", "demo.plan.yaml")
    result.stdout.fnmatch_lines(["run-last-failure: no previously failed items, running in the usual order"])


# -- --resume ---------------------------------------------------------------------


def test_resume_without_state_runs_everything_and_says_so(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    result = planrunner.run("--resume", "demo.plan.yaml")
    result.stdout.fnmatch_lines(["resume: no recorded state: running everything"])
    assert log() == ["a", "b", "d"]


def test_resume_verifies_passed_tasks_and_reruns_the_rest(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    result = planrunner.run("--resume", "-v", "demo.plan.yaml")
    result.stdout.fnmatch_lines(["resume: 2 passed before (verified, not performed)"])
    assert log() == ["a", "b", "d", "b"]
    result.assert_outcomes(passed=2, failed=1, skipped=1)


def test_resume_never_passes_what_no_longer_holds(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    Path("d.done").unlink()
    result = planrunner.run("--resume", "demo.plan.yaml")
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    assert "d" not in log()[3:]  # verified (and failed), not performed again
    assert outcomes(record())["d"] == ("verified", "failed")


def _set(entry_id: str, **fields: Any) -> None:
    path = store().path_for("demo.plan.yaml")
    data = json.loads(path.read_text())
    data["items"][entry_id].update(fields)
    path.write_text(json.dumps(data))


def test_resume_verifies_an_executed_task_first(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    _set("d", status="executed", outcome=None, exec_status="done")  # killed between executing and verifying
    result = planrunner.run("--resume", "demo.plan.yaml")
    result.stdout.fnmatch_lines(
        ["resume: 1 passed before (verified, not performed), 1 executed before (verified first)"]
    )
    assert log() == ["a", "b", "d", "b"]  # d's criteria held: not performed again
    assert outcomes(record())["d"] == ("verified", "passed")


def test_resume_performs_an_executed_task_whose_criteria_do_not_hold(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    _set("d", status="executed", outcome=None, exec_status="done")
    Path("d.done").unlink()
    assert planrunner.run("--resume", "demo.plan.yaml").ret == ExitCode.TESTS_FAILED
    assert log() == ["a", "b", "d", "b", "d"]
    assert outcomes(record())["d"] == ("verified", "passed")


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "in_progress", "outcome": None},
        {"status": "in_progress", "outcome": "interrupted"},
        {"status": "executed", "outcome": None, "exec_status": "failed"},  # the step failed: its files prove nothing
        {"status": "executed", "outcome": "failed"},
    ],
)
def test_resume_reruns_unfinished_or_interrupted_tasks(planrunner: Planrunner, fields: dict[str, Any]) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    _set("d", **fields)
    planrunner.run("--resume", "demo.plan.yaml")
    assert log() == ["a", "b", "d", "b", "d"]


def test_resume_reruns_a_changed_plan_from_its_first_changed_task(planrunner: Planrunner) -> None:
    plan = PLAN.replace("exit 1", "touch b.done")
    planrunner.makeplan("demo", plan)
    assert planrunner.run("demo.plan.yaml").ret == ExitCode.OK
    planrunner.makeplan("demo", plan.replace("echo b >> log.txt", "echo b2 >> log.txt"))
    status = planrunner.run("status", "demo.plan.yaml")
    status.stdout.fnmatch_lines(["demo.plan.yaml (changed since the last run)"])
    result = planrunner.run("--resume", "demo.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["resume: demo.plan.yaml changed since the last run: re-running from task b on"])
    assert log() == ["a", "b", "c", "d", "b2", "c", "d"]  # a verified; b and everything after it performed


def test_resume_treats_a_task_inserted_before_performed_ones_as_a_change(planrunner: Planrunner) -> None:
    plan = PLAN.replace("exit 1", "touch b.done")
    planrunner.makeplan("demo", plan)
    planrunner.run("demo.plan.yaml")
    inserted = plan.replace(
        "  - id: b\n",
        "  - id: new\n    name: New\n    run: 'echo new >> log.txt'\n    criteria: [{file_exists: log.txt}]\n  - id: b\n",
    )
    planrunner.makeplan("demo", inserted)
    result = planrunner.run("--resume", "demo.plan.yaml")
    result.stdout.fnmatch_lines(["resume: demo.plan.yaml changed since the last run: re-running from task new on"])
    assert log() == ["a", "b", "c", "d", "new", "b", "c", "d"]


def test_resume_runs_a_temp_workspace_plan_in_full(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "tmp",
        "plan: tmp\nworkspace: temp\ntasks:\n  - id: t\n    name: T\n    run: 'touch t.done'\n    criteria: [{file_exists: t.done}]\n",
    )
    planrunner.run("tmp.plan.yaml")
    result = planrunner.run("--resume", "tmp.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        ["resume: 0 passed before (verified, not performed), 1 plan with a temp/copy workspace run in full"]
    )


def test_an_interrupted_task_is_recorded(planrunner: Planrunner) -> None:
    planrunner.makeplan("held", HOLD_PLAN)
    Path("hold").touch()
    proc = planrunner.popen("held.plan.yaml")
    try:
        wait_for(Path("reached"), proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        Path("hold").unlink()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert outcomes(record("held.plan.yaml"))["hold"] == ("in_progress", "interrupted")
    assert planrunner.run("--lf", "held.plan.yaml").ret == ExitCode.OK
    assert log() == ["first", "hold", "hold"]


# -- status and graph ------------------------------------------------------------


def test_status_shows_a_table_per_plan(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.makeplan("never", "plan: never\ntasks:\n  - id: x\n    name: X\n    criteria: [{file_exists: x}]\n")
    planrunner.run("demo.plan.yaml")
    result = planrunner.run("status", ".")
    assert result.ret == ExitCode.OK, result
    result.stdout.re_match_lines(
        [
            r"demo\.plan\.yaml$",
            r".*task .*status .*outcome .*attempts .*tokens .*last run .*duration.*",
            r".* a .* verified .* passed .* 1 .* 0 .* \d\d-\d\d \d\d:\d\d:\d\d .* \d+\.\d\ds.*",
            r".* b .* executed .* failed .*",
            r".* c .* pending .* skipped .* 0 .*",
            r"never\.plan\.yaml \(never run\)$",
            r".* x .* pending .* - .* 0 .* 0 .* - .* - .*",
        ]
    )


def test_status_without_paths_lists_the_recorded_plans(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.makeplan("never", "plan: never\ntasks:\n  - id: x\n    name: X\n    criteria: [{file_exists: x}]\n")
    assert planrunner.run("status").stdout.str().startswith("no recorded plans")
    planrunner.run("demo.plan.yaml")
    result = planrunner.run("status")
    assert "never.plan.yaml" not in result.outstr and "demo.plan.yaml" in result.outstr
    os.unlink("demo.plan.yaml")
    result = planrunner.run("status")
    result.stdout.fnmatch_lines(["demo.plan.yaml (plan file missing)"])
    result.stdout.re_match_lines([r".* a .* verified .* passed .*"])


def test_status_escapes_what_it_prints(planrunner: Planrunner) -> None:
    name = "ev\x1b[31mil"
    planrunner.makeplan(name, PLAN.replace("plan: demo", "plan: evil"))
    planrunner.run("--verify-only", f"{name}.plan.yaml")
    result = planrunner.run("status")
    assert "\x1b" not in result.outstr
    assert "ev\\x1b[31mil.plan.yaml" in result.outstr


def test_status_usage_errors(planrunner: Planrunner) -> None:
    result = planrunner.run("status", "missing.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.strip() == "ERROR: file or directory not found: missing.plan.yaml"
    result = planrunner.run("status", "--bogus")
    assert result.ret == ExitCode.USAGE_ERROR and "unrecognized arguments: --bogus" in result.errstr


def test_graph_colours_tasks_by_their_recorded_outcome(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    before = planrunner.run("graph", "demo.plan.yaml")
    assert before.ret == ExitCode.OK and "class " not in before.outstr
    planrunner.run("demo.plan.yaml")
    result = planrunner.run("graph", "demo.plan.yaml")
    assert result.ret == ExitCode.OK
    lines = result.outstr.splitlines()
    assert lines[0] == "flowchart TD"
    for node, outcome in (("t1", "passed"), ("t2", "failed"), ("t3", "skipped"), ("t4", "passed")):
        assert f"    class {node} {outcome}" in lines
    assert "    t1 --> t2" in lines and "    t2 --> t3" in lines
    assert any(line.startswith("    classDef failed ") for line in lines)


def test_graph_errors(planrunner: Planrunner) -> None:
    result = planrunner.run("graph")
    assert result.ret == ExitCode.USAGE_ERROR and "PLAN" in result.errstr
    result = planrunner.run("graph", "nope.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.strip() == "ERROR: nope.plan.yaml: no such file"
    # A folder or a FIFO is not a plan file: the same usage error as review and import give, nothing read.
    (planrunner.path / "folder").mkdir()
    os.mkfifo(planrunner.path / "pipe")
    for arg in ("folder", "pipe"):
        result = planrunner.run("graph", arg)
        assert result.ret == ExitCode.USAGE_ERROR, result
        assert result.errstr.strip() == f"ERROR: {arg}: not a regular file"
        assert result.outstr == ""
    planrunner.makeplan(
        "bad", "plan: bad\ntasks:\n  - id: a\n    name: A\n    depends_on: [zzz]\n    criteria: [{file_exists: x}]\n"
    )
    result = planrunner.run("graph", "bad.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    assert result.errstr.startswith("ERROR: bad.plan.yaml:5:")
    assert result.outstr == ""


def test_status_names_a_plan_that_no_longer_loads(planrunner: Planrunner) -> None:
    planrunner.makeplan("demo", PLAN)
    planrunner.run("demo.plan.yaml")
    planrunner.makeplan("demo", "plan: demo\ntasks: [oops\n")
    result = planrunner.run("status")
    assert result.ret == ExitCode.OK, result
    result.stdout.re_match_lines([r"demo\.plan\.yaml \(cannot load: demo\.plan\.yaml:3:1: did not find .*\)$"])
    result.stdout.re_match_lines([r".* b .* executed .* failed .*"])  # what was recorded is still shown


def test_the_state_folder_stays_out_of_git(planrunner: Planrunner) -> None:
    from planrun import git_env

    planrunner.makeplan("demo", PLAN.replace("exit 1", "touch b.done"))
    env = git_env()
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], check=True, env=env, capture_output=True)
    assert planrunner.run("--verify-only", "demo.plan.yaml").ret == ExitCode.TESTS_FAILED
    assert Path(".planrun/.gitignore").read_text().splitlines()[-1] == "*"
    status = subprocess.run(["git", "status", "--porcelain"], env=env, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def test_a_regression_is_rerun_by_lf_and_forgotten_once_it_is_gone(planrunner: Planrunner) -> None:
    plan = """
    plan: reg
    tasks:
      - id: a
        name: A
        run: "touch a.txt"
        criteria: [{command: {run: "test -e a.txt"}}]
      - id: b
        name: B
        run: "BREAK; touch b.txt"
        criteria: [{file_exists: b.txt}]
    """
    planrunner.makeplan("reg", plan.replace("BREAK", "rm a.txt"))
    first = planrunner.run("reg.plan.yaml")
    assert first.ret == ExitCode.TESTS_FAILED
    assert record("reg.plan.yaml")["items"]["regressions"]["outcome"] == "failed"
    planrunner.run("--lf", "reg.plan.yaml").stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures"])
    planrunner.makeplan("reg", plan.replace("BREAK", "true"))
    assert planrunner.run("reg.plan.yaml").ret == ExitCode.OK
    assert "regressions" not in record("reg.plan.yaml")["items"]
    planrunner.run("--lf", "reg.plan.yaml").stdout.fnmatch_lines(["run-last-failure: no previously failed items*"])


VERIFY_PLAN = """\
plan: V{n}
tasks:
  - id: a
    name: A
    criteria: [{{file_exists: a{n}.txt}}]
  - id: b
    name: B
    criteria: [{{file_exists: b{n}.txt}}]
"""


def batch_text() -> str:
    return Path(".planrun/state/verified.jsonl").read_text()


def batch_line_of(key: str) -> str:
    return next(line for line in batch_text().splitlines() if f'"key":"{key}"' in line)


def test_the_batch_keeps_untouched_plans_lines_as_they_were(planrunner: Planrunner) -> None:
    """A run of one plan rewrites its line only; another plan's line is copied, byte for byte."""
    for n in range(3):
        planrunner.makefile(f"a{n}.txt", "")
        planrunner.makeplan(f"v{n}", VERIFY_PLAN.format(n=n))
    assert planrunner.run("--verify-only").ret == ExitCode.TESTS_FAILED  # b0..b2 missing
    before = {key: batch_line_of(key) for key in ("v0.plan.yaml", "v2.plan.yaml")}
    planrunner.makefile("b1.txt", "")
    assert planrunner.run("--verify-only", "v1.plan.yaml").ret == ExitCode.OK
    assert {key: batch_line_of(key) for key in before} == before
    assert outcomes(record("v1.plan.yaml")) == {"a": ("verified", "passed"), "b": ("verified", "passed")}
    assert outcomes(record("v0.plan.yaml"))["b"] == ("verified", "failed")
    assert batch_text().splitlines()[0] == '{"format": 2}'


def test_a_partial_run_merges_into_the_plans_line(planrunner: Planrunner) -> None:
    """Items this run did not run keep their rows; those it ran are replaced."""
    planrunner.makefile("a0.txt", "")
    planrunner.makeplan("v0", VERIFY_PLAN.format(n=0))
    planrunner.run("--verify-only")
    planrunner.makefile("b0.txt", "")
    assert planrunner.run("--verify-only", "v0.plan.yaml::b").ret == ExitCode.OK
    assert outcomes(record("v0.plan.yaml")) == {"a": ("verified", "passed"), "b": ("verified", "passed")}


def test_a_whole_run_drops_rows_of_items_the_plan_no_longer_has(planrunner: Planrunner) -> None:
    planrunner.makefile("a0.txt", "")
    planrunner.makefile("b0.txt", "")
    planrunner.makeplan("v0", VERIFY_PLAN.format(n=0))
    planrunner.run("--verify-only")
    planrunner.makeplan("v0", VERIFY_PLAN.format(n=0).split("  - id: b")[0])  # task b removed
    assert planrunner.run("--verify-only").ret == ExitCode.OK
    assert outcomes(record("v0.plan.yaml")) == {"a": ("verified", "passed")}


@pytest.mark.parametrize("absolute", ["/a/b/c", "/a/b", "/a/bc", "/a", "/", "/a/b/c/d.yaml", "/ab/c"])
@pytest.mark.parametrize("root", ["/a/b", "/a/b/", "/", "/a", "/a//b", "/ab", "/a/b/.."])
def test_a_path_below_the_rootdir_is_keyed_as_pathlib_relates_it(absolute: str, root: str) -> None:
    """statestore.relative_below (plan keys, displayed paths) compares components, as PurePath.relative_to."""
    from pathlib import PurePosixPath

    from planrun.statestore import relative_below

    try:
        expected: str | None = PurePosixPath(absolute).relative_to(root).as_posix()
    except ValueError:
        expected = None
    assert relative_below(absolute, root) == expected
