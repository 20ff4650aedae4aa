"""The ``openai`` executor end to end: the CLI, the real ``openai`` client, the scripted server of planrun.testing."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from planrun import ExitCode, ItemReport, hookimpl
from planrun.testing import Planrunner, RunResult, ScriptedOpenAI, delay, error, text, tool_turn

CANARY = "sk-CANARY-5f1d2e9a7b3c4d6e"


# -- helpers -------------------------------------------------------------------


class Reports:
    """Collects the ItemReports of a run (the terminal's format is not what these tests are about)."""

    def __init__(self) -> None:
        self.items: dict[str, ItemReport] = {}

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        self.items[report.item_id] = report


@pytest.fixture
def project(planrunner: Planrunner, openai_server: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch) -> Planrunner:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    planrunner.makefile(
        "pyproject.toml",
        f'[tool.planrun]\nexecutor = "openai"\nmodel = "scripted-model"\nbase_url = "{openai_server.url}"\n',
    )
    return planrunner


ONE_TASK = """
plan: single
tasks:
  - id: t
    name: Write a.txt
    file: a.txt
    description: Write hello into a.txt.
    criteria:
      - file_contains: {path: a.txt, text: hello}
"""

WRITE = ("write_file", {"path": "a.txt", "content": "hello\n"})
FINISH = ("finish", {"summary": "wrote a.txt"})


def run(project: Planrunner, *args: str) -> tuple[RunResult, Reports]:
    reports = Reports()
    result = project.run(*args, plugins=[reports])
    return result, reports


def assert_one_clean_line(result: RunResult) -> None:
    assert result.no_traceback(), result
    assert CANARY not in result.outstr + result.errstr


# -- end to end ----------------------------------------------------------------

THREE = """
plan: three files
id: three
overview: OVERVIEW-TEXT three small files.
tasks:
  - id: one
    name: Write a.txt
    file: a.txt
    description: DESC-ONE write hello into a.txt.
    criteria:
      - file_contains: {path: a.txt, text: hello}
  - id: two
    name: Write b.txt
    file: b.txt
    depends_on: [one]
    description: DESC-TWO write world into b.txt.
    criteria:
      - file_contains: {path: b.txt, text: world}
  - id: three
    name: Write c.txt
    file: c.txt
    depends_on: [two]
    description: DESC-THREE write c.txt.
    criteria:
      - c.txt exists
"""


def test_three_tasks_a_retry_with_feedback_and_a_dependent(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("three", THREE)
    openai_server.add(
        # one: wrong first, right after the failure report
        tool_turn(("write_file", {"path": "a.txt", "content": "helo\n"}), usage=(100, 10)),
        tool_turn(("finish", {"summary": "TRANSCRIPT-ONLY-TEXT first try"}), usage=(120, 5)),
        tool_turn(("write_file", {"path": "a.txt", "content": "hello\n"}), usage=(200, 10)),
        tool_turn(("finish", {"summary": "SUMMARY-ONE a.txt says hello"}), usage=(220, 5)),
        # two
        tool_turn(("write_file", {"path": "b.txt", "content": "world\n"}), ("finish", {"summary": "b done"})),
        # three
        tool_turn(("write_file", {"path": "c.txt", "content": "c\n"})),
        tool_turn(("finish", {"summary": "c done"})),
    )
    result, reports = run(project, "-v")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=3)
    assert (project.path / "a.txt").read_text() == "hello\n"
    assert (project.path / "c.txt").exists()
    assert "tokens" in result.outstr and "attempts" in result.outstr  # the format is the terminal's business
    one, two, three = reports.items["one"], reports.items["two"], reports.items["three"]
    assert (one.attempts, one.tokens_in, one.tokens_out) == (2, 640, 30)
    assert (two.attempts, two.tokens_in, two.tokens_out) == (1, 100, 20)
    assert (three.attempts, three.tokens_in, three.tokens_out) == (1, 200, 40)
    assert one.summary == "SUMMARY-ONE a.txt says hello"
    assert one.cost is None  # no price known
    # The retry continues the same conversation, with the failure report as a user message.
    retry = openai_server.requests[2].messages
    assert retry[: len(openai_server.requests[1].messages)] == openai_server.requests[1].messages
    feedback = retry[-1]
    assert feedback["role"] == "user"
    assert "Attempt 1 of 2 did not meet the task's success criteria" in feedback["content"]
    assert "criterion 1" in feedback["content"] and "a.txt" in feedback["content"]
    assert len(openai_server.requests) == 7
    # The request carries the tools and the system prompt.
    first = openai_server.requests[0].body
    assert first["model"] == "scripted-model"
    assert {t["function"]["name"] for t in first["tools"]} >= {"write_file", "finish", "report_blocked"}
    assert first["messages"][0]["role"] == "system" and "execution agent" in first["messages"][0]["content"]
    assert "response_format" not in first


def test_context_isolation_on_recorded_requests(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("three", THREE)
    openai_server.add(
        tool_turn(("read_file", {"path": "a.txt"}), usage=(1, 1)),  # an error result: in one's transcript only
        tool_turn(WRITE, ("finish", {"summary": "SUMMARY-ONE a.txt says hello"})),
        tool_turn(("write_file", {"path": "b.txt", "content": "world"}), ("finish", {"summary": "b"})),
        tool_turn(("write_file", {"path": "c.txt", "content": "c"}), ("finish", {"summary": "c"})),
    )
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result
    firsts = [r for r in openai_server.requests if len(r.messages) == 2]  # the opening request of each task
    assert len(firsts) == 3
    two = firsts[1].text()
    assert "DESC-TWO" in two and "SUMMARY-ONE a.txt says hello" in two and "OVERVIEW-TEXT" in two
    assert "DESC-THREE" not in two and "DESC-ONE" not in two
    refusal = openai_server.requests[1].messages[-1]  # one's read_file result: its transcript
    assert refusal["role"] == "tool" and refusal["content"].startswith("error")
    assert refusal["content"] not in two and "read_file" not in json.dumps(firsts[1].messages)
    assert "DESC-TWO" not in firsts[0].text() and "DESC-THREE" not in firsts[0].text()


def test_blocked_ends_the_task_and_skips_dependents(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("three", THREE)
    openai_server.add(tool_turn(("report_blocked", {"reason": "a.txt is owned by another team"})))
    result, reports = run(project)
    assert result.ret == ExitCode.TESTS_FAILED
    assert reports.items["one"].outcome == "blocked"
    assert reports.items["one"].message == "blocked: a.txt is owned by another team"
    assert reports.items["two"].outcome == "skipped" and "one" in reports.items["two"].message
    assert len(openai_server.requests) == 1


def test_the_models_claim_never_decides(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(("finish", {"summary": "all done, trust me"})), tool_turn(FINISH))
    result, reports = run(project)
    assert result.ret == ExitCode.TESTS_FAILED
    assert reports.items["t"].outcome == "failed" and reports.items["t"].attempts == 2


def test_cost_from_the_price_table(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makefile(
        "pyproject.toml",
        (project.path / "pyproject.toml").read_text()
        + '\n[tool.planrun.prices]\n"scripted-model" = {input = 1.25, output = 10}\n',
    )
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(WRITE, usage=(100_000, 0)), tool_turn(FINISH, usage=(0, 10_000)))
    result, reports = run(project)
    assert result.ret == ExitCode.OK, result
    assert reports.items["t"].cost == pytest.approx(0.125 + 0.1)


def test_progress_every_turn_and_tool(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    seen: list[dict[str, Any]] = []

    class Progress:
        @hookimpl
        def planrun_task_progress(self, nodeid: str, attempt: int, status: dict[str, Any]) -> None:
            seen.append(dict(status, attempt=attempt))

    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(WRITE, usage=(10, 1)), tool_turn(FINISH, usage=(20, 2)))
    assert project.run(plugins=[Progress()]).ret == ExitCode.OK
    assert [(s["turn"], s["tool"]) for s in seen] == [(1, None), (1, "write_file"), (2, None), (2, "finish")]
    assert seen[-1]["tokens_in"] == 30 and seen[-1]["tokens_out"] == 3


# -- faults (item 3) -----------------------------------------------------------


def test_429_with_retry_after_then_success(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(error(429, "slow down", retry_after=0), tool_turn(WRITE, FINISH))
    result, reports = run(project)
    assert result.ret == ExitCode.OK, result
    assert len(openai_server.requests) == 2
    assert openai_server.requests[0].body == openai_server.requests[1].body


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_then_success(project: Planrunner, openai_server: ScriptedOpenAI, status: int) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(error(status, retry_after=0), error(status, retry_after=0), tool_turn(WRITE, FINISH))
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result
    assert len(openai_server.requests) == 3


def test_retries_exhausted_is_an_error(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(*[error(500, "overloaded", retry_after=0)] * 4, tool_turn(WRITE, FINISH))
    result, reports = run(project)
    assert result.ret == ExitCode.TESTS_FAILED
    t = reports.items["t"]
    assert t.outcome == "error"
    assert t.message.startswith("the model endpoint keeps failing: 4 requests to http://127.0.0.1:")
    assert "(last: 500 overloaded)" in t.message
    assert len(openai_server.requests) == 4  # 1 + 3 retries, no more
    assert_one_clean_line(result)


def test_retry_after_is_capped(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    from planrun.llm import RETRY_AFTER_CAP
    from planrun.llm import retry_after as _retry_after

    class Response:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class Exc:
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Response(headers)

    assert _retry_after(Exc({"retry-after": "86400"})) == RETRY_AFTER_CAP
    assert _retry_after(Exc({"retry-after": "2"})) == 2.0
    assert _retry_after(Exc({"retry-after-ms": "150"})) == 0.15
    assert _retry_after(Exc({"retry-after": "soon"})) is None
    assert _retry_after(Exc({"retry-after": "-5"})) == 0.0
    assert _retry_after(Exc({})) is None


def test_timeout_is_retried_then_an_error(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(*[delay(30, tool_turn(WRITE, FINISH))] * 4)
    result, reports = run(project, "--request-timeout", "0.2")
    assert result.ret == ExitCode.TESTS_FAILED
    t = reports.items["t"]
    assert t.outcome == "error"
    assert "4 requests" in t.message and "timed out after 0.2s" in t.message
    assert len(openai_server.requests) == 4
    assert not (project.path / "a.txt").exists()
    assert_one_clean_line(result)


def test_timeout_then_success(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(delay(30), tool_turn(WRITE, FINISH))
    result, _ = run(project, "--request-timeout", "0.2")
    assert result.ret == ExitCode.OK, result
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize("arguments", ['{"path": "a.txt", "content": ', "[1, 2]", "not json at all"])
def test_malformed_arguments_get_an_error_and_the_loop_goes_on(
    project: Planrunner, openai_server: ScriptedOpenAI, arguments: str
) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(("write_file", arguments)), tool_turn(WRITE, FINISH))
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result
    answer = openai_server.requests[1].messages[-1]
    assert answer["role"] == "tool" and answer["tool_call_id"] == "call_1"
    assert answer["content"].startswith("error: the arguments of write_file ")


@pytest.mark.parametrize("name", ["delete_everything", "", "Write_File"])
def test_unknown_tool_gets_an_error_and_the_loop_goes_on(
    project: Planrunner, openai_server: ScriptedOpenAI, name: str
) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn((name, {"path": "a.txt"})), tool_turn(WRITE, FINISH))
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result
    answer = openai_server.requests[1].messages[-1]
    assert answer["content"].startswith(f"error: unknown tool {name!r} (tools: ")
    assert "write_file" in answer["content"]


def test_three_identical_failing_calls_are_no_progress(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    same = tool_turn(("read_file", {"path": "missing.txt"}))
    openai_server.add(same, same, same, tool_turn(WRITE, FINISH))
    result, reports = run(project)
    assert result.ret == ExitCode.TESTS_FAILED
    t = reports.items["t"]
    assert t.outcome == "error"
    assert t.message.startswith('no progress: the same failing call read_file {"path": "missing.txt"} 3 times in a row')
    assert len(openai_server.requests) == 3


def test_different_failing_calls_are_not_no_progress(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(
        tool_turn(("read_file", {"path": "x"})),
        tool_turn(("read_file", {"path": "y"})),
        tool_turn(("read_file", {"path": "x"})),
        tool_turn(WRITE, FINISH),
    )
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result


def test_a_text_answer_is_nudged_once_then_no_progress(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(text("I think it is done."), text("Really done."), tool_turn(WRITE, FINISH))
    result, reports = run(project)
    assert reports.items["t"].outcome == "error"
    assert reports.items["t"].message.startswith("no progress: the model answered without calling a tool twice")
    nudge = openai_server.requests[1].messages[-1]
    assert nudge["role"] == "user" and "finish" in nudge["content"] and "report_blocked" in nudge["content"]
    assert len(openai_server.requests) == 2


def test_a_nudged_model_can_still_finish(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(text("Let me think."), tool_turn(WRITE, FINISH))
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-turns", "2"), "budget exceeded: 2 turns (max_turns 2)"),
        (("--max-tokens", "250"), "budget exceeded: 300 tokens (max_tokens 250)"),
    ],
)
def test_budgets_stop_before_the_next_request(
    project: Planrunner, openai_server: ScriptedOpenAI, args: tuple[str, ...], message: str
) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(*[tool_turn(("read_file", {"path": f"f{n}"}), usage=(100, 50)) for n in range(5)])
    result, reports = run(project, *args)
    t = reports.items["t"]
    assert (t.outcome, t.message) == ("error", message)
    assert len(openai_server.requests) == 2  # no request after the budget ran out
    assert t.tokens_in == 200 and t.tokens_out == 100  # what was spent is still reported


def test_cost_budget(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makefile(
        "pyproject.toml",
        (project.path / "pyproject.toml").read_text()
        + 'max_cost = 0.5\nmax_tokens = 100000000\n[tool.planrun.prices]\n"scripted-model" = {input = 1, output = 1}\n',
    )
    project.makeplan("p", ONE_TASK)
    openai_server.add(*[tool_turn(("read_file", {"path": f"f{n}"}), usage=(300_000, 0)) for n in range(5)])
    result, reports = run(project)
    assert reports.items["t"].message == "budget exceeded: cost 0.6000 (max_cost 0.5)"
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("length", "the model's answer was cut off at the token limit (finish_reason length)"),
        ("content_filter", "the model's answer was stopped by a content filter (finish_reason content_filter)"),
    ],
)
def test_length_and_content_filter_are_errors(
    project: Planrunner, openai_server: ScriptedOpenAI, reason: str, message: str
) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(WRITE, finish_reason=reason), tool_turn(FINISH))
    result, reports = run(project)
    assert (reports.items["t"].outcome, reports.items["t"].message) == ("error", message)
    assert len(openai_server.requests) == 1
    assert_one_clean_line(result)


TWO_TASKS = """
plan: two
tasks:
  - id: a
    name: A
    description: Write a.txt.
    criteria: [a.txt exists]
  - id: b
    name: B
    description: Write b.txt.
    criteria: [b.txt exists]
"""


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_one_line_and_stops_the_run(
    project: Planrunner, openai_server: ScriptedOpenAI, status: int
) -> None:
    project.makeplan("p", TWO_TASKS)
    openai_server.add(error(status, f"Incorrect API key provided: {CANARY}"), tool_turn(WRITE, FINISH))
    result, reports = run(project)
    assert result.ret == ExitCode.TESTS_FAILED
    a = reports.items["a"]
    assert a.outcome == "error"
    assert a.message.startswith(f"the model endpoint {openai_server.url} refused the API key ({status}):")
    assert "[redacted]" in a.message
    assert "b" not in reports.items  # the run stopped early
    assert len(openai_server.requests) == 1
    result.stdout.fnmatch_lines(["*stopping: the model endpoint refused the API key*"])
    assert_one_clean_line(result)


def test_an_unreachable_endpoint_is_one_line_and_stops_the_run(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    import socket

    project.makeplan("p", TWO_TASKS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused, and no one else gets the port
        port = s.getsockname()[1]
        result, reports = run(project, "--base-url", f"http://127.0.0.1:{port}/v1")
    assert result.ret == ExitCode.TESTS_FAILED
    a = reports.items["a"]
    assert a.outcome == "error"
    assert a.message.startswith(f"the model endpoint is unreachable: 4 requests to http://127.0.0.1:{port}/v1 failed")
    assert "\n" not in a.message
    assert "b" not in reports.items
    result.stdout.fnmatch_lines(["*stopping: the model endpoint is unreachable*"])
    assert_one_clean_line(result)
    assert not openai_server.requests


def test_another_4xx_is_a_task_error(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", TWO_TASKS)
    openai_server.add(
        error(404, "model 'scripted-model' not found"), tool_turn(("write_file", {"path": "b.txt", "content": "b"}))
    )
    openai_server.add(tool_turn(("finish", {"summary": ""})))
    result, reports = run(project)
    assert reports.items["a"].message.endswith("answered 404: model 'scripted-model' not found")
    assert reports.items["b"].outcome == "passed"  # the run went on


SHELL_FIRST = """
plan: shell first
tasks:
  - {id: step, name: Step, run: touch ran.txt, criteria: [ran.txt exists]}
  - {id: a, name: A, description: Write a.txt., criteria: [a.txt exists]}
"""


def test_no_model_is_a_usage_error_before_anything_runs(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makefile("pyproject.toml", f'[tool.planrun]\nexecutor = "openai"\nbase_url = "{openai_server.url}"\n')
    project.makeplan("p", SHELL_FIRST)
    result, reports = run(project)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == "ERROR: the openai executor needs a model: pass --model NAME or set [tool.planrun] model\n"
    assert not reports.items and not (project.path / "ran.txt").exists()
    assert not openai_server.requests
    assert run(project, "--co")[0].ret == ExitCode.OK  # collecting needs no model
    assert run(project, "--verify-only")[0].ret == ExitCode.TESTS_FAILED  # nor does verifying
    openai_server.add(tool_turn(("write_file", {"path": "a.txt", "content": "a"}), FINISH))
    result, reports = run(project, "--model", "from-the-flag")
    assert result.ret == ExitCode.OK, result
    assert openai_server.requests[0].body["model"] == "from-the-flag"


def test_api_key_env_names_the_variable(
    project: Planrunner, openai_server: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makefile(
        "pyproject.toml",
        (project.path / "pyproject.toml").read_text() + 'api_key_env = "MY_LLM_KEY"\n',
    )
    project.makeplan("p", ONE_TASK)
    result, reports = run(project)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr == "ERROR: the API key variable MY_LLM_KEY ([tool.planrun] api_key_env) is not set\n"
    assert not reports.items and not openai_server.requests
    monkeypatch.setenv("MY_LLM_KEY", "sk-other-key-123456")
    openai_server.add(tool_turn(WRITE, FINISH))
    result, reports = run(project)
    assert result.ret == ExitCode.OK, result
    assert openai_server.requests[0].header("authorization") == "Bearer sk-other-key-123456"


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("max_turns = 0", "[tool.planrun] max_turns must be a positive whole number, got 0"),
        ('max_tokens = "many"', "[tool.planrun] max_tokens must be a positive whole number, got 'many'"),
        ("request_timeout = -1", "[tool.planrun] request_timeout must be a positive number, got -1"),
        ('prices = {"scripted-model" = {input = 1}}', "[tool.planrun.prices] 'scripted-model' must be {input = N"),
    ],
)
def test_bad_config_is_a_usage_error(
    project: Planrunner, openai_server: ScriptedOpenAI, ini: str, message: str
) -> None:
    project.makefile("pyproject.toml", (project.path / "pyproject.toml").read_text() + ini + "\n")
    project.makeplan("p", ONE_TASK)
    result = project.run()
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert message in result.errstr
    assert not openai_server.requests
    assert result.no_traceback()


def test_openai_is_imported_only_when_the_executor_runs(planrunner: Planrunner) -> None:
    import subprocess

    planrunner.makefile("pyproject.toml", '[tool.planrun]\nexecutor = "openai"\nmodel = "m"\n')
    planrunner.makeplan("p", ONE_TASK)
    probe = (
        "import sys\nfrom planrun import main\nmain(sys.argv[1:])\n"
        "print('LOADED' if 'openai' in sys.modules else 'ABSENT')\n"
    )
    planrunner.makefile("probe.py", probe)
    for args, want in ((["--co"], "ABSENT"), (["--verify-only"], "ABSENT")):
        proc = subprocess.run([sys.executable, "probe.py", *args], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip().splitlines()[-1] == want, proc.stdout + proc.stderr


# -- secrets and transcripts ---------------------------------------------------


def transcript(project: Planrunner, plan: str, task: str) -> dict[str, Any]:
    return json.loads((project.path / ".planrun" / "transcripts" / plan / f"{task}.json").read_text())


def test_transcripts_every_attempt_redacted(
    project: Planrunner, openai_server: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_CANARYTOKEN1234567890")
    project.makeplan("three", THREE)
    leak = f"key {CANARY} token ghp_CANARYTOKEN1234567890"
    openai_server.add(
        tool_turn(("write_file", {"path": "a.txt", "content": leak})),
        tool_turn(("read_file", {"path": "a.txt"})),
        tool_turn(FINISH),
        tool_turn(WRITE, FINISH),
        tool_turn(("write_file", {"path": "b.txt", "content": "world"}), FINISH),
        tool_turn(("write_file", {"path": "c.txt", "content": "c"}), FINISH),
    )
    result, _ = run(project)
    assert result.ret == ExitCode.OK, result
    data = transcript(project, "three", "one")
    assert [a["attempt"] for a in data["attempts"]] == [1, 2]
    assert [a["outcome"] for a in data["attempts"]] == ["done", "done"]
    assert len(data["exchanges"]) == 4
    assert data["messages"][-1]["role"] == "tool"
    raw = "\n".join(p.read_text() for p in (project.path / ".planrun").rglob("*.json"))
    assert CANARY not in raw and "ghp_CANARYTOKEN1234567890" not in raw
    assert "[redacted]" in raw
    assert str(project.path) not in raw and "<workdir>" in raw
    assert (project.path / ".planrun" / ".gitignore").read_text().splitlines()[-1] == "*"
    # What the model read back reached the server redacted; the key only in the Authorization header.
    bodies = "\n".join(r.text() for r in openai_server.requests)
    assert CANARY not in bodies and "ghp_CANARYTOKEN1234567890" not in bodies
    assert all(r.header("authorization") == f"Bearer {CANARY}" for r in openai_server.requests)
    assert CANARY not in result.outstr + result.errstr
    assert not list(project.path.joinpath(".planrun", "transcripts", "three").glob("*.tmp"))


def test_the_key_never_reaches_output_or_errors(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(*[error(500, f"upstream said {CANARY}", retry_after=0)] * 4)
    result, reports = run(project, "-v", "-rA")
    assert reports.items["t"].outcome == "error"
    assert CANARY not in result.outstr + result.errstr + reports.items["t"].message
    assert CANARY not in (project.path / ".planrun/transcripts/p/t.json").read_text()


def test_env_written_by_the_model_holds_no_key(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan(
        "p",
        """
        plan: env
        tasks:
          - id: t
            name: Dump the environment
            file: env.txt
            criteria: [env.txt exists]
        """,
    )
    openai_server.add(tool_turn(("run_command", {"command": "env > env.txt"})), tool_turn(FINISH))
    result, reports = run(project)
    assert reports.items["t"].outcome == "passed", result
    env = (project.path / "env.txt").read_text()
    assert "PATH=" in env  # the command ran and wrote the environment
    assert CANARY not in env
    assert CANARY not in "\n".join(r.text() for r in openai_server.requests)


# -- replay --------------------------------------------------------------------


def test_replay_is_offline_and_identical(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("three", THREE)
    openai_server.add(
        tool_turn(("write_file", {"path": "a.txt", "content": "helo\n"})),
        tool_turn(FINISH),
        tool_turn(WRITE, FINISH),
        tool_turn(("write_file", {"path": "b.txt", "content": "world"}), FINISH),
        tool_turn(("write_file", {"path": "c.txt", "content": "c"}), FINISH),
    )
    first, reports = run(project)
    assert first.ret == ExitCode.OK, first
    sent = len(openai_server.requests)
    recorded = (project.path / ".planrun/transcripts/three/one.json").read_text()
    for name in ("a.txt", "b.txt", "c.txt"):
        (project.path / name).unlink()
    again, replayed = run(project, "--replay")
    assert again.ret == ExitCode.OK, again
    assert len(openai_server.requests) == sent  # no request sent
    assert {k: (r.outcome, r.attempts, r.tokens_in) for k, r in replayed.items.items()} == {
        k: (r.outcome, r.attempts, r.tokens_in) for k, r in reports.items.items()
    }
    assert (project.path / "a.txt").read_text() == "hello\n"  # the tools ran again
    assert (project.path / ".planrun/transcripts/three/one.json").read_text() == recorded


def test_replay_of_a_changed_plan_names_the_diverging_request(
    project: Planrunner, openai_server: ScriptedOpenAI
) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(("read_file", {"path": "a.txt"})), tool_turn(WRITE, FINISH))
    assert run(project)[0].ret == ExitCode.OK
    (project.path / "a.txt").unlink()
    project.makeplan("p", ONE_TASK.replace("Write hello into a.txt.", "Write HELLO into a.txt."))
    result, reports = run(project, "--replay")
    assert result.ret == ExitCode.TESTS_FAILED
    message = reports.items["t"].message
    assert message.startswith("replay: request 1 (attempt 1, turn 1) diverges from ")
    assert "t.json: message 2 (user) differs" in message
    assert len(openai_server.requests) == 2
    assert_one_clean_line(result)


def test_replay_diverging_later_and_missing(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    project.makeplan("p", ONE_TASK)
    openai_server.add(tool_turn(("read_file", {"path": "notes.txt"})), tool_turn(WRITE, FINISH))
    assert run(project)[0].ret == ExitCode.OK
    (project.path / "a.txt").unlink()
    project.makefile("notes.txt", "now it exists")  # read_file answers otherwise than the recorded "no such file"
    result, reports = run(project, "--replay")
    message = reports.items["t"].message
    assert message.startswith("replay: request 2 (attempt 1, turn 2) diverges from "), message
    assert "message 4 (tool) differs" in message
    (project.path / ".planrun/transcripts/p/t.json").unlink()
    result, reports = run(project, "--replay")
    assert reports.items["t"].message.startswith("--replay: no transcript recorded for task 't' (")
    assert len(openai_server.requests) == 2


def test_base_url_from_the_environment_and_the_flag(
    project: Planrunner, openai_server: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makefile("pyproject.toml", '[tool.planrun]\nexecutor = "openai"\nmodel = "m"\n')
    project.makeplan("p", ONE_TASK)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    openai_server.add(tool_turn(WRITE, FINISH))
    assert run(project)[0].ret == ExitCode.OK
    assert len(openai_server.requests) == 1
    # The flag wins over the environment (here: a server that answers nothing but 400s).
    with ScriptedOpenAI([error(400, "the other server")]) as other:
        (project.path / "a.txt").unlink()
        result, reports = run(project, "--base-url", other.url)
        assert reports.items["t"].message == f"the model endpoint {other.url} answered 400: the other server"
        assert len(other.requests) == 1
    assert len(openai_server.requests) == 1


def test_transcripts_leave_git_status_clean(project: Planrunner, openai_server: ScriptedOpenAI) -> None:
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project.makeplan("p", ONE_TASK)

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project.path, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("add", "-A")
    before = git("status", "--porcelain")
    openai_server.add(tool_turn(WRITE, FINISH))
    assert run(project)[0].ret == ExitCode.OK
    assert (project.path / ".planrun/transcripts/p/t.json").is_file()
    assert git("status", "--porcelain").replace("?? a.txt\n", "") == before


@pytest.mark.parametrize("where", ["content", "arguments"])
def test_a_lone_surrogate_in_a_reply_is_replaced_or_refused_and_the_loop_goes_on(
    project: Planrunner, openai_server: ScriptedOpenAI, where: str
) -> None:
    bad = "ok \ud800 \udc00"
    if where == "content":  # the reply's text: made U+FFFD, so it can be sent back and written
        openai_server.add(tool_turn(WRITE, content=bad))
    else:  # in a tool's arguments: the tool says so, and the model writes again
        openai_server.add(tool_turn(("write_file", {"path": "a.txt", "content": f"hello\n{bad}\n"})))
        openai_server.add(tool_turn(WRITE))
    openai_server.add(tool_turn(FINISH, content=bad))
    project.makeplan("single", ONE_TASK)
    result, reports = run(project, "--max-attempts", "1", "single.plan.yaml")
    assert_one_clean_line(result)
    assert result.ret == ExitCode.OK, result
    assert reports.items["t"].outcome == "passed"
    assert (project.path / "a.txt").read_text(encoding="utf-8") == "hello\n"
    transcripts = [p for p in (project.path / ".planrun").rglob("*") if p.is_file() and "transcript" in str(p)]
    assert transcripts and all("\ud800" not in p.read_text(encoding="utf-8") for p in transcripts)
    if where == "arguments":
        tool_answer = json.dumps(openai_server.requests[1].messages[-1])
        assert "surrogate" in tool_answer, tool_answer
