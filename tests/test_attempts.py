"""The runner's side of agent executors: attempts with feedback, summaries for dependents, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, ExitCode, Task, hookimpl
from planrun.testing import Planrunner

PLAN = """
plan: agent
overview: Build a greeting.
executor: scripted
tasks:
  - id: one
    name: Write a.txt
    description: Write hello into a.txt.
    file: a.txt
    criteria:
      - file_contains: {path: a.txt, text: hello}
  - id: two
    name: Write b.txt
    description: Copy a.txt to b.txt.
    depends_on: [one]
    criteria:
      - b.txt exists
  - id: three
    name: Unrelated
    description: SECRET-DESCRIPTION-OF-THREE
    criteria:
      - c.txt exists
"""


class Scripted(Executor):
    """An agent stand-in: does a task wrong first, right once told why."""

    name = "scripted"
    max_attempts = 2

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self.calls = calls

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        self.calls.append(
            dict(
                task=task.id,
                attempt=context.attempt,
                feedback=context.feedback,
                dependencies=dict(context.dependencies),
                criteria=list(context.criteria),
            )
        )
        context.progress(turn=1, tool="write_file", tokens_in=10, tokens_out=2)
        if task.id == "one":
            text = "hello\n" if context.attempt == 2 else "helo\n"
            (context.workdir / "a.txt").write_text(text)
        elif task.id == "two":
            (context.workdir / "b.txt").write_text((context.workdir / "a.txt").read_text())
        return ExecutionResult(summary=f"did {task.id} (attempt {context.attempt})", tokens_in=100, tokens_out=7)


class Plugin:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.progress: list[tuple[str, int, dict[str, Any]]] = []

    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [ExecutorKind("scripted", lambda config: Scripted(self.calls))]

    @hookimpl
    def planrun_task_progress(self, nodeid: str, attempt: int, status: dict[str, Any]) -> None:
        self.progress.append((nodeid, attempt, status))


def test_a_failed_attempt_is_retried_with_the_failure_report(planrunner: Planrunner) -> None:
    planrunner.makeplan("agent", PLAN)
    plugin = Plugin()
    result = planrunner.run("-v", "-k", "one or two", "agent.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    first, second = plugin.calls[0], plugin.calls[1]
    assert (first["task"], first["attempt"], first["feedback"]) == ("one", 1, "")
    assert (second["task"], second["attempt"]) == ("one", 2)
    assert second["feedback"].startswith("Attempt 1 of 2 did not meet the task's success criteria (1 of 1 not met)")
    assert "criterion 1: file_contains a.txt 'hello': failed: 'hello' not found in a.txt" in second["feedback"]
    assert "helo" in second["feedback"]  # the evidence (nearest lines) goes with it
    assert Path("a.txt").read_text() == "hello\n"


def test_dependents_see_the_summaries_of_their_dependencies_only(planrunner: Planrunner) -> None:
    planrunner.makeplan("agent", PLAN)
    plugin = Plugin()
    planrunner.run("agent.plan.yaml", plugins=[plugin])
    two = next(c for c in plugin.calls if c["task"] == "two")
    assert two["dependencies"] == {"one": "did one (attempt 2)"}
    assert two["criteria"] == ["b.txt exists"]
    three = next(c for c in plugin.calls if c["task"] == "three")
    assert three["dependencies"] == {}


def test_attempts_tokens_and_cost_add_up_on_the_report(planrunner: Planrunner) -> None:
    planrunner.makeplan("agent", PLAN)
    plugin = Plugin()
    result = planrunner.run("-k", "one", "agent.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        ["=* 1 passed, 2 deselected in *s (tokens 200 in / 14 out, 2 attempts, cost unknown) =*"]
    )
    result.assert_outcomes(passed=1, deselected=2)


def test_max_attempts_bounds_the_retries(planrunner: Planrunner) -> None:
    planrunner.makeplan("agent", PLAN)
    plugin = Plugin()
    result = planrunner.run("--max-attempts", "1", "-k", "one", "agent.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.TESTS_FAILED
    assert [c["attempt"] for c in plugin.calls] == [1]
    plugin = Plugin()
    planrunner.makefile("planrun.toml", "max_attempts = 3\n")
    Path("a.txt").unlink()
    result = planrunner.run("-k", "three", "agent.plan.yaml", plugins=[plugin])
    assert [c["attempt"] for c in plugin.calls] == [1, 2, 3]  # three never passes: every attempt is used


def test_shell_steps_are_never_retried(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "s",
        "plan: s\ntasks:\n  - {id: t, name: T, run: 'echo x >> runs.txt', criteria: [{file_exists: never.txt}]}\n",
    )
    result = planrunner.run("--max-attempts", "5", "s.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert Path("runs.txt").read_text() == "x\n"


def test_executors_report_progress_through_a_hook(planrunner: Planrunner) -> None:
    planrunner.makeplan("agent", PLAN)
    plugin = Plugin()
    planrunner.run("-k", "one", "agent.plan.yaml", plugins=[plugin])
    assert plugin.progress[:2] == [
        ("agent.plan.yaml::one", 1, {"turn": 1, "tool": "write_file", "tokens_in": 10, "tokens_out": 2}),
        ("agent.plan.yaml::one", 2, {"turn": 1, "tool": "write_file", "tokens_in": 10, "tokens_out": 2}),
    ]
