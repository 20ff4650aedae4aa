"""The ``scope`` check kind: the files git reports as changed all match ``only``."""

from __future__ import annotations

import subprocess

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

from .conftest import CheckRun

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/dev/null", "PATH": "/usr/bin:/bin"}


def git(planrunner: Planrunner, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=planrunner.path,
        env=GIT_ENV,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(planrunner: Planrunner) -> Planrunner:
    planrunner.makefile("src/app.py", "x = 1\n")
    planrunner.makefile("README.md", "hi\n")
    planrunner.makeplan("c", "plan: c\ntasks:\n  - {id: t, name: T, criteria: [file_exists: README.md]}\n")
    git(planrunner, "init", "-q")
    git(planrunner, "add", "-A")
    git(planrunner, "commit", "-qm", "base")
    return planrunner


@pytest.mark.parametrize(
    "only",
    ["['src/**']", "['src/']", "['src/*.py', 'src/new/*.py', '*.plan.yaml']", "'**/*.py'", "{only: 'src/**'}"],
)
def test_changes_inside_only_pass(repo: Planrunner, check: CheckRun, only: str) -> None:
    (repo.path / "src/app.py").write_text("x = 2\n")
    repo.makefile("src/new/mod.py", "")
    result = check(f"scope: {only}")  # rewrites c.plan.yaml: a change *.plan.yaml and src/** cover
    if "plan.yaml" not in only:
        git(repo, "add", "c.plan.yaml")
        git(repo, "commit", "-qm", "plan")
        result = check(f"scope: {only}")
    assert result.ret == ExitCode.OK, result.outstr


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: (p / "README.md").write_text("changed\n"), "README.md"),  # modified
        (lambda p: (p / "README.md").unlink(), "README.md"),  # deleted
        (lambda p: (p / "stray.txt").write_text(""), "stray.txt"),  # untracked
        (lambda p: (p / "src/app.txt").write_text(""), "src/app.txt"),  # next to the allowed files
    ],
)
def test_stray_change_fails_naming_it(repo: Planrunner, check: CheckRun, change: object, named: str) -> None:
    check("scope: ['src/*.py']")  # write the plan, then commit it
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    change(repo.path)  # type: ignore[operator]
    result = check("scope: ['src/*.py']")
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines([f"  1 changed files outside src/*.py: {named}"])


def test_workdir_in_a_subfolder_names_changes_outside_it(planrunner: Planrunner) -> None:
    planrunner.makefile("other/x.txt", "")
    planrunner.makefile("work/a.txt", "")
    planrunner.makefile("work/c.plan.yaml", "plan: c\ntasks:\n  - {id: t, name: T, criteria: [scope: ['a.txt']]}\n")
    git(planrunner, "init", "-q")
    git(planrunner, "add", "-A")
    git(planrunner, "commit", "-qm", "base")
    (planrunner.path / "work/a.txt").write_text("changed")
    (planrunner.path / "other/x.txt").write_text("changed")
    result = planrunner.run("--verify-only", "work/c.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  1 changed files outside a.txt: other/x.txt (outside the workdir)"])


def test_outside_git_fails(check: CheckRun) -> None:
    result = check("scope: ['**']")
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  scope: needs a git repository*"])


@pytest.mark.parametrize("only", ["[]", "['/etc/*']", "['../x']"])
def test_bad_globs_are_collection_errors(check: CheckRun, only: str) -> None:
    result = check(f"scope: {only}")
    assert result.ret == ExitCode.INTERRUPTED, result.outstr
    result.stdout.fnmatch_lines(["*scope*"])
