"""--sandbox: a git worktree per plan on planrun/<plan-id>, one commit per passed task, the checkout untouched."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from planrun import ExitCode, hookimpl
from planrun.testing import Planrunner

GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "user",
    "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "user",
    "GIT_COMMITTER_EMAIL": "user@example.com",
}

THREE = """\
plan: p
tasks:
  - id: a
    name: First
    files: [a.txt]
    run: echo one > a.txt
    criteria: [{file_contains: {path: a.txt, text: one}}]
  - id: b
    name: Second
    files: [b.txt]
    run: echo two > b.txt
    depends_on: [a]
    criteria: [{file_exists: b.txt}, {command: {run: "grep -q two b.txt"}}]
  - id: c
    name: Third
    files: [src/c.txt]
    run: mkdir -p src && echo three > src/c.txt
    criteria: [{file_exists: src/c.txt}]
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file of the working tree (and .git/index), by content and mode; .git's other files left out."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d != ".planrun"]  # planrun's own state, like .pytest_cache
        if rel == ".git":
            dirnames[:] = []
            filenames = [f for f in filenames if f == "index"]
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d != ".planrun"]  # planrun's own caches, as .pytest_cache
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            data = os.readlink(path).encode() if os.path.islink(path) else Path(path).read_bytes()
            found[os.path.relpath(path, root)] = f"{st.st_mode:o}:{hashlib.sha256(data).hexdigest()}"
        found.update({os.path.relpath(os.path.join(dirpath, d), root) + "/": "dir" for d in dirnames})
    return found


@pytest.fixture
def repo(planrunner: Planrunner) -> Iterator[Path]:
    """A user's repository: the plan committed, a dirty file, an untracked file, and hooks that would interfere."""
    root = planrunner.path
    planrunner.makeplan("p", THREE)
    planrunner.makefile("README", "hello\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    (root / "README").write_text("hello, edited and not committed\n")
    (root / "notes.txt").write_text("untracked\n")
    hooks = root / ".git" / "hooks"
    for hook in ("pre-commit", "commit-msg", "post-checkout", "post-commit"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {root}/HOOK-{hook}-RAN\nexit 1\n")
        (hooks / hook).chmod(0o755)
    git(root, "config", "commit.gpgsign", "true")
    git(root, "config", "user.signingkey", "NOPE")
    yield root
    for line in git(root, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree ") and Path(line[9:]) != root:
            shutil.rmtree(Path(line[9:]).parent, ignore_errors=True)
    git(root, "worktree", "prune")


def commits(root: Path, branch: str) -> list[str]:
    return git(root, "log", "--format=%s|%an <%ae>|%cn <%ce>", f"HEAD..{branch}").splitlines()


def kept_path(output: str) -> Path:
    m = re.search(r"worktree kept at (\S+) \(", output)
    assert m, output
    return Path(m.group(1))


def test_three_passing_tasks_make_three_commits_and_the_checkout_is_untouched(
    planrunner: Planrunner, repo: Path
) -> None:
    before = tree_hashes(repo)
    status = git(repo, "status", "--porcelain=v1", "--untracked-files=all")
    head = git(repo, "rev-parse", "HEAD")
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.OK, result
    assert commits(repo, "planrun/p") == [
        "planrun: c Third|planrun <planrun@localhost>|planrun <planrun@localhost>",
        "planrun: b Second|planrun <planrun@localhost>|planrun <planrun@localhost>",
        "planrun: a First|planrun <planrun@localhost>|planrun <planrun@localhost>",
    ]
    assert git(repo, "log", "-1", "--format=%b", "planrun/p~1") == (
        "passed: file_exists b.txt\npassed: command `grep -q two b.txt`\n\n"
    )
    assert git(repo, "show", "planrun/p:src/c.txt") == "three\n"
    assert git(repo, "diff", "--name-only", "planrun/p~1", "planrun/p") == "src/c.txt\n"
    assert git(repo, "show", "planrun/p:README") == "hello\n"  # from HEAD, not the dirty tree
    # The user's checkout: byte-identical files and index, same status and HEAD, no hook ran.
    assert tree_hashes(repo) == before
    assert git(repo, "status", "--porcelain=v1", "--untracked-files=all") == status
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1  # removed
    result.stdout.fnmatch_lines(
        ["*- sandbox -*", f"p.plan.yaml: branch planrun/p of {repo} (3 task commits)", "*= 3 passed in *"]
    )
    assert "worktree kept" not in result.outstr


def test_a_failing_run_keeps_the_worktree_and_prints_its_path(planrunner: Planrunner, repo: Path) -> None:
    planrunner.makeplan("p", THREE.replace("echo two > b.txt", "echo two > b.txt && false"))
    before = tree_hashes(repo)
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.TESTS_FAILED
    path = kept_path(result.outstr)
    result.stdout.fnmatch_lines(
        [
            f"p.plan.yaml: branch planrun/p of {repo} (3 task commits: 2 passed, 1 did not pass)",
            f"p.plan.yaml: worktree kept at {path} (the plan did not pass)",
        ]
    )
    assert [c.split("|")[0] for c in commits(repo, "planrun/p")] == [
        "planrun: c Third",
        "planrun: b Second (failed)",
        "planrun: a First",
    ]
    # The failed task's leftovers are its own commit, never part of the next task's.
    assert git(repo, "diff", "--name-only", "planrun/p~2", "planrun/p~1") == "b.txt\n"
    assert git(repo, "diff", "--name-only", "planrun/p~1", "planrun/p") == "src/c.txt\n"
    assert git(repo, "log", "-1", "--format=%b", "planrun/p~1").startswith("step 1/1 exited with 1: ")
    assert (path / "b.txt").read_text() == "two\n"
    assert f"worktree {path}" in git(repo, "worktree", "list", "--porcelain")
    before.pop("p.plan.yaml")
    after = tree_hashes(repo)
    after.pop("p.plan.yaml")
    assert after == before


def test_keep_keeps_the_worktree_of_a_passing_run(planrunner: Planrunner, repo: Path) -> None:
    result = planrunner.run("--sandbox", "--keep")
    assert result.ret == ExitCode.OK
    path = kept_path(result.outstr)
    result.stdout.fnmatch_lines([f"p.plan.yaml: worktree kept at {path} (--keep)"])
    assert (path / "src" / "c.txt").read_text() == "three\n"
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "planrun/p\n"
    assert git(path, "status", "--porcelain=v1") == ""  # .planrun/ ignores itself


def test_keep_without_sandbox_is_a_usage_error(planrunner: Planrunner, repo: Path) -> None:
    result = planrunner.run("--keep")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.splitlines() == ["ERROR: --keep needs --sandbox (it keeps the sandbox's worktree)"]
    assert not (repo / "a.txt").exists()


def test_sandbox_without_git_is_a_usage_error_before_anything_runs(
    planrunner: Planrunner, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = planrunner.path.parent / "bin-without-git"
    bin_dir.mkdir()
    for tool in ("sh", "bash", "echo", "mkdir", "grep", "false", "touch"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.splitlines() == ["ERROR: --sandbox needs git, and git is not on PATH"]
    assert not (repo / "a.txt").exists()


def test_a_repository_without_commits_runs_in_a_copy_and_says_so(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", THREE)
    git(planrunner.path, "init", "-q")
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.OK
    m = re.search(r"is a git repository without commits: ran in a copy, a new repository at (\S+)", result.outstr)
    assert m, result
    try:
        assert len(git(Path(m.group(1)), "log", "--format=%s", "planrun/p").splitlines()) == 4
        assert not (planrunner.path / "a.txt").exists()
        assert git(planrunner.path, "branch", "--list") == ""
    finally:
        shutil.rmtree(Path(m.group(1)).parent, ignore_errors=True)


def test_a_second_run_makes_a_new_branch_and_says_so(planrunner: Planrunner, repo: Path) -> None:
    assert planrunner.run("--sandbox").ret == ExitCode.OK
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml: branch planrun/p-2 of * (3 task commits)",
            "p.plan.yaml: branch planrun/p exists: using planrun/p-2",
        ]
    )
    result = planrunner.run("--sandbox")
    result.stdout.fnmatch_lines(["p.plan.yaml: branch planrun/p exists: using planrun/p-3"])
    assert (
        len(commits(repo, "planrun/p")) == len(commits(repo, "planrun/p-2")) == len(commits(repo, "planrun/p-3")) == 3
    )


def test_a_workdir_outside_any_repository_runs_in_a_copy_and_says_so(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", THREE)
    planrunner.makefile("README", "hello\n")
    before = tree_hashes(planrunner.path)
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.OK
    m = re.search(r"is not a git repository: ran in a copy, a new repository at (\S+)", result.outstr)
    assert m, result
    copy = Path(m.group(1))
    try:
        result.stdout.fnmatch_lines(
            [
                "p.plan.yaml: branch planrun/p (3 task commits)",
                f"p.plan.yaml: {planrunner.path} is not a git repository: ran in a copy, a new repository at {copy}",
            ]
        )
        subjects = git(copy, "log", "--format=%s", "planrun/p").splitlines()
        assert subjects == [
            "planrun: c Third",
            "planrun: b Second",
            "planrun: a First",
            f"planrun: a copy of {planrunner.path}",
        ]
        assert (copy / "src" / "c.txt").exists() and (copy / "README").read_text() == "hello\n"
        assert tree_hashes(planrunner.path) == before  # nothing written to the original
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def test_a_plan_workdir_in_a_subfolder_runs_in_that_folder_of_the_worktree(planrunner: Planrunner) -> None:
    planrunner.makefile("proj/keep.txt", "k\n")
    planrunner.makeplan("p", THREE.replace("plan: p\n", "plan: p\nworkdir: proj\n"))
    git(planrunner.path, "init", "-q")
    git(planrunner.path, "add", "-A")
    git(planrunner.path, "commit", "-q", "-m", "base")
    result = planrunner.run("--sandbox")
    assert result.ret == ExitCode.OK, result
    assert git(planrunner.path, "show", "planrun/p:proj/src/c.txt") == "three\n"
    assert not (planrunner.path / "proj" / "a.txt").exists()


def test_the_scope_guard_runs_inside_the_sandbox(planrunner: Planrunner, repo: Path) -> None:
    planrunner.makeplan("p", THREE.replace("echo one > a.txt", "echo one > a.txt && echo x > stray.txt"))
    result = planrunner.run("--sandbox", "--scope=strict")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::a - scope: changed files outside the task's files: stray.txt"])
    assert not (repo / "stray.txt").exists()


def test_a_temp_workspace_plan_is_not_sandboxed_and_says_so(planrunner: Planrunner, repo: Path) -> None:
    planrunner.makeplan(
        "t",
        "plan: t\nworkspace: temp\ntasks:\n  - {id: x, name: X, files: [x], run: touch x, criteria: [{file_exists: x}]}\n",
    )
    result = planrunner.run("--sandbox", "t.plan.yaml")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        ["t.plan.yaml: workspace: temp runs in an empty folder that is thrown away; not sandboxed"]
    )
    assert "planrun/t" not in git(repo, "branch", "--list")


class Workspace:
    """A plugin that chooses where plans run (the ``planrun_make_workspace`` hook)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[str] = []

    @hookimpl
    def planrun_make_workspace(self, cplan: object, base: Path) -> object:
        @contextmanager
        def made() -> Iterator[Path]:
            self.events.append(f"enter {base.name}")
            self.folder.mkdir()
            yield self.folder
            self.events.append("exit")

        return made()


def test_a_plugin_can_choose_the_workspace(planrunner: Planrunner, tmp_path_factory: pytest.TempPathFactory) -> None:
    planrunner.makeplan("p", THREE)
    folder = tmp_path_factory.mktemp("elsewhere") / "ws"
    plugin = Workspace(folder)
    result = planrunner.run("-v", plugins=[plugin])
    assert result.ret == ExitCode.OK, result
    assert plugin.events == [f"enter {planrunner.path.name}", "exit"]
    assert (folder / "src" / "c.txt").exists() and not (planrunner.path / "a.txt").exists()
    result.stdout.fnmatch_lines([f"p.plan.yaml: workdir {folder}"])
