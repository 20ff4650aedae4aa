"""How planrun runs git: an allowlisted environment, no user or system config, no prompts, no hooks."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

_ENV_KEEP = ("PATH", "TMPDIR", "SYSTEMROOT")


def git_env(**extra: str) -> dict[str, str]:
    """An allowlisted environment for git (``extra`` added, e.g. a commit identity).

    No user or system config (so hooks, aliases, fsmonitor and signing settings
    cannot change what git reports), no credential prompts, no optional index writes.
    """
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update(
        LC_ALL="C",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        HOME=os.devnull,
    )
    env.update(extra)
    return env


def git_argv(*args: str) -> list[str]:
    """``git ARGS`` with what a repository's own config could turn against planrun switched off.

    Hooks, fsmonitor (a program git would run) and commit/tag signing (a
    program too, and a prompt).
    """
    return [
        "git",
        "-c",
        "core.hooksPath=" + os.devnull,
        "-c",
        "core.fsmonitor=false",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "tag.gpgsign=false",
        *args,
    ]


def run_git(
    args: Sequence[str],
    cwd: os.PathLike[str] | str | None,
    *,
    timeout: float,
    input: bytes | None = None,  # noqa: A002 - subprocess's name
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run :func:`git_argv` ``ARGS`` in ``cwd`` with :func:`git_env` (plus ``env``), output captured as bytes.

    git runs in its own process group; on a timeout, Ctrl-C or any other
    exception while it runs the whole group is killed and the exception
    (:exc:`subprocess.TimeoutExpired` for a timeout) goes on. An
    :exc:`OSError` means git cannot run (not installed).
    """
    proc = subprocess.Popen(
        git_argv(*args),
        cwd=cwd,
        env=git_env(**dict(env or {})),
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
