"""``planrun import SOURCE [-o OUT] [--force]``: another format's plan, written as a plan file.

The source is read by whichever ``planrun_collect_file`` hook knows its format
(the importers plugin for Markdown and Taskmaster, the core for YAML), so an
installed importer for another format works here too.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from planrun.atomic import write_atomic
from planrun.config import ExitCode, ParserExit
from planrun.errors import PlanError, PlanrunError, one_file
from planrun.model import Plan
from planrun.reports import printable

USAGE = """usage: planrun import SOURCE [-o OUT] [--force] [planrun options]

Convert a plan in another format (Markdown, Taskmaster tasks.json, ...) into a
planrun plan file. -o - or no -o writes to stdout; an existing OUT is only
replaced with --force. Other options (-p NAME, --max-plan-bytes N) are planrun's."""


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as ``|`` blocks; lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def plan_yaml(plan: Plan, schema: str | None) -> str:
    """``plan`` as a person would write it: schema key order, block style, the modeline on top."""
    data: Any = plan.model_dump(by_alias=True, exclude_defaults=True, mode="python")
    data.pop("$schema", None)
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    head = f"# yaml-language-server: $schema={schema}\n" if schema else ""
    return head + body


def _write(out: Path, text: str, force: bool) -> None:
    """:func:`planrun.write_atomic` into an existing folder; without ``force`` never over an existing file."""
    if not out.parent.is_dir():  # a typo in -o is an error, not a new folder
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(out.parent))
    write_atomic(out, text, mode=0o666, replace=force)  # 0o666 less the umask: a file a person wrote


def main(args: list[str], plugins: list[object] | None = None) -> int:
    """Run ``planrun import`` and return the exit code."""
    from planrun.cli import build_config

    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return ExitCode.OK if args else ExitCode.USAGE_ERROR
    out: str | None = None
    force = False
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "--output"):
            if i + 1 >= len(args):
                return _usage(f"{arg} needs a file name (or - for stdout)")
            out = args[i + 1]
            i += 1
        elif arg.startswith("--output="):
            out = arg.partition("=")[2]
        elif arg == "--force":
            force = True
        else:
            rest.append(arg)
        i += 1
    try:
        try:
            config = build_config(rest, plugins)
        except ParserExit as exc:
            return exc.status
        sources = list(config.option.paths)
        if len(sources) != 1:
            return _usage("planrun import takes one SOURCE file" + (f", got {len(sources)}" if sources else ""))
        source = one_file(sources[0])
        target = None if out is None or out == "-" else Path(out)
        if target is not None and (target.exists() or target.is_symlink()) and not force:
            return _usage(f"{out}: exists; pass --force to overwrite it")
        display = config.display_path(source)
        plan = config.hook.planrun_collect_file(file_path=str(source), config=config)
        if plan is None:
            raise PlanError("no importer knows this file's format", display)
    except PlanError as exc:
        for err in getattr(exc, "errors", None) or [exc]:
            print(f"ERROR: {printable(str(err))}", file=sys.stderr)
        return ExitCode.INTERRUPTED  # 2: the source does not load, as a collection error
    except PlanrunError as exc:
        return _usage(str(exc))
    schema_file = config.rootdir / "plan.schema.json"
    where = target.resolve().parent if target is not None else Path.cwd()
    text = plan_yaml(plan, os.path.relpath(schema_file, where))
    if target is None:
        from planrun.commandguard import write_data

        write_data(text)
        return ExitCode.OK
    try:
        _write(target, text, force)
    except FileExistsError:
        return _usage(f"{out}: exists; pass --force to overwrite it")
    except OSError as exc:
        return _usage(f"cannot write {out}: {exc.strerror}")
    print(f"wrote {printable(str(target))} ({len(plan.tasks)} tasks)", file=sys.stderr)
    return ExitCode.OK


def _usage(message: str) -> int:
    print(f"ERROR: {printable(message)}", file=sys.stderr)
    return ExitCode.USAGE_ERROR
