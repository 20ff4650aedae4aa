"""The manual check kind: reported as skipped, an error under --strict."""

from __future__ import annotations

from planrun import ExitCode

from .conftest import CheckRun


def test_manual_is_skipped_with_its_text(check: CheckRun) -> None:
    result = check("manual: The login page looks right", None, "-rs")
    assert result.ret == ExitCode.OK
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED c.plan.yaml::t - manual: The login page looks right"])


def test_manual_is_an_error_under_strict(check: CheckRun) -> None:
    result = check("manual: The login page looks right", None, "--strict")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["  manual criterion under --strict: manual: The login page looks right"])


def test_manual_next_to_machine_checks_does_not_block_a_pass(check: CheckRun, planrunner) -> None:  # type: ignore[no-untyped-def]
    planrunner.makefile("a.txt", "x")
    planrunner.makeplan(
        "m", "plan: m\ntasks:\n  - id: t\n    name: T\n    criteria: [{file_exists: a.txt}, {manual: eyeball it}]\n"
    )
    result = planrunner.run("m.plan.yaml")
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=1)
