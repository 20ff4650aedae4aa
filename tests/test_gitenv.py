"""run_git: how planrun runs git (no hooks, no signing, its own process group killed on a timeout)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from planrun import run_git

from .test_orphans import assert_gone

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    assert run_git(["init", "-q"], root, timeout=30).returncode == 0
    return root


def test_a_repository_cannot_make_git_run_its_programs(repo: Path, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    program = tmp_path / "program.sh"
    program.write_text(f"#!/bin/sh\ntouch {sentinel}\nexit 1\n")
    program.chmod(0o755)
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(program.read_text())
    hook.chmod(0o755)
    for key, value in (("commit.gpgsign", "true"), ("gpg.program", str(program)), ("core.fsmonitor", str(program))):
        assert run_git(["config", key, value], repo, timeout=30).returncode == 0
    (repo / "a.txt").write_text("a\n")
    run_git(["add", "a.txt"], repo, timeout=30)
    done = run_git(["commit", "-q", "-m", "x"], repo, timeout=30, env=IDENTITY)
    assert done.returncode == 0, done.stderr
    assert not sentinel.exists()
    assert isinstance(done.stdout, bytes)


def test_a_timeout_kills_git_and_what_it_started(repo: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "editor.pid"
    editor = f"echo $$ > {pid_file}; exec sleep 300; :"
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_git(["commit", "--allow-empty"], repo, timeout=1.0, env={**IDENTITY, "GIT_EDITOR": editor})
    assert time.monotonic() - start < 60  # a hang guard, not a speed claim
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # killed, it re-parents to this test run (a subreaper): reap it
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            break  # not ours: another process reaps it
        time.sleep(0.02)
    assert_gone(pid)


def test_input_reaches_git_and_a_missing_git_is_an_oserror(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = run_git(["hash-object", "--stdin"], repo, timeout=30, input=b"hello\n")
    assert done.stdout.strip() == b"ce013625030ba8dba906f756967f9e9ca394464a"
    monkeypatch.setenv("PATH", os.devnull)
    with pytest.raises(OSError):
        run_git(["status"], repo, timeout=30)
