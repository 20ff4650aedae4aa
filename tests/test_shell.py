"""The shell executor runs steps as CI systems do: bash -eo pipefail (or sh -e), or the plan's ``shell:``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.plugins.shell import shell_argv
from planrun.testing import Planrunner


def _plan(run: str, *, plan_shell: str | None = None, task_shell: str | None = None, criteria: str = "") -> str:
    head = "plan: p\n" + (f"shell: {plan_shell}\n" if plan_shell is not None else "")
    task = "tasks:\n  - id: t\n    name: T\n"
    if task_shell is not None:
        task += f"    shell: {task_shell}\n"
    task += "    run: |\n" + "".join(f"      {line}\n" for line in run.splitlines())
    task += "    criteria: [" + (criteria or "{file_exists: done.txt}") + "]\n"
    return head + task


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


@pytest.mark.parametrize("shell", [None, "bash", "sh"])
def test_a_failing_command_ends_the_step(planrunner: Planrunner, shell: str | None) -> None:
    planrunner.makeplan("p", _plan("false\necho after > after.txt\ntouch done.txt", task_shell=shell))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert not Path("after.txt").exists(), "a command after the failing one ran"
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - step 1/1 exited with 1: `false ...`"])


@needs_bash
@pytest.mark.parametrize("shell", [None, "bash"])
def test_a_failing_pipeline_fails_under_bash(planrunner: Planrunner, shell: str | None) -> None:
    planrunner.makeplan("p", _plan("false | true\ntouch done.txt", task_shell=shell))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert not Path("done.txt").exists()


@needs_bash
def test_default_is_bash_without_profiles(planrunner: Planrunner) -> None:
    # BASH_VERSION is set by bash only; -o pipefail shows in SHELLOPTS; -e in $-.
    planrunner.makeplan("p", _plan('echo "$BASH_VERSION|$SHELLOPTS|$-" > done.txt'))
    assert planrunner.run("p.plan.yaml").ret == ExitCode.OK
    version, options, flags = Path("done.txt").read_text().strip().split("|")
    assert version
    assert "pipefail" in options.split(":") and "errexit" in options.split(":")
    assert "e" in flags


def test_shell_sh_is_posix_sh_with_errexit(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", _plan('echo "${BASH_VERSION-none}|$-" > done.txt', plan_shell="sh"))
    assert planrunner.run("p.plan.yaml").ret == ExitCode.OK
    version, flags = Path("done.txt").read_text().strip().split("|")
    assert "e" in flags
    if Path("/bin/sh").resolve().name != "bash":
        assert version == "none"


def test_custom_shell_gets_the_step_as_a_script_file(planrunner: Planrunner) -> None:
    step = "import pathlib, sys\npathlib.Path('done.txt').write_text(sys.argv[0])"
    planrunner.makeplan("p", _plan(step, plan_shell="'python3 {0}'"))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    script = Path("done.txt").read_text()
    assert Path(script).name.startswith("planrun-step-")
    assert not Path(script).exists(), "the step's script file was left behind"
    assert not Path(script).resolve().is_relative_to(Path.cwd().resolve())  # not in the workdir


def test_custom_shell_failure_is_the_steps_failure(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", _plan("import sys\nsys.exit(3)", plan_shell="'python3 {0}'"))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - step 1/1 exited with 3: `import sys ...`"])


def test_task_shell_overrides_the_plans(planrunner: Planrunner) -> None:
    # The plan says python; the task says sh: a shell line works, as python it would be a syntax error.
    planrunner.makeplan("p", _plan("touch done.txt", plan_shell="'python3 {0}'", task_shell="sh"))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    planrunner.makeplan("p", _plan("touch done2.txt", plan_shell="sh", task_shell="'python3 {0}'"))
    Path("done.txt").unlink()
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert not Path("done2.txt").exists()


def test_every_step_of_a_list_uses_the_shell(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\nshell: sh\ntasks:\n  - id: t\n    name: T\n    run: ['false; touch one.txt', 'touch done.txt']\n"
        "    criteria: [{file_exists: done.txt}]\n",
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert not Path("one.txt").exists() and not Path("done.txt").exists()
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - step 1/2 exited with 1: `false; touch one.txt`"])


@pytest.mark.parametrize(
    ("where", "value", "line", "message"),
    [
        ("task", "zsh", "5:12", "tasks[[]0].shell: shell 'zsh' has no {0}*"),
        ("task", "''", "5:12", "tasks[[]0].shell: empty shell*"),
        ("plan", "'python3 -c'", "2:8", "shell: shell 'python3 -c' has no {0}*"),
        ("plan", "'bash \"{0}'", "2:8", "shell: shell 'bash \"{0}' is not a valid command line*"),
        ("plan", "1", "2:8", "shell: expected a string*quote it"),
    ],
)
def test_bad_shell_value_is_a_located_collection_error(
    planrunner: Planrunner, where: str, value: str, line: str, message: str
) -> None:
    kw = {"plan_shell": value} if where == "plan" else {"task_shell": value}
    planrunner.makeplan("p", _plan("touch ran.txt\ntouch done.txt", **kw))  # type: ignore[arg-type]
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert result.no_traceback(), result
    result.stdout.fnmatch_lines([f"p.plan.yaml:{line}: {message}"])
    assert not Path("ran.txt").exists()


def test_missing_shell_program_fails_the_task_with_a_message(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", _plan("touch done.txt", plan_shell="'planrun-no-such-shell {0}'"))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert result.no_traceback(), result
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - step 1/1: shell 'planrun-no-such-shell' not found"])


# -- the one-line message of a failed step --------------------------------------


def test_multiline_step_message_keeps_the_exit_status_and_evidence_has_the_whole_step(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", _plan("echo first line\necho second line\nexit 4"))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "step 1/1 exited with 4: `echo first line ...`",
            "  step:",
            "  echo first line",
            "  echo second line",
            "  exit 4",
            "  output tail:",
            "  first line",
            "  second line",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - step 1/1 exited with 4: `echo first line ...`"])


def test_long_first_line_is_shortened_in_the_message(planrunner: Planrunner) -> None:
    long = "echo " + "x" * 100 + "; exit 5"
    planrunner.makeplan("p", _plan(long))
    result = planrunner.run("p.plan.yaml")
    result.stdout.fnmatch_lines([f"FAILED p.plan.yaml::t - step 1/1 exited with 5: `{long[:60]} ...`"])


def test_shell_argv_forms() -> None:
    assert shell_argv("bash", "/tmp/s") == ["bash", "--noprofile", "--norc", "-eo", "pipefail", "/tmp/s"]
    assert shell_argv("sh", "/tmp/s") == ["sh", "-e", "/tmp/s"]
    assert shell_argv("python3 -u {0} --flag", "/tmp/s") == ["python3", "-u", "/tmp/s", "--flag"]
    assert shell_argv("'my shell' '{0}.x'", "/t s") == ["my shell", "/t s.x"]
    assert shell_argv(None, "/tmp/s")[0] == ("bash" if shutil.which("bash") else "sh")
