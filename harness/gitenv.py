"""The environment planrun runs git with: allowlisted, no user or system config, no prompts."""

from __future__ import annotations

import os

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
