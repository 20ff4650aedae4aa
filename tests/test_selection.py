"""-k expressions: substrings, and/or/not, parentheses, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, UsageError, hookimpl
from planrun.plugins.selection import compile_keyword
from planrun.testing import Planrunner, RunResult


@pytest.mark.parametrize(
    ("expr", "keywords", "selected"),
    [
        ("auth", ["express-auth", "add-deps"], True),
        ("AUTH", ["express-auth"], True),
        ("deps", ["user-model"], False),
        ("a or b and not c", ["b", "c"], False),  # and binds tighter than or
        ("a or b and not c", ["a", "c"], True),
        ("(a or b) and not c", ["a", "c"], False),
        ("not not x", ["x"], True),
        ("edge_cases[0]", ["edge_cases[0]"], True),
        ("plans/auth.plan.yaml", ["plans/auth.plan.yaml"], True),
    ],
)
def test_keyword_expressions(expr: str, keywords: list[str], selected: bool) -> None:
    assert compile_keyword(expr)(keywords) is selected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "-k: empty expression"),
        ("a and", "-k 'a and': expected a word, got 'the end'"),
        ("(a", "-k '(a': missing ')'"),
        ("a b", "-k 'a b': unexpected 'b'"),
        ("a & b", "-k 'a & b': unexpected character '&' at column 3"),
    ],
)
def test_bad_keyword_expressions(expr: str, message: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        compile_keyword(expr)
    assert str(excinfo.value) == message


# -- deep and long expressions never reach the recursion limit -------------------------------


@pytest.mark.parametrize(
    ("expr", "keywords", "selected"),
    [
        ("(" * 500 + "a" + ")" * 500, ["a"], True),
        ("(" * 100_000 + "a" + ")" * 100_000, ["b"], False),
        ("not " * 2000 + "a", ["a"], True),
        ("not " * 2001 + "a", ["a"], False),
        (" and ".join(["a"] * 5000), ["a"], True),
        (" and ".join(["a"] * 5000) + " and b", ["a"], False),
        (" or ".join(["x"] * 5000) + " or a", ["a"], True),
        (" or ".join(f"(not w{i} and a)" for i in range(3000)), ["a", "w1"], True),
        ("not (" * 1000 + "a" + ")" * 1000, ["a"], True),
    ],
    ids=[
        "parens-500",
        "parens-100k",
        "not-2000",
        "not-2001",
        "and-5000",
        "and-5000-b",
        "or-5000",
        "mixed",
        "not-paren",
    ],
)
def test_deep_and_long_keyword_expressions(expr: str, keywords: list[str], selected: bool) -> None:
    assert compile_keyword(expr)(keywords) is selected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("(" * 500 + "a" + ")" * 499, "missing ')'"),
        ("a" + ")" * 3, "unexpected ')'"),
        ("not " * 2000, "expected a word, got 'the end'"),
        ("a and or b", "expected a word, got 'or'"),
        ("a not b", "unexpected 'not'"),
        ("()", "expected a word, got ')'"),
    ],
)
def test_bad_deep_keyword_expressions(expr: str, message: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        compile_keyword(expr)
    assert str(excinfo.value).endswith(message)


def test_deep_keyword_expression_on_the_command_line(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", CHAIN.format(workspace="inplace"))
    result = planrunner.run("-k", "(" * 500 + "side" + ")" * 500, "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=1, deselected=5)
    result = planrunner.run("-k", " and ".join(["side"] * 5000) + " and " + "not " * 2001 + "one", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=1, deselected=5)
    result = planrunner.run("-k", "(" * 500 + "side", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.endswith(": missing ')'\n") and result.no_traceback()


# -- -k, node ids and dependencies ---------------------------------------------------------------

CHAIN = """
plan: chain
workspace: {workspace}
tasks:
  - id: one
    name: First
    run: echo 1 > one.txt
    criteria: [{{file_exists: one.txt}}]
  - id: two
    name: Second
    depends_on: [one]
    run: touch two.txt
    criteria: [{{file_exists: two.txt}}]
  - id: three
    name: Third
    depends_on: [two]
    run: touch three.txt
    criteria: [{{file_exists: three.txt}}]
  - id: side
    name: Independent
    run: touch side.txt
    criteria: [{{file_exists: side.txt}}]
edge_cases:
  - case: The edge
    handling: holds
    criteria: [{{file_exists: one.txt}}]
verification: [{{file_exists: side.txt}}]
"""


class Reports:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, str]] = {}

    @hookimpl
    def planrun_runtest_logreport(self, report: Any) -> None:
        self.seen[report.item_id] = (report.outcome, report.message)


def run(planrunner: Planrunner, *args: str) -> tuple[RunResult, dict[str, tuple[str, str]]]:
    reports = Reports()
    return planrunner.run(*args, plugins=[reports]), reports.seen


def test_inplace_dependency_is_verified_not_run(planrunner: Planrunner) -> None:
    planrunner.makeplan("c", CHAIN.format(workspace="inplace"))
    result, seen = run(planrunner, "-k", "two", "c.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert seen == {"one": ("failed", "dependency verified, not run"), "two": ("skipped", "dependency one failed")}
    assert not Path("one.txt").exists() and not Path("two.txt").exists()  # one was verified, not performed
    result.assert_outcomes(failed=1, skipped=1, deselected=4)
    Path("one.txt").write_text("there\n")
    result, seen = run(planrunner, "-k", "two", "c.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert seen == {"one": ("passed", "dependency verified, not run"), "two": ("passed", "")}
    assert Path("one.txt").read_text() == "there\n" and Path("two.txt").exists()


def test_inplace_not_keeps_the_dependency_of_a_selected_task(planrunner: Planrunner) -> None:
    planrunner.makeplan("c", CHAIN.format(workspace="inplace"))
    Path("two.txt").touch()
    result, seen = run(planrunner, "-k", "not two and not edge and not verification", "c.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert seen["two"] == ("passed", "dependency verified, not run")
    assert list(seen) == ["one", "two", "three", "side"]
    result.assert_outcomes(passed=4, deselected=2)


@pytest.mark.parametrize("workspace", ["temp", "copy"])
def test_fresh_workspace_selects_the_dependencies_with_the_task(planrunner: Planrunner, workspace: str) -> None:
    planrunner.makeplan("c", CHAIN.format(workspace=workspace))
    result, seen = run(planrunner, "-k", "three", "c.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert seen == {"one": ("passed", ""), "two": ("passed", ""), "three": ("passed", "")}  # the chain of three
    result.assert_outcomes(passed=3, deselected=3)
    result, seen = run(planrunner, "-k", "not two", "c.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert list(seen) == ["one", "two", "three", "side", "edge_cases[0]", "verification"]


def test_chain_of_three_verified_in_place(planrunner: Planrunner) -> None:
    planrunner.makeplan("c", CHAIN.format(workspace="inplace"))
    Path("one.txt").touch()
    Path("two.txt").touch()
    result, seen = run(planrunner, "c.plan.yaml::three")
    assert result.ret == ExitCode.OK, result
    assert seen == {
        "one": ("passed", "dependency verified, not run"),
        "two": ("passed", "dependency verified, not run"),
        "three": ("passed", ""),
    }
    result.assert_outcomes(passed=3, deselected=3)


def test_node_ids_as_arguments(planrunner: Planrunner) -> None:
    planrunner.makeplan("plans/c", CHAIN.format(workspace="temp"))
    planrunner.makeplan("plans/d", CHAIN.format(workspace="temp").replace("plan: chain", "plan: other"))
    result, seen = run(planrunner, "plans/c.plan.yaml::side", "plans/c.plan.yaml::verification")
    assert result.ret == ExitCode.OK, result
    assert seen == {"side": ("passed", ""), "verification": ("passed", "")}  # d is not collected at all
    result.assert_outcomes(passed=2, deselected=4)
    result, seen = run(planrunner, "plans/c.plan.yaml::two", "plans/c.plan.yaml::side", "-k", "Second")
    assert result.ret == ExitCode.OK, result
    assert list(seen) == ["one", "two"]
    result, seen = run(planrunner, "plans/c.plan.yaml::edge_cases[0]", "plans")  # the folder: everything
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=12)


def test_node_id_of_the_prerequisites(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p", CHAIN.format(workspace="inplace").replace("tasks:", "prerequisites: [{file_absent: x}]\ntasks:", 1)
    )
    result, seen = run(planrunner, "p.plan.yaml::prerequisites")
    assert result.ret == ExitCode.OK, result
    assert seen == {"prerequisites": ("passed", "")}


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("c.plan.yaml::thre", "c.plan.yaml::thre: no such item (did you mean 'three'?); the plan has: *"),
        (
            "c.plan.yaml::nothing",
            "c.plan.yaml::nothing: no such item; the plan has: one, two, three, side, edge_cases[[]0[]], verification",
        ),
        ("c.plan.yaml::", "c.plan.yaml::: no such item; the plan has: *"),
        ("c.plan.yaml::edge_cases[1]", "*edge_cases[[]1[]]: no such item (did you mean 'edge_cases[[]0[]]'?)*"),
    ],
)
def test_unknown_node_id_is_a_usage_error(planrunner: Planrunner, arg: str, message: str) -> None:
    planrunner.makeplan("c", CHAIN.format(workspace="inplace"))
    result, seen = run(planrunner, arg)
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines(["ERROR: " + message])
    assert seen == {} and not Path("one.txt").exists()


def test_node_id_of_a_folder_is_a_usage_error(planrunner: Planrunner) -> None:
    planrunner.makeplan("plans/c", CHAIN.format(workspace="inplace"))
    result = planrunner.run("plans::one")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: plans::one: a node id names a plan file, and plans is a directory"])
