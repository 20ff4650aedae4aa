"""``planrun review PLAN``: compile and lint, a read-only gap analysis with a model, ``--fix -o OUT``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner, RunResult, ScriptedOpenAI, tool_turn

CANARY = "sk-CANARY-review-19ab0c"
PLAN = "plans/greet.plan.yaml"
FIXED = "plans/greet-fixed.plan.yaml"
REVIEW_TOOLS = {"list_dir", "read_file", "search", "note", "report_findings"}
FIX_TOOLS = {"list_dir", "read_file", "search", "note", "submit_plan"}

CLEAN = """\
plan: Greet
tasks:
  - id: greet
    name: Add greet()
    action: create
    file: app/greet.py
    criteria:
      - file_contains: {path: app/greet.py, text: "def greet("}
"""

UNCHECKED = """\
plan: Greet
tasks:
  - id: greet
    name: Add greet()
    action: modify
    file: app/greet.py
  - id: docs
    name: Document it
    file: README.md
    depends_on: [greet]
    criteria:
      - README.md contains `greet`
"""

FIXED_PLAN: dict[str, Any] = {
    "plan": "Greet",
    "tasks": [
        {
            "id": "greet",
            "name": "Add greet()",
            "action": "modify",
            "files": ["app/greet.py"],
            "criteria": [{"file_contains": {"path": "app/greet.py", "text": "def greet("}}],
        },
        {
            "id": "docs",
            "name": "Document it",
            "files": ["README.md"],
            "depends_on": ["greet"],
            "criteria": ["README.md contains `greet`"],
        },
    ],
}


def globs(lines: list[str]) -> list[str]:
    return [line.replace("[", "[[]") for line in lines]


@pytest.fixture
def project(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> Planrunner:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makefile("app/greet.py", "def greet(name):\n    return name\n")
    planrunner.makefile("README.md", "# Greetings\n")
    return planrunner


@pytest.fixture
def modelled(project: Planrunner, openai_server: ScriptedOpenAI) -> Planrunner:
    project.makefile("pyproject.toml", f'[tool.planrun]\nmodel = "scripted-model"\nbase_url = "{openai_server.url}"\n')
    return project


def review(project: Planrunner, *args: str) -> RunResult:
    result = project.run("review", *args)
    assert result.no_traceback(), result
    assert CANARY not in result.outstr + result.errstr
    return result


# -- without a model: compile + lint ------------------------------------------------


def test_a_clean_plan_is_exit_0(project: Planrunner) -> None:
    project.makefile(PLAN, CLEAN)
    result = review(project, PLAN)
    assert result.ret == ExitCode.OK, result
    assert result.outstr == "no findings in 1 plan\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (UNCHECKED, f"{PLAN}:3:5: PR003 task 'greet' has no criteria: nothing machine-checks that it is done *"),
        (
            CLEAN.replace("action: create", "action: delete"),
            f"{PLAN}:5:5: PR006 delete task 'greet' has no file_absent criterion *",
        ),
        (
            CLEAN + "edge_cases:\n  - case: empty name\n",
            f"{PLAN}:10:5: PR008 edge case 'empty name' has no machine-checkable criterion *",
        ),
    ],
    ids=["PR003", "PR006", "PR008"],
)
def test_findings_without_a_model_are_exit_1(project: Planrunner, text: str, line: str) -> None:
    project.makefile(PLAN, text)
    before = (project.path / PLAN).read_bytes()
    result = review(project, PLAN)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(globs([line, "1 finding in 1 plan"]))
    assert (project.path / PLAN).read_bytes() == before


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (CLEAN.replace("    name: Add greet()\n", ""), f"{PLAN}:3:5: PR001 tasks[0]: required key 'name' missing *"),
        (
            CLEAN.replace('{path: app/greet.py, text: "def greet("}', "{path: app/greet.py, txt: x}"),
            f"{PLAN}:8:45: PR002 file_contains: unknown key 'txt'*",
        ),
    ],
    ids=["does-not-load", "does-not-compile"],
)
def test_a_plan_that_does_not_load_is_exit_2(project: Planrunner, text: str, line: str) -> None:
    project.makefile(PLAN, text)
    result = review(project, PLAN)
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(globs([line]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "ERROR: planrun review takes one PLAN file"),
        (("nope.plan.yaml",), "ERROR: nope.plan.yaml: no such file"),
        (("plans",), "ERROR: plans: not a regular file"),
        ((PLAN, "-o", FIXED), "ERROR: -o OUT goes with --fix (review never changes a file otherwise)"),
        ((PLAN, "--fix"), "ERROR: -o OUT is required: the plan file to write (plans/NAME.plan.yaml)"),
        (
            (PLAN, "--fix", "-o", FIXED),
            "ERROR: planrun review --fix needs a model: pass --model NAME or set [tool.planrun] model",
        ),
    ],
)
def test_usage_errors_are_exit_4(project: Planrunner, args: tuple[str, ...], message: str) -> None:
    project.makefile(PLAN, CLEAN)
    result = review(project, *args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == message + "\n"
    assert not (project.path / FIXED).exists()


# -- with a model: a gap analysis, the file unchanged ---------------------------------


def test_gap_findings_are_printed_and_the_file_is_unchanged(
    modelled: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    modelled.makefile(PLAN, CLEAN)
    before = (modelled.path / PLAN).read_bytes()
    openai_server.add(
        tool_turn(("read_file", {"path": "app/greet.py"})),
        tool_turn(("note", {"phase": "gap_analysis", "text": "no test covers greet"})),
        tool_turn(
            (
                "report_findings",
                {
                    "findings": [
                        {"path": "tasks[0].criteria[0]", "message": "only checks the name, not the greeting"},
                        {"path": "plan", "message": "no verification: add the test suite"},
                    ]
                },
            )
        ),
    )
    result = review(modelled, PLAN)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(
        globs(
            [
                f"planrun review: {PLAN}, model scripted-model (read-only)",
                "  read_file app/greet.py",
                "phase gap analysis: no test covers greet",
                "  report_findings: 2 findings",
                f"{PLAN}:8:9: GAP tasks[0].criteria[0]: only checks the name, not the greeting",
                f"{PLAN}:1:1: GAP plan: no verification: add the test suite",
                "no findings in 1 plan",
                "2 gap findings; planner: tokens 300 in / 60 out, 3 turns, cost unknown",
            ]
        )
    )
    assert (modelled.path / PLAN).read_bytes() == before
    assert [{t["function"]["name"] for t in r.body["tools"]} for r in openai_server.requests] == [REVIEW_TOOLS] * 3
    first = openai_server.requests[0].messages[1]["content"]
    assert "def greet(" in first and "static review found nothing" in first
    assert sorted(p.name for p in (modelled.path / "plans").iterdir()) == ["greet.plan.yaml"]
    data = json.loads((modelled.path / ".planrun/transcripts/planner/review-greet.json").read_text())
    assert data["command"] == "review" and [p["phase"] for p in data["phases"]] == ["gap_analysis"]


def test_no_gaps_on_a_clean_plan_is_exit_0(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, CLEAN)
    openai_server.add(tool_turn(("report_findings", {"findings": []})))
    result = review(modelled, PLAN)
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["0 gap findings; planner: *"])


def test_the_static_findings_reach_the_model(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, UNCHECKED)
    openai_server.add(
        tool_turn(("report_findings", {"findings": "none"})),  # malformed: an error result, the loop goes on
        tool_turn(("report_findings", {"findings": []})),
    )
    result = review(modelled, PLAN)
    assert result.ret == ExitCode.TESTS_FAILED, result  # the lint finding stands
    first = openai_server.requests[0].messages[1]["content"]
    assert "- PR003 task 'greet' has no criteria" in first
    assert openai_server.requests[1].messages[-1]["content"].startswith("error: report_findings takes findings")


def test_gap_findings_are_shown_on_one_line_escaped(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, CLEAN)
    finding = {"path": "tasks[0]\nFORGED", "message": "bad\x1b[31m\nno findings in 1 plan"}
    openai_server.add(tool_turn(("report_findings", {"findings": [finding]})))
    result = review(modelled, PLAN)
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "\x1b" not in result.outstr
    result.stdout.fnmatch_lines(globs([f"{PLAN}:3:5: GAP tasks[0] FORGED: bad\\x1b[31m no findings in 1 plan"]))
    assert not any(line.startswith("FORGED") for line in result.outstr.splitlines())


@pytest.mark.parametrize(
    ("kind", "message"),
    [("fifo", f"ERROR: {PLAN}: not a regular file"), ("too-big", f"ERROR: {PLAN}: over 1000 bytes (--max-plan-bytes)")],
)
def test_a_plan_that_is_not_a_readable_file_is_refused(
    modelled: Planrunner, openai_server: ScriptedOpenAI, kind: str, message: str
) -> None:
    import os

    (modelled.path / "plans").mkdir()
    if kind == "fifo":
        os.mkfifo(modelled.path / PLAN)
        args: tuple[str, ...] = (PLAN,)
    else:
        modelled.makefile(PLAN, CLEAN + "# " + "x" * 2000 + "\n")
        args = (PLAN, "--max-plan-bytes", "1000")
    result = review(modelled, *args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr.splitlines()[-1] == message
    assert openai_server.requests == []


def test_a_reviewer_asking_for_a_write_tool_gets_an_error(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, CLEAN)
    before = (modelled.path / PLAN).read_bytes()
    openai_server.add(
        tool_turn(("write_file", {"path": PLAN, "content": "plan: pwned\n"})),
        tool_turn(("report_findings", {"findings": []})),
    )
    result = review(modelled, PLAN)
    assert result.ret == ExitCode.OK, result
    assert (
        openai_server.requests[1]
        .messages[-1]["content"]
        .startswith("error: unknown tool 'write_file': the planner can only read")
    )
    assert (modelled.path / PLAN).read_bytes() == before


# -- --fix -o OUT --------------------------------------------------------------------


def test_fix_writes_a_fixed_plan_to_out(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, UNCHECKED)
    before = (modelled.path / PLAN).read_bytes()
    unfixed = json.loads(json.dumps(FIXED_PLAN))
    del unfixed["tasks"][0]["criteria"]
    openai_server.add(
        tool_turn(("submit_plan", {"plan": unfixed})),
        tool_turn(("submit_plan", {"plan": FIXED_PLAN})),
    )
    result = review(modelled, PLAN, "--fix", "-o", FIXED)
    assert result.ret == ExitCode.OK, result
    assert (modelled.path / PLAN).read_bytes() == before
    first = openai_server.requests[0].messages[1]["content"]
    assert "Revise the plan below" in first and "- PR003 task 'greet' has no criteria" in first
    assert "tasks[0]: PR003 task 'greet' has no criteria" in openai_server.requests[1].messages[-1]["content"]
    assert [{t["function"]["name"] for t in r.body["tools"]} for r in openai_server.requests] == [FIX_TOOLS] * 2
    result.stdout.fnmatch_lines([f"phase handoff: wrote {FIXED} (2 tasks)"])
    lint = modelled.run("lint", FIXED)
    assert lint.ret == ExitCode.OK, lint
    assert (modelled.path / FIXED).read_text().startswith("# yaml-language-server: $schema=../plan.schema.json\n")


def test_fix_refuses_an_existing_out_without_force(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, UNCHECKED)
    modelled.makefile(FIXED, "mine\n")
    result = review(modelled, PLAN, "--fix", "-o", FIXED)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == f"ERROR: {FIXED}: exists; pass --force to overwrite it\n"
    assert openai_server.requests == [] and (modelled.path / FIXED).read_text() == "mine\n"


def test_fix_of_a_plan_that_does_not_load(modelled: Planrunner, openai_server: ScriptedOpenAI) -> None:
    modelled.makefile(PLAN, "plan: Greet\ntasks:\n  - id: Greet\n    name: x\n")
    openai_server.add(tool_turn(("submit_plan", {"plan": FIXED_PLAN})))
    result = review(modelled, PLAN, "--fix", "-o", FIXED)
    assert result.ret == ExitCode.OK, result
    first = openai_server.requests[0].messages[1]["content"]
    assert "- PR001 tasks[0].id: 'Greet' does not match" in first and "id: Greet" in first
    assert (modelled.path / FIXED).exists()
