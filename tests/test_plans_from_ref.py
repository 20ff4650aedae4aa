"""``--plans-from-ref REF``: the ref's plans (and conftests) gate the working tree; weakenings fail the run."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from planrun import ExitCode, git_env
from planrun.testing import Planrunner

pytestmark = pytest.mark.timeout(120)

#: Writes a JUnit XML of N passing tests to the path given: a test runner in one line.
JUNIT = """\
import sys
n, out = int(sys.argv[1]), sys.argv[2]
cases = "".join(f'<testcase classname="t" name="t{i}"/>' for i in range(n))
open(out, "w").write(f'<testsuite name="s" tests="{n}">{cases}</testsuite>')
"""


def git(path: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", *args],
        cwd=path,
        env=git_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def repo(pr: Planrunner, files: dict[str, str]) -> None:
    """A repository whose ``main`` holds ``files`` (and a pyproject that makes it the rootdir)."""
    pr.makefile("pyproject.toml", "[tool.planrun]\n")
    for name, text in files.items():
        pr.makefile(name, text)
    git(pr.path, "init", "-q", "-b", "main", ".")
    git(pr.path, "add", "-A")
    git(pr.path, "commit", "-q", "-m", "base")


def gate(pr: Planrunner, *args: str) -> object:
    return pr.run("--verify-only", "--plans-from-ref", "main", *args, "plans")


def match(result: object, patterns: list[str]) -> None:
    """``fnmatch_lines`` with ``[`` taken literally (the section's labels are bracketed)."""
    result.stdout.fnmatch_lines([p.replace("[", "[[]") for p in patterns])  # type: ignore[attr-defined]


def plan(*criteria: str, extra: str = "") -> str:
    body = "".join(f"      - {c}\n" for c in criteria)
    return f"plan: gate\ntasks:\n  - id: one\n    name: one\n    criteria:\n{body}{extra}"


# Each: the base criterion, the working tree's weaker one, the tree's file, and how the section names it.
WEAKENINGS = [
    pytest.param(
        "data: {file: conf.json, path: n, equals: 3}",
        "data: {file: conf.json, path: n, equals: 2}",
        {"conf.json": '{"n": 2}'},
        "task one: data.equals: 3 -> 2  [WEAKENING]",
        "expected 3, got 2",
        id="equals-changed",
    ),
    pytest.param(
        "tests: {run: 'python3 junit.py 3 {junit}', min_tests: 10}",
        "tests: {run: 'python3 junit.py 3 {junit}', min_tests: 1}",
        {"junit.py": JUNIT},
        "task one: tests.min_tests: 10 -> 1  [WEAKENING]",
        "only 3 tests ran, at least 10 expected",
        id="min-tests-lowered",
    ),
    pytest.param(
        "file_contains: {path: VERSION, pattern: '^1\\.2\\.\\d+$'}",
        "file_contains: {path: VERSION, pattern: '\\d'}",
        {"VERSION": "0.9\n"},
        "task one: file_contains.pattern: '^1\\\\.2\\\\.\\\\d+$' -> '\\\\d'  [WEAKENING]",
        "VERSION",
        id="regex-loosened",
    ),
    pytest.param(
        "file_exists: [built.txt]",
        "{file_exists: [built.txt], skip: later}",
        {},
        "task one: now skipped ('later'): {file_exists: ['built.txt']}  [WEAKENING]",
        "not found: built.txt",
        id="skip-added",
    ),
    pytest.param(
        "file_exists: [built.txt]",
        "manual: a person looks at built.txt",
        {},
        "task one: now manual: {file_exists: ['built.txt']}  [WEAKENING]",
        "not found: built.txt",
        id="turned-manual",
    ),
]


@pytest.mark.parametrize(("base", "weaker", "tree", "named", "failure"), WEAKENINGS)
def test_a_weakened_criterion_is_enforced_as_the_base_has_it(
    planrunner: Planrunner, base: str, weaker: str, tree: dict[str, str], named: str, failure: str
) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan(base), **tree})
    planrunner.makefile("plans/a.plan.yaml", plan(weaker))
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=1)  # the base's stricter criterion ran against the tree and failed
    assert failure in result.outstr
    match(result, ["*= changed criteria against main (*) =*", f"plans/a.plan.yaml:*: {named}"])
    match(result, ["GATE FAILED: 1 weakening against main (pass --allow-weakening to accept)"])
    # The working tree's weaker version alone passes: the failure is the base's criterion.
    assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK


@pytest.mark.parametrize(("base", "weaker", "tree", "named", "failure"), WEAKENINGS)
def test_allow_weakening_lists_it_and_the_criteria_decide(
    planrunner: Planrunner, base: str, weaker: str, tree: dict[str, str], named: str, failure: str
) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan(base), **tree})
    planrunner.makefile("plans/a.plan.yaml", plan(weaker))
    result = gate(planrunner, "--allow-weakening")
    assert result.ret == ExitCode.TESTS_FAILED, result  # the base's criterion still fails
    result.assert_outcomes(failed=1)
    match(result, [f"*{named.replace('[WEAKENING]', '[weakening, allowed]')}", "1 weakening allowed*"])
    assert "GATE FAILED" not in result.outstr


@pytest.mark.parametrize(
    ("base", "weaker"),
    [
        ("data: {file: conf.json, path: n, equals: 3}", "{data: {file: conf.json, path: n, equals: 3}, skip: later}"),
        ("data: {file: conf.json, path: n, equals: 3}", "manual: check conf.json by eye"),
        ("data: {file: conf.json, path: n, equals: 3}", "data: {file: conf.json, path: n, type: integer}"),
    ],
)
def test_a_weakening_fails_the_gate_even_when_every_criterion_passes(
    planrunner: Planrunner, base: str, weaker: str
) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan(base), "conf.json": '{"n": 3}'})
    planrunner.makefile("plans/a.plan.yaml", plan(weaker))
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(passed=1, warnings=1)  # the final line is not green
    match(result, ["*= warnings summary =*", "1 weakening of the plans against main: the run fails (see *"])
    match(result, ["*[WEAKENING]", "GATE FAILED: *"])
    allowed = gate(planrunner, "--allow-weakening")
    assert allowed.ret == ExitCode.OK, allowed
    allowed.assert_outcomes(passed=1, warnings=0)
    match(allowed, ["*[weakening, allowed]", "1 weakening allowed (--allow-weakening)"])


def test_a_deleted_task_still_runs_and_is_named(planrunner: Planrunner) -> None:
    two = "  - id: two\n    name: two\n    criteria:\n      - file_exists: [two.txt]\n"
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]", extra=two), "one.txt": "1"})
    planrunner.makefile("plans/a.plan.yaml", plan("file_exists: [one.txt]"))
    result = gate(planrunner, "-v")
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, ["plans/a.plan.yaml::two FAILED*"])  # the base's task ran
    match(result, ["plans/a.plan.yaml: task two: task removed  [WEAKENING]"])


@pytest.mark.parametrize(
    ("what", "named"),
    [
        ("verification", "verification: criterion removed: {file_exists: ['v.txt']}"),
        ("prerequisites", "prerequisites: criterion removed: {file_exists: ['v.txt']}"),
        ("edge_cases", "edge case 'empty': edge case removed"),
    ],
)
def test_a_removed_verification_prerequisite_or_edge_case_is_a_weakening(
    planrunner: Planrunner, what: str, named: str
) -> None:
    section = {
        "verification": "verification:\n  - file_exists: [v.txt]\n",
        "prerequisites": "prerequisites:\n  - file_exists: [v.txt]\n",
        "edge_cases": "edge_cases:\n  - case: empty\n    criteria:\n      - file_exists: [v.txt]\n",
    }[what]
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]") + section, "one.txt": "1", "v.txt": "v"})
    planrunner.makefile("plans/a.plan.yaml", plan("file_exists: [one.txt]"))
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(passed=2)  # the base's section ran too
    match(result, [f"plans/a.plan.yaml*: {named}  [WEAKENING]"])


def test_a_deleted_plan_file_still_runs_and_is_named(planrunner: Planrunner) -> None:
    repo(
        planrunner,
        {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "plans/b.plan.yaml": plan("file_exists: [b.txt]")},
    )
    planrunner.makefile("one.txt", "1")
    (planrunner.path / "plans/b.plan.yaml").unlink()
    result = gate(planrunner, "-v")
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, ["plans/a.plan.yaml::one PASSED*", "plans/b.plan.yaml::one FAILED*"])
    match(result, ["plans/b.plan.yaml: plan: plan file deleted  [WEAKENING]"])


def test_a_working_tree_plan_that_does_not_load_is_listed(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    planrunner.makefile("plans/a.plan.yaml", "plan: broken\ntasks: [\n")
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(passed=1)  # the base's plan ran
    result.stdout.re_match_lines([r"plans/a\.plan\.yaml:\d+: plan: does not load in the working tree: .*\[WEAKENING\]"])
    assert result.no_traceback


def test_widened_files_are_a_weakening(planrunner: Planrunner) -> None:
    files = "    files: [src/a.py]\n"
    base = "plan: g\ntasks:\n  - id: one\n    name: one\n" + files + "    criteria:\n      - file_exists: [one.txt]\n"
    repo(planrunner, {"plans/a.plan.yaml": base, "one.txt": "1"})
    planrunner.makefile("plans/a.plan.yaml", base.replace("[src/a.py]", "[src/a.py, 'src/**']"))
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, ["plans/a.plan.yaml:3: task one: files widened: + 'src/**'  [WEAKENING]"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda p: p.replace(
                "      - file_exists: [one.txt]\n", "      - file_exists: [one.txt]\n      - file_exists: [more.txt]\n"
            ),
            "task one: criterion added: {file_exists: ['more.txt']}  [harmless]",
        ),
        (
            lambda p: p + "  - id: two\n    name: two\n    criteria:\n      - file_exists: [more.txt]\n",
            "task two: task added  [harmless]",
        ),
        (lambda p: p.replace("min_tests: 2", "min_tests: 3"), "task one: tests.min_tests: 2 -> 3  [harmless]"),
    ],
    ids=["criterion-added", "task-added", "min-tests-raised"],
)
def test_harmless_changes_pass_the_gate(planrunner: Planrunner, change: object, named: str) -> None:
    base = plan("file_exists: [one.txt]", "tests: {run: 'python3 junit.py 3 {junit}', min_tests: 2}")
    repo(planrunner, {"plans/a.plan.yaml": base, "one.txt": "1", "more.txt": "m", "junit.py": JUNIT})
    planrunner.makefile("plans/a.plan.yaml", change(base))  # type: ignore[operator]
    result = gate(planrunner)
    assert result.ret == ExitCode.OK, result
    match(result, [f"plans/a.plan.yaml:*: {named}", "no weakening: *"])


def test_a_plan_added_in_the_working_tree_runs_too(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    planrunner.makefile("plans/new.plan.yaml", plan("file_exists: [missing.txt]"))
    result = gate(planrunner, "-v")
    assert result.ret == ExitCode.TESTS_FAILED, result  # its criterion fails: adding checks counts
    match(result, ["plans/a.plan.yaml::one PASSED*", "plans/new.plan.yaml::one FAILED*"])
    match(result, ["plans/new.plan.yaml: plan: plan file added (it runs too)  [harmless]"])
    assert "GATE FAILED" not in result.outstr


CONFTEST = """\
from planrun import ArgsModel, CheckKind, fail, hookimpl

class Args(ArgsModel):
    file: str

def answer(args, ctx):
    if ctx.read_text(args.file).strip() != "42":
        fail("the answer is not 42")

@hookimpl
def planrun_register_checks():
    return [CheckKind("answer", Args, answer, inprocess=True)]
"""


@pytest.mark.parametrize("where", [".", "plans"])
def test_a_conftest_edited_to_pass_is_not_used_and_is_named(planrunner: Planrunner, where: str) -> None:
    repo(
        planrunner,
        {"plans/a.plan.yaml": plan("answer: {file: answer.txt}"), "answer.txt": "41", f"{where}/conftest.py": CONFTEST},
    )
    planrunner.makefile(f"{where}/conftest.py", CONFTEST.replace('fail("the answer is not 42")', "pass"))
    assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK  # the edited conftest passes anything
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=1)
    assert "the answer is not 42" in result.outstr  # the ref's conftest checked
    shown = "conftest.py" if where == "." else "plans/conftest.py"
    match(result, [f"{shown}: conftest.py: differs from the ref (the gate uses the ref's)  [WEAKENING]"])


def test_a_new_conftest_is_a_weakening_and_is_not_loaded(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    sentinel = planrunner.path / "imported"
    planrunner.makeconftest(f"open({str(sentinel)!r}, 'w').close()\n", "plans")
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, ["plans/conftest.py: conftest.py: added in the working tree*[WEAKENING]"])
    assert not sentinel.exists()


def test_locations_point_at_the_files_and_the_header_names_the_ref(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]")})
    commit = git(planrunner.path, "rev-parse", "main")
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, [f"plans from: main (commit {commit[:12]}): *", "*plans/a.plan.yaml:6:9"])
    assert "planrun-ref-" not in result.outstr


def test_node_ids_select_in_the_ref_plans(planrunner: Planrunner) -> None:
    two = "  - id: two\n    name: two\n    criteria:\n      - file_exists: [two.txt]\n"
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]", extra=two), "one.txt": "1"})
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "-v", "plans/a.plan.yaml::one")
    assert result.ret == ExitCode.OK, result
    match(result, ["plans/a.plan.yaml::one PASSED*"])
    assert "::two" not in result.outstr


def test_the_mirror_is_removed(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = planrunner.path.parent / f"{planrunner.path.name}-tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    assert gate(planrunner).ret == ExitCode.OK
    assert gate(planrunner, "--collect-only").ret == ExitCode.OK
    assert not [p for p in tmp.iterdir() if p.name.startswith("planrun-ref-")]


def test_printed_text_is_made_printable(planrunner: Planrunner) -> None:
    evil = "plans/\x1b[31mred\x07.plan.yaml"
    repo(
        planrunner,
        {
            "plans/a.plan.yaml": plan('data: {file: c.json, path: n, equals: "a\\u202eb"}'),
            evil: plan("file_exists: [c.json]"),
        },
    )
    planrunner.makefile("plans/a.plan.yaml", plan('data: {file: c.json, path: n, equals: "\\u202ex"}'))
    planrunner.makefile("c.json", '{"n": 1}')
    (planrunner.path / evil).unlink()
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in result.outstr
    match(result, ["*task one: data.equals: *->*[WEAKENING]"])
    match(result, ["plans/*red*.plan.yaml: plan: plan file deleted  [WEAKENING]"])


# -- error cases: exit 4, one line, nothing runs -------------------------------------------------


SENTINEL_PLAN = plan("command: 'touch ran'")


def _assert_refused(planrunner: Planrunner, result: object, message: str) -> None:
    assert result.ret == ExitCode.USAGE_ERROR, result  # type: ignore[attr-defined]
    errors = [line for line in result.errstr.splitlines() if line.startswith("ERROR")]  # type: ignore[attr-defined]
    assert errors == [f"ERROR: {message}"], result
    assert result.no_traceback  # type: ignore[attr-defined]
    assert not (planrunner.path / "ran").exists()


def test_not_a_git_repository(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makefile("plans/a.plan.yaml", SENTINEL_PLAN)
    result = gate(planrunner)
    assert result.ret == ExitCode.USAGE_ERROR
    assert f"ERROR: --plans-from-ref: {planrunner.path} is not in a git repository" in result.errstr
    _assert_refused(planrunner, result, result.errstr.split("ERROR: ", 1)[1].strip())


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "nosuchbranch",
            "--plans-from-ref: unknown ref 'nosuchbranch' in {root} (a CI checkout may need a git fetch first)",
        ),
        ("main~5", "--plans-from-ref: unknown ref 'main~5' in {root} (a CI checkout may need a git fetch first)"),
        ("main^{tree}", "--plans-from-ref: 'main^{{tree}}' names a tree, not a commit"),
        ("main:plans/a.plan.yaml", "--plans-from-ref: 'main:plans/a.plan.yaml' names a blob, not a commit"),
        ("--output=x", "--plans-from-ref: '--output=x' is not a git ref"),
    ],
)
def test_a_bad_ref_is_a_usage_error(planrunner: Planrunner, ref: str, message: str) -> None:
    repo(planrunner, {"plans/a.plan.yaml": SENTINEL_PLAN})
    result = planrunner.run("--verify-only", f"--plans-from-ref={ref}", "plans")
    _assert_refused(planrunner, result, message.format(root=planrunner.path))


@pytest.mark.parametrize("how", ["folder-link", "file-link"])
def test_paths_outside_the_repository_are_a_usage_error(
    planrunner: Planrunner, tmp_path_factory: pytest.TempPathFactory, how: str
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "x.plan.yaml").write_text(SENTINEL_PLAN)
    repo(planrunner, {"plans/a.plan.yaml": SENTINEL_PLAN})
    target = outside if how == "folder-link" else outside / "x.plan.yaml"
    link = planrunner.path / ("elsewhere" if how == "folder-link" else "elsewhere.plan.yaml")
    link.symlink_to(target)
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "plans", link.name)
    _assert_refused(planrunner, result, f"--plans-from-ref: {link.name} is outside the repository {planrunner.path}")
    assert not (outside / "ran").exists()


def test_a_path_in_neither_tree_is_a_usage_error(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": SENTINEL_PLAN})
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "plans/nope.plan.yaml")
    _assert_refused(
        planrunner, result, "--plans-from-ref: plans/nope.plan.yaml is neither in main nor in the working tree"
    )


def test_allow_weakening_needs_plans_from_ref(planrunner: Planrunner) -> None:
    planrunner.makeplan("plans/a", SENTINEL_PLAN)
    result = planrunner.run("--verify-only", "--allow-weakening", "plans")
    _assert_refused(planrunner, result, "--allow-weakening needs --plans-from-ref REF")


@pytest.mark.parametrize("addopts", ['"--allow-weakening"', '["-v", "--allow-weak"]', '"--allow"'])
def test_allow_weakening_from_the_config_file_is_refused(planrunner: Planrunner, addopts: str) -> None:
    repo(planrunner, {"plans/a.plan.yaml": SENTINEL_PLAN})
    planrunner.makefile("pyproject.toml", f"[tool.planrun]\naddopts = {addopts}\n")
    result = gate(planrunner)
    _assert_refused(
        planrunner,
        result,
        f"{planrunner.path / 'pyproject.toml'}: --allow-weakening in addopts is refused (the change under review"
        " could set it); pass it on the command line",
    )


ROOT_CONFTEST = """\
def planrun_collection_modifyitems(session, items):
    session.deselect(list(items))
    items.clear()

def planrun_sessionfinish(session):
    session.exitstatus = 0
"""


def test_the_working_trees_rootdir_conftest_has_no_say(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]")})
    planrunner.makeconftest(ROOT_CONFTEST)  # would hide every item and turn any failure into a pass
    assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=1)
    match(result, ["conftest.py: conftest.py: added in the working tree (not used by the gate)  [WEAKENING]"])


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('[tool.planrun]\naddopts = "-k nothing"\n', "addopts: (none) -> '-k nothing'"),
        ('[tool.planrun]\npaths = ["elsewhere"]\n', "paths: (none) -> ['elsewhere']"),
        ('[tool.planrun]\nmax_file_bytes = 1\n[project]\nname = "x"\n', "max_file_bytes: (none) -> 1"),
    ],
)
def test_a_changed_config_table_is_a_weakening(planrunner: Planrunner, config: str, named: str) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    planrunner.makefile("pyproject.toml", config)
    planrunner.makefile("elsewhere/.keep", "")
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, [f"pyproject.toml: [tool.planrun]: differs from the ref ({named})  [WEAKENING]"])


def test_an_unrelated_config_change_is_not_listed(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    planrunner.makefile("pyproject.toml", '[project]\nname = "renamed"\n\n[tool.planrun]\n')
    result = gate(planrunner)
    assert result.ret == ExitCode.OK, result
    match(result, ["no weakening: *"])


def test_a_rootdir_below_the_repository_top(planrunner: Planrunner) -> None:
    repo(
        planrunner,
        {
            "sub/pyproject.toml": "[tool.planrun]\n",
            "sub/plans/a.plan.yaml": plan("answer: {file: answer.txt}"),
            "sub/conftest.py": CONFTEST,
            "sub/answer.txt": "41",
        },
    )
    planrunner.makefile("sub/conftest.py", CONFTEST.replace('fail("the answer is not 42")', "pass"))
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "sub/plans")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "the answer is not 42" in result.outstr
    match(result, ["*plans/a.plan.yaml:6:9", "conftest.py: conftest.py: differs from the ref*[WEAKENING]"])


def test_without_paths_the_whole_repository_is_collected(planrunner: Planrunner) -> None:
    repo(
        planrunner,
        {
            "plans/a.plan.yaml": plan("file_exists: [one.txt]"),
            "deep/er/b.plan.yaml": plan("file_exists: [one.txt]"),
            ".hidden/c.plan.yaml": plan("file_exists: [nope]"),
            "one.txt": "1",
        },
    )
    planrunner.makeplan("new/d", plan("file_exists: [one.txt]"))
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "-v")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=3)
    match(
        result, ["deep/er/b.plan.yaml::one PASSED*", "new/d.plan.yaml::one PASSED*", "plans/a.plan.yaml::one PASSED*"]
    )


def test_edge_cases_added_or_renamed(planrunner: Planrunner) -> None:
    cases = "edge_cases:\n  - case: empty\n    criteria:\n      - file_exists: [one.txt]\n"
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]") + cases, "one.txt": "1"})
    planrunner.makefile("plans/a.plan.yaml", plan("file_exists: [one.txt]") + cases.replace("empty", "blank"))
    result = gate(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    match(result, ["plans/a.plan.yaml: edge case 'empty': edge case removed  [WEAKENING]"])
    match(result, ["plans/a.plan.yaml:8: edge case 'blank': edge case added  [harmless]"])


@pytest.mark.parametrize(
    ("base", "changed", "named"),
    [
        ("'`python3 -c pass` passes'", "'`true` passes'", "command.run: 'python3 -c pass' -> 'true'"),
        ("'one.txt exists'", "'two.txt exists'", "file_exists.paths: ['one.txt'] -> ['two.txt']"),
        ("'one.txt exists'", "{file_exists: [one.txt]}", None),  # the same check, written as a mapping
        ("'one.txt exists'", "{file_exists: {paths: [one.txt]}}", None),
        (  # a default written out is no change
            "tests: {run: 'python3 junit.py 1 {junit}'}",
            "tests: {run: 'python3 junit.py 1 {junit}', min_tests: 1, must_pass: []}",
            None,
        ),
    ],
)
def test_sentences_compare_by_the_check_they_compile_to(
    planrunner: Planrunner, base: str, changed: str, named: str | None
) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan(base), "one.txt": "1", "two.txt": "2", "junit.py": JUNIT})
    planrunner.makefile("plans/a.plan.yaml", plan(changed))
    result = gate(planrunner)
    if named is None:
        assert result.ret == ExitCode.OK, result
        match(result, ["no weakening: *"])
    else:
        assert result.ret == ExitCode.TESTS_FAILED, result
        match(result, [f"plans/a.plan.yaml:6: task one: {named}  [WEAKENING]"])


def test_a_folder_only_the_working_tree_has(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    (planrunner.path / "fresh").mkdir()
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "fresh")
    assert result.ret == ExitCode.NO_TESTS_COLLECTED, result
    assert "planrun-ref-" not in result.outstr + result.errstr


def test_an_added_plan_is_served_by_the_refs_conftests(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1", "answer.txt": "42"})
    planrunner.makeconftest(CONFTEST, "plans/new")
    planrunner.makeplan("plans/new/b", plan("answer: {file: answer.txt}"))
    assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK  # the working tree's conftest has the kind
    result = gate(planrunner)
    assert result.ret == ExitCode.INTERRUPTED, result  # the ref has no such kind: a collection error
    result.stdout.fnmatch_lines(["plans/new/b.plan.yaml:6:*: unknown check kind 'answer'*"])
    match(result, ["plans/new/conftest.py: conftest.py: added in the working tree (not used by the gate)  [WEAKENING]"])


class _Reader:
    """A reporter that reads each plan's source at the end of the session (as an evidence record would)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, str, int]] = {}

    def planrun_sessionfinish(self, session: object, exitstatus: int) -> None:
        for cplan in session.plans:  # type: ignore[attr-defined]
            text = cplan.source_file.read_text()
            self.seen[cplan.display] = (str(cplan.path), text, session.exitstatus)  # type: ignore[attr-defined]


def test_reporters_read_the_refs_file_and_see_the_gates_exit_status(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    planrunner.makefile("plans/a.plan.yaml", plan("manual: look at one.txt"))
    reader = _Reader()
    result = planrunner.run("--verify-only", "--plans-from-ref", "main", "plans", plugins=[reader])
    assert result.ret == ExitCode.TESTS_FAILED, result
    path, text, status = reader.seen["plans/a.plan.yaml"]
    assert path == str(planrunner.path / "plans/a.plan.yaml")
    assert "file_exists: [one.txt]" in text and "manual" not in text
    assert status == ExitCode.TESTS_FAILED  # set before the reporters run


@pytest.mark.parametrize(
    "spelling", [["--plans-from-ref", "main"], ["--plans-from-ref=main"], ["--plans-from=main"], ["--plans-f", "main"]]
)
def test_the_working_trees_rootdir_conftest_is_not_even_imported(planrunner: Planrunner, spelling: list[str]) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    sentinel = planrunner.path / "imported.txt"
    planrunner.makeconftest(f"open({str(sentinel)!r}, 'w').close()\n")
    result = planrunner.run("--verify-only", *spelling, "plans")
    assert result.ret == ExitCode.TESTS_FAILED, result  # the new conftest is a weakening
    assert not sentinel.exists()
    assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK
    assert sentinel.exists()  # without the gate it is imported: the check above can fail


def test_plugins_the_working_trees_config_names_are_not_loaded(planrunner: Planrunner) -> None:
    repo(planrunner, {"plans/a.plan.yaml": plan("file_exists: [one.txt]"), "one.txt": "1"})
    sentinel = planrunner.path / "imported.txt"
    planrunner.makefile("evilplugin.py", f"open({str(sentinel)!r}, 'w').close()\n")
    planrunner.makefile("pyproject.toml", '[tool.planrun]\nplugins = ["evilplugin"]\n')
    import sys

    sys.path.insert(0, str(planrunner.path))
    try:
        result = gate(planrunner)
        assert result.ret == ExitCode.TESTS_FAILED, result  # the changed table is a weakening
        assert not sentinel.exists()
        assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK
        assert sentinel.exists()
    finally:
        sys.path.remove(str(planrunner.path))
        sys.modules.pop("evilplugin", None)
