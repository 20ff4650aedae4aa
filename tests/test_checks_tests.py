"""The ``tests`` check kind: real pytest suites in tmp folders, and JUnit XML that cannot be trusted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

from .conftest import CheckRun

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:randomly"

SUITE = {
    "suite/test_a.py": (
        "import pytest\n\n"
        "def test_one():\n    assert 1\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\n"
        "def test_param(n):\n    assert n\n\n"
        "class TestGroup:\n    def test_inner(self):\n        assert True\n"
    ),
}
FAILING = {
    "suite/test_b.py": (
        "def test_good():\n    assert 1\n\n"
        "def test_bad():\n    assert 1 == 2, 'one is not two'\n\n"
        "def test_broken():\n    raise KeyError('nope')\n"
    ),
}


def suite_criterion(extra: str = "", target: str = "suite") -> str:
    return f'tests: {{run: "{PYTEST} {target} --junitxml={{junit}}"{extra}}}'


def test_passing_suite_passes(check: CheckRun) -> None:
    result = check(suite_criterion(", min_tests: 4"), SUITE)
    assert result.ret == ExitCode.OK, result.outstr


def test_failing_suite_names_each_failing_test_with_its_message(check: CheckRun) -> None:
    result = check(suite_criterion(), FAILING)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(
        [
            "  2 failed of 3 tests",
            "*FAILED suite.test_b.test_bad: AssertionError: one is not two*",
            "*FAILED suite.test_b.test_broken: KeyError: 'nope'*",
        ]
    )
    assert "test_good" not in result.outstr


def test_zero_tests_fail(check: CheckRun) -> None:
    result = check(suite_criterion(), {"suite/test_none.py": "x = 1\n"})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*no tests ran (the JUnit XML lists none)*"])


def test_only_skipped_tests_fail(check: CheckRun) -> None:
    files = {
        "suite/test_s.py": (
            "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_a():\n    pass\n\n"
            "@pytest.mark.xfail(reason='known')\ndef test_b():\n    assert 0\n"
        )
    }
    result = check(suite_criterion(), files)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*all 2 tests were skipped, none ran*"])


def test_fewer_than_min_tests_fail(check: CheckRun) -> None:
    result = check(suite_criterion(", min_tests: 5"), SUITE)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*only 4 tests ran, at least 5 expected*"])


def test_skips_do_not_count_towards_min_tests(check: CheckRun) -> None:
    files = {
        "suite/test_s.py": "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pytest.skip('no')\n",
    }
    result = check(suite_criterion(", min_tests: 2"), files)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*only 1 test ran, at least 2 expected*"])


def test_collection_error_fails_with_exit_code(check: CheckRun) -> None:
    result = check(suite_criterion(), {**SUITE, "suite/test_bad.py": "import no_such_module_here\n"})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  1 error of 1 test", "*ERROR suite.test_bad: collection failure: ModuleNotFo*"])


@pytest.mark.parametrize(
    "must_pass",
    [
        "suite/test_a.py::test_one",
        "suite/test_a.py::test_param[2]",
        "suite/test_a.py::test_param",  # every parametrized case
        "suite/test_a.py::TestGroup::test_inner",
    ],
)
def test_must_pass_present(check: CheckRun, must_pass: str) -> None:
    result = check(suite_criterion(f", must_pass: ['{must_pass}']"), SUITE)
    assert result.ret == ExitCode.OK, result.outstr


@pytest.mark.parametrize(
    ("must_pass", "files"),
    [
        # deleted: the test is gone from the suite
        ("suite/test_a.py::test_two", SUITE),
        # renamed: test_one became test_uno
        ("suite/test_a.py::test_one", {"suite/test_a.py": "def test_uno():\n    pass\n"}),
        # a parametrized case that no longer exists
        ("suite/test_a.py::test_param[3]", SUITE),
        # the whole file was deleted
        ("suite/test_gone.py::test_one", SUITE),
        # the class is not part of the id: a function of the same name elsewhere does not count
        ("suite/test_a.py::TestOther::test_inner", SUITE),
    ],
)
def test_must_pass_missing_fails(check: CheckRun, must_pass: str, files: dict[str, str]) -> None:
    result = check(suite_criterion(f", must_pass: ['{must_pass}']"), files)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines([f"*required test {must_pass.replace('[', '[[]')} did not run*"])


def test_must_pass_skipped_fails(check: CheckRun) -> None:
    files = {"suite/test_s.py": "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pytest.skip('no')\n"}
    result = check(suite_criterion(", must_pass: ['suite/test_s.py::test_b']"), files)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*required test suite/test_s.py::test_b was skipped*"])


def test_command_that_writes_no_xml_fails(check: CheckRun) -> None:
    result = check('tests: {run: "echo hi # {junit}"}')
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*the command wrote no JUnit XML*", "*output tail:*", "*hi*"])


def test_failing_command_without_xml_says_its_exit_code(check: CheckRun) -> None:
    result = check('tests: {run: "exit 3 # {junit}"}')
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*exited with 3; the command wrote no JUnit XML*"])


def test_command_failing_with_passing_xml_fails(check: CheckRun) -> None:
    xml = '<testsuite><testcase classname="a" name="t"/></testsuite>'
    result = check('tests: {run: "cp ok.xml {junit}; exit 1"}', {"ok.xml": xml})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  `cp ok.xml {junit}; exit 1` exited with 1"])


def test_xml_that_passes_is_accepted_from_any_runner(check: CheckRun) -> None:
    xml = '<testsuites><testsuite><testcase classname="com.acme.FooTest" name="testBar"/></testsuite></testsuites>'
    result = check('tests: {run: "cp ok.xml {junit}", must_pass: [com.acme.FooTest.testBar]}', {"ok.xml": xml})
    assert result.ret == ExitCode.OK, result.outstr


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("", "the JUnit XML is empty"),
        ("  \n", "the JUnit XML is empty"),
        ("<testsuite><testcase name='a'>", "the JUnit XML cannot be used: it does not parse: * at line 1, column *"),
        ("not xml at all", "the JUnit XML cannot be used: it does not parse: syntax error*"),
        (
            '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<testsuite><testcase name="&b;"/></testsuite>',
            "the JUnit XML cannot be used: it has a DOCTYPE (refused*",
        ),
        (
            '<!DOCTYPE x SYSTEM "file:///etc/passwd"><testsuite><testcase name="a"/></testsuite>',
            "the JUnit XML cannot be used: it has a DOCTYPE (refused*",
        ),
        ('<testsuite><testcase name="&undefined;"/></testsuite>', "*does not parse: undefined entity*"),
    ],
)
def test_unusable_xml_fails_with_its_reason(check: CheckRun, xml: str, reason: str) -> None:
    result = check('tests: {run: "cp r.xml {junit}"}', {"r.xml": xml})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines([f"*{reason}*"])


def test_xml_replaced_by_a_symlink_is_not_followed(check: CheckRun) -> None:
    xml = '<testsuite><testcase classname="a" name="t"/></testsuite>'
    result = check('tests: {run: "ln -s $PWD/ok.xml {junit}"}', {"ok.xml": xml})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*the JUnit XML cannot be opened*"])


def test_junit_path_is_outside_the_workdir_and_removed(check: CheckRun, planrunner: Planrunner) -> None:
    xml = '<testsuite><testcase classname="a" name="t"/></testsuite>'
    result = check('tests: {run: "cp ok.xml {junit}; echo {junit} > where.txt"}', {"ok.xml": xml})
    assert result.ret == ExitCode.OK, result.outstr
    where = Path((planrunner.path / "where.txt").read_text().strip())
    assert where.is_absolute()
    assert planrunner.path.resolve() not in where.resolve().parents
    assert not where.exists()
    assert not where.parent.exists()


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ('tests: "pytest -q"', "*run must contain {junit}*"),
        ('tests: {run: "x {junit}", min_tests: -1}', "*min_tests*"),
        ('tests: {run: "x {junit}", must_pass: [" "]}', "*must_pass: a test id is empty*"),
    ],
)
def test_bad_arguments_are_collection_errors(check: CheckRun, criterion: str, message: str) -> None:
    result = check(criterion)
    assert result.ret == ExitCode.INTERRUPTED, result.outstr
    result.stdout.fnmatch_lines([message])


@pytest.mark.parametrize("form", ["`pytest suite` passes", "`python -m pytest -q suite` passes", "`pytest` succeeds"])
def test_pytest_sentence_with_no_tests_fails(check: CheckRun, form: str) -> None:
    result = check(f"'{form}'", {"suite/test_none.py": "x = 1\n"})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*no tests ran (the JUnit XML lists none)*"])


def test_pytest_sentence_with_tests_passes(check: CheckRun) -> None:
    result = check("'`python -m pytest -q suite` passes'", SUITE)
    assert result.ret == ExitCode.OK, result.outstr


def test_suite_that_hangs_is_a_timeout_error(check: CheckRun) -> None:
    result = check('tests: {run: "sleep 60 # {junit}", timeout: 1}')
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*`sleep 60 # {junit}` did not finish in 1s*"])
    result.assert_outcomes(errors=1)


@pytest.mark.parametrize(
    ("sentence", "compiled"),
    [
        ("`pytest` passes", {"tests": {"run": "pytest --junitxml={junit}"}}),
        ("`pytest tests/` passes", {"tests": {"run": "pytest tests/ --junitxml={junit}"}}),
        ("`python -m pytest -q` succeeds", {"tests": {"run": "python -m pytest -q --junitxml={junit}"}}),
        ("`python3 -m pytest -x tests` exits 0", {"tests": {"run": "python3 -m pytest -x tests --junitxml={junit}"}}),
        ("`py.test` runs successfully", {"tests": {"run": "py.test --junitxml={junit}"}}),
        # not pytest itself: plain commands
        ("`pytest-watch` passes", {"command": {"run": "pytest-watch"}}),
        ("`make test` passes", {"command": {"run": "make test"}}),
        ("`tox -e pytest` passes", {"command": {"run": "tox -e pytest"}}),
        ("`pytest --version` outputs `pytest`", {"command": {"run": "pytest --version", "stdout_contains": "pytest"}}),
    ],
)
def test_pytest_sentences_compile_to_tests(sentence: str, compiled: dict[str, object]) -> None:
    from planrun.plugins.strings import compile_sentence

    assert compile_sentence(sentence) == compiled


def test_many_failures_are_listed_up_to_a_bound(check: CheckRun) -> None:
    cases = "".join(f'<testcase classname="m" name="t{i}"><failure message="bad {i}"/></testcase>' for i in range(15))
    result = check('tests: {run: "cp r.xml {junit}"}', {"r.xml": f"<testsuite>{cases}</testsuite>"})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(
        ["  15 failed of 15 tests", "  FAILED m.t0: bad 0", "  FAILED m.t9: bad 9", "  ... and 5 more"]
    )
    assert "m.t10" not in result.outstr


def test_required_test_that_fails_is_named(check: CheckRun) -> None:
    result = check(suite_criterion(", must_pass: ['suite/test_b.py::test_bad']"), FAILING)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*2 failed of 3 tests; required test suite/test_b.py::test_bad did not pass*"])


def test_a_plan_whose_criterion_runs_pytest_does_not_collect_itself(check: CheckRun) -> None:
    # pytest collects plan files (planrun's pytest plugin); inside a check that planrun runs it must not,
    # or the plan would run itself again, without end (the check's timeout is the hang guard).
    result = check(
        "{tests: {run: 'python -m pytest -q -p no:cacheprovider --junitxml={junit}', timeout: 60}}",
        {"test_a.py": "def test_a():\n    pass\n"},
    )
    assert result.ret == ExitCode.OK, result.outstr
