"""The command line: ``planrun [options] [PATHS]`` and ``planrun schema``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from argparse import ArgumentError, Namespace
from pathlib import Path
from typing import Any, NoReturn

from planrun.config import (
    ArgumentParser,
    Config,
    ExitCode,
    ParserExit,
    find_rootdir,
    ini_args,
    make_parser,
    positional_paths,
    read_inicfg,
    split_args,
)
from planrun.errors import PlanrunError, PluginError, UsageError
from planrun.pluginmanager import PlanrunPluginManager


def _preparse_plugins(args: list[str]) -> list[str]:
    """The ``-p`` values, read before the full parser exists (plugins add options)."""
    names: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-p" and i + 1 < len(args):
            names.append(args[i + 1])
            i += 1
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            names.append(arg[2:])
        i += 1
    return names


def _early_paths(args: list[str], plugins: list[object] | None) -> list[str]:
    """The PATHS of a command line, read before the rootdir is known: an option's value never counts.

    Read with the core options; when the line holds an option the core does
    not know, again with the options of every plugin that loads wherever the
    rootdir is (planrun's own, installed ones, ``-p``, plugin objects), so
    ``--junitxml reports/x.xml`` never makes ``reports/`` choose the rootdir.
    Options only a plugin of the rootdir adds (its ``conftest.py``, its
    ``[tool.planrun] plugins``) are checked after the full parse
    (:func:`_check_paths`).
    """
    parser = make_parser()
    if not _unknown_options(parser, args):
        return positional_paths(args)
    pm = PlanrunPluginManager()
    try:
        pm.load_plugins(_preparse_plugins(args), plugins)
        pm.hook.planrun_addoption.call_historic(kwargs=dict(parser=parser, pluginmanager=pm))
    except (PlanrunError, ArgumentError):  # the real load reports it
        return positional_paths(args)
    return positional_paths(args, parser)


def _unknown_options(parser: ArgumentParser, args: list[str]) -> bool:
    """Whether ``args`` holds an option ``parser`` does not have (up to ``--``)."""
    known = parser._option_string_actions
    for arg in args:
        if arg == "--":
            return False
        if arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in known:
            if not (arg[:2] in known and not arg.startswith("--")):  # -n2, -pNAME: a short option with its value
                return True
    return False


def _check_paths(line: _CommandLine, parser: ArgumentParser) -> None:
    """The rootdir was chosen from the right PATHS: no value of an option that only a plugin of the rootdir
    adds was taken for one (the rootdir, and with it the workdir, would depend on it)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            known, _ = parser.parse_known_intermixed_args(line.env_args + line.given)
    except (UsageError, ParserExit):
        return
    full = list(known.paths)
    if full == line.early:
        return
    if find_rootdir(full, line.invocation_dir) == (line.rootdir, line.inipath):
        return
    taken = next((p for p in line.early if p not in full), line.early[0] if line.early else "")
    raise UsageError(
        f"{taken!r} was read as a path to choose the rootdir, but it is the value of an option that a plugin"
        f" of that rootdir adds: write the option and its value as one argument (--option={taken}),"
        " or mark the rootdir with a planrun.toml or pyproject.toml"
    )


class _CommandLine:
    """What ``build_config`` reads before any plugin: the rootdir, the config file and the whole command line."""

    def __init__(self, args: list[str], plugins: list[object] | None = None) -> None:
        self.invocation_dir = Path.cwd()
        self.env_args = split_args(os.environ.get("PLANRUN_ADDOPTS", ""), "PLANRUN_ADDOPTS")
        self.given = list(args)
        # Only positional paths choose the rootdir (never the value of -k or another option).
        self.early = _early_paths(self.env_args + args, plugins)
        self.rootdir, self.inipath = find_rootdir(self.early, self.invocation_dir)
        self.inicfg = read_inicfg(self.inipath)
        self.source = f"{self.inipath} [tool.planrun]"
        self.ini_addopts = ini_args(self.inicfg, "addopts", self.source)
        self.args = self.ini_addopts + self.env_args + args
        # Under --plans-from-ref the change under review must not run code: not even the import of its
        # rootdir conftest.py or of the plugins its config file names (the ref's conftests serve the
        # ref's plans, and a changed [tool.planrun] table is a weakening: see plugins/gate.py).
        self.gated = any(_names(arg, "--plans-from-ref") for arg in self.args)
        self.ini_plugins = [] if self.gated else ini_args(self.inicfg, "plugins", self.source)

    def config(self, pm: PlanrunPluginManager, option: Namespace) -> Config:
        return Config(pm, option, self.rootdir, self.inipath, self.inicfg, self.invocation_dir)


def build_config(args: list[str], plugins: list[object] | None = None) -> Config:
    """Rootdir and config file, plugins, then the full command line."""
    return _build_config(_CommandLine(args, plugins), plugins)


def _build_config(line: _CommandLine, plugins: list[object] | None) -> Config:
    args = line.args
    parser = make_parser()
    pm = _plugin_manager(line, plugins, parser)
    try:
        option = parser.parse_intermixed_args(args)
    except UsageError as exc:
        raise _blame(
            parser, exc, [(f"{line.source} addopts", line.ini_addopts), ("PLANRUN_ADDOPTS", line.env_args)]
        ) from None
    pm.check_pending_plugins()
    _check_paths(line, parser)
    return line.config(pm, option)


def _plugin_manager(
    line: _CommandLine, plugins: list[object] | None, parser: ArgumentParser, *, import_builtins: bool = True
) -> PlanrunPluginManager:
    """The plugins (``-p``, config, environment, objects, the rootdir conftest), their options added to ``parser``."""
    pm = PlanrunPluginManager()
    pm.load_plugins(_preparse_plugins(line.args), plugins, line.ini_plugins, import_builtins=import_builtins)
    if not line.gated:
        pm._load_conftest(line.rootdir / "conftest.py")
    try:
        pm.hook.planrun_addoption.call_historic(kwargs=dict(parser=parser, pluginmanager=pm))
    except ArgumentError as exc:  # an option another plugin (or the core) has: -k, --timeout
        raise PluginError(f"a plugin's planrun_addoption failed: {exc}") from None
    return pm


def _version_config(line: _CommandLine, plugins: list[object] | None) -> Config | None:
    """The config of ``planrun --version`` without importing the built-ins, or None: :func:`build_config` decides.

    Taken only when the whole command line (addopts included) is core options
    spelt out in full with ``--version`` among them: a plugin's option, an
    abbreviation or a bad value needs every plugin's parser (and its error).
    The built-ins are listed from planrun's entry points (each module found,
    not imported); every other plugin (installed, ``-p``, ``[tool.planrun]
    plugins``, ``PLANRUN_PLUGINS``) and the rootdir ``conftest.py`` load as
    for a run, ``planrun_addoption`` included, so what is listed is what a run
    loads, and what fails to load fails here too (one exception: an option
    that clashes with a built-in's option, which only the built-in's import
    would show).
    """
    head = line.args[: line.args.index("--")] if "--" in line.args else line.args
    if "--version" not in head:
        return None
    parser = make_parser()
    known = parser._option_string_actions  # every option string of the core, spelt out
    if any(a.startswith("--") and a.split("=", 1)[0] not in known for a in head):
        return None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            option, unknown = parser.parse_known_intermixed_args(line.args)
    except (UsageError, ParserExit):
        return None
    if unknown or not option.version:
        return None
    pm = _plugin_manager(line, plugins, parser, import_builtins=False)
    pm.check_pending_plugins()
    return line.config(pm, option)


def _names(arg: str, option: str) -> bool:
    """Whether ``arg`` is ``option`` (``--opt``, ``--opt=V``) or an abbreviation argparse could take for it."""
    name = arg.split("=", 1)[0]
    return len(name) > 2 and name.startswith("--") and option.startswith(name)


def _blame(parser: ArgumentParser, exc: UsageError, sources: list[tuple[str, list[str]]]) -> UsageError:
    """An error from the whole command line, named after the addopts source that causes it alone."""
    for source, part in sources:
        if not part:
            continue
        try:
            parser.parse_intermixed_args(part)
        except UsageError as alone:
            return UsageError(f"{source}: {alone}")
        except ParserExit:
            pass
    return exc


def _version(config: Config) -> str:
    from planrun import __version__

    lines = [f"planrun {__version__}"]
    for name in config.pluginmanager.plugin_names():
        version = config.pluginmanager.versions.get(name, "")
        lines.append(f"  {name}" + (f" ({version})" if version else ""))
    return "\n".join(lines)


def main(args: list[str] | None = None, plugins: list[object] | None = None) -> int:
    """Run planrun in-process and return the exit code.

    :param args: the command line (default ``sys.argv[1:]``).
    :param plugins: plugin objects to register besides the loaded ones.
    """
    args = list(sys.argv[1:] if args is None else args)
    if args[:1] and args[0] in SUBCOMMANDS:
        import importlib

        module, _, function = SUBCOMMANDS[args[0]].partition(":")
        command = getattr(importlib.import_module(module), function)
        try:
            return int(command(args[1:], plugins))
        except PlanrunError as exc:  # a subcommand's own one-line error it did not catch itself
            from planrun.reports import printable

            print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
            return ExitCode.USAGE_ERROR
        except KeyboardInterrupt:
            print(f"ERROR: planrun {args[0]} interrupted", file=sys.stderr)
            return ExitCode.INTERRUPTED
        except Exception:  # planrun's bug: shown, as the session shows one (BrokenPipeError: see console_main)
            if isinstance(sys.exc_info()[1], BrokenPipeError):
                raise
            traceback.print_exc()
            print(
                f"INTERNAL ERROR: planrun {args[0]} crashed; please report this with the traceback above.",
                file=sys.stderr,
            )
            return ExitCode.INTERNAL_ERROR
    try:
        try:
            line = _CommandLine(args, plugins)
            config = _version_config(line, plugins) or _build_config(line, plugins)
        except ParserExit as exc:  # argparse after printing --help
            return exc.status
        if not config.option.version:
            config.hook.planrun_configure.call_historic(kwargs=dict(config=config))
    except PlanrunError as exc:
        from planrun.reports import printable

        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except KeyboardInterrupt:
        print("ERROR: interrupted while configuring", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except SystemExit as exc:  # a plugin's or conftest's hook asked Python to exit: nothing runs
        print(f"ERROR: a plugin or conftest.py raised SystemExit({exc.code!r}) while planrun started", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except Exception:  # a plugin's hook crashed while planrun started: its bug, shown as the session shows one
        traceback.print_exc()
        print(
            "INTERNAL ERROR: planrun crashed while configuring; please report this with the traceback above.",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL_ERROR
    if config.option.version:  # outside the try: a closed stdout is the console script's BrokenPipeError
        print(_version(config))
        return ExitCode.OK
    from planrun.session import wrap_session

    return wrap_session(config)  # it keeps the console script's handler (and its count), the same class


# ``planrun NAME ...``: the function that runs it, as "module:function", called with
# (args after NAME, plugin objects) and returning the exit code. Imported only when used.
SUBCOMMANDS: dict[str, str] = {
    "schema": "planrun.cli:_schema",
    "lint": "planrun.cli:_lint",
    "import": "planrun.importcmd:main",
    "verify-evidence": "planrun.evidence:main",
    "merge-reports": "planrun.mergereports:main",
    "plan": "planrun.planner:plan_main",
    "review": "planrun.planner:review_main",
    "status": "planrun.statuscmd:status",
    "graph": "planrun.statuscmd:graph",
}


def _lint(args: list[str], plugins: list[object] | None = None) -> int:
    from planrun.lint import main as lint_main

    return lint_main(args)


def _schema(args: list[str], plugins: list[object] | None = None) -> int:
    import warnings

    from pydantic.json_schema import PydanticJsonSchemaWarning

    from planrun.model import json_schema
    from planrun.reports import printable

    if args in (["-h"], ["--help"]):
        print("usage: planrun schema\n\nPrint the JSON Schema of the plan file format.")
        return ExitCode.OK
    if args:
        print(f"ERROR: planrun schema takes no arguments, got {printable(' '.join(args))}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    try:  # the loaded plugins' check kinds (built-ins, installed, -p via PLANRUN_PLUGINS, the rootdir conftest)
        config = build_config([], None)
        kinds = [kind for kinds in config.hook.planrun_register_checks(config=config) for kind in kinds or ()]
    except PlanrunError as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    with warnings.catch_warnings():  # a default such as MISSING is left out of the schema, as it should be
        warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
        checks = {k.name: k.args.model_json_schema() for k in kinds}
    from planrun.commandguard import write_data

    write_data(json.dumps(json_schema(checks), indent=2) + "\n", json_text=True)
    return ExitCode.OK


#: The handler :func:`console_main` installed (None in-process): signals seen so far are in its ``count``.
_interrupts: Any = None


def console_main() -> int:
    """The ``planrun`` console script: exit with :func:`main`'s code.

    SIGINT and SIGTERM get one handler for the whole process: the first
    interrupts the run (exit 2 after the partial report), any later one is
    absorbed until the process has exited. At the end they are ignored
    outright: Python's shutdown would otherwise restore the default
    dispositions, and a late signal would kill the process with 130 or 143.
    """
    global _interrupts
    import signal

    from planrun.interrupts import install_interrupts

    _interrupts = install_interrupts()
    try:
        code = main()
        _interrupts.count += 1  # from here on, a signal only waits for the exit
        sys.stdout.flush()
    except KeyboardInterrupt:  # outside the session (startup, the final flush)
        _interrupts.count += 1
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`planrun --co | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


def script() -> NoReturn:
    """The ``planrun`` command and ``python -m planrun``: :func:`console_main`, then a quick exit.

    A run over thousands of plans ends holding a million objects, and Python's
    own shutdown frees them one by one: a fifth of a second per thousand plans,
    for nothing. So once the exit handlers have run (``atexit``, which covers
    ``weakref.finalize`` and ``logging``) and the standard streams are flushed,
    the process ends with ``os._exit``, as mypy's does. A plugin that left a
    non-daemon thread running gets Python's normal shutdown, which waits for it.
    A plugin closes the files it opened (in ``planrun_sessionfinish`` at the latest).
    """
    code = int(console_main())
    threading = sys.modules.get("threading")
    if threading is not None:
        main_thread = threading.main_thread()
        if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
            sys.exit(code)
    import atexit

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # not CPython: its own shutdown
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader gone: nothing more can be said
            pass
    os._exit(code)
