"""The command line: ``planrun [options] [PATHS]`` and ``planrun schema``."""

from __future__ import annotations

import json
import os
import sys
import traceback
from argparse import ArgumentError
from pathlib import Path

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
from planrun.reports import printable


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


def build_config(args: list[str], plugins: list[object] | None = None) -> Config:
    """Rootdir and config file, plugins, then the full command line."""
    invocation_dir = Path.cwd()
    env_args = split_args(os.environ.get("PLANRUN_ADDOPTS", ""), "PLANRUN_ADDOPTS")
    # Only positional paths choose the rootdir (never the value of -k or another option).
    rootdir, inipath = find_rootdir(positional_paths(env_args + args), invocation_dir)
    inicfg = read_inicfg(inipath)
    source = f"{inipath} [tool.planrun]"
    ini_addopts = ini_args(inicfg, "addopts", source)
    args = ini_addopts + env_args + args
    pm = PlanrunPluginManager()
    # Under --plans-from-ref the change under review must not run code: not even the import of its
    # rootdir conftest.py or of the plugins its config file names (the ref's conftests serve the
    # ref's plans, and a changed [tool.planrun] table is a weakening: see plugins/gate.py).
    gated = any(_names(arg, "--plans-from-ref") for arg in args)
    pm.load_plugins(_preparse_plugins(args), plugins, [] if gated else ini_args(inicfg, "plugins", source))
    if not gated:
        pm._load_conftest(rootdir / "conftest.py")
    parser = make_parser()
    try:
        pm.hook.planrun_addoption.call_historic(kwargs=dict(parser=parser, pluginmanager=pm))
    except ArgumentError as exc:  # an option another plugin (or the core) has: -k, --timeout
        raise PluginError(f"a plugin's planrun_addoption failed: {exc}") from None
    try:
        option = parser.parse_intermixed_args(args)
    except UsageError as exc:
        raise _blame(parser, exc, [(f"{source} addopts", ini_addopts), ("PLANRUN_ADDOPTS", env_args)]) from None
    pm.check_pending_plugins()
    return Config(pm, option, rootdir, inipath, inicfg, invocation_dir)


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
    from planrun.session import wrap_session

    args = list(sys.argv[1:] if args is None else args)
    if args[:1] and args[0] in SUBCOMMANDS:
        import importlib

        module, _, function = SUBCOMMANDS[args[0]].partition(":")
        command = getattr(importlib.import_module(module), function)
        return int(command(args[1:], plugins))
    try:
        try:
            config = build_config(args, plugins)
        except ParserExit as exc:  # argparse after printing --help
            return exc.status
        if config.option.version:
            print(_version(config))
            return ExitCode.OK
        config.hook.planrun_configure.call_historic(kwargs=dict(config=config))
    except PlanrunError as exc:
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
    return wrap_session(config)


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
    print(json.dumps(json_schema(checks), indent=2))
    return ExitCode.OK


def console_main() -> int:
    """The ``planrun`` console script: exit with :func:`main`'s code.

    SIGINT and SIGTERM get one handler for the whole process: the first
    interrupts the run (exit 2 after the partial report), any later one is
    absorbed until the process has exited. At the end they are ignored
    outright: Python's shutdown would otherwise restore the default
    dispositions, and a late signal would kill the process with 130 or 143.
    """
    import signal

    from planrun.session import install_interrupts

    handler = install_interrupts()
    try:
        code = main()
        handler.count += 1  # from here on, a signal only waits for the exit
        sys.stdout.flush()
    except KeyboardInterrupt:  # outside the session (startup, the final flush)
        handler.count += 1
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`planrun --co | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code
