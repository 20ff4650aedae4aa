"""``pytest plans/``: the pytest11 plugin ``planrun`` (planrun.pytest_plugin), run with pytester."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from planrun.reports import printable

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent

FAILING = """\
plan: failing
workspace: temp
tasks:
  - id: make
    name: Write the greeting
    action: create
    file: out.txt
    run: printf 'hello\\n' > out.txt
    criteria:
      - file_contains: {path: out.txt, pattern: goodbye}
  - id: after
    name: Uses the greeting
    action: modify
    file: out.txt
    depends_on: [make]
    run: printf 'more\\n' >> out.txt
    criteria:
      - file_exists: out.txt
  - id: alone
    name: Independent
    action: create
    file: other.txt
    run: printf 'x\\n' > other.txt
    criteria:
      - file_exists: other.txt
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Plugins a machine may have installed that refuse to work beside xdist (pytest-benchmark warns,
    # and this repository's filterwarnings=error turns that into an internal error).
    others = ("-p", "no:randomly", "-p", "no:benchmark")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *others, *args)


@pytest.fixture
def failing(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".plan.yaml", failing=FAILING)
    return pytester


def test_shipped_plans_pass(pytester: pytest.Pytester) -> None:
    run(pytester, str(REPO / "plans"), "-n", "2").assert_outcomes(passed=19)
    result = run(pytester, str(REPO / "plans"), "-v")
    result.assert_outcomes(passed=19)
    result.stdout.fnmatch_lines(["*plans/quickstart.plan.yaml::scaffold PASSED*", "*::edge_cases[[]0[]] PASSED*"])
    assert result.ret == 0


def test_shipped_plans_copied_pass(pytester: pytest.Pytester) -> None:
    shutil.copytree(
        REPO / "plans", pytester.path / "plans", ignore=shutil.ignore_patterns("repository.plan.yaml", "self")
    )
    result = run(pytester, "plans/")
    result.assert_outcomes(passed=11)


def test_failing_plan_shows_criterion_and_skips_dependent(failing: pytest.Pytester) -> None:
    result = run(failing, "failing.plan.yaml", "-rfs")
    result.assert_outcomes(failed=1, passed=1, skipped=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*_ make _*",
            "criterion 1/1  file_contains out.txt /goodbye/",
            "  *goodbye*",
            "  failing.plan.yaml:10:9",
            "FAILED failing.plan.yaml::make - criterion 1/1*",
            "SKIPPED [[]1[]] failing.plan.yaml:*: dependency make failed",
        ]
    )


def test_verify_only_performs_nothing(failing: pytest.Pytester) -> None:
    failing.makefile(
        ".plan.yaml",
        inplace="plan: inplace\nworkspace: inplace\ntasks:\n  - id: w\n    name: Write\n    action: create\n    file: made.txt\n    run: printf 'x' > made.txt\n    criteria:\n      - file_exists: made.txt\n",
    )
    result = run(failing, "inplace.plan.yaml", "--planrun-verify-only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*made.txt*"])
    assert not (failing.path / "made.txt").exists()
    result = run(failing, "inplace.plan.yaml")
    result.assert_outcomes(passed=1)
    assert (failing.path / "made.txt").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "plan: x\ntasks:\n  - id: a\n    name: A\n    action: create\n    criteria:\n      - no_such_kind: 1\n",
            "bad.plan.yaml:7:*no_such_kind*",
        ),
        ("plan: x\ntasks:\n  - id: a\n    name: [unclosed\n", "bad.plan.yaml:5:1: did not find expected*"),
        (
            "plan: x\ntasks:\n  - id: a\n    name: A\n    action: create\n    depends_on: [nope]\n"
            "    criteria:\n      - file_exists: a\n",
            "bad.plan.yaml:6:18: task 'a' depends on unknown task 'nope'*",
        ),
        (
            "plan: x\ntasks:\n  - id: a\n    name: A\n    action: create\n    criteria:\n      - the code is nice\n",
            "bad.plan.yaml:7:9: criterion 'the code is nice' is not machine-checkable*",
        ),
    ],
)
def test_collection_error_located(pytester: pytest.Pytester, text: str, expected: str) -> None:
    pytester.makefile(".plan.yaml", bad=text)
    good = FAILING.replace("workspace: temp", "workspace: inplace").replace("plan: failing", "plan: good")
    pytester.makefile(".plan.yaml", good=good)
    result = run(pytester, "bad.plan.yaml", "good.plan.yaml")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*ERROR collecting bad.plan.yaml*", expected, "*1 error*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "out.txt").exists()  # nothing ran


def test_keyword_selects(failing: pytest.Pytester) -> None:
    result = run(failing, "failing.plan.yaml", "-k", "alone")
    result.assert_outcomes(passed=1, deselected=2)
    result = run(failing, "failing.plan.yaml", "-k", "after")  # its dependency runs along, unreported
    result.assert_outcomes(skipped=1, deselected=2)


def test_exitfirst_stops_before_performing_the_rest(pytester: pytest.Pytester) -> None:
    pytester.makefile(".plan.yaml", failing=FAILING.replace("workspace: temp", "workspace: inplace"))
    result = run(pytester, "failing.plan.yaml", "-x")
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    assert (pytester.path / "out.txt").exists()
    assert not (pytester.path / "other.txt").exists()  # the independent task after the failure never ran
    result = run(pytester, "failing.plan.yaml")
    result.assert_outcomes(failed=1, passed=1, skipped=1)
    assert (pytester.path / "other.txt").exists()


def test_junitxml_one_testcase_per_item(failing: pytest.Pytester) -> None:
    result = run(failing, "failing.plan.yaml", "--junitxml=out.xml")
    assert result.ret == 1
    cases = ET.parse(failing.path / "out.xml").getroot().iter("testcase")
    names = {case.get("name"): [child.tag for child in case] for case in cases}
    assert names == {"make": ["failure"], "after": ["skipped"], "alone": []}


def test_xdist_same_outcomes(failing: pytest.Pytester) -> None:
    shutil.copytree(
        REPO / "plans", failing.path / "plans", ignore=shutil.ignore_patterns("repository.plan.yaml", "self")
    )
    plain = run(failing, "plans", "failing.plan.yaml")
    plain.assert_outcomes(passed=12, failed=1, skipped=1)
    distributed = run(failing, "plans", "failing.plan.yaml", "-n", "2", "-v")
    distributed.assert_outcomes(passed=12, failed=1, skipped=1)
    distributed.stdout.fnmatch_lines(["criterion 1/1  file_contains out.txt /goodbye/"])
    workers: dict[str, set[str]] = {}  # plan file -> the workers that ran its items
    for line in distributed.outlines:
        m = re.match(r"\[(gw\d+)\] \[ *\d+%\] (PASSED|FAILED|SKIPPED) (\S+?)::", line)
        if m:
            workers.setdefault(m.group(3), set()).add(m.group(1))
    assert sorted(workers) == ["failing.plan.yaml", "plans/greeter.plan.yaml", "plans/quickstart.plan.yaml"]
    assert all(len(w) == 1 for w in workers.values()), workers  # a plan stays on one worker


def test_python_tests_unaffected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_a():\n    pass\n")
    pytester.makefile(".yaml", notaplan="plan: x\n")
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=1)


def test_last_failed_reruns_the_failure(failing: pytest.Pytester) -> None:
    first = failing.runpytest_subprocess("-p", "no:randomly", "failing.plan.yaml")
    first.assert_outcomes(failed=1, passed=1, skipped=1)
    again = failing.runpytest_subprocess("-p", "no:randomly", "failing.plan.yaml", "--lf")
    again.assert_outcomes(failed=1, deselected=2)
    again.stdout.fnmatch_lines(["criterion 1/1  file_contains out.txt /goodbye/"])


def test_task_without_steps_is_only_verified_when_no_executor_is_configured(pytester: pytest.Pytester) -> None:
    pytester.makefile(".txt", there="x")
    pytester.makefile(
        ".plan.yaml",
        agent="plan: agent\nworkspace: inplace\ntasks:\n  - id: t\n    name: T\n    action: create\n    file: there.txt\n"
        "    criteria:\n      - file_exists: there.txt\n  - id: u\n    name: U\n    action: create\n    file: gone.txt\n"
        "    criteria:\n      - file_exists: gone.txt\n",
    )
    result = run(pytester, "agent.plan.yaml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["criterion 1/1  file_exists gone.txt"])


def test_unconfigured_agent_executor_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".plan.yaml",
        agent="plan: agent\nexecutor: openai\ntasks:\n  - id: t\n    name: T\n    action: create\n    file: a.txt\n"
        "    criteria:\n      - file_exists: a.txt\n",
    )
    result = run(pytester, "agent.plan.yaml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: planrun: the openai executor needs a model*"])


def test_end_of_plan_regression_fails_the_plans_last_item(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".plan.yaml",
        reg="plan: reg\nworkspace: temp\ntasks:\n  - id: a\n    name: A\n    action: create\n    file: a.txt\n"
        "    run: printf 'x' > a.txt\n    criteria:\n      - \"`test -f a.txt` passes\"\n"
        "  - id: b\n    name: B\n    action: delete\n    file: a.txt\n    run: rm a.txt\n"
        "    criteria:\n      - file_exists: .\n",
    )
    result = run(pytester, "reg.plan.yaml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["reg.plan.yaml::regressions *", "criterion 1/1  regression (checked at the end*"])


def test_workdir_text_in_a_failure_is_shown_escaped(pytester: pytest.Pytester) -> None:
    hostile = FAILING.replace("printf 'hello\\n' > out.txt", "printf 'hel\\033[2Jlo\\342\\200\\256\\n' > out.txt")
    pytester.makefile(".plan.yaml", failing=hostile)
    result = run(pytester, "failing.plan.yaml")
    result.assert_outcomes(failed=1, passed=1, skipped=1)
    out = result.stdout.str()
    assert "\x1b" not in out and "\u202e" not in out
    assert "hel\\x1b[2Jlo\\u202e" in out


def test_keyword_matches_task_names(failing: pytest.Pytester) -> None:
    run(failing, "failing.plan.yaml", "-k", "greeting").assert_outcomes(failed=1, skipped=1, deselected=1)
    run(failing, "failing.plan.yaml", "-k", "Independent").assert_outcomes(passed=1, deselected=2)


COMMANDS = "::error file=x.py,line=1::forged\n  ::stop-commands::abc\nmid ##[error]forged\n\u200b::warning::w\n"


@pytest.mark.parametrize("on_actions", [True, False])
def test_under_github_actions_step_output_in_a_failure_is_no_workflow_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, on_actions: bool
) -> None:
    pytester.makefile(".py", emit=f"import sys\nsys.stdout.write({COMMANDS!r})\nsys.exit(1)\n")
    pytester.makefile(
        ".plan.yaml",
        p="""
        plan: p
        tasks:
          - id: t
            name: "T ##[group]x"
            criteria: [{command: python3 emit.py}]
          - id: s
            name: S
            depends_on: [t]
            criteria: [{file_exists: emit.py}]
        """,
    )
    if on_actions:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
    else:
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = run(pytester, "p.plan.yaml", "-rA")
    result.assert_outcomes(failed=1, skipped=1)
    out = result.stdout.str()
    assert "forged" in out, out  # the output is shown
    commands = [line for line in out.split("\n") if line.lstrip(" \u200b").startswith("::") or "##[" in line]
    if on_actions:
        assert not commands, out
    else:
        assert commands, out  # the same lines, as they were, where no runner reads them


def test_no_line_break_but_newline_splits_step_output_under_pytest(pytester: pytest.Pytester) -> None:
    breaks = ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
    payload = "".join(f"before{ch}FORGED {n}\n" for n, ch in enumerate(breaks))
    pytester.makefile(".py", emit=f"import sys\nsys.stdout.write({payload!r})\nsys.exit(1)\n")
    pytester.makefile(".plan.yaml", p="plan: p\ntasks:\n  - {id: t, name: T, criteria: [{command: python3 emit.py}]}\n")
    result = run(pytester, "p.plan.yaml")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert not [line for line in out.split("\n") if line.lstrip().startswith("FORGED")], out
    for n, ch in enumerate(breaks):
        assert f"before{printable(ch)}FORGED {n}" in out, (n, out)
