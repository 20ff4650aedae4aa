"""``planrun plan``: the planning agent against the scripted server, with the real ``openai`` client."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, hookimpl
from planrun.testing import Planrunner, RunResult, ScriptedOpenAI, error, text, tool_turn

CANARY = "sk-CANARY-planner-7c1e9d"
REQUEST = "Add a farewell() next to greet()"
OUT = "plans/farewell.plan.yaml"
READ_ONLY = {"list_dir", "read_file", "search", "note", "submit_plan"}

GREET = 'def greet(name):\n    return f"hello {name}"\n'

GOOD: dict[str, Any] = {
    "plan": "Add a farewell",
    "overview": "farewell(name) says goodbye, as greet(name) says hello.",
    "assumptions": ["farewell lives in app/greet.py beside greet"],
    "tasks": [
        {
            "id": "farewell",
            "name": "Add farewell()",
            "action": "modify",
            "files": ["app/greet.py"],
            "description": "Add farewell(name) returning 'goodbye NAME'.",
            "complexity": "low",
            "criteria": [{"file_contains": {"path": "app/greet.py", "pattern": "def farewell\\("}}],
        },
        {
            "id": "docs",
            "name": "Document farewell()",
            "action": "modify",
            "files": ["README.md"],
            "depends_on": ["farewell"],
            "criteria": ["README.md contains `farewell`"],
        },
    ],
    "verification": [{"file_contains": {"path": "app/greet.py", "text": "goodbye"}}],
}


DEEP: dict[str, Any] = {}
_node = DEEP
for _ in range(300):
    _node["x"] = {}
    _node = _node["x"]


def good(**changes: Any) -> dict[str, Any]:
    plan = copy.deepcopy(GOOD)
    plan.update(changes)
    return plan


def task(plan: dict[str, Any], i: int, **changes: Any) -> dict[str, Any]:
    plan["tasks"][i].update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del plan["tasks"][i][key]
    return plan


@pytest.fixture
def project(planrunner: Planrunner, openai_server: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch) -> Planrunner:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    planrunner.makefile(
        "pyproject.toml", f'[tool.planrun]\nmodel = "scripted-model"\nbase_url = "{openai_server.url}"\n'
    )
    planrunner.makefile("app/greet.py", GREET)
    planrunner.makefile("README.md", "# Greetings\n")
    (planrunner.path / "plans").mkdir()
    return planrunner


def plan(project: Planrunner, *args: str) -> RunResult:
    result = project.run("plan", REQUEST, "-o", OUT, *args)
    assert result.no_traceback(), result
    assert CANARY not in result.outstr + result.errstr
    return result


def globs(lines: list[str]) -> list[str]:
    """fnmatch patterns for ``lines``: ``[`` is literal (paths like tasks[0]), ``*`` still matches anything."""
    return [line.replace("[", "[[]") for line in lines]


def tool_results(server: ScriptedOpenAI, n: int) -> list[str]:
    """The tool results request ``n`` sent back (those of the previous turn)."""
    messages = server.requests[n].messages
    out = []
    for m in reversed(messages):
        if m["role"] != "tool":
            break
        out.insert(0, m["content"])
    return out


def tools_of(server: ScriptedOpenAI) -> list[set[str]]:
    return [{t["function"]["name"] for t in r.body["tools"]} for r in server.requests]


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".planrun" not in p.relative_to(root).parts
    }


# -- a plan for a request ------------------------------------------------------


def test_plan_for_a_request_loads_lints_clean_and_gates_verify_only(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    openai_server.add(
        tool_turn(("note", {"phase": "interview", "text": "no questions: greet() shows the convention"})),
        tool_turn(("list_dir", {"path": "."})),
        tool_turn(("read_file", {"path": "app/greet.py"}), ("search", {"pattern": "def greet"})),
        tool_turn(("note", {"phase": "gap_analysis", "text": "README documents the API"})),
        tool_turn(("note", {"phase": "plan_creation", "text": "two tasks"}), ("submit_plan", {"plan": GOOD})),
    )
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    # What the model saw: the fixture repository, through the read-only tools.
    assert "app/" in tool_results(openai_server, 2)[0]
    read, found = tool_results(openai_server, 3)
    assert read == GREET and "app/greet.py:1:def greet(name):" in found
    assert tools_of(openai_server) == [READ_ONLY] * 5
    system, user = openai_server.requests[0].messages[:2]
    assert "never write code" in system["content"] and REQUEST in user["content"]
    assert "assumptions" in user["content"] and "file_contains" in user["content"]
    # The terminal: one line per phase change and per tool call, then the usage line.
    result.stdout.fnmatch_lines(
        globs(
            [
                "planrun plan: model scripted-model at http://127.0.0.1:*/v1, context * (read-only)",
                "phase interview: *",
                "  note: no questions*",
                "  list_dir .",
                "  read_file app/greet.py",
                "  search def greet",
                "phase gap analysis: README documents the API",
                "phase plan creation: two tasks",
                "phase review",
                "  round 1: clean *",
                f"phase handoff: wrote {OUT} (2 tasks)",
                "planner: tokens 500 in / 100 out, 5 turns, cost unknown",
            ]
        )
    )
    # The file: import's YAML style, and it is a plan planrun runs.
    written = (project.path / OUT).read_text()
    assert written.startswith("# yaml-language-server: $schema=../plan.schema.json\nplan: Add a farewell\n")
    assert written.index("assumptions:") < written.index("tasks:") < written.index("verification:")
    assert "  - id: farewell\n" in written and "{" not in written.split("criteria:")[1].split("\n")[1]
    lint = project.run("lint", OUT)
    assert lint.ret == ExitCode.OK, lint
    red = project.run("--verify-only", OUT)
    assert red.ret == ExitCode.TESTS_FAILED, red  # nothing is done yet
    (project.path / "app/greet.py").write_text(GREET + '\n\ndef farewell(name):\n    return f"goodbye {name}"\n')
    (project.path / "README.md").write_text("# Greetings\n\ngreet() and farewell().\n")
    green = project.run("--verify-only", OUT)
    assert green.ret == ExitCode.OK, green
    green.assert_outcomes(passed=3)
    # The transcript: phases, rounds, redacted.
    transcript = project.path / ".planrun/transcripts/planner/farewell.json"
    data = json.loads(transcript.read_text())
    assert [p["phase"] for p in data["phases"]] == [
        "interview",
        "interview",
        "gap_analysis",
        "plan_creation",
        "review",
        "handoff",
    ]
    assert data["rounds"] == [{"round": 1, "problems": []}] and data["outcome"] == "written, clean"
    assert len(data["exchanges"]) == 5 and CANARY not in transcript.read_text()


def test_what_the_model_says_is_shown_on_one_line_escaped(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    openai_server.add(
        tool_turn(("note", {"phase": "gap_analysis", "text": "gaps\x1b[2J\nphase handoff: wrote FAKE"})),
        tool_turn(("read_file", {"path": "x\x1b]0;title\x07\nFORGED"})),
        tool_turn(("submit_plan", {"plan": GOOD})),
    )
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    assert "\x1b" not in result.outstr and "\x07" not in result.outstr
    assert "phase gap analysis: gaps\\x1b[2J phase handoff: wrote FAKE" in result.outstr
    assert not any(line.startswith(("phase handoff: wrote FAKE", "FORGED")) for line in result.outstr.splitlines())


def test_the_price_gives_the_cost(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makefile(
        "pyproject.toml",
        f'[tool.planrun]\nmodel = "scripted-model"\nbase_url = "{openai_server.url}"\n'
        "[tool.planrun.prices]\nscripted-model = {input = 1000, output = 2000}\n",
    )
    openai_server.add(tool_turn(("submit_plan", {"plan": GOOD}), usage=(1000, 500)))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(globs(["planner: tokens 1.0k in / 500 out, 1 turn, $2.00"]))


# -- invalid structured output, fed back with its path --------------------------


@pytest.mark.parametrize(
    ("bad", "feedback"),
    [
        (task(good(), 0, name=None), "tasks[0]: required key 'name' missing"),
        (task(good(), 1, id="Bad ID"), "tasks[1].id: 'Bad ID' does not match ^[a-z0-9][a-z0-9_-]*$"),
        (
            task(good(), 0, criteria=[{"file_exists": "app/greet.py", "command": "true"}]),
            "tasks[0].criteria[0]: criterion has 2 check kinds (file_exists, command); write one per criterion",
        ),
        (
            task(good(), 0, criteria=None, success_criteria=["app/greet.py exists"]),
            "tasks[0].success_criteria: unknown key 'success_criteria'; did you mean 'criteria'?",
        ),
        (
            task(good(), 0, criteria=["The greeting is friendly"]),
            "tasks[0].criteria[0]: criterion 'The greeting is friendly' is not machine-checkable",
        ),
        (
            task(good(), 0, criteria=[{"file_contains": {"path": "app/greet.py", "patern": "x"}}]),
            "tasks[0].criteria[0].file_contains.patern: file_contains: unknown key 'patern'; did you mean 'pattern'?",
        ),
        (task(good(), 1, depends_on=["farewel"]), "tasks[1].depends_on[0]: task 'docs' depends on unknown task"),
        (good(tasks=[]), "tasks: List should have at least 1 item"),
        (good(assumptions=[]), "assumptions: missing: nobody could answer questions"),
    ],
    ids=[
        "missing-name",
        "bad-id",
        "two-kinds",
        "unknown-key",
        "prose-criterion",
        "bad-check-arg",
        "unknown-dependency",
        "no-tasks",
        "no-assumptions",
    ],
)
def test_invalid_output_is_fed_back_with_its_path_and_corrected(
    project: Planrunner, openai_server: ScriptedOpenAI, bad: dict[str, Any], feedback: str
) -> None:
    openai_server.add(tool_turn(("submit_plan", {"plan": bad})), tool_turn(("submit_plan", {"plan": GOOD})))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    (answer,) = tool_results(openai_server, 1)
    assert answer.startswith("planrun reviewed the plan (round 1 of 3) and found"), answer
    assert f"\n- {feedback}" in answer, answer
    assert "call submit_plan again" in answer
    result.stdout.fnmatch_lines(globs(["  round 1 of 3: * problem*", "  round 2: clean *"]))
    assert (project.path / OUT).read_text().count("id: farewell") == 1


def test_all_three_kinds_of_error_over_three_rounds(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    no_name = task(task(good(), 0, name=None), 1, id="Bad ID")
    two_kinds = task(good(), 0, criteria=[{"file_exists": "app/greet.py", "command": "true"}])
    openai_server.add(
        tool_turn(("submit_plan", {"plan": no_name})),
        tool_turn(("submit_plan", {"plan": two_kinds})),
        tool_turn(("submit_plan", {"plan": GOOD})),
    )
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    first = openai_server.requests[1].text()
    assert "tasks[0]: required key 'name' missing" in first and "tasks[1].id: 'Bad ID' does not match" in first
    second = openai_server.requests[2].text()
    assert "tasks[0].criteria[0]: criterion has 2 check kinds" in second and "(round 2 of 3)" in second


def test_a_plan_sent_as_the_arguments_themselves_is_accepted(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    openai_server.add(tool_turn(("submit_plan", GOOD)))
    result = plan(project)
    assert result.ret == ExitCode.OK, result


@pytest.mark.parametrize(
    ("arguments", "answer"),
    [
        ("{not json", "error: the arguments of submit_plan are not valid JSON"),
        (json.dumps({"plan": "just a title"}), "plan: the plan must be a JSON object, got a string"),
        (json.dumps([1, 2]), "error: the arguments of submit_plan must be a JSON object, got an array"),
        ("[" * 5000 + "]" * 5000, "error: the arguments of submit_plan nest too deeply"),
        (
            json.dumps(task(good(), 0, criteria=[{"command": {"env": {"A": DEEP}}}])),
            "tasks[0].criteria[0].command.env.A" + ".x" * 57 + ": nesting deeper than 64 levels",
        ),
        (
            json.dumps(task(good(), 1, name="Doc\ud800")),
            "tasks[1].name: not valid Unicode text: a lone surrogate U+D800",
        ),
        (
            json.dumps(task(good(), 1, **{"na\udfffme": "x"})),
            "tasks[1]: not valid Unicode text: a lone surrogate U+DFFF",
        ),
    ],
)
def test_malformed_submissions_get_an_error_and_the_loop_goes_on(
    project: Planrunner, openai_server: ScriptedOpenAI, arguments: str, answer: str
) -> None:
    openai_server.add(tool_turn(("submit_plan", arguments)), tool_turn(("submit_plan", {"plan": GOOD})))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    assert answer in tool_results(openai_server, 1)[0]


# -- lint findings, and the round limit ---------------------------------------------


def test_a_lint_finding_is_fed_back_and_fixed_next_round(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    unchecked = task(good(), 1, criteria=[])
    openai_server.add(tool_turn(("submit_plan", {"plan": unchecked})), tool_turn(("submit_plan", {"plan": GOOD})))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    (answer,) = tool_results(openai_server, 1)
    assert "- tasks[1]: PR003 task 'docs' has no criteria: nothing machine-checks that it is done" in answer
    assert "(hint: add a check such as file_contains, command or tests)" in answer
    assert project.run("lint", OUT).ret == ExitCode.OK


@pytest.mark.parametrize(
    ("bad", "finding"),
    [
        (task(good(), 1, criteria=[]), "tasks[1]: PR003 task 'docs' has no criteria"),
        (task(good(), 1, criteria=[{"manual": "read it"}]), "tasks[1]: PR003 task 'docs' has only manual criteria"),
        (task(good(), 1, action="delete"), "tasks[1].action: PR006 delete task 'docs' has no file_absent criterion"),
    ],
)
def test_the_round_limit_writes_the_plan_prints_the_findings_and_exits_1(
    project: Planrunner, openai_server: ScriptedOpenAI, bad: dict[str, Any], finding: str
) -> None:
    openai_server.add(tool_turn(("submit_plan", {"plan": bad})), tool_turn(("submit_plan", {"plan": bad})))
    result = plan(project, "--max-rounds", "2")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert len(openai_server.requests) == 2
    data = json.loads((project.path / ".planrun/transcripts/planner/farewell.json").read_text())
    assert "round limit (2) reached" in data["messages"][-1]["content"]
    assert [len(r["problems"]) for r in data["rounds"]] == [1, 1] and data["outcome"] == "written with 1 problem"
    result.stdout.fnmatch_lines(
        globs(
            [
                "  round 1 of 2: 1 problem",
                "  round 2 of 2: 1 problem",
                f"phase handoff: wrote {OUT} (2 tasks)",
                f"{OUT}:*:*: {finding}*",
                "1 problem left after 2 rounds (--max-rounds)",
                "planner: tokens 200 in / 40 out, 2 turns, cost unknown",
            ]
        )
    )
    line = next(x for x in result.outstr.splitlines() if x.startswith(f"{OUT}:"))
    number = int(line.split(":")[1])
    written = (project.path / OUT).read_text().splitlines()
    assert written[number - 1].lstrip(" -").startswith(("id: docs", "action:")), (number, written)
    lint = project.run("lint", OUT)
    assert lint.ret == ExitCode.TESTS_FAILED and finding.split(": ", 1)[1].split(" ")[0] in lint.outstr


def test_no_plan_that_loads_at_the_round_limit_writes_nothing(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    bad = task(good(), 0, name=None)
    openai_server.add(tool_turn(("submit_plan", {"plan": bad})))
    result = plan(project, "--max-rounds", "1")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert not (project.path / OUT).exists()
    assert "ERROR: no plan that loads after 1 rounds; nothing written" in result.errstr
    assert "tasks[0]: required key 'name' missing" in result.errstr


# -- read-only by construction ---------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        ("write_file", {"path": "pwned.txt", "content": "x"}),
        ("edit_file", {"path": "app/greet.py", "old": "hello", "new": "pwned"}),
        ("run_command", {"command": "touch pwned.txt"}),
        ("apply_patch", {"patch": "+pwned"}),
    ],
    ids=lambda c: c[0] if isinstance(c, tuple) else str(c),
)
def test_a_write_or_run_tool_gets_an_error_and_nothing_is_written_but_the_plan(
    project: Planrunner, openai_server: ScriptedOpenAI, call: tuple[str, dict[str, Any]]
) -> None:
    before = snapshot(project.path)
    openai_server.add(tool_turn(call), tool_turn(call, ("list_dir", {})), tool_turn(("submit_plan", {"plan": GOOD})))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    (refused,) = tool_results(openai_server, 1)
    assert refused.startswith(f"error: unknown tool '{call[0]}': the planner can only read"), refused
    assert "its tools are: read_file, list_dir, search, note, submit_plan" in refused
    again, listed = tool_results(openai_server, 2)
    assert again == refused and "app/" in listed
    after = snapshot(project.path)
    assert after.pop(OUT) and after == before
    assert tools_of(openai_server) == [READ_ONLY] * 3
    result.stdout.fnmatch_lines(globs([f"  refused {call[0]}: not a planner tool"]))


@pytest.mark.parametrize(
    "args",
    [
        {"path": "../outside.txt"},
        {"path": "OUTSIDE_ABS"},
        {"path": "escape/outside.txt"},
        {"path": "link.txt"},
    ],
    ids=["dotdot", "absolute", "symlinked-folder", "symlinked-file"],
)
def test_read_tools_are_confined_to_the_context(
    project: Planrunner, openai_server: ScriptedOpenAI, args: dict[str, str]
) -> None:
    secret = "TOP-SECRET-OUTSIDE-4411"
    repo = project.path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src/a.py").write_text("x = 1\n")
    outside = project.path / "outside.txt"
    outside.write_text(secret + "\n")
    (repo / "escape").symlink_to(project.path)
    (repo / "link.txt").symlink_to(outside)
    path = str(outside) if args["path"] == "OUTSIDE_ABS" else args["path"]
    openai_server.add(
        tool_turn(
            ("read_file", {"path": path}), ("list_dir", {"path": path.rsplit("/", 1)[0] if "/" in path else ".."})
        ),
        tool_turn(("search", {"pattern": "TOP-SECRET", "path": path})),
        tool_turn(("submit_plan", {"plan": GOOD})),
    )
    result = plan(project, "--context", "repo")
    assert result.ret == ExitCode.OK, result
    answers = tool_results(openai_server, 1) + tool_results(openai_server, 2)
    assert all(a.startswith("error") for a in answers), answers
    assert not any(secret in r.text() for r in openai_server.requests)
    assert f"context {repo} (read-only)" in result.outstr


# -- usage errors before any request ---------------------------------------------------


def test_an_existing_output_without_force_is_exit_4_and_no_request(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    (project.path / OUT).write_text("mine\n")
    result = plan(project)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == f"ERROR: {OUT}: exists; pass --force to overwrite it\n"
    assert openai_server.requests == [] and (project.path / OUT).read_text() == "mine\n"
    openai_server.add(tool_turn(("submit_plan", {"plan": GOOD})))
    forced = plan(project, "--force")
    assert forced.ret == ExitCode.OK, forced
    assert (project.path / OUT).read_text().startswith("# yaml-language-server")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("no-model", (), "ERROR: planrun plan needs a model: pass --model NAME or set [tool.planrun] model"),
        ("", ("--context", "nowhere"), "ERROR: --context nowhere: not a directory"),
        ("", ("--max-rounds", "0"), "ERROR: --max-rounds must be at least 1, got '0'"),
        ("", ("--max-rounds", "x"), "ERROR: --max-rounds: not a whole number: 'x'"),
        ("bad-prompt", (), "ERROR: [tool.planrun] planner_prompt 'missing.md': cannot read it: *"),
        ("empty-prompt", (), "ERROR: [tool.planrun] planner_prompt 'empty.md' is empty"),
        ("number-prompt", (), "ERROR: [tool.planrun] planner_prompt must be a file path, got 3"),
        ("", ("extra words",), 'ERROR: planrun plan takes one "REQUEST" (quote it), got 2'),
        ("", ("--no-such-option",), "ERROR: planrun: unrecognized arguments: --no-such-option"),
    ],
)
def test_usage_errors_are_one_line_exit_4_and_send_nothing(
    project: Planrunner, openai_server: ScriptedOpenAI, setup: str, args: tuple[str, ...], message: str
) -> None:
    if setup == "no-model":
        project.makefile("pyproject.toml", f'[tool.planrun]\nbase_url = "{openai_server.url}"\n')
    elif setup.endswith("-prompt"):
        value = {"bad-prompt": '"missing.md"', "empty-prompt": '"empty.md"', "number-prompt": "3"}[setup]
        project.makefile("empty.md", "\n  \n")
        project.makefile(
            "pyproject.toml",
            f'[tool.planrun]\nmodel = "m"\nbase_url = "{openai_server.url}"\nplanner_prompt = {value}\n',
        )
    result = plan(project, *args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines(globs([message]))
    assert len(result.errstr.splitlines()) == 1, result
    assert openai_server.requests == [] and not (project.path / OUT).exists()


def test_planner_prompt_is_a_known_config_key(project: Planrunner) -> None:
    project.makefile("prompts/planner.md", "You are OUR planner.\n")
    project.makefile("pyproject.toml", '[tool.planrun]\nplanner_prompt = "prompts/planner.md"\nplanner_promt = "x"\n')
    project.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [README.md exists]}\n")
    result = project.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert "unknown config option 'planner_promt' (did you mean 'planner_prompt'?)" in result.outstr
    assert "unknown config option 'planner_prompt'" not in result.outstr


def test_no_output_is_a_usage_error(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    result = project.run("plan", REQUEST)
    assert result.ret == ExitCode.USAGE_ERROR
    assert "-o OUT is required" in result.errstr and openai_server.requests == []


def test_the_planner_prompt_is_replaceable(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makefile("prompts/planner.md", "You are OUR planner. Read only.\n")
    project.makefile(
        "pyproject.toml",
        f'[tool.planrun]\nmodel = "m"\nbase_url = "{openai_server.url}"\nplanner_prompt = "prompts/planner.md"\n',
    )
    openai_server.add(tool_turn(("submit_plan", {"plan": GOOD})))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    assert openai_server.requests[0].messages[0] == {"role": "system", "content": "You are OUR planner. Read only.\n"}


# -- endpoint and budget errors: one line, exit 1 ---------------------------------------


def test_a_refused_key_is_one_line_exit_1(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    openai_server.add(error(401, f"bad key {CANARY}"))
    result = plan(project)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stderr.fnmatch_lines(
        globs(["ERROR: planner: the model endpoint * refused the API key (401): bad key [redacted]; nothing written"])
    )
    assert not (project.path / OUT).exists()


def test_an_unreachable_endpoint_is_one_line_exit_1(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    result = plan(project, "--base-url", "http://127.0.0.1:9/v1", "--request-timeout", "5")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stderr.fnmatch_lines(globs(["ERROR: planner: the model endpoint is unreachable: *"]))
    assert openai_server.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-turns", "2"), "budget spent: 2 turns (--max-turns 2)"),
        (("--max-tokens", "150"), "budget spent: 240 tokens (--max-tokens 150)"),
    ],
)
def test_a_spent_budget_is_one_line_exit_1(
    project: Planrunner, openai_server: ScriptedOpenAI, args: tuple[str, ...], message: str
) -> None:
    openai_server.add(tool_turn(("list_dir", {})), tool_turn(("list_dir", {})), tool_turn(("list_dir", {})))
    result = plan(project, *args)
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert result.errstr == f"ERROR: planner: {message}; nothing written\n"
    assert len(openai_server.requests) == 2 and not (project.path / OUT).exists()
    data = json.loads((project.path / ".planrun/transcripts/planner/farewell.json").read_text())
    assert data["outcome"] == f"error: {message}"


class _Meanwhile:
    """While the plan is reviewed (planrun_collect_file), something else takes the output's place."""

    def __init__(self, root: Path, what: str) -> None:
        self.root, self.what = root, what

    @hookimpl(tryfirst=True)
    def planrun_collect_file(self, file_path: str) -> None:
        if self.what == "file":
            (self.root / OUT).write_text("theirs\n")
        else:
            (self.root / "plans").rmdir()
            (self.root / "plans").write_text("not a folder\n")


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("file", f"ERROR: {OUT}: appeared meanwhile; pass --force to overwrite it; the submitted plan is in *"),
        ("folder", f"ERROR: cannot write {OUT}: plans: File exists; the submitted plan is in *farewell.json"),
    ],
)
def test_an_output_that_cannot_be_written_at_the_end_is_exit_1(
    project: Planrunner, openai_server: ScriptedOpenAI, what: str, message: str
) -> None:
    openai_server.add(tool_turn(("submit_plan", {"plan": GOOD})))
    result = project.run("plan", REQUEST, "-o", OUT, plugins=[_Meanwhile(project.path, what)])
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert result.no_traceback()
    result.stderr.fnmatch_lines([message])
    if what == "file":
        assert (project.path / OUT).read_text() == "theirs\n"
    data = json.loads((project.path / ".planrun/transcripts/planner/farewell.json").read_text())
    assert data["outcome"].startswith("not written: ") and "submit_plan" in json.dumps(data["messages"])


def test_an_output_folder_that_is_a_file_is_exit_4(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makefile("notes", "a file\n")
    result = project.run("plan", REQUEST, "-o", "notes/x.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == f"ERROR: notes/x.plan.yaml: {project.path / 'notes'} is not a folder\n"
    assert openai_server.requests == []


def test_a_model_that_stops_calling_tools_is_one_line_exit_1(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    openai_server.add(text("I think the plan is fine."), text("Really."))
    result = plan(project)
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "no progress: the model answered without calling a tool twice (it must call submit_plan)" in result.errstr
    assert "end by calling submit_plan" in openai_server.requests[1].messages[-1]["content"]


# -- --interactive through a real pseudo-terminal --------------------------------------


def _read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {marker!r}; got {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        (b"goodbye, always\n", "the person answered: goodbye, always"),
        (b"\n", "the person gave an empty answer"),
        (b"\x04", "the person gave no answer (input ended): decide yourself and record it under assumptions"),
        (b"caf\xe9 \xff\n", "the person answered: caf\ufffd \ufffd"),
    ],
    ids=["answer", "empty", "eof", "not-utf8"],
)
def test_interactive_asks_on_the_terminal_and_the_answer_reaches_the_model(
    project: Planrunner, openai_server: ScriptedOpenAI, typed: bytes, answer: str
) -> None:
    openai_server.add(
        tool_turn(("ask_user", {"question": "Should farewell() say goodbye or bye?"})),
        tool_turn(("submit_plan", {"plan": good(assumptions=[])})),
    )
    with _interactive(project) as (proc, master):
        deadline = time.monotonic() + 60
        shown = _read_until(master, b"answer> ", deadline)
        assert b"planner asks: Should farewell() say goodbye or bye?" in shown
        os.write(master, typed)
        rest = _read_until(master, b"planner: tokens", deadline)
        assert proc.wait(timeout=30) == ExitCode.OK, shown + rest
    assert b"wrote plans/farewell.plan.yaml" in rest
    assert tools_of(openai_server) == [READ_ONLY | {"ask_user"}] * 2
    assert tool_results(openai_server, 1) == [answer]
    # Interactive: no assumptions needed (the plan without them was accepted in round 1).
    assert "assumptions" not in (project.path / OUT).read_text()


def test_interrupted_at_the_question_is_exit_2_and_writes_nothing(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    openai_server.add(tool_turn(("ask_user", {"question": "Which one?"})))
    with _interactive(project) as (proc, master):
        deadline = time.monotonic() + 60
        _read_until(master, b"answer> ", deadline)
        proc.send_signal(signal.SIGINT)
        rest = _read_until(master, b"nothing written", deadline)
        assert proc.wait(timeout=30) == ExitCode.INTERRUPTED, rest
    assert b"ERROR: interrupted: nothing written" in rest and b"Traceback" not in rest
    assert not (project.path / OUT).exists() and len(openai_server.requests) == 1
    data = json.loads((project.path / ".planrun/transcripts/planner/farewell.json").read_text())
    assert data["outcome"] == "interrupted"


@contextlib.contextmanager
def _interactive(project: Planrunner) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``python -m planrun plan ... --interactive`` on a real pseudo-terminal; killed if still running."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", "plan", REQUEST, "-o", OUT, "--interactive"],
        cwd=project.path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    try:
        yield proc, master
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_interactive_without_a_terminal_is_exit_4(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    result = project.runsubprocess("plan", REQUEST, "-o", OUT, "--interactive")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == "ERROR: --interactive needs a terminal: stdin is not one\n"
    assert openai_server.requests == []


def test_ask_user_does_not_exist_without_interactive(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    openai_server.add(tool_turn(("ask_user", {"question": "which?"})), tool_turn(("submit_plan", {"plan": GOOD})))
    result = plan(project)
    assert result.ret == ExitCode.OK, result
    assert tool_results(openai_server, 1)[0].startswith("error: unknown tool 'ask_user'")
    assert "which?" not in result.outstr
