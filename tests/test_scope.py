"""The scope guard: a task changes only its files, never its plan or the files its criteria read."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, ExitCode, Task, hookimpl
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


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def init_repo(path: Path) -> None:
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", "base")


class Scripted(Executor):
    """An agent stand-in: performs the task's description, one ``write|append|delete PATH [TEXT]`` a line."""

    name = "scripted"
    max_attempts = 2

    def __init__(self) -> None:
        self.calls = 0

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        self.calls += 1
        for line in task.description.splitlines():
            op, _, rest = line.partition(" ")
            path, _, text = rest.partition(" ")
            target = context.workdir / path.encode().decode("unicode_escape")  # plans hold no control characters
            if op == "write":
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text + "\n")
            elif op == "append":
                with open(target, "a") as f:
                    f.write(text + "\n")
            elif op == "delete":
                target.unlink(missing_ok=True)  # a retry repeats the work
        return ExecutionResult(status="done", summary="done as told")


class OneShot(Scripted):
    """Not shell, never re-run: still an agent as far as the scope guard goes."""

    name = "oneshot"
    max_attempts = 1


class ScriptedPlugin:
    def __init__(self) -> None:
        self.executors: list[Scripted] = []

    def _make(self, cls: type[Scripted]) -> Scripted:
        executor = cls()
        self.executors.append(executor)
        return executor

    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [
            ExecutorKind("scripted", lambda config: self._make(Scripted)),
            ExecutorKind("oneshot", lambda config: self._make(OneShot)),
        ]


def plan(files: list[str], description: list[str], criteria: str, executor: str = "scripted") -> str:
    lines = "\n".join(f"      {d}" for d in description)
    return (
        f"plan: p\nexecutor: {executor}\ntasks:\n  - id: t\n    name: T\n    files: {files!r}\n"
        f"    description: |\n{lines}\n    criteria:\n{criteria}"
    )


OUT = "      - file_exists: out.txt\n"


@pytest.fixture(params=["git", "plain"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def setup(planrunner: Planrunner, kind: str, files: dict[str, str], text: str) -> None:
    for name, content in files.items():
        planrunner.makefile(name, content)
    planrunner.makeplan("p", text)
    if kind == "git":
        init_repo(planrunner.path)


def undo(planrunner: Planrunner) -> None:
    """Remove what the scripted task wrote, so that it changes the tree again."""
    for name in ("out.txt", "extra.txt"):
        (planrunner.path / name).unlink(missing_ok=True)


# -- undeclared files ---------------------------------------------------------


def test_an_undeclared_file_fails_the_task_naming_it(planrunner: Planrunner, kind: str) -> None:
    setup(planrunner, kind, {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "scope: changed files outside the task's files: extra.txt",
            "  outside the task's files:",
            "    added: extra.txt",
            "FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt",
        ]
    )
    assert "out.txt," not in result.outstr


def test_every_undeclared_path_is_listed_also_in_folders(planrunner: Planrunner, kind: str) -> None:
    setup(
        planrunner,
        kind,
        {"keep.txt": "k\n"},
        plan(["out.txt"], ["write out.txt hi", "write b.txt x", "write sub/deep/c.txt x", "append keep.txt more"], OUT),
    )
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "scope: changed files outside the task's files: b.txt, keep.txt, sub/deep/c.txt",
            "    added: b.txt",
            "    modified: keep.txt",
            "    added: sub/deep/c.txt",
        ]
    )


def test_a_deleted_file_fails_the_task_naming_it(planrunner: Planrunner, kind: str) -> None:
    setup(planrunner, kind, {"old.txt": "old\n"}, plan(["out.txt"], ["write out.txt hi", "delete old.txt"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["scope: changed files outside the task's files: old.txt", "    deleted: old.txt"])


def test_declared_globs_and_folders_cover_their_files(planrunner: Planrunner, kind: str) -> None:
    files = ["out.txt", "src/**/*.py", "docs/"]
    setup(
        planrunner,
        kind,
        {},
        plan(files, ["write out.txt hi", "write src/a/b.py x", "write src/c.py x", "write docs/x/y.md x"], OUT),
    )
    assert planrunner.run(plugins=[ScriptedPlugin()]).ret == ExitCode.OK
    planrunner.makeplan("p", plan(files, ["write out.txt hi", "write src/a/b.txt x", "write srcx/c.py x"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["scope: changed files outside the task's files: src/a/b.txt, srcx/c.py"])


def test_absolute_and_escaping_declarations_cover_nothing(planrunner: Planrunner) -> None:
    setup(planrunner, "plain", {}, plan(["out.txt", "/etc/x", "../etc/y"], ["write out.txt hi", "write etc/x z"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: etc/x"])


def test_a_file_a_criterion_asks_for_may_be_created_undeclared(planrunner: Planrunner, kind: str) -> None:
    setup(planrunner, kind, {}, plan([], ["write out.txt hi"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK
    assert "scope:" not in result.outstr


def test_an_existing_file_a_criterion_inspects_is_not_declared_by_that(planrunner: Planrunner, kind: str) -> None:
    setup(
        planrunner,
        kind,
        {"conf.txt": "old\n"},
        plan([], ["write conf.txt new"], "      - file_contains: {path: conf.txt, text: new}\n"),
    )
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: conf.txt"])


class Tidy(Scripted):
    """Writes a stray file on the first attempt; removes it when the feedback names it."""

    name = "tidy"
    feedback: list[str] = []

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        self.feedback.append(context.feedback)
        if context.attempt == 1:
            return super().execute(task, context)
        self.calls += 1
        if "extra.txt" in context.feedback:
            (context.workdir / "extra.txt").unlink()
        return ExecutionResult(status="done", summary="tidied")


class TidyPlugin(ScriptedPlugin):
    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [ExecutorKind("tidy", lambda config: self._make(Tidy))]


def test_a_stray_change_is_fed_back_and_the_retry_can_undo_it(planrunner: Planrunner, kind: str) -> None:
    Tidy.feedback = []
    setup(planrunner, kind, {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT, executor="tidy"))
    result = planrunner.run("-v", plugins=[TidyPlugin()])
    assert result.ret == ExitCode.OK, result
    assert Tidy.feedback[0] == ""
    assert Tidy.feedback[1].startswith(
        "Attempt 1 of 2 was not accepted: scope: changed files outside the task's files: extra.txt"
    )
    assert "added: extra.txt" in Tidy.feedback[1]
    assert not (planrunner.path / "extra.txt").exists()


def test_a_retry_is_judged_against_the_tree_before_the_first_attempt(planrunner: Planrunner, kind: str) -> None:
    # The same stray file on every attempt: the second attempt finds it already there, and is failed all the same.
    setup(planrunner, kind, {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT))
    plugin = ScriptedPlugin()
    result = planrunner.run("-v", plugins=[plugin])
    assert result.ret == ExitCode.TESTS_FAILED
    assert [e.calls for e in plugin.executors] == [2]
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt"])


@pytest.mark.parametrize(
    ("files", "description", "criteria"),
    [
        ({}, ["write out.txt hi", "append p.plan.yaml # more"], OUT),  # its plan
        (
            {"check.sh": "test -e out.txt\n"},
            ["write out.txt hi", "write check.sh true"],
            "      - command: sh check.sh\n",
        ),
    ],
    ids=["plan-file", "check-script"],
)
def test_a_change_that_judges_the_task_is_not_retried(
    planrunner: Planrunner, files: dict[str, str], description: list[str], criteria: str
) -> None:
    setup(planrunner, "plain", files, plan(["out.txt"], description, criteria))
    plugin = ScriptedPlugin()
    result = planrunner.run("-v", plugins=[plugin])
    assert result.ret == ExitCode.TESTS_FAILED
    assert [e.calls for e in plugin.executors] == [1]


# -- modes ------------------------------------------------------------------------


def test_scope_warn_passes_with_a_warning(planrunner: Planrunner, kind: str) -> None:
    setup(planrunner, kind, {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT))
    result = planrunner.run("--scope=warn", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "p.plan.yaml::t: scope: changed files outside the task's files: extra.txt",
            "*= 1 passed, 1 warning in *",
        ]
    )


def test_scope_from_the_config_and_the_option_wins(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", '[tool.planrun]\nscope = "warn"\n')
    setup(planrunner, "plain", {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=1, warnings=1)
    undo(planrunner)
    result = planrunner.run("--scope", "strict", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    undo(planrunner)
    result = planrunner.run("--scope", "off", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=1, warnings=0)
    assert "scope:" not in result.outstr


@pytest.mark.parametrize(
    "config, message",
    [
        ('scope = "loose"', "[tool.planrun] scope must be one of strict, warn, off, got 'loose'"),
        ("scope = 1", "[tool.planrun] scope must be one of strict, warn, off, got 1"),
        ('scope_allow = "*.lock"', "[tool.planrun] scope_allow must be a list of glob strings, got '*.lock'"),
        ("scope_allow = [1]", "[tool.planrun] scope_allow must be a list of glob strings, got [1]"),
    ],
)
def test_bad_scope_config_is_a_usage_error(planrunner: Planrunner, config: str, message: str) -> None:
    planrunner.makefile("pyproject.toml", f"[tool.planrun]\n{config}\n")
    setup(planrunner, "plain", {}, plan(["out.txt"], ["write out.txt hi"], OUT))
    plugin = ScriptedPlugin()
    result = planrunner.run(plugins=[plugin])
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.strip().splitlines() == [f"ERROR: {message}"]
    assert not (planrunner.path / "out.txt").exists() and plugin.executors == []


def test_bad_scope_option_is_a_usage_error(planrunner: Planrunner) -> None:
    setup(planrunner, "plain", {}, plan(["out.txt"], ["write out.txt hi"], OUT))
    result = planrunner.run("--scope=loose", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *--scope: invalid choice: 'loose' (choose from *strict*warn*off*)"])
    assert not (planrunner.path / "out.txt").exists()


def test_shell_tasks_default_to_warn(planrunner: Planrunner, kind: str) -> None:
    text = (
        "plan: p\ntasks:\n  - id: t\n    name: T\n    files: [out.txt]\n"
        "    run: echo hi > out.txt && echo x > extra.txt\n    criteria: [{file_exists: out.txt}]\n"
    )
    setup(planrunner, kind, {}, text)
    result = planrunner.run()
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        ["p.plan.yaml::t: scope: changed files outside the task's files: extra.txt", "*= 1 passed, 1 warning in *"]
    )
    undo(planrunner)
    result = planrunner.run("--scope=strict")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt"])


def test_an_executor_that_is_not_shell_is_an_agent_even_with_one_attempt(planrunner: Planrunner) -> None:
    setup(planrunner, "plain", {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT, "oneshot"))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt"])


# -- always a failure -------------------------------------------------------------

CHECK = {"check.sh": "test -f out.txt\n"}


@pytest.mark.parametrize("mode", ["strict", "warn", "off"])
@pytest.mark.parametrize(
    "run, script",
    [
        ("sh check.sh", "check.sh"),
        ("sh ./check.sh", "check.sh"),
        ("sh tests/check.sh", "tests/check.sh"),  # a folder named by the command covers its files
        ("sh -c 'sh check.sh'", "check.sh"),  # a word inside a quoted script
        ("cd tests && sh check.sh", "tests/check.sh"),  # not followed through cd: tests/ covers it
        ("env SCRIPT=check.sh sh -c 'sh \"$SCRIPT\"'", "check.sh"),
    ],
)
def test_rewriting_the_check_script_fails_whatever_the_mode(
    planrunner: Planrunner, kind: str, mode: str, run: str, script: str | None
) -> None:
    target = script or "check.sh"
    files = {"check.sh": "test -f out.txt\n", "tests/check.sh": "test -f out.txt\n"}
    criteria = f"      - command: {{run: {json.dumps(run)}}}\n"
    setup(planrunner, kind, files, plan(["out.txt"], ["write out.txt hi", f"write {target} exit 0"], criteria))
    result = planrunner.run(f"--scope={mode}", plugins=[ScriptedPlugin()])
    if script is None:  # not seen as a criterion's file: an ordinary undeclared change
        assert result.ret == (ExitCode.TESTS_FAILED if mode == "strict" else ExitCode.OK)
        return
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"scope: changed a file its criteria read: {script}",
            "  files its criteria read:",
            f"    modified: {script}",
            f"FAILED p.plan.yaml::t - scope: changed a file its criteria read: {script}",
        ]
    )


def test_a_test_folder_named_by_the_command_is_protected_file_by_file(planrunner: Planrunner, kind: str) -> None:
    files = {"tests/test_x.py": "assert True\n", "tests/helper.py": "X = 1\n"}
    criteria = "      - command: {run: 'python -m unittest discover tests'}\n"
    setup(planrunner, kind, files, plan(["out.txt"], ["write out.txt hi", "append tests/helper.py X = 2"], criteria))
    result = planrunner.run("--scope=off", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed a file its criteria read: tests/helper.py"])


def test_a_criterion_s_cwd_is_where_its_words_are_looked_up(planrunner: Planrunner) -> None:
    files = {"sub/check.sh": "true\n"}
    criteria = "      - command: {run: sh check.sh, cwd: sub}\n"
    setup(planrunner, "git", files, plan(["out.txt"], ["write out.txt hi", "write sub/check.sh exit 0"], criteria))
    result = planrunner.run("--scope=warn", plugins=[ScriptedPlugin()])
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed a file its criteria read: sub/check.sh"])


def test_a_declared_test_file_may_be_changed(planrunner: Planrunner, kind: str) -> None:
    files = {"tests/test_x.py": "assert True\n"}
    criteria = "      - command: {run: python tests/test_x.py}\n"
    setup(planrunner, kind, files, plan(["tests/test_x.py"], ["append tests/test_x.py assert 1"], criteria))
    assert planrunner.run(plugins=[ScriptedPlugin()]).ret == ExitCode.OK


@pytest.mark.parametrize("mode", ["strict", "warn", "off"])
def test_a_changed_plan_file_always_fails(planrunner: Planrunner, kind: str, mode: str) -> None:
    setup(planrunner, kind, {}, plan(["out.txt", "p.plan.yaml"], ["write out.txt hi", "append p.plan.yaml # x"], OUT))
    result = planrunner.run(f"--scope={mode}", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["    modified: p.plan.yaml", "FAILED p.plan.yaml::t - scope: changed a plan file: p.plan.yaml"]
    )


def test_any_plan_file_counts_even_one_not_collected(planrunner: Planrunner, kind: str) -> None:
    setup(planrunner, kind, {}, plan(["out.txt", "**"], ["write out.txt hi", "write later/next.plan.yml x"], OUT))
    result = planrunner.run("--scope=off", "p.plan.yaml", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed a plan file: later/next.plan.yml"])


def test_a_collected_plan_file_outside_the_workdir_is_watched_too(planrunner: Planrunner) -> None:
    """The plan lives outside the workdir; a task that reaches it through a link still changed it."""
    planrunner.makefile("work/.keep", "")
    os.symlink(planrunner.path, planrunner.path / "work" / "link")
    text = plan(["out.txt", "link/**"], ["write out.txt hi", "append link/p.plan.yaml # x"], OUT)
    planrunner.makeplan("p", text)
    result = planrunner.run("--workdir", "work", "--scope=off", "p.plan.yaml", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed a plan file: p.plan.yaml"])


# -- always allowed ------------------------------------------------------------


def test_lock_files_and_bytecode_are_allowed(planrunner: Planrunner, kind: str) -> None:
    writes = [
        "write out.txt hi",
        "write package-lock.json {}",
        "write web/yarn.lock x",
        "write Cargo.lock x",
        "write uv.lock x",
        "write bun.lockb x",
        "write __pycache__/m.cpython-311.pyc x",
        "write pkg/__pycache__/n.cpython-311.pyc x",
        "write pkg/old.pyc x",
    ]
    setup(planrunner, kind, {}, plan(["out.txt"], writes, OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK
    assert "scope:" not in result.outstr


def test_scope_allow_replaces_the_default(planrunner: Planrunner, kind: str) -> None:
    planrunner.makefile("pyproject.toml", '[tool.planrun]\nscope_allow = ["gen/**", "*.log"]\n')
    setup(planrunner, kind, {}, plan(["out.txt"], ["write out.txt hi", "write gen/a/b.c x", "write x/y.log x"], OUT))
    assert planrunner.run(plugins=[ScriptedPlugin()]).ret == ExitCode.OK
    planrunner.makeplan("p", plan(["out.txt"], ["write out.txt hi", "write uv.lock x"], OUT))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: uv.lock"])


# -- git specifics -----------------------------------------------------------------


def test_git_sees_a_file_that_was_dirty_before_and_changed_again(planrunner: Planrunner) -> None:
    setup(planrunner, "git", {"tracked.txt": "a\n"}, plan(["out.txt"], ["write out.txt hi"], OUT))
    (planrunner.path / "tracked.txt").write_text("dirty\n")
    (planrunner.path / "untracked.txt").write_text("new\n")
    assert planrunner.run(plugins=[ScriptedPlugin()]).ret == ExitCode.OK  # dirty, but not by the task
    planrunner.makeplan(
        "p", plan(["out.txt"], ["write out.txt hi", "append tracked.txt again", "append untracked.txt more"], OUT)
    )
    git(planrunner.path, "add", "p.plan.yaml")
    git(planrunner.path, "commit", "-qm", "plan")
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "scope: changed files outside the task's files: tracked.txt, untracked.txt",
            "    modified: tracked.txt",
            "    modified: untracked.txt",
        ]
    )


def test_git_sees_a_dirty_file_restored_and_a_tracked_file_deleted(planrunner: Planrunner) -> None:
    setup(planrunner, "git", {"a.txt": "a\n", "b.txt": "b\n"}, plan(["out.txt"], ["write out.txt hi"], OUT))
    (planrunner.path / "a.txt").write_text("dirty\n")
    planrunner.makeplan("p", plan(["out.txt"], ["write out.txt hi", "write a.txt a", "delete b.txt"], OUT))
    git(planrunner.path, "add", "p.plan.yaml")
    git(planrunner.path, "commit", "-qm", "plan")
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["    modified: a.txt", "    deleted: b.txt"])


def test_git_workdir_in_a_subfolder_names_paths_from_the_workdir(planrunner: Planrunner) -> None:
    planrunner.makefile("proj/keep.txt", "k\n")
    text = "plan: p\nworkdir: proj\n" + plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT)[8:]
    setup(planrunner, "git", {}, text)
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt"])
    assert (planrunner.path / "proj" / "extra.txt").exists()


def test_git_ignored_files_are_not_changes_and_the_index_is_untouched(planrunner: Planrunner) -> None:
    setup(
        planrunner, "git", {".gitignore": "build/\n"}, plan(["out.txt"], ["write out.txt hi", "write build/x x"], OUT)
    )
    index = planrunner.path / ".git" / "index"
    before = hashlib.sha256(index.read_bytes()).hexdigest(), index.stat().st_mtime_ns
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK
    assert (hashlib.sha256(index.read_bytes()).hexdigest(), index.stat().st_mtime_ns) == before


def test_user_git_config_cannot_change_what_the_guard_sees(
    planrunner: Planrunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A global excludes file or fsmonitor (the user's git config) cannot hide a change."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "ignore").write_text("extra.txt\n")
    (home / ".gitconfig").write_text(f"[core]\n\texcludesFile = {home}/ignore\n\tfsmonitor = {home}/monitor\n")
    setup(planrunner, "git", {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT))
    monkeypatch.setenv("HOME", str(home))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt"])


class Committing(Scripted):
    """An agent that commits its work (as agent CLIs do): the changes leave ``git status``."""

    name = "committing"

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        result = super().execute(task, context)
        git(context.workdir, "add", "-A")
        git(context.workdir, "commit", "-qm", "agent work")
        return result


class CommittingPlugin:
    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [ExecutorKind("committing", lambda config: Committing())]


@pytest.mark.parametrize("first_commit", [False, True])
def test_git_sees_changes_a_task_committed(planrunner: Planrunner, first_commit: bool) -> None:
    planrunner.makefile("old.txt", "old\n")
    planrunner.makefile("check.sh", "true\n")
    planrunner.makeplan(
        "p",
        plan(
            ["out.txt"],
            ["write out.txt hi", "write extra.txt x", "delete old.txt", "write check.sh exit 0"],
            OUT + "      - command: {run: sh check.sh}\n",
            "committing",
        ),
    )
    git(planrunner.path, "init", "-q")
    if not first_commit:
        git(planrunner.path, "add", "-A")
        git(planrunner.path, "commit", "-qm", "base")
    result = planrunner.run(plugins=[CommittingPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    assert git(planrunner.path, "status", "--porcelain") == ""
    if first_commit:  # everything the first commit holds was untracked before: only the dirty-file hashes tell
        result.stdout.fnmatch_lines(["*scope: changed a file its criteria read: check.sh*"])
        return
    result.stdout.fnmatch_lines(
        [
            "scope: changed a file its criteria read: check.sh; scope: changed files outside the task's files:"
            " extra.txt, old.txt",
            "    modified: check.sh",
            "    added: extra.txt",
            "    deleted: old.txt",
        ]
    )


def test_a_named_file_with_glob_characters_protects_only_itself(planrunner: Planrunner, kind: str) -> None:
    files = {"t[1].sh": "true\n", "t1.sh": "true\n"}
    criteria = "      - command: {run: \"sh 't[1].sh'\"}\n"
    setup(planrunner, kind, files, plan(["out.txt"], ["write out.txt hi", "write t1.sh exit 0"], criteria))
    result = planrunner.run("--scope=warn", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.OK  # t1.sh is not named: an ordinary change, a warning
    result.stdout.fnmatch_lines(["p.plan.yaml::t: scope: changed files outside the task's files: t1.sh"])
    planrunner.makeplan("p", plan(["out.txt"], ["write out.txt hi", "write t[1].sh exit 0"], criteria))
    result = planrunner.run("--scope=warn", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed a file its criteria read: t[[]1].sh"])


def test_the_walk_sees_a_rewrite_of_a_big_file_and_ignores_a_touch(planrunner: Planrunner) -> None:
    big = "x" * (2 << 20)
    setup(planrunner, "plain", {"big.bin": big, "small.txt": "s\n"}, plan(["out.txt"], ["write out.txt hi"], OUT))
    os.utime(planrunner.path / "small.txt", ns=(1, 1))
    planrunner.makeplan(
        "p", plan(["out.txt"], ["write out.txt hi", "write big.bin " + "y" * 10, "write small.txt s"], OUT)
    )
    result = planrunner.run(plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: big.bin"])


def test_git_variables_in_the_environment_cannot_point_the_guard_elsewhere(
    planrunner: Planrunner, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path_factory.mktemp("other")
    init_repo(other)
    setup(planrunner, "git", {}, plan(["out.txt"], ["write out.txt hi", "write extra.txt x"], OUT))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    result = planrunner.run(plugins=[ScriptedPlugin()])
    result.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - scope: changed files outside the task's files: extra.txt"])


# -- output safety ------------------------------------------------------------------


def test_hostile_file_names_are_printed_escaped(planrunner: Planrunner, kind: str) -> None:
    """Control characters, bidi overrides and newlines in a name cannot forge a line of the report."""
    name = "evil\\x1b[2J\\u202e\\nFAILED\\x20p.plan.yaml::x\\x20-\\x20forged.txt"
    setup(planrunner, kind, {}, plan(["out.txt"], ["write out.txt hi", f"write {name} x"], OUT))
    shown = "evil\\x1b[[]2J\\u202e\\nFAILED p.plan.yaml::x - forged.txt"
    for mode, line in [
        ("warn", f"p.plan.yaml::t: scope: changed files outside the task's files: {shown}"),
        ("strict", f"FAILED p.plan.yaml::t - scope: changed files outside the task's files: {shown}"),
    ]:
        for leftover in os.listdir(planrunner.path):
            if leftover.startswith("evil") or leftover == "out.txt":
                os.unlink(planrunner.path / leftover)
        result = planrunner.run(f"--scope={mode}", plugins=[ScriptedPlugin()])
        assert any("\x1b" in n and "\n" in n for n in os.listdir(planrunner.path))
        assert "\x1b" not in result.outstr and "\u202e" not in result.outstr
        assert not [x for x in result.outstr.splitlines() if x.startswith("FAILED p.plan.yaml::x")]
        result.stdout.fnmatch_lines([line])


def test_verify_only_never_snapshots_nor_fails_on_scope(planrunner: Planrunner) -> None:
    setup(planrunner, "plain", {"out.txt": "x\n", "extra.txt": "y\n"}, plan(["out.txt"], ["write extra.txt x"], OUT))
    plugin = ScriptedPlugin()
    result = planrunner.run("--verify-only", plugins=[plugin])
    assert result.ret == ExitCode.OK
    assert "scope:" not in result.outstr and all(e.calls == 0 for e in plugin.executors)
