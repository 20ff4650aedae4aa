"""Where ``run_command`` runs: the environment from an allowlist, and bubblewrap (probed once, and its argv)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Iterator

from planrun.agenttools.paths import _Confined, _protection, _realpath
from planrun.errors import UsageError
from planrun.types import RUNNING_ENV

_ENV_ALLOWED = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME"})
_ENV_DENIED = re.compile(
    r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|AUTH|COOKIE|SESSION)(_|$)"
    r"|^(AWS|AZURE|GCP|GOOGLE|GITHUB|GH|GITLAB|OPENAI|ANTHROPIC|HF|HUGGING|NPM|PYPI|DOCKER|SSH)_",
    re.IGNORECASE,
)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

_BWRAP_FLAGS = (
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)
_PROBED: dict[str, bool] = {}
_PROBE_LOCK = threading.Lock()


def _bwrap_works(bwrap: str) -> bool:
    """``bwrap`` starts a sandbox here, with every flag run_command uses (probed once per binary)."""
    with _PROBE_LOCK:
        if bwrap not in _PROBED:
            argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
            try:
                done = subprocess.run(
                    [*argv, *_BWRAP_FLAGS, "--", "true"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=20,
                    env={"PATH": os.environ.get("PATH", _DEFAULT_PATH)},
                )
                _PROBED[bwrap] = done.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _PROBED[bwrap] = False
        return _PROBED[bwrap]


def _find_bwrap(sandbox: str) -> str | None:
    """The bwrap binary ``sandbox`` (``auto``, ``bwrap``, ``none``) runs commands in, or ``None``."""
    if sandbox not in ("auto", "bwrap", "none"):
        raise UsageError(f"sandbox must be auto, bwrap or none, not {sandbox!r}")
    if sandbox == "none":
        return None
    bwrap = shutil.which("bwrap")
    if bwrap and _bwrap_works(bwrap):
        return bwrap
    if sandbox == "bwrap":
        why = "is not installed" if not bwrap else "does not work here (user namespaces disabled?)"
        raise UsageError(f"sandbox bwrap: bubblewrap {why}; install it or use sandbox auto or none")
    return None


def sandbox_name(sandbox: str = "auto") -> str:
    """What ``run_command`` runs in under ``sandbox``: ``"bubblewrap"`` or ``"none"`` (for the run header).

    :raises UsageError: ``sandbox`` is not ``auto``, ``bwrap`` or ``none``, or
        is ``bwrap`` and bubblewrap is missing or does not work here.
    """
    return "bubblewrap" if _find_bwrap(sandbox) else "none"


class _Sandboxed(_Confined):
    """The process side of ``run_command`` of a :class:`~planrun.agenttools.Toolbox`."""

    _bwrap: str | None
    _private: str | None
    _cleanup: weakref.finalize | None
    _extra_env: dict[str, str]

    def _environment(self) -> dict[str, str]:
        """The environment of a command: the allowlist, the private home and temp folder, the caller's extras."""
        private = self._private_dir()
        env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOWED or k.startswith("LC_")}
        env = {k: v for k, v in env.items() if not _ENV_DENIED.search(k)}
        env.setdefault("PATH", _DEFAULT_PATH)
        env.setdefault("LANG", "C.UTF-8")
        env.update(
            HOME=os.path.join(private, "home"),
            TMPDIR=os.path.join(private, "tmp"),
            TERM="dumb",
            NO_COLOR="1",
            SHELL=shutil.which("bash", path=env["PATH"]) or "/bin/sh",
        )
        env.update(self._extra_env)
        env[RUNNING_ENV] = "1"  # a pytest the agent runs does not collect plans again
        return env

    def _private_dir(self) -> str:
        if self._private is None:
            private = tempfile.mkdtemp(prefix="planrun-agent-")
            os.mkdir(os.path.join(private, "home"))
            os.mkdir(os.path.join(private, "tmp"))
            self._private = private
            self._cleanup = weakref.finalize(self, shutil.rmtree, private, True)
        return self._private

    def _bwrap_argv(self) -> list[str]:
        """bwrap around a command: the file system read-only but the workdir and the private folder.

        ``/dev``, ``/proc`` and ``/tmp`` are the sandbox's own; no network,
        PID, IPC or UTS namespace is shared; every capability is dropped (a
        root user cannot remount ``/`` writable); the sandbox dies with us.
        Existing protected folders and files at the top of the workdir (and
        the protected paths given) are bound read-only inside it.
        """
        assert self._bwrap is not None and self._private is not None
        argv = [self._bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        argv += ["--bind", self._root, self._root, "--bind", self._private, self._private]
        for ro in self._readonly_inside():
            argv += ["--ro-bind", ro, ro]
        return [*argv, *_BWRAP_FLAGS, "--chdir", self._root, "--"]

    def _readonly_inside(self) -> Iterator[str]:
        seen: list[str] = []
        try:
            with os.scandir(self._root) as it:
                top = [e.name for e in it]
        except OSError:
            top = []
        candidates = [[n] for n in top] + [[".github", "workflows"], [".github", "actions"]]
        candidates += [list(p) for p in self._protected_paths]
        for parts in candidates:
            if _protection(parts, self._protected) is None:
                continue
            full = os.path.join(self._root, *parts)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and full not in seen:
                if _realpath(full) == full:  # no symlink on the way (a case-folded name would not be)
                    seen.append(full)
                    yield full
