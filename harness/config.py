"""Configuration: the command line, ``[tool.planrun]``, the rootdir and exit codes."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import enum
import io
import os
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from planrun.errors import UsageError
from planrun.statestore import relative_below

if TYPE_CHECKING:
    from planrun.pluginmanager import PlanrunPluginManager

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ExitCode(enum.IntEnum):
    """planrun's exit codes: the same numbers as pytest's."""

    #: Every selected item passed.
    OK = 0
    #: Some item failed, errored or was blocked.
    TESTS_FAILED = 1
    #: Interrupted (SIGINT/SIGTERM), or a plan did not load or compile.
    INTERRUPTED = 2
    #: planrun itself crashed: the only case with a traceback.
    INTERNAL_ERROR = 3
    #: Bad options, config, path or plugin.
    USAGE_ERROR = 4
    #: Nothing was collected or everything was deselected.
    NO_TESTS_COLLECTED = 5


DEFAULT_TASK_TIMEOUT = 600.0


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (exit 4) instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise ParserExit(status)


class ParserExit(Exception):
    """argparse is done (``--help`` was printed): leave with ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0 < value < 10**7):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def whole_number(minimum: int, zero_means: str = "") -> Callable[[str], int]:
    """An argparse ``type`` for counts: a whole number ``>= minimum`` (``zero_means`` says what 0 does)."""
    least = f"0 ({zero_means}) or more" if minimum == 0 and zero_means else f"at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {least}, got {text!r}")
        return value

    return parse


_maxfail = whole_number(0, "no limit")
_count = whole_number(1)


def _directory(text: str) -> Path:
    path = Path(text)
    if not text or not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    return path.resolve()


def make_parser() -> ArgumentParser:
    """The core options; plugins add theirs through ``planrun_addoption``."""
    p = ArgumentParser(
        prog="planrun",
        usage=(
            "planrun [options] [PATHS ...]\n"
            "       planrun {plan,review,lint,import,schema,status,graph,verify-evidence,merge-reports} ..."
        ),
        description="Run plan files: perform each task, assert its success criteria, report like pytest.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATHS", help="plan files or directories (default: [tool.planrun] paths, or .)"
    )
    g = p.add_argument_group("selection")
    g.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="run items whose plan id, task id or name match EXPR (and/or/not, substrings)",
    )
    g.add_argument(
        "-x", "--exitfirst", action="store_const", const=1, dest="maxfail", help="stop after the first failure"
    )
    g.add_argument(
        "--maxfail", type=_maxfail, metavar="N", default=0, help="stop after N failures or errors (0: no limit)"
    )
    g.add_argument(
        "--co",
        "--collect-only",
        action="store_true",
        dest="collectonly",
        help="collect and compile, show what each criterion compiled to, run nothing",
    )
    g = p.add_argument_group("running")
    g.add_argument(
        "--verify-only",
        "--no-exec",
        action="store_true",
        dest="verify_only",
        help="execute nothing: assert the criteria against the tree as it is",
    )
    g.add_argument("--executor", metavar="NAME", help="agent executor for tasks without run: steps")
    g.add_argument(
        "--timeout",
        type=_positive,
        metavar="S",
        default=None,
        help=f"per-task timeout in seconds (default {DEFAULT_TASK_TIMEOUT:g})",
    )
    g.add_argument(
        "--max-attempts", type=_count, metavar="N", default=None, help="attempts per task for agent executors"
    )
    g.add_argument("--strict", action="store_true", help="vacuous criteria fail; manual criteria are errors")
    g.add_argument(
        "--max-plan-bytes",
        type=_count,
        metavar="N",
        default=1 << 20,
        help="refuse plan files larger than this (default 1 MiB)",
    )
    g.add_argument(
        "--workdir",
        type=_directory,
        metavar="PATH",
        default=None,
        help="run every plan against this folder, overriding the plans' workdir (which must stay inside the rootdir)",
    )
    g.add_argument(
        "--max-file-bytes",
        type=_count,
        metavar="N",
        default=64 << 20,
        help="a check reads at most this much of one file (default 64 MiB; literal text is searched in any size)",
    )
    g = p.add_argument_group("reporting")
    g.add_argument("-v", "--verbose", action="count", default=0, help="list every item and criterion")
    g.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    g.add_argument(
        "--tb", choices=("long", "short", "line", "no"), default="long", help="failure detail (default long)"
    )
    g.add_argument("--color", choices=("yes", "no", "auto"), default="auto", help="color output")
    g = p.add_argument_group("plugins")
    g.add_argument(
        "-p",
        action="append",
        dest="plugins",
        metavar="NAME",
        default=[],
        help="load plugin NAME (module or entry point); -p no:NAME disables one",
    )
    g.add_argument("--version", action="store_true", help="print the version and the plugins, then exit")
    g = p.add_argument_group("caching")
    g.add_argument(
        "--cache-clear",
        action="store_true",
        dest="cache_clear",
        help="empty .planrun/cache/ (parsed plans, verdicts) at the start; the state store is kept",
    )
    return p


#: The config file names, in the order they are looked for in each folder.
CONFIG_FILES = ("planrun.toml", "pyproject.toml")
#: The keys ``[tool.planrun]`` knows; others are warnings (plugins may add theirs to this set).
KNOWN_INI_KEYS = {
    "paths",
    "executor",
    "model",
    "base_url",
    "judge",
    "judge_model",
    "plugins",
    "max_attempts",
    "timeout",
    "passenv",
    "addopts",
    # agent executors (issue 7): the role prompt, the key's variable, prices, agent CLIs, scope
    "executor_prompt",
    "api_key_env",
    "prices",
    "agent",
    "agent_cmd",
    "scope",
    "scope_allow",
    # the planner (issue 10): its role prompt
    "planner_prompt",
}


def positional_paths(args: list[str], parser: ArgumentParser | None = None) -> list[str]:
    """The PATHS of a command line (option values never count), read with ``parser``'s options (the core's)."""
    parser = make_parser() if parser is None else parser
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # --help
            known, _ = parser.parse_known_intermixed_args(args)
    except (UsageError, ParserExit):
        return []  # reported by the full parse, with the plugins' options known
    return list(known.paths)


def find_rootdir(paths: list[str], invocation_dir: Path) -> tuple[Path, Path | None]:
    """The rootdir and config file, by pytest's rule.

    The common ancestor of the given paths (their file parts, for node ids;
    paths that do not exist are ignored), then the nearest folder at or above
    it holding ``planrun.toml`` or ``pyproject.toml``; else the common
    ancestor itself. With no paths: the same search from ``invocation_dir``.
    """
    here = Path(os.path.abspath(invocation_dir))
    existing = []
    for arg in paths:
        path = Path(os.path.abspath(here / arg.partition("::")[0]))
        if os.path.exists(path):
            existing.append(path if path.is_dir() else path.parent)
    # Resolved, as every folder planrun compares with the rootdir (realpath: never an error on a loop).
    ancestor = Path(os.path.realpath(os.path.commonpath(existing) if existing else here))
    for folder in (ancestor, *ancestor.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file():
                return folder, candidate
    return ancestor, None


#: The largest config file read (a pyproject.toml holds settings, not data).
MAX_CONFIG_BYTES = 8 << 20


def read_inicfg(path: Path | None) -> dict[str, Any]:
    """``[tool.planrun]`` of ``path`` (all of ``planrun.toml``; its ``[tool.planrun]`` if it has one)."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # a config file is small: never read a huge one whole
        if len(raw) > MAX_CONFIG_BYTES:
            raise UsageError(f"{path}: over {MAX_CONFIG_BYTES} bytes, too big for a config file")
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    tool = data.get("tool")
    if tool is not None and not isinstance(tool, dict):
        raise UsageError(f"{path}: 'tool' must be a table, got {_toml_kind(tool)}")
    section = (tool or {}).get("planrun")
    if section is None and path.name == "planrun.toml":
        section = data
    if section is not None and not isinstance(section, dict):
        raise UsageError(f"{path}: [tool.planrun] must be a table, got {_toml_kind(section)}")
    return section or {}


def _toml_kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    return next((kind for t, kind in kinds.items() if isinstance(value, t)), type(value).__name__)


def ini_args(inicfg: dict[str, Any], key: str, source: str = "[tool.planrun]") -> list[str]:
    """A list-of-words option: a string (split like a shell) or a list of strings."""
    value = inicfg.get(key, [])
    if isinstance(value, str):
        return split_args(value, f"{source} {key}")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise UsageError(f"{source} {key} must be a string or a list of strings")


def split_args(text: str, source: str) -> list[str]:
    """``text`` split like a shell; an error names ``source`` (``PLANRUN_ADDOPTS``)."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{source}: cannot split {text!r}: {str(exc).lower()}") from None


def unknown_ini_keys(inicfg: dict[str, Any], inipath: Path | None, options: Iterable[str] = ()) -> list[str]:
    """Warnings for keys ``[tool.planrun]`` does not know, with a did-you-mean.

    :param options: the option names (argparse dests) of the run: a plugin's option is a known key.
    """
    found = []
    known = sorted(KNOWN_INI_KEYS.union(options))
    for key in inicfg:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        found.append(f"{inipath}: unknown config option {key!r}{hint}")
    return found


class Config:
    """Everything a run knows before it collects: options, rootdir, config file, plugins."""

    def __init__(
        self,
        pluginmanager: PlanrunPluginManager,
        option: argparse.Namespace,
        rootdir: Path,
        inipath: Path | None,
        inicfg: dict[str, Any],
        invocation_dir: Path,
    ) -> None:
        self.pluginmanager = pluginmanager
        self.hook = pluginmanager.hook
        self.option = option
        self.rootdir = rootdir
        self.inipath = inipath
        self.inicfg = inicfg
        self.invocation_dir = invocation_dir
        self.stash: dict[Any, Any] = {}
        #: Messages for the warnings summary (unknown config keys, what a copy skipped, ...).
        self.warnings: list[str] = unknown_ini_keys(inicfg, inipath, set(vars(option)))
        if option.timeout is None:
            timeout = inicfg.get("timeout", DEFAULT_TASK_TIMEOUT)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 10**7:
                raise UsageError(f"[tool.planrun] timeout must be a positive number of seconds, got {timeout!r}")
            option.timeout = float(timeout)
        attempts = inicfg.get("max_attempts")
        if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
            raise UsageError(f"[tool.planrun] max_attempts must be a whole number of at least 1, got {attempts!r}")
        passenv = inicfg.get("passenv", [])
        if not isinstance(passenv, list) or not all(isinstance(p, str) and p and "=" not in p for p in passenv):
            raise UsageError(f"[tool.planrun] passenv must be a list of variable names or patterns, got {passenv!r}")
        #: ``[tool.planrun] passenv``: more of planrun's environment for steps and commands (see a session's start).
        self.passenv: list[str] = passenv
        executor = inicfg.get("executor")
        if executor is not None and not isinstance(executor, str):
            raise UsageError(f"[tool.planrun] executor must be a string, got {executor!r}")
        #: ``[tool.planrun] executor``: used when neither ``--executor`` nor the plan names one.
        self.default_executor: str | None = executor

    @property
    def planrun_dir(self) -> Path:
        """``.planrun/`` in the rootdir: state, caches and transcripts (like ``.pytest_cache``)."""
        return self.rootdir / ".planrun"

    def getoption(self, name: str, default: Any = None) -> Any:
        return getattr(self.option, name, default)

    def display_path(self, path: Path) -> str:
        """A plan path as reports show it: relative to the rootdir when inside it."""
        found = relative_below(os.path.abspath(path), os.fspath(self.rootdir))
        return found if found is not None else str(path)
