"""Bad input of the kinds an attack round found: a clear line and the right exit code, never a traceback."""

from __future__ import annotations

import os
import sys

import pytest

from planrun import ArgsModel, CheckKind, ExitCode, hookimpl
from planrun.testing import Planrunner

PLAN = "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: p.plan.yaml}]}\n"


@pytest.mark.parametrize("value", [str(64 << 30), str(2**63), str(2**70)])
def test_a_huge_byte_limit_is_no_huge_read(planrunner: Planrunner, value: str) -> None:
    planrunner.makeplan("p", PLAN)
    for option in ("--max-plan-bytes", "--max-file-bytes"):
        result = planrunner.runsubprocess(option, value, "p.plan.yaml")
        assert result.ret == ExitCode.OK, result
        assert "Traceback" not in result.errstr, result


@pytest.mark.parametrize("make", ["dir", "fifo"])
def test_verify_evidence_of_something_not_a_file_is_a_usage_error(planrunner: Planrunner, make: str) -> None:
    target = planrunner.path / "ev"
    if make == "dir":
        target.mkdir()
    else:
        os.mkfifo(target)
    result = planrunner.runsubprocess("verify-evidence", "ev")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert "ev: not a regular file" in result.errstr and "Traceback" not in result.errstr, result


@pytest.mark.parametrize("what", ["state", "cache"])
def test_a_folder_where_a_state_or_cache_file_belongs_is_set_aside_not_a_crash(
    planrunner: Planrunner, what: str
) -> None:
    planrunner.makeplan("p", PLAN)
    first = planrunner.run("p.plan.yaml")
    assert first.ret == ExitCode.OK, first
    files = [p for p in (planrunner.path / ".planrun").rglob("*") if p.is_file() and p.name != "lock"]
    chosen = [p for p in files if ("state" in p.parts) == (what == "state")]
    assert chosen, files
    for path in chosen:
        path.unlink()
        path.mkdir()
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert result.no_traceback(), result


def test_a_crash_in_a_subcommand_is_an_internal_error(planrunner: Planrunner) -> None:
    planrunner.makefile("boom.py", "def planrun_addoption(parser):\n    raise ZeroDivisionError('boom')\n")
    # PLANRUN_PLUGINS loads it for a run and for lint alike: lint's config is a run's config.
    result = planrunner.runsubprocess("lint", "-p", "boom", ".")
    assert "Traceback" not in result.errstr or result.ret == ExitCode.INTERNAL_ERROR, result
    assert result.ret in (ExitCode.USAGE_ERROR, ExitCode.INTERNAL_ERROR), result


@pytest.mark.parametrize("value", ['"x"', "0", "-1", "1.5", '"5"', "true"])
def test_a_wrong_max_attempts_in_the_config_is_a_usage_error(planrunner: Planrunner, value: str) -> None:
    planrunner.makefile("pyproject.toml", f"[tool.planrun]\nmax_attempts = {value}\n")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [ran exists]}\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert "[tool.planrun] max_attempts must be a whole number of at least 1, got " in (
        result.errstr.replace("'", "")
    ), result
    assert not (planrunner.path / "ran").exists()


class _Mode(ArgsModel):
    mode: str


class _Crashing:
    @hookimpl
    def planrun_register_checks(self) -> list[CheckKind]:
        def boom(args: _Mode, ctx: object) -> None:
            if args.mode == "exit":
                sys.exit(7)
            if args.mode == "generator":
                raise GeneratorExit
            raise type("PluginOwnError", (BaseException,), {})("own")

        return [CheckKind("boom", _Mode, boom, inprocess=True), CheckKind("boom_slow", _Mode, boom)]


@pytest.mark.parametrize("kind", ["boom", "boom_slow"])
@pytest.mark.parametrize(("mode", "name"), [("exit", "SystemExit"), ("generator", "GeneratorExit"), ("own", "Plugin")])
def test_a_check_that_exits_or_raises_a_base_exception_is_its_criterion_s_error(
    planrunner: Planrunner, kind: str, mode: str, name: str
) -> None:
    planrunner.makeplan(
        "p",
        f"plan: p\ntasks:\n  - {{id: t, name: T, criteria: [{{{kind}: {{mode: {mode}}}}}]}}\n"
        "  - {id: u, name: U, criteria: [{file_exists: p.plan.yaml}]}\n",
    )
    result = planrunner.run("p.plan.yaml", plugins=[_Crashing()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(errors=1, passed=1)  # the next task still ran
    assert f"check crashed: {name}" in result.outstr, result
    assert "INTERNAL ERROR" not in result.outstr + result.errstr
