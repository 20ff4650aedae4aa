"""Regressions: blamed once, on the task after which a criterion first failed; cheap ones re-checked per task."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import planrun
from planrun import ExitCode, hookimpl
from planrun.testing import Planrunner


def plan(*tasks: tuple[str, str, list[Any]], workspace: str = "temp", extra: str = "") -> str:
    """A plan of independent shell tasks ``(id, run, criteria)``; criteria as JSON (valid flow YAML)."""
    lines = ["plan: p", f"workspace: {workspace}", "tasks:"]
    for task_id, run, criteria in tasks:
        lines += [
            f"  - id: {task_id}",
            f"    name: {task_id}",
            f"    run: {json.dumps(run)}",
            f"    criteria: {json.dumps(criteria)}",
        ]
    return "\n".join(lines) + "\n" + extra


def contains(path: str, text: str) -> dict[str, Any]:
    return {"file_contains": {"path": path, "text": text}}


def exists(path: str) -> dict[str, Any]:
    return {"file_exists": path}


def test_only_the_task_that_broke_it_is_blamed(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        plan(
            ("one", "echo one > a.txt", [contains("a.txt", "one")]),
            ("two", "echo two > a.txt && touch two.txt", [exists("two.txt")]),
            ("three", "touch three.txt", [exists("three.txt")]),
        ),
    )
    result = planrunner.run("-v", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml::one PASSED*",
            "p.plan.yaml::two FAILED*",
            "    regression: criterion 1 of task one (file_contains a.txt 'one') FAILED",
            "p.plan.yaml::three PASSED*",
        ]
    )
    assert result.outstr.count("regression: criterion 1 of task one") == 3  # -v line, FAILURES, short summary
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::two - regression: criterion 1 of task one*"])
    assert "FAILED p.plan.yaml::three" not in result.outstr


def test_two_criteria_broken_at_different_tasks_are_blamed_on_each(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        plan(
            ("one", "echo a > a.txt && echo b > b.txt", [contains("a.txt", "a"), contains("b.txt", "b")]),
            ("two", "echo x > a.txt", [exists("a.txt")]),
            ("three", "echo x > b.txt", [exists("b.txt")]),
            ("four", "touch four.txt", [exists("four.txt")]),
            ("five", "rm four.txt; touch five.txt", [exists("five.txt")]),
        ),
    )
    result = planrunner.run("-v", "p.plan.yaml")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml::one PASSED*",
            "p.plan.yaml::two FAILED*",
            "    regression: criterion 1 of task one (file_contains a.txt 'a') FAILED",
            "p.plan.yaml::three FAILED*",
            "    regression: criterion 2 of task one (file_contains b.txt 'b') FAILED",
            "p.plan.yaml::four PASSED*",
            "p.plan.yaml::five FAILED*",
            "    regression: criterion 1 of task four (file_exists four.txt) FAILED",
        ]
    )
    # each is reported once: three does not repeat two's, five neither
    assert result.outstr.count("FAILED p.plan.yaml::") == 3
    section = result.outstr.split("short plan summary info")[1]
    assert section.count("criterion 1 of task one") == 1
    assert section.count("criterion 2 of task one") == 1


def test_a_criterion_that_heals_and_breaks_again_is_blamed_again(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        plan(
            ("one", "echo good > a.txt", [contains("a.txt", "good")]),
            ("two", "echo bad > a.txt", [exists("a.txt")]),
            ("three", "touch three.txt", [exists("three.txt")]),
            ("heal", "echo good > a.txt", [exists("a.txt")]),
            ("five", "touch five.txt", [exists("five.txt")]),
            ("six", "echo worse > a.txt", [exists("a.txt")]),
            ("seven", "touch seven.txt", [exists("seven.txt")]),
        ),
    )
    result = planrunner.run("p.plan.yaml")
    result.stdout.fnmatch_lines(["p.plan.yaml .F...F.*"])
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED p.plan.yaml::two - regression: criterion 1 of task one*",
            "FAILED p.plan.yaml::six - regression: criterion 1 of task one*",
        ]
    )


def test_a_failed_step_that_broke_a_criterion_is_blamed_not_the_next_task(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        plan(
            ("one", "echo one > a.txt", [contains("a.txt", "one")]),
            ("two", "echo two > a.txt; exit 3", [exists("two.txt")]),
            ("three", "touch three.txt", [exists("three.txt")]),
        ),
    )
    result = planrunner.run("-v", "p.plan.yaml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml::two FAILED*",
            "    regression: criterion 1 of task one (file_contains a.txt 'one') FAILED",
            "p.plan.yaml::three PASSED*",
        ]
    )


def test_no_regression_checks_without_an_executor(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "one\n")
    planrunner.makeplan(
        "p",
        plan(
            ("one", "true", [contains("a.txt", "one")]),
            ("two", "true", [contains("a.txt", "two")]),
            workspace="inplace",
        ),
    )
    result = planrunner.run("--verify-only", "-v", "p.plan.yaml")
    result.assert_outcomes(passed=1, failed=1)
    assert "regression:" not in result.outstr


class Counted:
    """Check kinds that count their calls: one says it is in-process, one says nothing."""

    def __init__(self) -> None:
        self.calls = {"cheap": 0, "opaque": 0}
        self.holds = True

    @hookimpl
    def planrun_register_checks(self) -> list[planrun.CheckKind]:
        def make(name: str) -> Any:
            def function(args: Any, ctx: Any) -> None:
                self.calls[name] += 1
                if not self.holds and name == "opaque":
                    planrun.fail("opaque no longer holds")

            return function

        return [
            planrun.CheckKind("cheap", planrun.ArgsModel, make("cheap"), inprocess=True),
            planrun.CheckKind("opaque", planrun.ArgsModel, make("opaque")),
        ]


def long_plan(counter: Path, n: int = 20) -> str:
    first = ("t1", "touch t1", [exists("t1"), {"command": f"echo x >> {counter}"}, {"cheap": {}}, {"opaque": {}}])
    rest = [(f"t{i}", f"touch t{i}", [exists(f"t{i}")]) for i in range(2, n + 1)]
    return plan(first, *rest)


def test_expensive_criteria_run_a_bounded_number_of_times_cheap_ones_per_task(planrunner: Planrunner) -> None:
    counter = planrunner.path / "command.count"
    planrunner.makeplan("p", long_plan(counter))
    counted = Counted()
    result = planrunner.run("p.plan.yaml", plugins=[counted])
    assert result.ret == ExitCode.OK, result.outstr
    result.assert_outcomes(passed=20)
    # baseline, assertion, and one re-check at the end of the plan
    assert counter.read_text().count("x") == 3
    assert counted.calls["opaque"] == 3
    # baseline, assertion, and a re-check after each of the 19 later tasks
    assert counted.calls["cheap"] == 21


def test_expensive_regression_is_reported_once_at_the_end_blaming_the_next_task(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        plan(
            ("one", "echo one > a.txt", [{"command": "grep -q one a.txt"}]),
            ("two", "echo two > a.txt", [exists("a.txt")]),
            ("three", "touch three.txt", [exists("three.txt")]),
            extra="verification: [{file_exists: three.txt}]\n",
        ),
    )
    result = planrunner.run("-v", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=4, failed=1)
    message = (
        "regression (checked at the end of the plan): criterion 1 of task one (command `grep -q one a.txt`)"
        " no longer holds; it could have broken from task two on"
    )
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml::one PASSED*",
            "p.plan.yaml::two PASSED*",
            "p.plan.yaml::three PASSED*",
            "p.plan.yaml::regressions FAILED*",
            f"    {message} FAILED",
            "p.plan.yaml::verification PASSED*",
        ]
    )
    result.stdout.fnmatch_lines([f"FAILED p.plan.yaml::regressions - {message} - *"])
    assert result.outstr.count("p.plan.yaml::regressions FAILED") == 1


def test_expensive_regression_blames_the_first_task_performed_after_its_own(planrunner: Planrunner) -> None:
    calls = {"n": 0}

    class Flips:
        @hookimpl
        def planrun_register_checks(self) -> list[planrun.CheckKind]:
            def function(args: Any, ctx: Any) -> None:
                calls["n"] += 1
                if calls["n"] > 2:  # baseline, then assertion: fine; the end check is not
                    planrun.fail("it broke")

            return [planrun.CheckKind("flips", planrun.ArgsModel, function)]

    planrunner.makeplan(
        "p",
        plan(
            ("one", "touch one", [exists("one")]),
            ("two", "touch two", [exists("two"), {"flips": {}}]),
            ("three", "touch three", [exists("three")]),
            ("four", "touch four", [exists("four")]),
        ),
    )
    result = planrunner.run("p.plan.yaml", plugins=[Flips()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["p.plan.yaml ....F*"])
    result.stdout.fnmatch_lines(
        [
            "FAILED p.plan.yaml::regressions - regression (checked at the end of the plan): criterion 2 of task two"
            " (flips {}) no longer holds; it could have broken from task three on - it broke"
        ]
    )
    assert calls["n"] == 3


def test_the_last_task_s_expensive_criteria_are_not_re_checked(planrunner: Planrunner) -> None:
    counter = planrunner.path / "command.count"
    planrunner.makeplan(
        "p",
        plan(
            ("one", "touch one", [exists("one")]),
            ("two", "touch two", [{"command": f"echo x >> {counter}"}]),
        ),
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK
    assert counter.read_text().count("x") == 2  # baseline and assertion: nothing ran after it


@pytest.mark.parametrize("args", [("--verify-only",), ("-x",)])
def test_no_end_of_plan_check_in_verify_only_runs_or_after_exitfirst(planrunner: Planrunner, args: tuple[str]) -> None:
    counter = planrunner.path / "command.count"
    planrunner.makeplan(
        "p",
        plan(
            ("one", "true", [{"command": f"echo x >> {counter}"}]),
            ("two", "false", [exists("nothing")]),
            ("three", "true", [exists("p.plan.yaml")]),
            workspace="inplace",
        ),
    )
    result = planrunner.run(*args, "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert "regressions" not in result.outstr
    runs = counter.read_text().count("x")
    assert runs == (1 if args == ("--verify-only",) else 2)


def test_the_regressions_item_keeps_the_progress_at_most_100_percent(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        plan(
            ("one", "echo one > a.txt", [{"command": "grep -q one a.txt"}]),
            ("two", "echo two > a.txt", [exists("a.txt")]),
        ),
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.re_match_lines([r"p\.plan\.yaml \.\.F +\[100%\]$"])
    percents = [int(p) for p in re.findall(r"\[ *(\d+)%\]", result.outstr)]
    assert percents and max(percents) == 100, result
