"""``--sandbox``: each plan runs in a throwaway git worktree, one commit per task that passes.

The worktree is made from ``HEAD`` of the workdir's repository on a new
branch ``planrun/<plan-id>`` (``-2``, ``-3``... when that exists); a workdir
outside any repository is copied and the copy made a repository. After the
plan the worktree is removed and the branch stays, unless ``--keep`` or the
plan did not pass, then its path is printed. The user's checkout is never
touched: git writes only the branch and its ``.git/worktrees/`` entry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import ItemReport, UsageError, copy_workdir, hookimpl, ignored_folder, printable, run_git

if TYPE_CHECKING:
    import argparse
    from contextlib import AbstractContextManager

    from planrun.config import Config
    from planrun.session import CollectedPlan

IDENTITY = {
    "GIT_AUTHOR_NAME": "planrun",
    "GIT_AUTHOR_EMAIL": "planrun@localhost",
    "GIT_COMMITTER_NAME": "planrun",
    "GIT_COMMITTER_EMAIL": "planrun@localhost",
}
GIT_TIMEOUT = 120.0
_FAILED = frozenset({"failed", "error", "blocked", "interrupted"})
_COMMITTED = frozenset({"passed", "failed", "error", "blocked"})  # an interrupted task's tree is half-done


class GitError(Exception):
    """A git command failed; the message is its one-line reason."""


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``git ARGS`` in ``cwd`` (:func:`planrun.run_git`: its own process group, no hooks, no signing)."""
    try:
        done = run_git(args, cwd, timeout=GIT_TIMEOUT, env=IDENTITY)
    except OSError as exc:
        raise GitError(f"git cannot run: {exc.strerror or exc}") from None
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    if check and done.returncode != 0:
        reason = (err.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise GitError(f"git {args[0]} failed: {reason}")
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


def branch_label(plan_id: str) -> str:
    """The plan id as a branch name component: plain characters, no leading dot or dash, no ``.lock``."""
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", plan_id).strip("-") or "plan"
    return label[:60]


class SandboxRun:
    """One plan's sandbox: where it runs, its branch, the commits made, what the summary says."""

    def __init__(self, cplan: CollectedPlan, base: Path) -> None:
        self.display = cplan.display
        self.base = base
        self.branch = ""
        self.root: Path | None = None  # the worktree (or the copy)
        self.workdir: Path | None = None  # the plan's workdir inside it
        self.repo: Path | None = None  # the user's repository (None: a copy)
        self.commits = 0  # of tasks that passed
        self.failed_commits = 0  # of tasks that failed, errored or were blocked
        self.failed = False
        self.kept = False
        self.notes: list[str] = []

    def commit(self, report: ItemReport) -> None:
        """One commit per task performed: ``planrun: <task-id> <name>``, its criteria results in the body.

        A task that did not pass is committed too, marked ``(failed)`` (or
        ``(error)``, ``(blocked)``) with its reason, so that its leftovers are
        never counted as the work of the next task that passes.
        """
        assert self.root is not None
        passed = report.outcome == "passed"
        subject = f"planrun: {report.item_id} {report.name}" + ("" if passed else f" ({report.outcome})")
        lines = [] if passed or not report.message else [report.message, ""]
        lines.extend(f"{c.outcome}: {c.name}" for c in report.criteria)
        body = printable("\n".join(lines))
        git(self.root, "add", "-A", "--", ".", ":(exclude,glob)**/.planrun/**")
        args = [
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty",
            "--no-gpg-sign",
            "-m",
            printable(subject).replace("\n", " "),
        ]
        if body.strip():
            args += ["-m", body]
        git(self.root, *args)
        if passed:
            self.commits += 1
        else:
            self.failed_commits += 1


def _mark_planrun_dir(workdir: Path) -> None:
    """``.planrun/`` in the sandbox ignores itself, as ``.pytest_cache`` does: commits and ``git status`` skip it."""
    ignored_folder(workdir / ".planrun")


class Sandbox:
    """The ``planrun_make_workspace`` implementation and the per-task commits."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.keep = bool(config.option.keep)
        self.active: dict[str, SandboxRun] = {}
        self.runs: list[SandboxRun] = []
        self.unsandboxed: list[str] = []  # plans with ``workspace: temp``

    @hookimpl
    def planrun_make_workspace(self, cplan: CollectedPlan, base: Path) -> AbstractContextManager[Path] | None:
        if cplan.plan.workspace == "temp":
            self.unsandboxed.append(cplan.display)  # an empty folder, thrown away: nothing to branch from
            return None
        return self._workspace(cplan, base)

    @contextmanager
    def _workspace(self, cplan: CollectedPlan, base: Path) -> Iterator[Path]:
        run = SandboxRun(cplan, base)
        label = branch_label(cplan.plan.id or Path(cplan.display).name)
        tmp = Path(tempfile.mkdtemp(prefix=f"planrun-sandbox-{label[:30]}-"))
        try:
            try:
                self._create(run, label, tmp)
            except GitError as exc:
                raise UsageError(f"--sandbox: {cplan.display}: {exc}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        assert run.workdir is not None
        self.runs.append(run)
        self.active[cplan.display] = run
        try:
            yield run.workdir
        except BaseException:
            run.failed = True
            raise
        finally:
            del self.active[cplan.display]
            self._finish(run, tmp)

    def _create(self, run: SandboxRun, label: str, tmp: Path) -> None:
        base = run.base
        top = _toplevel(base)
        head = _head(top) if top is not None else None
        if top is None or head is None:
            why = "is not a git repository" if top is None else "is a git repository without commits"
            root = tmp / (base.name or "workdir")
            skipped = copy_workdir(base, root, avoid=tmp)
            run.branch = f"planrun/{label}"
            git(root, "init", "-q")
            git(root, "symbolic-ref", "HEAD", f"refs/heads/{run.branch}")
            _mark_planrun_dir(root)
            git(root, "add", "-A", "--", ".", ":(exclude,glob)**/.planrun/**")
            subject = f"planrun: a copy of {printable(str(base))}"
            git(root, "commit", "-q", "--no-verify", "--allow-empty", "-m", subject)
            run.root = run.workdir = root
            run.notes.append(f"{printable(str(base))} {why}: ran in a copy, a new repository at {printable(str(root))}")
            if skipped:
                run.notes.append(f"the copy skipped {len(skipped)} entries: {', '.join(skipped[:5])}")
            return
        run.repo = top
        wanted = f"planrun/{label}"
        branch, n = wanted, 1
        while _branch_exists(top, branch):
            n += 1
            branch = f"{wanted}-{n}"
        if branch != wanted:
            run.notes.append(f"branch {wanted} exists: using {branch}")
        run.branch = branch
        root = tmp / (top.name or "worktree")
        git(top, "worktree", "add", "-q", "-b", branch, str(root), head)
        run.root = root
        rel = os.path.relpath(os.path.realpath(base), os.path.realpath(top))
        run.workdir = root if rel == "." else root / rel
        run.workdir.mkdir(parents=True, exist_ok=True)  # a workdir folder with nothing committed in it
        _mark_planrun_dir(run.workdir)

    def _finish(self, run: SandboxRun, tmp: Path) -> None:
        run.kept = self.keep or run.failed or run.repo is None
        if run.kept:
            return
        assert run.repo is not None and run.root is not None
        try:
            git(run.repo, "worktree", "remove", "--force", "--force", str(run.root))
        except GitError:
            shutil.rmtree(run.root, ignore_errors=True)
            git(run.repo, "worktree", "prune", check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        run = self.active.get(report.plan)
        if run is None:
            return
        if report.outcome in _FAILED:
            run.failed = True
        if report.kind == "task" and report.executor is not None and report.outcome in _COMMITTED:
            try:
                run.commit(report)
            except GitError as exc:
                run.failed = True
                run.notes.append(f"could not commit task {report.item_id}: {exc}")

    @hookimpl
    def planrun_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.runs and not self.unsandboxed:
            return
        tr = terminalreporter
        tr.write_sep("-", "sandbox")
        for display in self.unsandboxed:
            tr.write_line(f"{display}: workspace: temp runs in an empty folder that is thrown away; not sandboxed")
        for run in self.runs:
            where = f" of {printable(str(run.repo))}" if run.repo is not None else ""
            total = run.commits + run.failed_commits
            tasks = "1 task commit" if total == 1 else f"{total} task commits"
            if run.failed_commits:
                tasks += f": {run.commits} passed, {run.failed_commits} did not pass"
            tr.write_line(f"{run.display}: branch {run.branch}{where} ({tasks})")
            for note in run.notes:
                tr.write_line(f"{run.display}: {note}")
            if run.kept and run.repo is not None:
                why = "--keep" if self.keep else "the plan did not pass"
                tr.write_line(f"{run.display}: worktree kept at {printable(str(run.root))} ({why})")


def _toplevel(path: Path) -> Path | None:
    try:
        done = git(path, "rev-parse", "--show-toplevel", check=False)
    except GitError:
        return None
    top = done.stdout.strip("\n")
    return Path(top) if done.returncode == 0 and top else None


def _head(top: Path) -> str | None:
    done = git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _branch_exists(top: Path, branch: str) -> bool:
    return git(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sandbox")
    group.add_argument(
        "--sandbox",
        action="store_true",
        default=False,
        help="run each plan in a throwaway git worktree on a new branch planrun/<plan-id> (a copy outside a git"
        " repository); each task that passes becomes one commit there",
    )
    group.add_argument(
        "--keep",
        action="store_true",
        default=False,
        help="with --sandbox: keep the worktree after the run (it is kept anyway when the plan does not pass)",
    )


@hookimpl
def planrun_configure(config: Config) -> None:
    if config.option.keep and not config.option.sandbox:
        raise UsageError("--keep needs --sandbox (it keeps the sandbox's worktree)")
    if config.option.sandbox:
        if shutil.which("git") is None:
            raise UsageError("--sandbox needs git, and git is not on PATH")
        config.pluginmanager.register(Sandbox(config), "sandbox-workspace")
