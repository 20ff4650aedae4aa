"""The execution agent's tools: read, write and search files and run commands, confined to the workdir.

Executors (``openai``, later the planner) expose these to a model; every
protection of SPEC section 10 lives here, once:

* Paths are relative to the workdir: absolute paths, ``~``, ``..``, empty
  paths and NUL bytes are refused before anything is opened. Reads open the
  file, then check what was opened (its real path through ``/proc/self/fd``
  must lie inside the workdir, compared by path components). Writes walk
  every folder from the workdir down with ``O_NOFOLLOW`` and never go through
  a symlink, not even one that stays inside: the refusal names the link's
  target, which the model can write instead.
* Protected paths (:data:`PROTECTED_PATTERNS` and the paths a caller passes)
  are refused by name, case-insensitively, whether they exist or not.
* A write never opens its target: the new text goes to a fresh file next to
  it (``O_CREAT | O_EXCL | O_NOFOLLOW``) that is renamed over it, so a FIFO,
  a device or a file swapped in at the last moment is never written into.
  Non-regular and hard-linked targets are refused.
* ``run_command`` runs in its own session with ``/dev/null`` as stdin, an
  environment built from an allowlist (no API keys, tokens or other secrets),
  a timeout and an output cap, through :func:`planrun.process.run_process`
  (no process outlives the call); with bubblewrap, inside a sandbox where the
  file system is read-only except the workdir, with no network and private
  ``/tmp``, ``/dev`` and ``/proc``.

Results are strings for the model; a refusal or failure is a :class:`ToolError`
whose one-line message goes back to the model.
"""

from __future__ import annotations

import codecs
import copy
import json
import math
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import unicodedata
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple

from planrun.errors import UsageError
from planrun.process import run_process
from planrun.reports import printable
from planrun.types import StepTimeout, compile_regex, forget_paths, time_limit

__all__ = [
    "NOT_SECRET",
    "PROTECTED_PATTERNS",
    "TOOL_SCHEMAS",
    "Protection",
    "ToolError",
    "Toolbox",
    "sandbox_name",
    "schemas",
]


class ToolError(Exception):
    """A tool call refused or failed: ``str(exc)`` is one line for the model (no traceback, no secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class Protection(NamedTuple):
    """One protected name.

    :param pattern: one or more path components separated by ``/``, each an
        :mod:`fnmatch` pattern, compared case-insensitively. A path is protected
        when its components contain the pattern's components one after the
        other, anywhere: the named file or folder and everything below it.
    :param reason: what it is, shown in the refusal.
    :param readable: ``read_file``, ``list_dir`` and ``search`` may look at it
        (writes are always refused).
    """

    pattern: str
    reason: str
    readable: bool


#: Paths the tools refuse by name. Unreadable ones hold what the agent must not
#: see: git internals (remote URLs with credentials), planrun's state and
#: transcripts and the plan files (other tasks' descriptions: context per task,
#: nothing more), and secrets files. The readable ones may guide the agent
#: (how CI runs the tests) but writing them would change what runs later: CI,
#: git hooks, and agent and editor config (instructions every later agent obeys).
PROTECTED_PATTERNS: tuple[Protection, ...] = (
    Protection(".git", "git internals", False),
    Protection(".planrun", "planrun state", False),
    Protection("*.plan.yaml", "a plan file", False),
    Protection("*.plan.yml", "a plan file", False),
    Protection(".env", "a secrets file", False),
    Protection(".env.*", "a secrets file", False),
    Protection(".netrc", "a secrets file", False),
    Protection(".pgpass", "a secrets file", False),
    Protection(".npmrc", "a secrets file", False),
    Protection(".pypirc", "a secrets file", False),
    Protection("*.pem", "a secrets file", False),
    Protection("*.key", "a secrets file", False),
    Protection("id_rsa*", "a secrets file", False),
    Protection("id_ecdsa*", "a secrets file", False),
    Protection("id_ed25519*", "a secrets file", False),
    Protection(".ssh", "a secrets folder", False),
    Protection(".aws", "a secrets folder", False),
    Protection(".gnupg", "a secrets folder", False),
    Protection(".github/workflows", "CI configuration", True),
    Protection(".github/actions", "CI configuration", True),
    Protection(".gitlab-ci.yml", "CI configuration", True),
    Protection(".circleci", "CI configuration", True),
    Protection("azure-pipelines.yml", "CI configuration", True),
    Protection("Jenkinsfile", "CI configuration", True),
    Protection(".travis.yml", "CI configuration", True),
    Protection("bitbucket-pipelines.yml", "CI configuration", True),
    Protection(".buildkite", "CI configuration", True),
    Protection(".pre-commit-config.yaml", "git hook configuration", True),
    Protection(".husky", "git hook configuration", True),
    Protection(".devcontainer", "editor configuration", True),
    Protection(".vscode", "editor configuration", True),
    Protection(".idea", "editor configuration", True),
    Protection(".claude", "agent configuration", True),
    Protection("CLAUDE.md", "agent instructions", True),
    Protection("CLAUDE.local.md", "agent instructions", True),
    Protection("AGENTS.md", "agent instructions", True),
    Protection("GEMINI.md", "agent instructions", True),
    Protection(".gemini", "agent configuration", True),
    Protection(".codex", "agent configuration", True),
    Protection(".cursor", "agent configuration", True),
    Protection(".cursorrules", "agent instructions", True),
    Protection(".windsurfrules", "agent instructions", True),
    Protection(".aider*", "agent configuration", True),
    Protection(".github/copilot-instructions.md", "agent instructions", True),
)

#: Names the ``.env.*`` pattern lets through: templates that hold no secret by convention.
NOT_SECRET = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist"})

_ENV_ALLOWED = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME"})
_ENV_DENIED = re.compile(
    r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|AUTH|COOKIE|SESSION)(_|$)"
    r"|^(AWS|AZURE|GCP|GOOGLE|GITHUB|GH|GITLAB|OPENAI|ANTHROPIC|HF|HUGGING|NPM|PYPI|DOCKER|SSH)_",
    re.IGNORECASE,
)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

_MAX_TIMEOUT = 600.0  # the most seconds a model may ask one command for (or the default timeout, if longer)
_MAX_WRITE = 8 << 20  # bytes write_file and edit_file write at most
_MAX_ENTRIES = 1000  # list_dir entries shown
_MAX_MATCHES = 200  # search matches shown
_MAX_LINE = 300  # characters of a matching line shown
_MAX_SEARCH_FILES = 20_000  # files search reads
_MAX_SEARCH_FILE = 4 << 20  # bytes of one file search reads (bigger files are skipped)
_MAX_SEARCH_BYTES = 256 << 20  # bytes search reads in all
_MAX_DEPTH = 64  # folders below this depth are not searched
_SEARCH_TIME = 20.0  # seconds a search may take (a catastrophic regex is stopped)
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache"})
_BINARY_PROBE = 8192

_O_PATH: int = getattr(os, "O_PATH", 0)
_PROC_FD = os.path.isdir("/proc/self/fd")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)

# -- protected names ------------------------------------------------------


def _fold(name: str) -> str:
    """A name as a case-insensitive file system may see it (NFC, case folded, Windows' trailing dots gone)."""
    folded = unicodedata.normalize("NFC", name).casefold()
    return folded.rstrip(" .") or folded


_FOLDED = tuple((tuple(_fold(p) for p in prot.pattern.split("/")), prot) for prot in PROTECTED_PATTERNS)
_NOT_SECRET = frozenset(_fold(n) for n in NOT_SECRET)


def _protection(parts: Sequence[str], extra: Sequence[tuple[tuple[str, ...], str]]) -> Protection | None:
    """The protection ``parts`` (workdir-relative components) fall under, unreadable ones first.

    ``extra``: more protected paths, as folded components and as shown.
    """
    folded = [_fold(p) for p in parts]
    for fixed, shown in extra:
        if tuple(folded[: len(fixed)]) == fixed:
            return Protection(shown, "a plan file", False)
    found: Protection | None = None
    for pattern, prot in _FOLDED:
        n = len(pattern)
        for i in range(len(folded) - n + 1):
            if all(fnmatchcase(folded[i + j], pattern[j]) for j in range(n)):
                if n == 1 and folded[i] in _NOT_SECRET:
                    continue
                if not prot.readable:
                    return prot
                found = found or prot
    return found


# -- paths ----------------------------------------------------------------


def _parts(path: object, what: str = "path") -> list[str]:
    """The components of a workdir-relative path; refuses what could name anything else."""
    if not isinstance(path, str):
        raise ToolError(f"{what} must be a string")
    if not path:
        raise ToolError(f"empty {what}")
    if "\x00" in path:
        raise ToolError(f"{what} contains a NUL byte")
    if path.startswith(("/", "~")):
        raise ToolError(f"{what} {_shown(path)} is absolute: paths are relative to the workdir")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ToolError(f"{what} {_shown(path)} uses '..': paths must stay inside the workdir")
    return parts


def _shown(text: str, width: int = 200) -> str:
    """``text`` for a message: control characters and newlines escaped, quoted, shortened."""
    text = printable(text).replace("\n", "\\n").replace("\t", "\\t")
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"'{text}'"


def _name(text: str) -> str:
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")


def _one_line(text: str, width: int = 1000) -> str:
    text = _name(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _inside(real: str, root: str) -> bool:
    """``real`` is ``root`` or below it, by path components (never a string prefix)."""
    return real == root or os.path.commonpath((root, real)) == root


def _realpath(path: str) -> str | None:
    """``os.path.realpath``, or ``None`` when the path changes while it is resolved."""
    try:
        return os.path.realpath(path)
    except OSError:
        return None


def _fd_realpath(fd: int, path: str) -> str | None:
    """The real path of what ``fd`` holds (opened as ``path``); ``None`` if it cannot be told for sure."""
    if _PROC_FD:
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            link = ""
        if link.startswith("/"):
            return link.removesuffix(" (deleted)")
    real = _realpath(path)
    if real is None:
        return None
    try:
        st, rst = os.fstat(fd), os.stat(real)
    except OSError:
        return None
    return real if (st.st_dev, st.st_ino) == (rst.st_dev, rst.st_ino) else None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _strerror(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


# -- glob for search --------------------------------------------------------


def _glob_regex(glob: str) -> re.Pattern[str]:
    """A regex for a glob over workdir-relative paths: ``*`` and ``?`` within a component, ``**/`` any folders.

    A glob without ``/`` matches the file's name at any depth (``*.py``).
    """
    if "/" not in glob:
        glob = "**/" + glob
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ToolError(f"invalid glob {_shown(glob)}: {exc}") from None


# -- the sandbox ------------------------------------------------------------

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


# -- tool schemas -----------------------------------------------------------


def _tool(name: str, description: str, properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(required),
                "additionalProperties": False,
            },
        },
    }


_PATH = {"type": "string", "description": "A path relative to the workdir (no absolute paths, no '..')."}

#: The OpenAI Chat Completions ``tools`` definitions: the six tools :class:`Toolbox`
#: performs, then ``report_blocked`` and ``finish``, which the executor handles.
TOOL_SCHEMAS: list[dict[str, Any]] = [
    _tool(
        "read_file",
        "Read a text file. Returns its exact text; a long file is cut and a last line says how to read on.",
        {
            "path": _PATH,
            "offset": {"type": "integer", "minimum": 0, "description": "Lines to skip from the start (default 0)."},
            "limit": {"type": "integer", "minimum": 1, "description": "The most lines to return."},
        },
        ["path"],
    ),
    _tool(
        "write_file",
        "Create or replace a text file with the given content (missing folders are created).",
        {"path": _PATH, "content": {"type": "string", "description": "The complete new content."}},
        ["path", "content"],
    ),
    _tool(
        "edit_file",
        "Replace one exact occurrence of old with new in a file. old must occur exactly once: "
        "include enough surrounding text to make it unique.",
        {
            "path": _PATH,
            "old": {"type": "string", "description": "The exact text to replace, whitespace included."},
            "new": {"type": "string", "description": "The text to put in its place."},
        },
        ["path", "old", "new"],
    ),
    _tool(
        "list_dir",
        "List a folder: one entry a line, folders end with '/', symlinks show their target.",
        {"path": {**_PATH, "description": "A folder relative to the workdir (default '.')."}},
        [],
    ),
    _tool(
        "search",
        "Search file contents with a Python regular expression, line by line, like grep. "
        "Returns path:line:text for each match (capped).",
        {
            "pattern": {"type": "string", "description": "A Python regular expression."},
            "path": {**_PATH, "description": "A folder or file to search (default '.')."},
            "glob": {"type": "string", "description": "Only files matching this glob, e.g. '*.py' or 'src/**/*.ts'."},
        },
        ["pattern"],
    ),
    _tool(
        "run_command",
        "Run a shell command (bash) in the workdir, with no network and no input; returns its exit "
        "status and output (stderr merged into stdout, long output cut in the middle).",
        {
            "command": {"type": "string", "description": "The command line."},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds before it is killed."},
        },
        ["command"],
    ),
    _tool(
        "report_blocked",
        "Stop: the task cannot be done as written (say exactly why). Use this instead of improvising.",
        {"reason": {"type": "string", "description": "What blocks the task."}},
        ["reason"],
    ),
    _tool(
        "finish",
        "The task is done: end with a short summary of what you changed.",
        {"summary": {"type": "string", "description": "A few sentences: what was changed, and where."}},
        ["summary"],
    ),
]

_READ_TOOLS = ("read_file", "list_dir", "search")
_WRITE_TOOLS = ("write_file", "edit_file", "run_command")
_EXECUTOR_TOOLS = ("report_blocked", "finish")


def schemas(readonly: bool = False) -> list[dict[str, Any]]:
    """The ``tools`` definitions for an agent: all of them, or without the writing tools when ``readonly``.

    A copy: the caller may change it (the toolbox validates against :data:`TOOL_SCHEMAS`).
    """
    return copy.deepcopy([s for s in TOOL_SCHEMAS if not (readonly and s["function"]["name"] in _WRITE_TOOLS)])


_PARAMS = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}


def _check_value(tool: str, key: str, spec: Mapping[str, Any], value: object) -> None:
    kind = spec["type"]
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):  # type: ignore[arg-type]
            raise ToolError(f"{tool}: argument {key!r} must be a finite number, not {value}")
    if not ok:
        article = "an" if kind[0] in "ai" else "a"
        raise ToolError(f"{tool}: argument {key!r} must be {article} {kind}, not {_json_type(value)}")
    assert isinstance(value, (str, int, float))
    if "minimum" in spec and value < spec["minimum"]:  # type: ignore[operator]
        raise ToolError(f"{tool}: argument {key!r} must be >= {spec['minimum']}, not {value}")
    if "exclusiveMinimum" in spec and value <= spec["exclusiveMinimum"]:  # type: ignore[operator]
        raise ToolError(f"{tool}: argument {key!r} must be > {spec['exclusiveMinimum']}, not {value}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# -- the toolbox ------------------------------------------------------------


class Toolbox:
    """The tools of one agent in one workdir.

    :param workdir: the only folder the tools read and write (its real path is used).
    :param protected: more paths refused like plan files (read and write): the
        plan files of the run, relative to the workdir or absolute.
    :param timeout: the default seconds of one ``run_command``; a model may ask
        for up to ``max(timeout, 600)``.
    :param max_output: characters of one tool result at most (``run_command``
        output keeps its head and tail; ``list_dir`` and ``search`` stop early).
    :param max_read: bytes ``read_file`` returns at most per call.
    :param sandbox: ``auto`` (bubblewrap when it works here), ``bwrap``
        (required: :class:`~planrun.UsageError` without it) or ``none``.
    :param env: variables added to the allowlisted environment of commands;
        a name that looks like a secret is a :class:`ValueError`.
    :param readonly: only ``read_file``, ``list_dir`` and ``search`` exist.
    :raises UsageError: see ``sandbox``.
    :raises ValueError: ``workdir`` is not a folder, or a bad limit or ``env``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        protected: Sequence[str] = (),
        timeout: float = 60,
        max_output: int = 64_000,
        max_read: int = 256_000,
        sandbox: str = "auto",
        env: Mapping[str, str] | None = None,
        readonly: bool = False,
    ) -> None:
        self.workdir = Path(os.path.realpath(workdir))
        self._root = os.fspath(self.workdir)
        try:
            st = os.stat(self._root)
        except OSError as exc:
            raise ValueError(f"workdir {workdir}: {_strerror(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"workdir {workdir} is not a folder")
        self._root_id = (st.st_dev, st.st_ino)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if max_output < 200 or max_read < 1:
            raise ValueError("max_output must be at least 200 and max_read at least 1")
        self.timeout = float(timeout)
        self.max_output = max_output
        self.max_read = max_read
        self.readonly = readonly
        self._protected_paths = [rel for p in protected for rel in self._protected_rels(os.fspath(p))]
        self._protected = tuple({tuple(map(_fold, rel)): "/".join(rel) for rel in self._protected_paths}.items())
        for key in env or {}:
            if _ENV_DENIED.search(key):
                raise ValueError(f"env: {key} looks like a secret; commands of an agent never get secrets")
        self._extra_env = dict(env or {})
        self._bwrap = _find_bwrap(sandbox)
        self._private: str | None = None
        self._cleanup: weakref.finalize | None = None
        self._tools: dict[str, Callable[..., str]] = {
            "read_file": self.read_file,
            "list_dir": self.list_dir,
            "search": self.search,
            "write_file": self.write_file,
            "edit_file": self.edit_file,
            "run_command": self.run_command,
        }

    def _protected_rels(self, path: str) -> list[tuple[str, ...]]:
        """A protected path as components inside the workdir: as written and as resolved (none if outside)."""
        full = os.path.normpath(os.path.join(self._root, path))
        found = []
        for candidate in (full, _realpath(full)):
            if candidate and candidate != self._root and _inside(candidate, self._root):
                found.append(tuple(os.path.relpath(candidate, self._root).split(os.sep)))
        return found

    def sandbox_name(self) -> str:
        """``"bubblewrap"`` when commands run inside bwrap, else ``"none"``."""
        return "bubblewrap" if self._bwrap else "none"

    def close(self) -> None:
        """Remove the private home and temp folder of commands (also done when the toolbox is collected)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Toolbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatch --

    def call(self, name: str, arguments: object) -> str:
        """Perform tool ``name`` with ``arguments`` (parsed JSON): its result, or :class:`ToolError`.

        Unknown tools, missing, unexpected and wrongly typed arguments are
        refused with a message saying which; ``null`` counts as an omitted
        optional argument.
        """
        if not isinstance(name, str) or name not in _PARAMS:
            known = ", ".join(s["function"]["name"] for s in schemas(self.readonly))
            raise ToolError(f"unknown tool {_shown(str(name), 60)}; the tools are: {known}")
        if name in _EXECUTOR_TOOLS:
            raise ToolError(f"{name} is handled by the executor, not by the toolbox")
        if self.readonly and name in _WRITE_TOOLS:
            raise ToolError(f"{name} is not available: this agent may only read")
        if not isinstance(arguments, dict):
            raise ToolError(f"{name}: arguments must be a JSON object, not {_json_type(arguments)}")
        params = _PARAMS[name]
        props: dict[str, Any] = params["properties"]
        unknown = sorted(str(k) for k in arguments if k not in props)
        if unknown:
            raise ToolError(f"{name}: unexpected argument {', '.join(map(repr, unknown))}; it takes {', '.join(props)}")
        given = {k: v for k, v in arguments.items() if v is not None}
        missing = [k for k in params["required"] if k not in given]
        if missing:
            raise ToolError(f"{name}: missing argument {', '.join(map(repr, missing))}")
        for key, value in given.items():
            _check_value(name, key, props[key], value)
        try:
            return self._tools[name](**given)
        except OSError as exc:  # what the tools did not foresee: still one line for the model
            raise ToolError(f"{name}: {_strerror(exc)}") from None

    def _writable(self, tool: str) -> None:
        if self.readonly:
            raise ToolError(f"{tool} is not available: this agent may only read")

    # -- opening --

    def _open_root(self) -> int:
        try:
            fd = os.open(self._root, _DIR_FLAGS)
        except OSError as exc:
            raise ToolError(f"the workdir cannot be opened: {_strerror(exc)}") from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._root_id:
            os.close(fd)
            raise ToolError("the workdir was moved or replaced")
        return fd

    def _refuse_protected(self, rel: str, parts: Sequence[str], write: bool) -> None:
        prot = _protection(parts, self._protected)
        if prot is not None and (write or not prot.readable):
            verb = "written" if write else "read"
            raise ToolError(f"{_shown(rel)} is protected ({prot.reason}, {prot.pattern}): it cannot be {verb}")

    def _open_read(self, path: str, want: str) -> tuple[int, os.stat_result, str]:
        """Open ``path`` to read (``want``: ``file``, ``dir`` or ``any``), then verify what was opened.

        Symlinks that stay inside the workdir are followed; the protections
        apply to the path as written and to the real path.
        :returns: the descriptor, its stat, and its real path relative to the workdir.
        """
        parts = _parts(path)
        rel = "/".join(parts) or "."
        self._refuse_protected(rel, parts, write=False)
        root_fd = self._open_root()
        os.close(root_fd)
        full = os.path.join(self._root, *parts)
        use_path = bool(_O_PATH) and _PROC_FD
        flags = (_O_PATH if use_path else os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY) | os.O_CLOEXEC
        try:
            fd = os.open(full, flags)
        except OSError as exc:
            real = _realpath(full)
            if real is None or not _inside(real, self._root):
                raise ToolError(f"{_shown(rel)} resolves outside the workdir") from None
            if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise ToolError(f"{_shown(rel)} does not exist") from None
            raise ToolError(f"{_shown(rel)} cannot be opened: {_strerror(exc)}") from None
        try:
            real = _fd_realpath(fd, full)
            if real is None or not _inside(real, self._root):
                raise ToolError(f"{_shown(rel)} resolves outside the workdir")
            real_rel = os.path.relpath(real, self._root)
            real_parts = [] if real_rel == "." else real_rel.split(os.sep)
            self._refuse_protected(rel, real_parts, write=False)
            st = os.fstat(fd)
            is_dir = stat.S_ISDIR(st.st_mode)
            if want == "file" and not stat.S_ISREG(st.st_mode):
                hint = ": use list_dir" if is_dir else ""
                raise ToolError(f"{_shown(rel)} is {_kind(st.st_mode)}{hint}")
            if want == "dir" and not is_dir:
                raise ToolError(f"{_shown(rel)} is not a directory")
            if want == "any" and not (is_dir or stat.S_ISREG(st.st_mode)):
                raise ToolError(f"{_shown(rel)} is {_kind(st.st_mode)}")
            if use_path:  # reopen the very object checked, through its /proc name
                try:
                    opened = os.open(f"/proc/self/fd/{fd}", (_DIR_FLAGS if is_dir else os.O_RDONLY | os.O_CLOEXEC))
                except OSError as exc:
                    raise ToolError(f"{_shown(rel)} cannot be read: {_strerror(exc)}") from None
                os.close(fd)
                fd = opened
                again = os.fstat(fd)
                if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
                    raise ToolError(f"{_shown(rel)} changed while it was opened")
            return fd, st, "/".join(real_parts) or "."
        except BaseException:
            os.close(fd)
            raise

    def _open_parent(self, path: str, *, create: bool) -> tuple[int, str, str]:
        """Walk to the folder of ``path`` for a write, never through a symlink; create missing folders.

        :returns: the folder's descriptor, the final name and the path as shown.
        """
        parts = _parts(path)
        rel = "/".join(parts)
        if not parts:
            raise ToolError(f"path {_shown(path)} is the workdir itself, not a file")
        if path.endswith("/"):
            raise ToolError(f"path {_shown(path)} ends with '/': name a file")
        self._refuse_protected(rel, parts, write=True)
        fd = self._open_root()
        try:
            for i, part in enumerate(parts[:-1]):
                here = "/".join(parts[: i + 1])
                try:
                    child = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise ToolError(f"{_shown(rel)} does not exist") from None
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as exc:
                        raise ToolError(f"folder {_shown(here)} cannot be created: {_strerror(exc)}") from None
                    child = self._open_dir_nofollow(fd, part, here)
                except OSError:
                    child = self._open_dir_nofollow(fd, part, here)
                os.close(fd)
                fd = child
            real = _fd_realpath(fd, os.path.join(self._root, *parts[:-1]))
            if real is None or not _inside(real, self._root):
                raise ToolError(f"{_shown(rel)} resolves outside the workdir")
            return fd, parts[-1], rel
        except BaseException:
            os.close(fd)
            raise

    def _open_dir_nofollow(self, fd: int, part: str, here: str) -> int:
        try:
            return os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except OSError:
                raise ToolError(f"{_shown(here)} cannot be opened: {_strerror(exc)}") from None
            if stat.S_ISLNK(st.st_mode):
                raise ToolError(self._symlink_refusal(fd, part, here)) from None
            raise ToolError(f"{_shown(here)} is {_kind(st.st_mode)}, not a folder") from None

    def _symlink_refusal(self, fd: int, name: str, here: str) -> str:
        """The refusal for a write through the symlink ``name`` in folder ``fd``, naming its target if inside."""
        msg = f"{_shown(here)} is a symlink: the tools never write through symlinks"
        real = _realpath(os.path.join(self._root, here))
        if real is None:
            return msg
        if _inside(real, self._root) and real != self._root:
            return f"{msg}; write its target {_shown(os.path.relpath(real, self._root))} instead"
        return f"{msg}, and it leads outside the workdir"

    def _target(self, fd: int, name: str, rel: str) -> os.stat_result | None:
        """The existing regular file a write would replace (``None``: none); refuses anything else."""
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be examined: {_strerror(exc)}") from None
        if stat.S_ISLNK(st.st_mode):
            raise ToolError(self._symlink_refusal(fd, name, rel))
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{_shown(rel)} is {_kind(st.st_mode)}: only regular files are written")
        if st.st_nlink > 1:
            raise ToolError(f"{_shown(rel)} has {st.st_nlink} hard links: writing it would change the others too")
        return st

    def _replace(self, fd: int, name: str, rel: str, data: bytes, old: os.stat_result | None) -> None:
        """Put ``data`` at ``name`` in folder ``fd``: a new file, renamed over the old one (never opened)."""
        tmp = f".{name[:200]}.{secrets.token_hex(4)}.planrun-tmp"
        try:
            tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fd)
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be written: {_strerror(exc)}") from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(tfd, view) :]
                if old is not None:
                    os.fchmod(tfd, stat.S_IMODE(old.st_mode) & 0o1777)  # no set-id bit survives an agent's edit
                    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                        try:
                            os.fchown(tfd, old.st_uid, old.st_gid)
                        except OSError:
                            pass
            finally:
                os.close(tfd)
            now = self._target(fd, name, rel)
            if (now is None) != (old is None) or (
                now is not None and old is not None and (now.st_dev, now.st_ino) != (old.st_dev, old.st_ino)
            ):
                raise ToolError(f"{_shown(rel)} changed while it was written; try again")
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            forget_paths()
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise ToolError(f"{_shown(rel)} cannot be written: {_strerror(exc)}") from None
            raise

    # -- the tools --

    def read_file(self, path: str, offset: int = 0, limit: int | None = None) -> str:
        """The exact text of a file, from line ``offset`` (0-based), at most ``limit`` lines and ``max_read`` bytes.

        When something is left out, a last line ``[planrun: ...]`` says which
        lines were shown and the ``offset`` to read on from. Binary files are
        refused. Undecodable bytes become U+FFFD, and a last line says so.
        """
        fd, st, _ = self._open_read(path, "file")
        rel = "/".join(_parts(path))
        with os.fdopen(fd, "rb") as f:
            if b"\x00" in f.read(_BINARY_PROBE):
                raise ToolError(f"{_shown(rel)} is a binary file ({st.st_size} bytes): read_file shows text only")
            f.seek(0)
            skipped = _skip_lines(f, offset)
            if skipped < offset:
                if skipped == 0 and st.st_size == 0:
                    return f"[planrun: {_name(rel)} is empty]"
                return f"[planrun: {_name(rel)} has {skipped} lines; offset {offset} is past its end]"
            data = f.read(self.max_read + 1)
            more = len(data) > self.max_read or bool(f.read(1))
        data = data[: self.max_read]
        long_line = more and b"\n" not in data
        if more and not long_line:
            data = data[: data.rindex(b"\n") + 1]
        lines = data.splitlines(keepends=True)
        if limit is not None and len(lines) > limit:
            lines, more = lines[:limit], True
            data = b"".join(lines)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(data, final=not long_line)
        notes = []
        try:
            codecs.getincrementaldecoder("utf-8")("strict").decode(data, final=not long_line)
        except UnicodeDecodeError:
            notes.append(f"[planrun: {_name(rel)} is not valid UTF-8: undecodable bytes are shown as U+FFFD]")
        if long_line:
            notes.append(
                f"[planrun: line {offset + 1} of {_name(rel)} is longer than {self.max_read} bytes: "
                f"only its start is shown; read on with offset={offset + 1}]"
            )
        elif more:
            notes.append(
                f"[planrun: showed lines {offset + 1}-{offset + len(lines)} of {_name(rel)} ({st.st_size} bytes); "
                f"read on with offset={offset + len(lines)}]"
            )
        if not text and not notes:
            return f"[planrun: {_name(rel)} is empty]"
        if notes and text and not text.endswith("\n"):
            text += "\n"
        return text + "\n".join(notes)

    def write_file(self, path: str, content: str) -> str:
        """Create or replace ``path`` with ``content`` (UTF-8); missing folders are created."""
        self._writable("write_file")
        data = _encode(content)
        fd, name, rel = self._open_parent(path, create=True)
        try:
            old = self._target(fd, name, rel)
            self._replace(fd, name, rel, data, old)
        finally:
            os.close(fd)
        return f"{'replaced' if old else 'created'} {_name(rel)} ({len(data)} bytes)"

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of ``old`` in ``path`` by ``new``; zero or several occurrences are refused."""
        self._writable("edit_file")
        if not isinstance(old, str) or not old:
            raise ToolError("edit_file: old must be a non-empty string (use write_file to create a file)")
        if not isinstance(new, str):
            raise ToolError("edit_file: new must be a string")
        fd, name, rel = self._open_parent(path, create=False)
        try:
            st = self._target(fd, name, rel)
            if st is None:
                raise ToolError(f"{_shown(rel)} does not exist (use write_file to create it)")
            text = self._read_for_edit(fd, name, rel, st)
            count = text.count(old)
            if count != 1:
                crlf = " (the file has CRLF line endings)" if count == 0 and "\r\n" in text else ""
                if count == 0:
                    raise ToolError(f"old text not found in {_shown(rel)} (0 matches){crlf}")
                raise ToolError(
                    f"old text occurs {count} times in {_shown(rel)} ({count} matches): "
                    "include more surrounding text to make it unique"
                )
            at = text.index(old)
            updated = text[:at] + new + text[at + len(old) :]
            self._replace(fd, name, rel, _encode(updated), st)
        finally:
            os.close(fd)
        line = text.count("\n", 0, at) + 1
        return f"edited {_name(rel)}: replaced 1 occurrence at line {line}"

    def _read_for_edit(self, fd: int, name: str, rel: str, st: os.stat_result) -> str:
        if st.st_size > _MAX_WRITE:
            raise ToolError(f"{_shown(rel)} is {st.st_size} bytes, over the {_MAX_WRITE}-byte edit limit")
        try:
            ffd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be read: {_strerror(exc)}") from None
        with os.fdopen(ffd, "rb") as f:
            now = os.fstat(f.fileno())
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
                raise ToolError(f"{_shown(rel)} changed while it was opened; try again")
            data = f.read(_MAX_WRITE + 1)
        if len(data) > _MAX_WRITE:
            raise ToolError(f"{_shown(rel)} is over the {_MAX_WRITE}-byte edit limit")
        if b"\x00" in data[:_BINARY_PROBE]:
            raise ToolError(f"{_shown(rel)} is a binary file: edit_file edits text only")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{_shown(rel)} is not valid UTF-8: edit_file edits UTF-8 text only") from None

    def list_dir(self, path: str = ".") -> str:
        """The entries of a folder, sorted: folders end with ``/``, symlinks show ``-> target``."""
        fd, _, _ = self._open_read(path, "dir")
        rel = "/".join(_parts(path)) or "."
        try:
            names: list[tuple[str, str]] = []
            total = 0
            with os.scandir(fd) as it:
                for entry in it:
                    total += 1
                    if total > 100 * _MAX_ENTRIES:
                        break
                    names.append((entry.name, self._entry_line(fd, entry)))
        except OSError as exc:
            raise ToolError(f"{_shown(rel)} cannot be listed: {_strerror(exc)}") from None
        finally:
            os.close(fd)
        if not names:
            return f"[planrun: {_name(rel)} is empty]"
        names.sort()
        lines = [line for _, line in names[:_MAX_ENTRIES]]
        if total > _MAX_ENTRIES:
            more = f"{total - _MAX_ENTRIES}" + ("+" if total > 100 * _MAX_ENTRIES else "")
            lines.append(f"[... {more} more entries not shown]")
        return _bound("\n".join(lines), self.max_output)

    @staticmethod
    def _entry_line(fd: int, entry: os.DirEntry[str]) -> str:
        name = _name(entry.name)
        try:
            if entry.is_symlink():
                return f"{name} -> {_name(os.readlink(entry.name, dir_fd=fd))}"
            if entry.is_dir(follow_symlinks=False):
                return f"{name}/"
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            return name
        return name if stat.S_ISREG(mode) else f"{name} [{_kind(mode).removeprefix('a ')}]"

    def search(self, pattern: str, path: str = ".", glob: str | None = None) -> str:
        """Lines matching the regex ``pattern`` in the files under ``path`` (only those matching ``glob``).

        Walks real folders only (no symlink is followed), skips binary, protected
        and unreadable files and the folders in ``_SKIPPED_DIRS`` (unless
        ``path`` names one), and stops at the caps, saying so. The regex runs
        under a time limit: a signal in the main thread; called from another
        thread, the search runs in a child process killed at the limit.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("search: pattern must be a non-empty string")
        try:
            regex = compile_regex(pattern)
        except ValueError as exc:
            raise ToolError(f"search: {exc}") from None
        globre = _glob_regex(glob) if glob else None
        seconds = min(self.timeout, _SEARCH_TIME)
        if threading.current_thread() is not threading.main_thread():
            return self._search_in_child(pattern, path, glob, seconds)
        fd, st, real_rel = self._open_read(path, "any")
        state = _SearchState(self.max_output, regex, globre)
        start = "" if real_rel == "." else real_rel
        try:
            with time_limit(seconds, f"search {pattern!r}"):
                if stat.S_ISDIR(st.st_mode):
                    self._search_dir(fd, start, state, 0)
                else:
                    state.file(fd, start)
        except StepTimeout:
            raise ToolError(f"search stopped: the regex {_shown(pattern, 80)} ran longer than {seconds:g}s") from None
        except _Enough:
            pass
        finally:
            os.close(fd)
        return state.result()

    def _search_in_child(self, pattern: str, path: str, glob: str | None, seconds: float) -> str:
        """:meth:`search` in a child Python process (where no signal can stop a regex in this one)."""
        request = {
            "workdir": self._root,
            "protected": ["/".join(p) for p in self._protected_paths],
            "timeout": seconds,
            "max_output": self.max_output,
            "args": [pattern, path, glob],
        }
        code = "import sys; from planrun.agenttools import _search_child; _search_child(sys.argv[1])"
        env = {"PATH": os.environ.get("PATH", _DEFAULT_PATH), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = run_process(
            [sys.executable, "-c", code, json.dumps(request)], cwd=self._root, timeout=seconds + 10, env=env
        )
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = None
        if done.timed_out or not isinstance(answer, dict):
            raise ToolError(f"search stopped: the regex {_shown(pattern, 80)} ran longer than {seconds:g}s")
        if "error" in answer:
            raise ToolError(str(answer["error"]))
        return str(answer["result"])

    def _search_dir(self, fd: int, rel: str, state: _SearchState, depth: int) -> None:
        try:
            with os.scandir(fd) as it:
                entries = sorted(
                    (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in it
                )
        except OSError:
            return
        for name, is_dir, is_file in entries:
            child_rel = f"{rel}/{name}" if rel else name
            prot = _protection(child_rel.split("/"), self._protected)
            if prot is not None and not prot.readable:
                continue
            if is_dir:
                if name in _SKIPPED_DIRS or depth >= _MAX_DEPTH:
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue
                try:
                    self._search_dir(child, child_rel, state, depth + 1)
                finally:
                    os.close(child)
            elif is_file and (state.glob is None or state.glob.match(child_rel)):
                try:
                    ffd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=fd)
                except OSError:
                    continue
                try:
                    state.file(ffd, child_rel)
                finally:
                    os.close(ffd)

    def run_command(self, command: str, timeout: float | None = None) -> str:
        """Run ``command`` with bash in the workdir; its exit status and output (stderr merged, capped).

        ``timeout`` defaults to the toolbox's and is capped at ``max(timeout, 600)``
        seconds. When it passes, the command and everything it started are killed.
        """
        self._writable("run_command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("run_command: command must be a non-empty string")
        if "\x00" in command:
            raise ToolError("run_command: command contains a NUL byte")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise ToolError(f"run_command: timeout must be a number of seconds, not {_json_type(timeout)}")
        limit = self.timeout if timeout is None else float(timeout)
        if not (limit > 0 and math.isfinite(limit)):
            raise ToolError(f"run_command: timeout must be a positive number of seconds, not {timeout!r}")
        limit = min(limit, max(self.timeout, _MAX_TIMEOUT))
        os.close(self._open_root())  # the workdir is still the one we confine to
        env = self._environment()
        shell = env["SHELL"]
        inner = ["/bin/sh", "-c", 'exec "$@" 2>&1', "sh"]
        inner += [shell, "--noprofile", "--norc", "-c", command] if shell != "/bin/sh" else [shell, "-c", command]
        argv = self._bwrap_argv() + inner if self._bwrap else inner
        try:
            result = run_process(argv, cwd=self._root, timeout=limit, env=env, max_output=self.max_output // 2)
        except OSError as exc:
            raise ToolError(f"run_command: the command could not be started: {_strerror(exc)}") from None
        finally:
            forget_paths()
        if result.timed_out:
            head = f"timed out after {limit:g}s: the command and everything it started were killed"
        elif result.returncode is not None and result.returncode < 0:
            head = f"killed by signal {-result.returncode}"
        else:
            head = f"exit code {result.returncode}"
        if result.stdout_omitted:
            head += f"; output {result.stdout_bytes} bytes, {result.stdout_omitted} not shown (the middle)"
        out = [head]
        if result.stdout:
            out.append(result.stdout.rstrip("\n"))
        elif not result.stderr:
            out[0] += " (no output)"
        if result.stderr:  # only bwrap or the wrapper write here: the command's stderr is merged into stdout
            out.append("stderr: " + result.stderr.rstrip("\n"))
        return _bound(printable("\n".join(out)), self.max_output)

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


class _Enough(Exception):
    """The search reached a cap."""


class _SearchState:
    """What a search found and read so far, with its caps."""

    def __init__(self, budget: int, regex: re.Pattern[str], glob: re.Pattern[str] | None) -> None:
        self.budget = budget - 200  # room for the closing notes
        self.regex = regex
        self.glob = glob
        self.lines: list[str] = []
        self.used = 0
        self.files = 0
        self.bytes = 0
        self.skipped_big = 0
        self.stopped = ""

    def file(self, fd: int, rel: str) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return
        if st.st_size > _MAX_SEARCH_FILE:
            self.skipped_big += 1
            return
        if self.files >= _MAX_SEARCH_FILES or self.bytes + st.st_size > _MAX_SEARCH_BYTES:
            self.stopped = f"stopped after reading {self.files} files ({self.bytes} bytes)"
            raise _Enough
        try:
            data = os.read(fd, _MAX_SEARCH_FILE + 1)
        except OSError:
            return
        self.files += 1
        self.bytes += len(data)
        if b"\x00" in data[:_BINARY_PROBE] or len(data) > _MAX_SEARCH_FILE:
            return
        text = data.decode("utf-8", errors="replace")
        shown_rel = _name(rel)
        for number, line in enumerate(text.splitlines(), 1):
            if self.regex.search(line):
                if len(self.lines) >= _MAX_MATCHES:
                    self.stopped = f"stopped at {_MAX_MATCHES} matches"
                    raise _Enough
                if len(line) > _MAX_LINE:
                    line = line[:_MAX_LINE] + "..."
                entry = f"{shown_rel}:{number}:{_name(line)}"
                if self.used + len(entry) + 1 > self.budget:
                    self.stopped = f"stopped at {self.budget} characters of results"
                    raise _Enough
                self.lines.append(entry)
                self.used += len(entry) + 1

    def result(self) -> str:
        notes = []
        if self.stopped:
            notes.append(f"[planrun: {self.stopped}; narrow the pattern, path or glob]")
        if self.skipped_big:
            notes.append(f"[planrun: {self.skipped_big} files over {_MAX_SEARCH_FILE} bytes not searched]")
        if not self.lines:
            return "\n".join(["no matches", *notes])
        return "\n".join(self.lines + notes)


def _search_child(request: str) -> None:
    """The child process of :meth:`Toolbox._search_in_child`: one search, its answer as JSON on stdout."""
    args = json.loads(request)
    box = Toolbox(Path(args["workdir"]), protected=args["protected"], timeout=args["timeout"], sandbox="none")
    box.max_output = args["max_output"]
    try:
        answer = {"result": box.search(*args["args"])}
    except ToolError as exc:
        answer = {"error": str(exc)}
    sys.stdout.write(json.dumps(answer))


def _skip_lines(f: Any, count: int) -> int:
    """Move ``f`` past ``count`` lines; how many it skipped (fewer at the end of the file)."""
    skipped = 0
    while skipped < count:
        pos = f.tell()
        chunk = f.read(1 << 16)
        if not chunk:
            return skipped
        start = 0
        while skipped < count:
            at = chunk.find(b"\n", start)
            if at < 0:
                break
            skipped += 1
            start = at + 1
        if skipped == count:
            f.seek(pos + start)
            return skipped
    return skipped


def _encode(content: str) -> bytes:
    if not isinstance(content, str):
        raise ToolError("content must be a string")
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("content is not valid Unicode text (lone surrogates)") from None
    if len(data) > _MAX_WRITE:
        raise ToolError(f"content is {len(data)} bytes, over the {_MAX_WRITE}-byte write limit")
    return data


def _bound(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its head and tail, the middle counted."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 0) // 2
    omitted = len(text) - 2 * keep
    return f"{text[:keep]}\n[... {omitted} characters not shown ...]\n{text[len(text) - keep :]}"
