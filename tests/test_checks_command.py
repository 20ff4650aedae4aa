"""The command check kind: exit codes, output, env, cwd, timeouts."""

from __future__ import annotations

import pytest

from planrun import ExitCode

from .conftest import CheckRun


@pytest.mark.parametrize(
    "criterion",
    [
        "command: 'true'",
        "command: {run: 'exit 3', exit_code: 3}",
        "command: {run: 'echo hello world', stdout_contains: 'lo wo'}",
        "command: {run: 'printf \"a\\nv1.2.3\\n\"', stdout_matches: '^v\\d+\\.\\d+\\.\\d+$'}",
        "command: {run: 'echo oops >&2', stderr_contains: oops}",
        "command: {run: 'test \"$GREETING\" = hi', env: {GREETING: hi}}",
        "command: {run: 'test -f inner.txt', cwd: sub}",
    ],
)
def test_command_passes(check: CheckRun, criterion: str) -> None:
    result = check(criterion, {"sub/inner.txt": ""})
    assert result.ret == ExitCode.OK, result


def test_command_failure_shows_command_exit_code_and_output_tail(check: CheckRun) -> None:
    result = check("command: 'for i in 1 2 3 4 5; do echo line$i; done; echo boom >&2; exit 7'")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "  `for i in *` exited with 7, expected 0",
            "  output tail:",
            "  line1",
            "  line5",
            "  boom",
            "  c.plan.yaml:6:9",
        ]
    )


def test_command_output_mismatches_are_all_listed(check: CheckRun) -> None:
    result = check("command: {run: 'echo out; echo err >&2', stdout_contains: nope, stderr_contains: nah}")
    result.stdout.fnmatch_lines(
        ["  `echo out; echo err >&2` stdout does not contain 'nope'; stderr does not contain 'nah'"]
    )


def test_command_stdin_is_devnull(check: CheckRun) -> None:
    # `cat` would wait forever on a terminal; with /dev/null it ends at once.
    assert check("command: {run: cat, timeout: 5}").ret == ExitCode.OK


def test_command_timeout_is_an_error(check: CheckRun) -> None:
    result = check("command: {run: 'sleep 30', timeout: 0.5}")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["  timed out: `sleep 30` did not finish in 0.5s"])


def test_command_retry_for_waits_until_it_passes(check: CheckRun) -> None:
    # Each attempt appends a line; the third attempt sees 3 lines and passes.
    result = check("command: {run: 'echo x >> tries; test $(wc -l < tries) -ge 3'}\n        retry_for: 30")
    assert result.ret == ExitCode.OK, result
    from pathlib import Path

    assert Path("tries").read_text().count("x") == 3


def test_command_skip_key(check: CheckRun) -> None:
    result = check("{command: 'exit 1', skip: flaky on CI}", None, "-rs")
    assert result.ret == ExitCode.OK
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED c.plan.yaml::t*"])


def test_command_cwd_must_be_a_directory_inside_the_workdir(check: CheckRun, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    result = check("command: {run: 'true', cwd: missing}")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  cwd missing is not a directory"])
    import os

    os.symlink(tmp_path_factory.mktemp("elsewhere"), "out")
    result = check("command: {run: 'true', cwd: out}")
    result.stdout.fnmatch_lines(["  out resolves outside the workdir*"])
