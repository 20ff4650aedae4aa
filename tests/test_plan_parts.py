"""``-n`` with fewer plans than workers: a verify-only plan runs in parts, reported exactly as the whole plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

from .test_workers import Recorder, _normalised_json, _normalised_junit, _same, _state

#: A plan with every kind of item: prerequisites, tasks with dependencies (one chain through a failure), a skip,
#: edge cases and the verification.
BIG = """
plan: Big
prerequisites:
  - file_exists: {prerequisite}
tasks:
{tasks}
edge_cases:
  - case: empty input
    criteria: [{{file_contains: {{path: a.txt, pattern: hi}}}}]
  - case: missing file
    criteria: [{{file_absent: nowhere.txt}}]
verification:
  - file_exists: a.txt
  - {{command: "test -f a.txt"}}
"""


def _tasks(count: int, *, failing: tuple[int, ...] = (), deps: dict[int, int] | None = None) -> str:
    out = []
    for t in range(count):
        dep = f"\n    depends_on: [t{deps[t]}]" if deps and t in deps else ""
        crit = "file_exists: nope.txt" if t in failing else "file_contains: {path: a.txt, pattern: hi}"
        skip = ", {file_exists: a.txt, skip: not today}" if t == 3 else ""
        out.append(f"  - id: t{t}\n    name: Task {t}{dep}\n    criteria: [{{{crit}}}, {{command: 'true'}}{skip}]")
    return "\n".join(out)


#: Writes "nodeid pid" for every item, where it ran (makereport runs in the worker).
WHERE = """
import os

def planrun_runtest_makereport(report):
    with open(os.path.join(os.path.dirname(__file__), "where.txt"), "a") as f:
        f.write(f"{report.nodeid} {os.getpid()}\\n")
"""


def _where(planrunner: Planrunner) -> dict[str, str]:
    path = planrunner.path / "where.txt"
    found = dict(line.split() for line in path.read_text().splitlines())
    path.unlink()
    return found


def _groups(where: dict[str, str]) -> list[list[str]]:
    """The item ids run by each process, in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for nodeid, pid in where.items():
        groups.setdefault(pid, []).append(nodeid.split("::", 1)[1])
    return list(groups.values())


@pytest.fixture
def project(planrunner: Planrunner) -> Planrunner:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makeconftest(WHERE)
    return planrunner


CASES = {
    "passing": dict(prerequisite="a.txt", failing=(), deps={5: 4, 9: 8}),
    # t6 fails, so t7 and t8 are skipped; a cut between t6 and t7 (where the weights alone would cut) would lose that
    "failed-dependency": dict(prerequisite="a.txt", failing=(6,), deps={7: 6, 8: 7, 9: 0}),
    "failed-prerequisites": dict(prerequisite="nope.txt", failing=(2,), deps={}),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("workers", ["2", "3", "auto"])
@pytest.mark.parametrize("verbosity", ["-q", "-v"])
def test_a_plan_in_parts_reports_what_the_whole_plan_reports(
    project: Planrunner, tmp_path: Path, case: str, workers: str, verbosity: str
) -> None:
    spec = CASES[case]
    tasks = _tasks(12, failing=spec["failing"], deps=spec["deps"])  # type: ignore[arg-type]
    project.makeplan("big", BIG.format(prerequisite=spec["prerequisite"], tasks=tasks))
    runs = []
    for n in ("1", workers):
        events = Recorder()
        reports = ["--junitxml", tmp_path / "r.xml", "--json", tmp_path / "r.json"]  # one name: the output names it
        result = project.run("--verify-only", verbosity, "-n", n, *reports, "big.plan.yaml", plugins=[events])
        files = (_normalised_junit(tmp_path / "r.xml"), _normalised_json(tmp_path / "r.json"))
        runs.append((result, events, _where(project), _state(project.path), files))
    serial, serial_events, serial_where, serial_state, serial_files = runs[0]
    parts, parts_events, parts_where, parts_state, parts_files = runs[1]
    assert parts.ret == serial.ret == (ExitCode.OK if case == "passing" else ExitCode.TESTS_FAILED)
    assert _same(parts.outstr) == _same(serial.outstr)
    assert parts_events.events == serial_events.events
    assert len(serial_events.events) == 2 * (1 + 12 + 2 + 1)
    assert parts_files == serial_files
    assert "<testcase" in serial_files[0]
    assert parts_state == serial_state
    assert set(serial_where.values()) == {str(os.getpid())}
    expected = len(os.sched_getaffinity(0)) if workers == "auto" else int(workers)
    assert len(set(parts_where.values())) == min(expected, 16)  # one part per worker (16 items)
    order = ["prerequisites", *(f"t{t}" for t in range(12)), "edge_cases[0]", "edge_cases[1]", "verification"]
    groups = sorted((sorted(group, key=order.index) for group in _groups(parts_where)), key=lambda g: order.index(g[0]))
    assert [item for group in groups for item in group] == order  # contiguous parts


@pytest.mark.parametrize(
    ("deps", "together"),
    [
        ({7: 6}, [("t6", "t7")]),  # across where the weights alone would cut (before t7)
        ({9: 2}, [("t2", "t9")]),  # a dependency across the middle keeps its whole span in one part
        ({11: 0}, [("t0", "t11")]),  # across the plan: no cut at all among the tasks
        ({2: 1, 8: 5}, [("t1", "t2"), ("t5", "t8")]),
        ({3: 8}, []),  # on a later task: its outcome is not known when the dependent runs, in any order
    ],
)
def test_a_cut_never_separates_a_task_from_a_task_it_depends_on(
    project: Planrunner, deps: dict[int, int], together: list[tuple[str, str]]
) -> None:
    project.makeplan("big", BIG.format(prerequisite="a.txt", tasks=_tasks(12, deps=deps)))
    serial = project.run("--verify-only", "big.plan.yaml")
    _where(project)
    result = project.run("--verify-only", "-n", "2", "big.plan.yaml")
    assert result.ret == serial.ret, result
    assert _same(result.outstr) == _same(serial.outstr)
    where = _where(project)
    for first, second in together:
        span = [f"big.plan.yaml::t{t}" for t in range(int(first[1:]), int(second[1:]) + 1)]
        assert len({where[nodeid] for nodeid in span}) == 1, where
    if deps != {11: 0}:
        assert len(set(where.values())) == 2, where


def test_the_parts_run_beside_each_other(project: Planrunner, tmp_path: Path) -> None:
    """The first and the last task each wait for the other's mark: only parts running at once can both pass."""
    meet = tmp_path / "meet"
    meet.mkdir()
    wait = "touch {meet}/{me}; for i in $(seq 300); do [ -e {meet}/{other} ] && exit 0; sleep 0.05; done; exit 1"
    project.makeplan(
        "meet",
        f"""
        plan: Meet
        tasks:
          - id: first
            name: First
            criteria: [{{command: "{wait.format(meet=meet, me="a", other="b")}"}}]
          - id: last
            name: Last
            criteria: [{{command: "{wait.format(meet=meet, me="b", other="a")}"}}]
        """,
    )
    result = project.run("--verify-only", "-n", "2", "meet.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=2)


PERFORMED = """
plan: Performed
tasks:
  - {id: a, name: A, run: "true", criteria: [{file_exists: a.txt}]}
  - {id: b, name: B, run: "true", criteria: [{file_exists: a.txt}]}
  - {id: c, name: C, run: "true", criteria: [{file_exists: a.txt}]}
"""
COMMAND_PREREQUISITE = """
plan: Command prerequisite
prerequisites:
  - command: "true"
tasks:
  - {id: a, name: A, criteria: [{file_exists: a.txt}]}
  - {id: b, name: B, criteria: [{file_exists: a.txt}]}
"""
TEMP = """
plan: Temp
workspace: temp
tasks:
  - {id: a, name: A, criteria: [{file_absent: a.txt}]}
  - {id: b, name: B, criteria: [{file_absent: a.txt}]}
"""
SMALL = "plan: P{n}\ntasks:\n  - {{id: a, name: A, criteria: [{{file_exists: a.txt}}]}}\n" + (
    "  - {{id: b, name: B, criteria: [{{file_exists: a.txt}}]}}\n"
)


@pytest.mark.parametrize(
    ("plans", "args"),
    [
        ({"performed": PERFORMED}, []),  # tasks performed in place: one after the other, in one process
        ({"prerequisite": COMMAND_PREREQUISITE}, ["--verify-only"]),  # each part would run the command again
        ({"temp": TEMP}, ["--verify-only"]),  # a workspace per part would be another folder
        ({f"p{n}": SMALL.format(n=n) for n in range(4)}, ["--verify-only"]),  # enough plans for two workers
    ],
    ids=["performed", "command-prerequisite", "temp-workspace", "enough-plans"],
)
def test_what_is_not_split(project: Planrunner, plans: dict[str, str], args: list[str]) -> None:
    for name, text in plans.items():
        project.makeplan(name, text)
    result = project.run(*args, "-n", "2", *(f"{name}.plan.yaml" for name in plans))
    assert result.ret == ExitCode.OK, result
    by_plan: dict[str, set[str]] = {}
    for nodeid, pid in _where(project).items():
        by_plan.setdefault(nodeid.split("::")[0], set()).add(pid)
    assert sorted(by_plan) == sorted(f"{name}.plan.yaml" for name in plans)
    assert all(len(pids) == 1 for pids in by_plan.values()), by_plan  # each plan whole, in one process


def test_x_in_the_first_part_reports_what_a_serial_run_would(project: Planrunner, tmp_path: Path) -> None:
    slow = f"echo $$ > {tmp_path}/slow.pid; sleep 300"
    project.makeplan(
        "stop",
        f"""
        plan: Stop
        tasks:
          - {{id: fail, name: Fails, criteria: [{{command: "sleep 0.5; false"}}]}}
          - {{id: next, name: Next, criteria: [{{file_exists: a.txt}}]}}
          - {{id: slow, name: Slow, criteria: [{{command: "{slow}"}}]}}
          - {{id: last, name: Last, criteria: [{{file_exists: a.txt}}]}}
        """,
    )
    serial = project.run("--verify-only", "-x", "stop.plan.yaml")
    (tmp_path / "slow.pid").unlink(missing_ok=True)
    parts = project.run("--verify-only", "-x", "-n", "2", "stop.plan.yaml")
    assert serial.ret == parts.ret == ExitCode.TESTS_FAILED
    assert _same(parts.outstr) == _same(serial.outstr)
    parts.assert_outcomes(failed=1)
    from .test_orphans import assert_gone

    if (tmp_path / "slow.pid").exists():  # the second part had started the slow command: it is gone
        assert_gone(int((tmp_path / "slow.pid").read_text()))


@pytest.mark.parametrize("how", ["SIGINT to the group", "SIGTERM to planrun"])
def test_an_interrupt_stops_every_part_and_reports_each_interrupted_item(
    project: Planrunner, tmp_path: Path, how: str
) -> None:
    from .test_orphans import assert_gone
    from .test_workers import interrupt_when_running

    hang = "sleep 300 & echo $! > {tmp}/sleep{i}.pid; wait"
    project.makeplan(
        "hang",
        f"""
        plan: Hang
        tasks:
          - {{id: quick1, name: Quick, criteria: [{{file_exists: a.txt}}]}}
          - {{id: hang1, name: Hang, criteria: [{{command: "{hang.format(tmp=tmp_path, i=1)}"}}]}}
          - {{id: quick2, name: Quick, criteria: [{{file_exists: a.txt}}]}}
          - {{id: hang2, name: Hang, criteria: [{{command: "{hang.format(tmp=tmp_path, i=2)}"}}]}}
        """,
    )
    result, sleepers = interrupt_when_running(project, ["--verify-only", "-n", "2", "hang.plan.yaml"], how, tmp_path)
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(["hang.plan.yaml .!.!*"])  # each part's interrupted item, once, in order
    assert result.no_traceback(), result
    for pid in sleepers:
        assert_gone(pid)


@pytest.mark.parametrize("selection", ["t1 or t2 or t7 or t8 or t9", "not t5", "verification or edge"])
def test_a_selection_in_parts_reports_what_it_reports_whole(project: Planrunner, selection: str) -> None:
    project.makeplan("big", BIG.format(prerequisite="a.txt", tasks=_tasks(12, failing=(7,), deps={8: 7, 9: 8})))
    serial = project.run("--verify-only", "-v", "-k", selection, "big.plan.yaml")
    _where(project)
    parts = project.run("--verify-only", "-v", "-n", "2", "-k", selection, "big.plan.yaml")
    assert parts.ret == serial.ret
    assert _same(parts.outstr) == _same(serial.outstr)
    assert "deselected" in serial.outstr
    assert len(set(_where(project).values())) == 2


def _evidence(path: Path) -> Any:
    import json

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("duration", "started", "finished", "created")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads(path.read_text()))


def test_the_evidence_of_a_plan_in_parts_is_that_of_the_whole_plan(project: Planrunner, tmp_path: Path) -> None:
    project.makefile("conf.json", '{"name": "demo"}\n')
    project.makeplan("big", BIG.format(prerequisite="a.txt", tasks=_tasks(12, failing=(4,))))
    records = []
    for n in ("1", "2"):
        result = project.run("--verify-only", "-n", n, "--evidence", tmp_path / "ev.json", "big.plan.yaml")
        assert result.ret == ExitCode.TESTS_FAILED, result
        records.append(_evidence(tmp_path / "ev.json"))
    assert len(set(_where(project).values())) == 2
    assert records[1] == records[0]
    assert "a.txt" in json_text(records[0])


def json_text(node: Any) -> str:
    import json

    return json.dumps(node)
