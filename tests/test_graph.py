"""The task graph as Mermaid, and the runner's item events (logstart, executed) in order."""

from __future__ import annotations

from typing import Any

from planrun import ExitCode, hookimpl, mermaid
from planrun.model import Plan
from planrun.testing import Planrunner


def _plan(tasks: list[dict[str, Any]]) -> Plan:
    return Plan.model_validate({"plan": "p", "tasks": tasks})


def test_mermaid_draws_every_task_and_dependency_coloured_by_outcome() -> None:
    plan = _plan(
        [
            {"id": "a", "name": "First"},
            {"id": "b", "name": "Second", "depends_on": ["a"]},
            {"id": "c", "name": "c", "depends_on": ["a", "b"]},
        ]
    )
    text = mermaid(plan, {"a": "passed", "b": "failed"})
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    t1["a: First<br/><i>passed</i>"]' in lines
    assert '    t3["c"]' in lines  # name == id: shown once; no outcome: no class
    assert {"    t1 --> t2", "    t1 --> t3", "    t2 --> t3"} <= set(lines)
    assert "    class t1 passed" in lines and "    class t2 failed" in lines
    assert not any(line.startswith("    class t3") for line in lines)
    assert sum(line.startswith("    classDef ") for line in lines) == 2


def test_mermaid_labels_cannot_break_out_of_their_quotes() -> None:
    hostile = 'x"] --> evil["<script>`\x1b[31m'
    text = mermaid(_plan([{"id": "a", "name": hostile}]), {"a": 'pass"ed'})
    node = text.splitlines()[1]
    assert node.startswith('    t1["') and node.endswith('"]')
    inner = node[len('    t1["') : -2]
    assert '"' not in inner and "[" not in inner and "<script>" not in inner and "\x1b" not in inner
    assert "#34;" in inner  # the quote, as an entity
    assert "classDef" not in text  # an unknown outcome gets no class


def test_ids_that_differ_only_by_dash_or_underscore_stay_two_nodes() -> None:
    text = mermaid(_plan([{"id": "a-b", "name": "one"}, {"id": "a_b", "name": "two", "depends_on": ["a-b"]}]))
    assert '    t1["a-b: one"]' in text and '    t2["a_b: two"]' in text and "    t1 --> t2" in text


class _Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    @hookimpl
    def planrun_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.events.append(("start", nodeid, str(location)))

    @hookimpl
    def planrun_task_executed(self, nodeid: str, attempt: int, status: str) -> None:
        self.events.append(("executed", nodeid, str(attempt), status))

    @hookimpl
    def planrun_runtest_logreport(self, report: Any) -> None:
        self.events.append(("report", report.nodeid, report.outcome))


def test_every_item_starts_then_is_executed_then_reported(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        prerequisites: [{file_absent: nothing-here}]
        tasks:
          - id: one
            name: One
            run: touch one.txt
            criteria: [{file_exists: one.txt}]
          - id: two
            name: Two
            run: exit 3
            criteria: [{file_exists: two.txt}]
          - id: three
            name: Three
            depends_on: [two]
            run: touch three.txt
            criteria: [{file_exists: three.txt}]
        """,
    )
    events = _Events()
    result = planrunner.run("p.plan.yaml", plugins=[events])
    assert result.ret == ExitCode.TESTS_FAILED
    assert [e[:2] + e[3:] if e[0] == "executed" else e[:2] for e in events.events] == [
        ("start", "p.plan.yaml::prerequisites"),
        ("report", "p.plan.yaml::prerequisites"),
        ("start", "p.plan.yaml::one"),
        ("executed", "p.plan.yaml::one", "done"),
        ("report", "p.plan.yaml::one"),
        ("start", "p.plan.yaml::two"),
        ("executed", "p.plan.yaml::two", "failed"),
        ("report", "p.plan.yaml::two"),
        ("start", "p.plan.yaml::three"),  # skipped for its dependency, still started then reported
        ("report", "p.plan.yaml::three"),
    ]
    starts = [e for e in events.events if e[0] == "start"]
    assert starts[1][2] == "p.plan.yaml:4:5"  # the task's location
    assert ("executed", "p.plan.yaml::one", "1", "done") in events.events


def test_verify_only_executes_nothing(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - id: one
            name: One
            run: touch one.txt
            criteria: [{file_exists: one.txt}]
        """,
    )
    events = _Events()
    result = planrunner.run("--verify-only", "p.plan.yaml", plugins=[events])
    assert result.ret == ExitCode.TESTS_FAILED
    assert [e[0] for e in events.events] == ["start", "report"]
