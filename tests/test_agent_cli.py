"""The agent-cli executor: an external agent CLI (here tests/fake_agent.py) performs tasks."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

import planrun
from planrun import ExitCode, hookimpl
from planrun.plugins import agent_cli
from planrun.plugins.agent_cli import PRESETS, parse_output, preset_argv
from planrun.testing import Planrunner

from .test_orphans import assert_gone

FAKE = Path(__file__).resolve().parent / "fake_agent.py"
CMD = f"{sys.executable} {FAKE} {{prompt_file}}"
LABEL = f"agent {Path(sys.executable).name}"  # how messages name a template's agent


class Reports:
    """Keeps every task report of a run."""

    def __init__(self) -> None:
        self.items: dict[str, planrun.ItemReport] = {}

    @hookimpl
    def planrun_runtest_logreport(self, report: planrun.ItemReport) -> None:
        self.items[report.item_id] = report


@pytest.fixture
def log(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the fake agent records each run (outside the workdir)."""
    path = tmp_path_factory.mktemp("agentlog") / "runs.jsonl"
    monkeypatch.setenv("FAKE_AGENT_LOG", str(path))
    return path


def runs(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run(planrunner: Planrunner, *args: str) -> tuple[planrun.testing.RunResult, Reports]:
    reports = Reports()
    result = planrunner.run("--executor", "agent-cli", *args, plugins=[reports])
    return result, reports


def one_task(planrunner: Planrunner, directives: str, *, criteria: list[Any] | None = None, **fields: Any) -> None:
    """A plan ``p.plan.yaml`` (JSON is YAML) with task ``t`` and, if given, more tasks."""
    task = {"id": "t", "name": "T", "description": directives, "criteria": criteria or [{"file_exists": "x.txt"}]}
    planrunner.makeplan("p", json.dumps({"plan": "p", "tasks": [task, *fields.pop("more", [])], **fields}))


TWO_TASKS = """
plan: two
overview: Two files, written by an agent.
tasks:
  - id: first
    name: Write a
    file: a.txt
    description: |
      The greeting.
      WRITE a.txt: hello
    criteria: [a.txt contains `hello`]
  - id: second
    name: Write b
    file: b.txt
    depends_on: [first]
    description: |
      The farewell.
      WRITE b.txt: bye
    criteria: [b.txt contains `bye`]
"""


# -- end to end ----------------------------------------------------------------


def test_two_tasks_performed_by_a_command_template(planrunner: Planrunner, log: Path) -> None:
    planrunner.makeplan("two", TWO_TASKS)
    result, reports = run(planrunner, "--agent-cmd", CMD, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=2)
    assert (planrunner.path / "a.txt").read_text() == "hello\n"
    assert (planrunner.path / "b.txt").read_text() == "bye\n"
    first, second = reports.items["first"], reports.items["second"]
    for r in (first, second):
        assert (r.executor, r.tokens_in, r.tokens_out, r.cost, r.attempts) == ("agent-cli", 1000, 50, 0.25, 1)
    assert first.summary == "wrote a.txt"
    assert "tokens" in result.outstr  # the run's token line (its format belongs to the terminal)
    one, two = runs(log)
    assert one["cwd"] == two["cwd"] == str(planrunner.path)
    # The prompt: the role, the CLI note, this task and its criteria; a dependent sees the summary only.
    assert one["prompt"].startswith(planrun.agentprompt.DEFAULT_SYSTEM_PROMPT.rstrip())
    assert agent_cli.CLI_NOTE.rstrip() in one["prompt"]
    assert "# Your task: Write a (id first)" in one["prompt"] and "1. a.txt contains `hello`" in one["prompt"]
    assert "The farewell." not in one["prompt"]
    assert "- first: wrote a.txt" in two["prompt"]
    assert "The greeting." not in two["prompt"]


def test_a_retry_gets_the_failure_report_and_passes(planrunner: Planrunner, log: Path) -> None:
    planrunner.makeplan(
        "r",
        """
        plan: r
        tasks:
          - id: fix
            name: Right word
            file: w.txt
            description: |
              WRONG-FIRST w.txt: wrong | right
            criteria: [w.txt contains `right`]
        """,
    )
    result, reports = run(planrunner, "--agent-cmd", CMD, "r.plan.yaml")
    assert result.ret == ExitCode.OK, result
    report = reports.items["fix"]
    assert (report.attempts, report.tokens_in, report.tokens_out, report.cost) == (2, 2000, 100, 0.5)
    assert report.summary == "wrote w.txt (retry)"
    first, second = runs(log)
    assert "did not meet" not in first["prompt"]
    assert "# Attempt 2: the previous attempt did not pass" in second["prompt"]
    assert "Attempt 1 of 2 did not meet the task's success criteria" in second["prompt"]
    assert "criterion 1: w.txt contains `right`: failed" in second["prompt"]
    assert "## w.txt\n```\nwrong\n" in second["prompt"]  # the file as the first attempt left it


def test_max_attempts_one_means_no_retry(planrunner: Planrunner, log: Path) -> None:
    one_task(planrunner, "WRONG-FIRST w.txt: wrong | right", criteria=["w.txt contains `right`"])
    result, reports = run(planrunner, "--agent-cmd", CMD, "--max-attempts", "1", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert reports.items["t"].attempts == 1 and len(runs(log)) == 1


BLOCKED = {
    "a BLOCKED: line on stdout": ("SAY BLOCKED: the API key is missing\nJSON {}", "the API key is missing"),
    "blocked in the JSON line": ('JSON {"blocked": "no database"}', "no database"),
    "BLOCKED: in the final message": (
        'JSON {"result": "I looked.\\nBLOCKED: the spec contradicts the code", "usage": {"input_tokens": 7}}',
        "the spec contradicts the code",
    ),
}


@pytest.mark.parametrize("case", sorted(BLOCKED))
def test_an_agent_that_says_it_is_blocked_blocks_the_task(planrunner: Planrunner, log: Path, case: str) -> None:
    directives, reason = BLOCKED[case]
    later = {
        "id": "later",
        "name": "L",
        "depends_on": ["t"],
        "description": "WRITE l.txt: x",
        "criteria": [{"file_exists": "l.txt"}],
    }
    one_task(planrunner, directives, more=[later])
    result, reports = run(planrunner, "--agent-cmd", CMD, "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(blocked=1, skipped=1)
    assert reports.items["t"].message == f"blocked: {LABEL}: {reason}"
    assert reports.items["later"].message == "dependency t blocked"
    assert len(runs(log)) == 1  # blocked is not retried, the dependent never ran
    assert not (planrunner.path / "l.txt").exists()


FAILURES = {
    "exit status": ("EXIT 3", f"{LABEL} exited with 3", "fake_agent: something went wrong"),
    "signal": ("KILL-SELF", f"{LABEL} was killed by signal 9", "(no output)"),
    "is_error in the JSON": (
        'JSON {"is_error": true, "result": "model overloaded"}',
        f"{LABEL} reported an error: model overloaded",
        '{"is_error": true, "result": "model overloaded"}',
    ),
    "is_error and an exit status": (
        'JSON {"is_error": true, "result": "quota exceeded"}\nEXIT 1',
        f"{LABEL} exited with 1: quota exceeded",
        "fake_agent: something went wrong",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_an_agent_that_fails_fails_the_task_with_its_output(planrunner: Planrunner, log: Path, case: str) -> None:
    directives, message, tail = FAILURES[case]
    one_task(planrunner, "WRITE x.txt: 1\n" + directives)
    result, reports = run(planrunner, "--agent-cmd", CMD, "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    report = reports.items["t"]
    assert (report.outcome, report.message, report.attempts) == ("failed", message, 1)
    assert report.evidence.startswith(f"command: {CMD}\noutput tail:\n")
    assert tail in report.evidence
    result.stdout.fnmatch_lines([f"FAILED p.plan.yaml::t - {message}"])


def test_an_agent_past_the_timeout_is_killed_and_the_task_errors(planrunner: Planrunner, log: Path) -> None:
    one_task(planrunner, "SLEEP")
    result, reports = run(planrunner, "--agent-cmd", CMD, "--timeout", "1", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert reports.items["t"].outcome == "error"
    assert reports.items["t"].message == f"timed out: {LABEL} killed after 1s (the task's timeout)"


def test_the_agent_process_cannot_outlive_its_task(planrunner: Planrunner, log: Path) -> None:
    """A process the agent starts in a new session is killed when the agent exits, before the next task."""
    after = {"id": "after", "name": "A", "depends_on": ["t"], "description": "ALIVE seen.txt", "file": "seen.txt"}
    after["criteria"] = ["seen.txt contains `alive: none`"]
    one_task(planrunner, "ESCAPE\nWRITE x.txt: 1", more=[after])
    result, _ = run(planrunner, "--agent-cmd", CMD, "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    record = runs(log)[0]
    assert_gone(record["escaped"])
    assert (planrunner.path / "seen.txt").read_text() == "alive: none\n"


def test_the_prompt_can_be_an_argument(planrunner: Planrunner, log: Path) -> None:
    planrunner.makeplan("two", TWO_TASKS)
    result, _ = run(planrunner, "--agent-cmd", f"{sys.executable} {FAKE} --text {{prompt}}", "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    one, _ = runs(log)
    assert one["source"] == "argument" and "# Your task: Write a (id first)" in one["prompt"]


def test_a_prompt_too_long_for_an_argument_fails_with_advice(planrunner: Planrunner, log: Path) -> None:
    one_task(planrunner, "x" * 140_000)
    result, reports = run(planrunner, "--agent-cmd", f"{sys.executable} {FAKE} --text {{prompt}}", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert reports.items["t"].message.endswith(
        "over the 131071-byte limit of one command-line argument (use a template with {prompt_file})"
    )
    assert runs(log) == []


def test_nul_bytes_in_a_file_cannot_break_the_prompt_argument(planrunner: Planrunner, log: Path) -> None:
    (planrunner.path / "bin.dat").write_bytes(b"head\x00tail")
    planrunner.makeplan("p", json.dumps({"plan": "p", "tasks": [{
        "id": "t", "name": "T", "file": "bin.dat", "description": "WRITE x.txt: 1", "criteria": [{"file_exists": "x.txt"}]
    }]}))  # fmt: skip
    result, _ = run(planrunner, "--agent-cmd", f"{sys.executable} {FAKE} --text {{prompt}}", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert "head\ufffdtail" in runs(log)[0]["prompt"]


def test_agent_options_alone_choose_the_agent_cli_executor(planrunner: Planrunner, log: Path) -> None:
    planrunner.makeplan("two", TWO_TASKS)
    result = planrunner.run("--agent-cmd", CMD, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert len(runs(log)) == 2
    planrunner.makefile("planrun.toml", "executor = 'nosuch'\n")  # a configured executor still wins
    result = planrunner.run("--agent-cmd", CMD, "two.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: unknown executor 'nosuch' (known: agent-cli, *)"])
    assert len(runs(log)) == 2


def test_the_prompt_file_is_outside_the_workdir_and_removed(planrunner: Planrunner, log: Path) -> None:
    planrunner.makeplan("two", TWO_TASKS)
    result, _ = run(planrunner, "--agent-cmd", CMD, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    for record in runs(log):
        path = Path(record["source"])
        assert not path.resolve().is_relative_to(planrunner.path.resolve())
        assert not path.exists()
    assert sorted(p.name for p in planrunner.path.iterdir() if p.name != ".planrun") == [
        "a.txt",
        "b.txt",
        "two.plan.yaml",
    ]


def test_the_prompt_file_avoids_a_tmpdir_inside_the_workdir(planrunner: Planrunner, log: Path) -> None:
    inside = planrunner.path / "tmp"
    inside.mkdir()
    planrunner.makeplan("two", TWO_TASKS)
    env = dict(os.environ, TMPDIR=str(inside))
    proc = planrunner.popen("--executor", "agent-cli", "--agent-cmd", CMD, "two.plan.yaml", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.OK, out + err
    sources = [Path(r["source"]) for r in runs(log)]
    assert len(sources) == 2
    assert all(not p.resolve().is_relative_to(planrunner.path.resolve()) for p in sources)
    assert list(inside.iterdir()) == []


def test_the_agent_gets_the_users_environment(
    planrunner: Planrunner, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Agent CLIs read their own credentials from the environment: it is passed on as it is."""
    monkeypatch.setenv("FAKE_AGENT_CANARY", "credential-123")
    planrunner.makeplan("two", TWO_TASKS)
    result, _ = run(planrunner, "--agent-cmd", CMD, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert [r["canary"] for r in runs(log)] == ["credential-123", "credential-123"]


def test_config_agent_cmd_relative_to_the_rootdir(
    planrunner: Planrunner, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = planrunner.path / "tools"
    tools.mkdir()
    script = tools / "agent"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    script.chmod(0o755)
    planrunner.makefile(
        "pyproject.toml", "[tool.planrun]\nexecutor = 'agent-cli'\nagent_cmd = './tools/agent {prompt_file}'\n"
    )
    planrunner.makeplan("plans/two", TWO_TASKS)
    monkeypatch.chdir(planrunner.path / "plans")  # invoked from elsewhere: still the rootdir's ./tools/agent
    result = planrunner.run("two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert (planrunner.path / "a.txt").read_text() == "hello\n"
    assert [r["cwd"] for r in runs(log)] == [str(planrunner.path)] * 2


def test_openai_style_usage_in_the_json_line(planrunner: Planrunner, log: Path) -> None:
    one_task(planrunner, "WRITE x.txt: 1\nOPENAI-USAGE")
    result, reports = run(planrunner, "--agent-cmd", CMD, "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    r = reports.items["t"]
    assert (r.tokens_in, r.tokens_out, r.cost) == (1000, 50, 0.25)
    assert r.summary.startswith("{")  # no result field: the last lines of stdout


# -- presets, end to end through a stand-in on PATH ---------------------------------


@pytest.fixture
def fake_clis(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with claude, codex, gemini, opencode and aider: each is the fake agent imitating it."""
    bindir = tmp_path_factory.mktemp("bin")
    for name in PRESETS:
        script = bindir / name
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} --as {name} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_runs_its_cli_and_reads_its_output(
    planrunner: Planrunner, log: Path, fake_clis: Path, preset: str
) -> None:
    planrunner.makeplan("two", TWO_TASKS)
    result, reports = run(planrunner, "--agent", preset, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    r = reports.items["first"]
    cost = None if preset in ("codex", "gemini") else 0.25
    assert (r.tokens_in, r.tokens_out, r.cost) == (1000, 50, cost)
    expected = (
        "wrote a.txt"
        if preset != "aider"
        else "wrote a.txt\nTokens: 1k sent, 50 received. Cost: $0.25 message, $0.25 session."
    )
    assert r.summary == expected
    record = runs(log)[0]
    prompt = record["prompt"]
    want = preset_argv(
        preset,
        prompt=prompt,
        prompt_file=record["source"],
        workdir=str(planrunner.path),
        files=["a.txt"],
    )
    assert [preset, *record["argv"][2:]] == want  # what ran is exactly the preset's argv


def test_a_preset_uses_the_configured_model(planrunner: Planrunner, log: Path, fake_clis: Path) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\nmodel = 'big-model'\nagent = 'claude'\n")
    planrunner.makeplan("two", TWO_TASKS)
    result, _ = run(planrunner, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert runs(log)[0]["argv"][-2:] == ["--model", "big-model"]


def test_the_placeholders_of_a_template(planrunner: Planrunner, log: Path) -> None:
    planrunner.makefile("planrun.toml", "model = 'm-1'\n")
    planrunner.makeplan("two", TWO_TASKS)
    template = f"{CMD} --model={{model}} {{{{literal}}}} {{workdir}} '{{files}}' {{files}} 'two words'"
    result, _ = run(planrunner, "--agent-cmd", template, "two.plan.yaml")
    assert result.ret == ExitCode.OK, result
    argv = runs(log)[0]["argv"]
    assert argv[1:] == ["--model=m-1", "{literal}", str(planrunner.path), "a.txt", "a.txt", "two words"]


# -- preset argv, exactly ------------------------------------------------------------

P, F, W = "PROMPT TEXT", "/tmp/planrun-prompt-x.md", "/work dir"
EXACT = {
    "claude": ["claude", "-p", P, "--output-format", "json", "--permission-mode", "acceptEdits"],
    "codex": [
        "codex", "exec", "--json", "--color", "never", "--skip-git-repo-check", "--sandbox", "workspace-write",
        "-C", W, P,
    ],
    "gemini": ["gemini", "-p", P, "--output-format", "json", "--approval-mode", "auto_edit"],
    "opencode": ["opencode", "run", "--format", "json", "--dir", W, P],
    "aider": [
        "aider", "--message-file", F, "--yes-always", "--no-pretty", "--no-stream", "--no-auto-commits", "--no-git",
        "--no-check-update", "--no-show-model-warnings", "--analytics-disable", "--", "src/a.py", "-odd name",
    ],
}  # fmt: skip
WITH_MODEL = {
    "claude": [*EXACT["claude"], "--model", "m/x"],
    "codex": [*EXACT["codex"][:-1], "-m", "m/x", P],
    "gemini": [*EXACT["gemini"], "-m", "m/x"],
    "opencode": [*EXACT["opencode"][:-1], "-m", "m/x", P],
    "aider": [*EXACT["aider"][:11], "--model", "m/x", *EXACT["aider"][11:]],
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_argv_exactly(preset: str) -> None:
    files = ["src/a.py", "-odd name"]
    assert preset_argv(preset, prompt=P, prompt_file=F, workdir=W, files=files) == EXACT[preset]
    assert preset_argv(preset, prompt=P, prompt_file=F, workdir=W, model="m/x", files=files) == WITH_MODEL[preset]


def test_the_preset_table_is_the_documented_one() -> None:
    assert sorted(PRESETS) == sorted(EXACT) == ["aider", "claude", "codex", "gemini", "opencode"]


def test_braces_in_the_prompt_are_never_expanded_again() -> None:
    argv = preset_argv("claude", prompt="{workdir} {{x}} {model}", prompt_file=F, workdir=W, model="m")
    assert argv[2] == "{workdir} {{x}} {model}"


# -- output parsing ------------------------------------------------------------------

PARSED = {
    "claude success": (
        "claude",
        '{"type":"result","subtype":"success","is_error":false,"result":"done it","total_cost_usd":0.5,'
        '"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":7}}',
        (115, 7, 0.5, "done it", "", None),
    ),
    "claude max turns": (
        "claude",
        '{"type":"result","subtype":"error_max_turns","is_error":true,"usage":{"input_tokens":3,"output_tokens":1}}',
        (3, 1, None, None, "error_max_turns: (no message)", None),
    ),
    "codex failed turn": (
        "codex",
        '{"type":"turn.started"}\n{"type":"error","message":"reconnecting"}\n'
        '{"type":"turn.failed","error":{"message":"stream disconnected"}}\n',
        (0, 0, None, None, "stream disconnected", None),
    ),
    "codex two turns": (
        "codex",
        '{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":8,"output_tokens":2}}\n'
        "not json\n"
        '{"type":"item.completed","item":{"type":"agent_message","text":"BLOCKED: no network"}}\n'
        '{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":1}}\n',
        (15, 3, None, "BLOCKED: no network", "", "no network"),
    ),
    "gemini error": (
        "gemini",
        '{"error":{"type":"ApiError","message":"quota"},"stats":{"models":{"a":{"tokens":{"prompt":4,"candidates":2}},'
        '"b":{"tokens":{"prompt":1,"candidates":1}}}}}',
        (5, 3, None, None, "quota", None),
    ),
    "opencode steps": (
        "opencode",
        '{"type":"step_finish","part":{"tokens":{"input":3,"output":1},"cost":0.1}}\n'
        '{"type":"text","part":{"text":"ok"}}\n'
        '{"type":"step_finish","part":{"tokens":{"input":4,"output":2},"cost":0.2}}\n',
        (7, 3, pytest.approx(0.3), "ok", "", None),
    ),
    "aider text": (
        "aider",
        "Applied edit to a.py\nTokens: 2.5k sent, 120 received. Cost: $0.01 message, $0.01 session.\n"
        "Tokens: 300 sent, 1.2k received.\n",
        (2800, 1320, 0.01, None, "", None),
    ),
    "aider with cache and millions": (
        "aider",
        "Tokens: 1.5M sent, 12k cache write, 3.1k cache hit, 2k received. Cost: $1.50 message, $2.00 session.\n"
        "Tokens: 1.2.3k sent, 1 received.\n",  # not a number: ignored
        (1_500_000, 2000, 1.5, None, "", None),
    ),
    "generic hostile values": (
        "generic",
        '{"usage":{"input_tokens":-5,"output_tokens":true},"cost":"free","result":7}\n',
        (0, 0, None, None, "", None),
    ),
    "generic deep nesting": ("generic", "{" + '"a":[' * 100_000 + "\n", (0, 0, None, None, "", None)),
    "generic last json line wins": (
        "generic",
        '{"usage":{"input_tokens":1}}\nprogress\n{"usage":{"input_tokens":2},"total_cost_usd":0.0}\n{"other":1}\n',
        (2, 0, 0.0, None, "", None),
    ),
}


@pytest.mark.parametrize("case", sorted(PARSED))
def test_output_parsing(case: str) -> None:
    output, stdout, want = PARSED[case]
    got = parse_output(output, stdout)
    assert (got.tokens_in, got.tokens_out, got.cost, got.message, got.error, got.blocked) == want


# -- usage errors before anything runs --------------------------------------------

RAN = "plan: shell\ntasks:\n  - {id: s, name: S, run: touch ran.txt, criteria: [{file_exists: ran.txt}]}\n"
AGENT = "plan: agent\nexecutor: agent-cli\ntasks:\n  - {id: t, name: T, description: 'WRITE x.txt: 1', criteria: [{file_exists: x.txt}]}\n"


@pytest.fixture
def two_plans(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> Planrunner:
    """A shell plan collected first, then a plan for agent-cli; PATH holds no agent CLI."""
    planrunner.makeplan("a_shell", RAN)
    planrunner.makeplan("b_agent", AGENT)
    empty = planrunner.path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", f"{empty}{os.pathsep}/usr/bin{os.pathsep}/bin")
    (planrunner.path / "not-executable").write_text("#!/bin/sh\n")
    return planrunner


USAGE_ERRORS = {
    "missing preset binary": (
        ["--agent", "claude"],
        "ERROR: agent-cli: agent program 'claude' is not on PATH (preset 'claude')",
    ),
    "missing template binary": (
        ["--agent-cmd", "no-such-agent {prompt}"],
        "ERROR: agent-cli: agent program 'no-such-agent' is not on PATH (--agent-cmd 'no-such-agent {prompt}')",
    ),
    "template path not executable": (
        ["--agent-cmd", "./not-executable {prompt_file}"],
        "ERROR: agent-cli: agent program '*/not-executable' is not an executable file (--agent-cmd *)",
    ),
    "unknown preset": (
        ["--agent", "claud"],
        "ERROR: --agent: unknown agent preset 'claud' (did you mean 'claude'?); the presets are: aider, claude, codex, gemini, opencode",
    ),
    "no agent": (
        [],
        "ERROR: the agent-cli executor needs an agent: --agent NAME (aider, claude, codex, gemini, opencode)"
        " or --agent-cmd 'TEMPLATE' (or [tool.planrun] agent / agent_cmd)",
    ),
    "both chosen": (
        ["--agent", "claude", "--agent-cmd", "x {prompt}"],
        "ERROR: --agent and --agent-cmd both choose the agent: give one of them",
    ),
    "unknown placeholder": (
        ["--agent-cmd", "python3 {promt}"],
        "ERROR: --agent-cmd: unknown placeholder {promt} in 'python3 {promt}' (known: {prompt}, {prompt_file}, {workdir}, {model}, {files})",
    ),
    "no prompt passed": (
        ["--agent-cmd", "python3 agent.py {workdir}"],
        "ERROR: --agent-cmd: the template passes no task: use {prompt} or {prompt_file} in 'python3 agent.py {workdir}'",
    ),
    "model without a model": (
        ["--agent-cmd", "python3 {prompt} -m {model}"],
        "ERROR: --agent-cmd uses {model}, but no model is set (--model or [tool.planrun] model)",
    ),
    "unbalanced quote": (
        ["--agent-cmd", "python3 '{prompt}"],
        'ERROR: --agent-cmd: cannot split "python3 \'{prompt}": no closing quotation',
    ),
    "empty template": (["--agent-cmd", "   "], "ERROR: --agent-cmd must be a non-empty string, got '   '"),
    "the program a placeholder": (
        ["--agent-cmd", "{prompt}"],
        "ERROR: --agent-cmd: the program itself cannot be a placeholder: '{prompt}'",
    ),
    "files inside a word": (
        ["--agent-cmd", "agent --files={files} {prompt}"],
        "ERROR: --agent-cmd: {files} must be a word of its own (it becomes one argument per file)",
    ),
    "preset with an unknown model placeholder": (
        ["--agent-cmd", "x {prompt} {model_args}"],
        "ERROR: --agent-cmd: unknown placeholder {model_args} in *",
    ),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_a_bad_agent_is_a_usage_error_before_any_step(two_plans: Planrunner, case: str) -> None:
    args, line = USAGE_ERRORS[case]
    result = two_plans.run(*args, ".")
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines([line])
    assert len(result.errstr.strip().splitlines()) == 1 and result.no_traceback()
    assert not (two_plans.path / "ran.txt").exists()  # the shell plan, collected first, did not run
    assert not (two_plans.path / "x.txt").exists()


@pytest.mark.parametrize(
    ("config", "line"),
    [
        ("agent = 'nope'", "ERROR: [[]tool.planrun] agent: unknown agent preset 'nope'; the presets are: *"),
        ("agent = 3", "ERROR: [[]tool.planrun] agent must be a non-empty string, got 3"),
        (
            'agent_cmd = "x {prompt}\\u0000"',
            "ERROR: [[]tool.planrun] agent_cmd: a NUL byte cannot be part of a command line",
        ),
        ("model = ['a']\nagent = 'claude'", "ERROR: [[]tool.planrun] model must be a non-empty string, got [[]'a']"),
        (
            "agent_cmd = 'gone-agent {prompt}'",
            "ERROR: agent-cli: agent program 'gone-agent' is not on PATH ([[]tool.planrun] agent_cmd *)",
        ),
        (
            "agent = 'codex'\nagent_cmd = 'x {prompt}'",
            "ERROR: [[]tool.planrun] agent and [[]tool.planrun] agent_cmd both choose the agent: give one of them",
        ),
    ],
)
def test_a_bad_agent_in_config_is_a_usage_error(two_plans: Planrunner, config: str, line: str) -> None:
    two_plans.makefile("pyproject.toml", f"[tool.planrun]\n{config}\n")
    result = two_plans.run(".")
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines([line])
    assert not (two_plans.path / "ran.txt").exists()


def test_the_command_line_overrides_the_configured_agent(two_plans: Planrunner, log: Path) -> None:
    two_plans.makefile("pyproject.toml", "[tool.planrun]\nagent = 'claude'\n")
    result = two_plans.run("--agent-cmd", CMD, ".")
    assert result.ret == ExitCode.OK, result
    assert (two_plans.path / "x.txt").exists() and (two_plans.path / "ran.txt").exists()


@pytest.mark.parametrize("args", [["--co"], ["--verify-only"], ["-k", "shell"]])
def test_no_agent_needed_when_no_task_runs_it(two_plans: Planrunner, args: list[str]) -> None:
    result = two_plans.run("--agent", "claude", *args, ".")
    assert result.ret in (ExitCode.OK, ExitCode.TESTS_FAILED), result
    assert "not on PATH" not in result.errstr
