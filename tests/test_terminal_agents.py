"""What the terminal shows of agent executors: tokens, attempts and cost, the sandbox, the prompt, live progress."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, ExitCode, Task, hookimpl
from planrun.plugins.terminal import human, money
from planrun.testing import Planrunner

PLAN = """
plan: agents
executor: agent
tasks:
  - {id: one, name: One, description: Write one.txt., criteria: [one.txt exists]}
  - {id: two, name: Two, description: Write two.txt., criteria: [two.txt exists]}
  - {id: sh, name: Shell, run: "echo x > sh.txt", criteria: [sh.txt exists]}
"""

SHELL_ONLY = """
plan: shell
tasks:
  - {id: sh, name: Shell, run: "echo x > sh.txt", criteria: [sh.txt exists]}
"""

#: tokens in, tokens out, cost of each attempt of a task.
Usage = tuple[int, int, float | None]
PRICED: Usage = (4100, 367, 0.0133)


class Agent(Executor):
    """An agent stand-in: writes ``<task id>.txt``, late for some tasks, never for others."""

    name = "agent"
    max_attempts = 2

    def __init__(self, plugin: AgentPlugin) -> None:
        self.plugin = plugin

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        tokens_in, tokens_out, cost = self.plugin.usage.get(task.id, PRICED)
        context.progress(turn=1, tool="write_file", tokens_in=tokens_in, tokens_out=tokens_out)
        context.progress(tool="evil\x1b]0;title\x07", turn=2)
        if task.id not in self.plugin.never and (task.id not in self.plugin.late or context.attempt >= 2):
            (context.workdir / f"{task.id}.txt").write_text("done\n")
        return ExecutionResult(summary="done", tokens_in=tokens_in, tokens_out=tokens_out, cost=cost)


class AgentPlugin:
    def __init__(
        self, usage: dict[str, Usage] | None = None, late: tuple[str, ...] = (), never: tuple[str, ...] = ()
    ) -> None:
        self.usage = usage or {}
        self.late = set(late)
        self.never = set(never)
        self.progress: list[tuple[str, int, dict[str, Any]]] = []

    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [ExecutorKind("agent", lambda config: Agent(self))]

    @hookimpl
    def planrun_task_progress(self, nodeid: str, attempt: int, status: dict[str, Any]) -> None:
        self.progress.append((nodeid, attempt, status))


def expected_sandbox() -> str:
    """What the header must say: the tools module's answer, or "none" without it."""
    try:
        import planrun.agenttools as agenttools  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return "none"
    return str(agenttools.sandbox_name())


# -- numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0"),
        (950, "950"),
        (999, "999"),
        (1000, "1.0k"),
        (1234, "1.2k"),
        (12_345, "12.3k"),
        (99_949, "99.9k"),
        (99_950, "100k"),
        (123_456, "123k"),
        (999_499, "999k"),
        (999_500, "1.0M"),
        (1_234_567, "1.2M"),
        (12_345_678, "12.3M"),
        (1_500_000_000, "1.5G"),
    ],
)
def test_token_counts_are_humanized(n: int, shown: str) -> None:
    assert human(n) == shown


@pytest.mark.parametrize(
    ("cost", "shown"),
    [(0.0, "$0.00"), (0.42, "$0.42"), (0.0399, "$0.04"), (0.005, "$0.0050"), (1234.5, "$1,234.50"), (1e-6, "<$0.0001")],
)
def test_costs_are_shown_in_dollars(cost: float, shown: str) -> None:
    assert money(cost) == shown


# -- the final line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "late", "tail"),
    [
        pytest.param({}, ("two",), "tokens 12.3k in / 1.1k out, 3 attempts, $0.04", id="priced-retried"),
        pytest.param(
            {"two": (4100, 367, None)}, (), "tokens 8.2k in / 734 out, 2 attempts, cost unknown", id="cost-unknown"
        ),
        pytest.param(
            {"one": (950, 10, 0.0), "two": (0, 0, 0.0)}, (), "tokens 950 in / 10 out, 2 attempts, $0.00", id="free"
        ),
        pytest.param(
            {"one": (0, 0, None), "two": (0, 0, None)}, (), "tokens 0 in / 0 out, 2 attempts", id="no-usage-reported"
        ),
        pytest.param(
            {"one": (1_234_567, 5000, 1.5)}, ("one",), "tokens 2.5M in / 10.4k out, 3 attempts, $3.01", id="millions"
        ),
    ],
)
def test_the_final_line_carries_tokens_attempts_and_cost(
    planrunner: Planrunner, usage: dict[str, Usage], late: tuple[str, ...], tail: str
) -> None:
    planrunner.makeplan("agents", PLAN)
    result = planrunner.run("agents.plan.yaml", plugins=[AgentPlugin(usage, late)])
    assert result.ret == ExitCode.OK, result
    final = result.outstr.splitlines()[-1]
    assert re.fullmatch(rf"=+ 3 passed in \d+\.\d\ds \({re.escape(tail)}\) =+", final), final
    assert "agent executors:" not in result.outstr  # the old separate line is gone
    # The shared parser reads the outcomes only: "3 attempts" or "950 in" are not counts.
    assert result.parseoutcomes() == {"passed": 3}
    result.assert_outcomes(passed=3)


def test_the_final_line_with_q_and_with_failures(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    result = planrunner.run("-q", "agents.plan.yaml", plugins=[AgentPlugin(never=("two",))])
    assert result.ret == ExitCode.TESTS_FAILED, result
    final = result.outstr.splitlines()[-1]
    assert re.fullmatch(
        r"1 failed, 2 passed in \d+\.\d\ds \(tokens 12\.3k in / 1\.1k out, 3 attempts, \$0\.04\)", final
    )
    assert result.parseoutcomes() == {"failed": 1, "passed": 2}


def test_shell_only_runs_show_no_tokens(planrunner: Planrunner) -> None:
    planrunner.makeplan("shell", SHELL_ONLY)
    result = planrunner.run("-v", "shell.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert re.fullmatch(r"=+ 1 passed in \d+\.\d\ds =+", result.outstr.splitlines()[-1])
    assert "tokens" not in result.outstr


def test_verify_only_shows_no_tokens(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    for name in ("one.txt", "two.txt", "sh.txt"):
        planrunner.makefile(name, "done\n")
    plugin = AgentPlugin()
    result = planrunner.run("-v", "--verify-only", "agents.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    assert "tokens" not in result.outstr
    assert plugin.progress == []  # nothing was performed


# -- -v per task --------------------------------------------------------------


def test_verbose_shows_tokens_attempts_and_cost_per_agent_task(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    plugin = AgentPlugin({"one": (1200, 300, 0.0099)}, late=("two",))
    result = planrunner.run("-v", "agents.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        [
            "agents.plan.yaml::one PASSED *[[] 33%]",
            "    tokens 1.2k in / 300 out, attempt 1/2, $0.0099",
            "    one.txt exists PASSED",
            "agents.plan.yaml::two PASSED *[[] 66%]",
            "    tokens 8.2k in / 734 out, attempt 2/2, $0.03",
            "    two.txt exists PASSED",
            "agents.plan.yaml::sh PASSED *[[]100%]",
            "    sh.txt exists PASSED",  # a shell step has no tokens line
        ],
        consecutive=True,
    )


def test_verbose_cost_unknown_and_the_configured_attempts(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    planrunner.makefile("planrun.toml", "max_attempts = 3\n")
    plugin = AgentPlugin({"two": (5, 1, None)}, never=("two",))
    result = planrunner.run("-v", "agents.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(
        [
            "agents.plan.yaml::one PASSED *",
            "    tokens 4.1k in / 367 out, attempt 1/3, $0.01",
            "    one.txt exists PASSED",
            "agents.plan.yaml::two FAILED *",
            "    tokens 15 in / 3 out, attempt 3/3, cost unknown",
        ],
        consecutive=True,
    )
    assert result.outstr.splitlines()[-1].endswith("(tokens 4.1k in / 370 out, 4 attempts, cost unknown) =")
    result.assert_outcomes(passed=2, failed=1)


def test_max_attempts_on_the_command_line_shows_in_the_attempt_count(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    result = planrunner.run("-v", "--max-attempts", "1", "-k", "two", "agents.plan.yaml", plugins=[AgentPlugin()])
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["agents.plan.yaml::two PASSED *", "    tokens 4.1k in / 367 out, attempt 1/1, $0.01"])


# -- the header ---------------------------------------------------------------


def test_the_header_says_which_sandbox_agents_commands_get(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    result = planrunner.run("agents.plan.yaml", plugins=[AgentPlugin()])
    assert expected_sandbox() in ("bubblewrap", "none")
    result.stdout.fnmatch_lines([f"sandbox: {expected_sandbox()}", "collected 3 items *"], consecutive=True)
    # Also when only the agent task is selected, and with --co.
    result = planrunner.run("--co", "-k", "one", "agents.plan.yaml", plugins=[AgentPlugin()])
    result.stdout.fnmatch_lines([f"sandbox: {expected_sandbox()}", "collected 3 items / 2 deselected *"])


@pytest.mark.parametrize(
    ("plan", "args"),
    [
        pytest.param(SHELL_ONLY, (), id="shell-only"),
        pytest.param(PLAN, ("-k", "sh"), id="only-the-shell-task-selected"),
        pytest.param(PLAN, ("--verify-only",), id="verify-only"),
        pytest.param(PLAN, ("-q",), id="quiet-no-header"),
    ],
)
def test_no_sandbox_line_when_no_agent_runs(planrunner: Planrunner, plan: str, args: tuple[str, ...]) -> None:
    planrunner.makeplan("p", plan)
    result = planrunner.run(*args, "p.plan.yaml", plugins=[AgentPlugin()])
    assert result.ret in (ExitCode.OK, ExitCode.TESTS_FAILED), result
    assert "sandbox:" not in result.outstr
    if "-q" not in args:
        assert result.stdout.lines[1].startswith("platform ")  # the header is there, without the line


# -- --co -v: the prompt --------------------------------------------------------


def test_collect_only_verbose_shows_the_default_prompt(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    result = planrunner.run("--co", "-v", "agents.plan.yaml", plugins=[AgentPlugin()])
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        [
            "  <Task one executor=agent>",
            "    prompt: default",
            "    'one.txt exists' -> *",
            "  <Task two executor=agent>",
            "    prompt: default",
            "    'two.txt exists' -> *",
            "  <Task sh executor=shell>",
            "    'sh.txt exists' -> *",  # a shell step gets no prompt
        ],
        consecutive=True,
    )
    quiet = planrunner.run("--co", "agents.plan.yaml", plugins=[AgentPlugin()])
    assert "prompt:" not in quiet.outstr  # -v only
    verify = planrunner.run("--co", "-v", "--verify-only", "agents.plan.yaml", plugins=[AgentPlugin()])
    assert "prompt:" not in verify.outstr  # nothing is performed


def test_collect_only_verbose_shows_a_configured_prompt_file(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    planrunner.makefile("prompts/role.md", "You are a careful agent.\n")
    planrunner.makefile("planrun.toml", 'executor_prompt = "prompts/role.md"\n')
    result = planrunner.run("--co", "-v", "agents.plan.yaml", plugins=[AgentPlugin()])
    assert result.ret == ExitCode.OK, result
    shown = [line for line in result.stdout.lines if "prompt:" in line]
    assert shown == [f"    prompt: {Path.cwd() / 'prompts/role.md'}"] * 2


def test_collect_only_verbose_with_an_unreadable_prompt_is_a_usage_error(planrunner: Planrunner) -> None:
    planrunner.makeplan("agents", PLAN)
    planrunner.makefile("planrun.toml", 'executor_prompt = "missing.md"\n')
    result = planrunner.run("--co", "-v", "agents.plan.yaml", plugins=[AgentPlugin()])
    assert result.ret == ExitCode.USAGE_ERROR, result
    errors = result.errstr.splitlines()
    assert len(errors) == 1 and errors[0].startswith(
        "ERROR: [tool.planrun] executor_prompt 'missing.md': cannot read it: "
    ), result
    assert result.no_traceback()


# -- live progress ------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("-v",), ("-q",), ("-qq",)])
def test_no_status_line_in_non_tty_output(planrunner: Planrunner, args: tuple[str, ...]) -> None:
    planrunner.makeplan("agents", PLAN)
    plugin = AgentPlugin(late=("two",))
    result = planrunner.run(*args, "agents.plan.yaml", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    assert len(plugin.progress) == 6  # the hook was called: 2 calls per attempt, 3 attempts
    for text in ("write_file", "evil", "turn", "  attempt", "\x1b", "\r"):
        assert text not in result.outstr + result.errstr


LIVE_PLUGIN = """
import time
from pathlib import Path

from planrun import ExecutionResult, Executor, ExecutorKind, hookimpl


def wait_for(path):
    deadline = time.monotonic() + 60
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        time.sleep(0.02)


class LiveAgent(Executor):
    name = "live"
    max_attempts = 2

    def execute(self, task, context):
        if task.id == "burst":
            start = time.monotonic()
            for n in range(3000):
                context.progress(turn=n, tool="read_file", tokens_in=n, tokens_out=n)
            Path("burst.seconds").write_text(str(time.monotonic() - start))
            # Another plugin writes while the status line is up.
            context.config.pluginmanager.get_plugin("terminalreporter").write_line("a plugin's note")
        else:
            context.progress(turn=1, tool="write\\x1b[31mfile", tokens_in=1200, tokens_out=300)
            context.progress(turn=2, tool="write_file", tokens_in=2500, tokens_out=600)
            if task.id != "slowcheck":
                wait_for(Path(f"{task.id}.go"))  # the test says when it saw what it waits for
        (context.workdir / f"{task.id}.txt").write_text("done")
        return ExecutionResult(summary="done", tokens_in=2500, tokens_out=600, cost=0.01)


@hookimpl
def planrun_register_executors(config):
    return [ExecutorKind("live", lambda config: LiveAgent())]
"""

LIVE_PLAN = """
plan: live
executor: live
tasks:
  - {id: one, name: One, description: d, criteria: [one.txt exists]}
  - {id: two, name: Two, description: d, criteria: [two.txt exists]}
  - id: quiet
    name: A shell step that reports nothing
    run: "while [ ! -e quiet.go ]; do sleep 0.05; done; echo > quiet.txt"
    criteria: [quiet.txt exists]
  - id: slowcheck
    name: A task whose criterion takes a while
    description: d
    criteria:
      - slowcheck.txt exists
      # Fails at once before the task (the baseline), waits for the test after it.
      - command: {run: "test -e slowcheck.txt && while [ ! -e slowcheck.go ]; do sleep 0.05; done"}
"""


def run_in_pty(
    planrunner: Planrunner, *args: str, env: dict[str, str] | None = None, react: Callable[[str], None] | None = None
) -> tuple[int, str]:
    """Run ``python -m planrun`` on a pseudo-terminal of 80 columns; ``react`` sees the output so far as it grows."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    environ = dict(os.environ, PYTHONPATH=str(planrunner.path), COLUMNS="80", TERM="xterm", PYTHONIOENCODING="utf-8")
    environ.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "planrun", *args],
        cwd=planrunner.path,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=environ,
    )
    os.close(slave)
    raw = b""
    deadline = time.monotonic() + 90  # a hang guard, not a timing assertion
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"planrun did not finish; output so far: {raw!r}")
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            raw += chunk
            if react is not None:
                react(raw.decode("utf-8", "replace"))
        return proc.wait(timeout=30), raw.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(raw: str, width: int = 80) -> list[str]:
    """The lines a terminal shows after ``raw``: a small emulator of what planrun writes (CR, LF, CSI K/A/B/C/D/G/m)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(raw):
        m = _CSI.match(raw, i)
        if m:
            params, op = m.group(1), m.group(2)
            n = int(params) if params.isdigit() else None
            if op == "K":
                line = rows[row]
                rows[row] = [] if n == 2 else line[:col]
            elif op == "A":
                row = max(row - (n or 1), 0)
            elif op == "B":
                row += n or 1
            elif op == "C":
                col = min(col + (n or 1), width - 1)
            elif op == "D":
                col = max(col - (n or 1), 0)
            elif op == "G":
                col = (n or 1) - 1
            i = m.end()
            continue
        ch = raw[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
        elif ch == "\b":
            col = max(col - 1, 0)
        elif ch == "\x1b":
            raise AssertionError(f"an escape sequence the emulator does not know at {raw[i - 1 : i + 10]!r}")
        else:
            if col >= width:
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col - len(line) + 1) if len(line) <= col else "")
            line[col] = ch
            col += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]


@pytest.mark.parametrize(
    ("env", "spinner", "ellipsis"),
    [
        pytest.param({}, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "…", id="colour"),
        pytest.param({"NO_COLOR": "1"}, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "…", id="no-colour"),
        pytest.param({"PYTHONIOENCODING": "ascii"}, "-\\|/", "...", id="ascii-terminal"),
    ],
)
def test_a_tty_shows_a_transient_status_line(
    planrunner: Planrunner, env: dict[str, str], spinner: str, ellipsis: str
) -> None:
    planrunner.makefile("liveagent.py", LIVE_PLUGIN)
    planrunner.makeplan("live", LIVE_PLAN)
    waiting = {
        # Seen the elapsed seconds move after the last progress call: the line is refreshed on a timer.
        "one": re.compile(r"::one  attempt 1/2  turn 2  write_file  2\.5k in / 600 out  [1-9]\d*s"),
        "two": re.compile(r"::two  attempt 1/2  turn 2"),
        # A step that never reports progress gets the line too (no attempt count: a shell step has one).
        "quiet": re.compile(r"::quiet  \d+s"),
        # After the executor, a criterion that takes long shows too.
        "slowcheck": re.compile(r"::slowcheck  attempt 1/2  checking the criteria  \d+s"),
    }

    def react(out: str) -> None:
        for task, pattern in list(waiting.items()):
            if pattern.search(out):
                Path(planrunner.path, f"{task}.go").touch()
                del waiting[task]

    # --scope=off: the test itself creates the *.go files in the workdir while tasks run.
    ret, raw = run_in_pty(planrunner, "--scope=off", "-p", "liveagent", "live.plan.yaml", env=env, react=react)
    assert ret == ExitCode.OK, raw
    assert waiting == {}, raw
    # What an executor reports is shown escaped; the line is cut to the width (a wrapped one could not be cleared).
    drawn = [d.removesuffix("\x1b[K") for d in re.findall(rf"\r([{re.escape(spinner)}] [^\r\n]*)", raw)]
    assert drawn[0].startswith(f"{spinner[0]} live.plan.yaml::one  attempt 1/2  turn 1  write\\x1b[31mfile  1.2k in")
    assert drawn[0].endswith(ellipsis) and len(drawn[0]) == 79, drawn[0]
    assert "write\x1b[31mfile" not in raw
    assert len(drawn) >= 5 and all(len(d) <= 79 for d in drawn), drawn
    if "NO_COLOR" in env:
        assert not re.search(r"\x1b\[[0-9;]*m", raw)  # NO_COLOR: no colour, yet the status line
    lines = screen(raw)
    assert not [line for line in lines if "  attempt " in line or "::" in line], lines  # nothing of it stays
    dots = [line for line in lines if line.startswith("live.plan.yaml")]
    assert len(dots) == 1 and re.fullmatch(r"live\.plan\.yaml \.\.\.\. +\[100%\]", dots[0]), lines  # whole again
    assert re.fullmatch(r"=+ 4 passed in \d+\.\d\ds \(tokens 7\.5k in / 1\.8k out, 3 attempts, \$0\.03\) =+", lines[-2])


BURST_PLAN = """
plan: burst
executor: live
tasks:
  - {id: burst, name: Burst, description: d, criteria: [burst.txt exists]}
"""


def test_a_tty_status_line_is_redrawn_at_most_ten_times_a_second(planrunner: Planrunner) -> None:
    planrunner.makefile("liveagent.py", LIVE_PLUGIN)
    planrunner.makeplan("burst", BURST_PLAN)
    ret, raw = run_in_pty(planrunner, "--scope=off", "-p", "liveagent", "burst.plan.yaml")  # it writes burst.seconds
    assert ret == ExitCode.OK, raw
    seconds = float(Path(planrunner.path, "burst.seconds").read_text())
    draws = raw.count("::burst  attempt 1/2")
    # 3000 progress calls: one draw on the first, then at most one per 0.1 s from the calls and one from the timer.
    assert 1 <= draws <= 2 * seconds / 0.1 + 5, (draws, seconds)
    lines = screen(raw)
    assert "a plugin's note" in lines, lines  # on a line of its own: the status line went first
    assert not [line for line in lines if "::" in line], lines
    assert lines[-2].startswith("=")
