"""Check kinds for planrun's own invariants: a conftest.py verifier, as any project can write one.

They serve the plans in this folder only (a conftest serves its folder and below).
"""

from __future__ import annotations

import re
import shlex

import tomllib

from planrun import ArgsModel, CheckKind, RelPath, fail, hookimpl


class EntryPointsArgs(ArgsModel):
    pyproject: RelPath = "pyproject.toml"  # type: ignore[assignment]
    plugins: RelPath = "plugins"  # type: ignore[assignment]


def entry_points_complete(args: EntryPointsArgs, ctx) -> None:  # type: ignore[no-untyped-def]
    """Every module in the plugins folder is an entry point named after it, and every entry point exists."""
    data = tomllib.loads(ctx.read_text(args.pyproject))
    points = data.get("project", {}).get("entry-points", {}).get("planrun", {})
    found, _ = ctx.glob(f"{args.plugins}/*.py")
    modules = {p.rsplit("/", 1)[-1][:-3] for p in found} - {"__init__"}
    missing = sorted(m for m in modules if points.get(m) != f"planrun.plugins.{m}")
    stale = sorted(k for k, v in points.items() if v.startswith("planrun.plugins.") and k not in modules)
    if missing or stale:
        unregistered, orphaned = ", ".join(missing) or "none", ", ".join(stale) or "none"
        fail(f"not entry points: {unregistered}; entry points without a module: {orphaned}")


class ReadmeArgs(ArgsModel):
    path: RelPath = "README.md"  # type: ignore[assignment]


_BLOCK = re.compile(r"^```(?:sh|shell|bash|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_commands(args: ReadmeArgs, ctx) -> None:  # type: ignore[no-untyped-def]
    """Every ``planrun ...`` line in the README's shell blocks names a subcommand or options planrun has."""
    from planrun.cli import SUBCOMMANDS
    from planrun.config import make_parser
    from planrun.pluginmanager import PlanrunPluginManager

    pm = PlanrunPluginManager()
    pm.load_plugins([], None, [])
    parser = make_parser()
    pm.hook.planrun_addoption.call_historic(kwargs=dict(parser=parser, pluginmanager=pm))
    known = {s for action in parser._actions for s in action.option_strings}
    problems = []
    seen = 0
    for block in _BLOCK.findall(ctx.read_text(args.path)):
        for line in block.splitlines():
            for part in re.split(r"&&|\|\||;|\|", line.removeprefix("$ ")):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    continue
                if not words or words[0] != "planrun":
                    continue
                seen += 1
                if len(words) > 1 and words[1] in SUBCOMMANDS:
                    continue  # a subcommand has its own options (its --help lists them)
                for word in words[1:]:
                    option = word.split("=", 1)[0]
                    if option.startswith("--") and option not in known:
                        problems.append(f"unknown option {option} in {line.strip()!r}")
                    elif len(words) > 1 and word == words[1] and not word.startswith("-") and "/" not in word:
                        if not word.endswith((".yaml", ".yml")) and word not in (".",):
                            problems.append(f"unknown subcommand {word!r} in {line.strip()!r}")
    if not seen:
        fail(f"{args.path} shows no planrun command")
    if problems:
        fail(f"{len(problems)} README command(s) do not exist", evidence="\n".join(problems))


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [
        CheckKind(
            "entry_points_complete",
            EntryPointsArgs,
            entry_points_complete,
            lambda a: "entry points complete",
            inprocess=True,
        ),
        CheckKind(
            "readme_commands",
            ReadmeArgs,
            readme_commands,
            lambda a: f"{a.path}: planrun commands exist",
            inprocess=True,
        ),
    ]
