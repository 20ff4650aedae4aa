"""The context an execution agent gets for one task: this task, its criteria, its dependencies' summaries, its files."""

from __future__ import annotations

import os
from typing import Any

import pytest

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, ExitCode, Task, hookimpl
from planrun.agentprompt import DEFAULT_SYSTEM_PROMPT, FILE_CAP, system_prompt, task_prompt
from planrun.testing import Planrunner

PLAN = """
plan: Greeter
overview: A greeting service.
executor: capture
tasks:
  - id: one
    name: Write the config
    action: create
    files: [config.json]
    description: ONE-DESCRIPTION
    criteria:
      - config.json exists
  - id: two
    name: Write the script
    action: modify
    files: [app.py, big.txt, missing.py, link-out.txt]
    description: TWO-DESCRIPTION
    depends_on: [one]
    criteria:
      - file_contains: {path: app.py, text: greet}
      - "`python3 app.py` passes"
  - id: three
    name: Later
    description: THREE-DESCRIPTION
    depends_on: [two]
    criteria:
      - later.txt exists
"""


class Capture(Executor):
    name = "capture"
    max_attempts = 1

    def __init__(self, prompts: dict[str, str]) -> None:
        self.prompts = prompts

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        self.prompts[task.id] = task_prompt(task, context)
        writes = {"one": ("config.json", "{}"), "two": ("app.py", "print('greet')\n"), "three": ("later.txt", "x")}
        name, text = writes[task.id]
        (context.workdir / name).write_text(text)
        return ExecutionResult(summary=f"SUMMARY-OF-{task.id}", output=f"TRANSCRIPT-OF-{task.id}")


class Plugin:
    def __init__(self) -> None:
        self.prompts: dict[str, str] = {}

    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [ExecutorKind("capture", lambda config: Capture(self.prompts))]


@pytest.fixture
def prompts(planrunner: Planrunner, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("OUTSIDE-CONTENT")
    planrunner.makeplan("p", PLAN)
    planrunner.makefile("app.py", "# old app\n")
    planrunner.makefile("big.txt", "b" * (FILE_CAP + 500))
    os.symlink(outside, planrunner.path / "link-out.txt")
    plugin = Plugin()
    result = planrunner.run("p.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    return plugin.prompts


def test_the_context_holds_this_task_and_its_dependencies_summaries(prompts: dict[str, str]) -> None:
    two = prompts["two"]
    for wanted in (
        "# Plan: Greeter",
        "A greeting service.",
        "# Your task: Write the script (id two)",
        "Action: modify",
        "Files: app.py, big.txt, missing.py, link-out.txt",
        "TWO-DESCRIPTION",
        "1. file_contains app.py 'greet'",
        "2. `python3 app.py` passes",
        "- one: SUMMARY-OF-one",
        "## app.py\n```\n# old app\n",
    ):
        assert wanted in two, wanted


def test_the_context_never_holds_other_tasks_or_transcripts(prompts: dict[str, str]) -> None:
    two = prompts["two"]
    for unwanted in ("ONE-DESCRIPTION", "THREE-DESCRIPTION", "TRANSCRIPT-OF-one", "Later", "config.json exists"):
        assert unwanted not in two, unwanted
    assert "- two: SUMMARY-OF-two" in prompts["three"]
    assert "SUMMARY-OF-one" not in prompts["three"]  # only direct dependencies


def test_files_are_capped_confined_and_missing_ones_said(prompts: dict[str, str]) -> None:
    two = prompts["two"]
    assert "[... 500 more bytes not shown ...]" in two
    assert "b" * (FILE_CAP + 1) not in two
    assert "## missing.py\n(does not exist yet)" in two
    assert "OUTSIDE-CONTENT" not in two
    assert "## link-out.txt\n(link-out.txt resolves outside the workdir)" in two


def _config(planrunner: Planrunner) -> Any:
    from planrun.cli import build_config

    return build_config([str(planrunner.path)])


def test_the_default_role_and_a_replacement(planrunner: Planrunner) -> None:
    planrunner.makefile("planrun.toml", "")
    assert system_prompt(_config(planrunner)) == (DEFAULT_SYSTEM_PROMPT, "default")
    for rule in ("exactly one of its tasks", "add nothing", "Never edit the plan", "report_blocked", "finish"):
        assert rule in DEFAULT_SYSTEM_PROMPT
    planrunner.makefile("role.md", "You are terse.\n")
    planrunner.makefile("planrun.toml", 'executor_prompt = "role.md"\n')
    assert system_prompt(_config(planrunner)) == ("You are terse.\n", str(planrunner.path / "role.md"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"nope.md"', "executor_prompt 'nope.md': cannot read it"),
        ("3", "executor_prompt must be a file path, got 3"),
        ('"empty.md"', "executor_prompt 'empty.md' is empty"),
    ],
)
def test_a_bad_replacement_is_a_usage_error(planrunner: Planrunner, value: str, message: str) -> None:
    from planrun import UsageError

    planrunner.makefile("empty.md", "  \n")
    planrunner.makefile("planrun.toml", f"executor_prompt = {value}\n")
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        system_prompt(_config(planrunner))
