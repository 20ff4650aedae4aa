"""The ``scope`` check kind: every file git reports as changed matches one of the ``only`` globs.

"Changed" is what ``git status`` reports against ``HEAD`` in the workdir's
repository: modified, added, deleted and untracked files (ignored files are
not). Changes elsewhere in the repository fail too, named by their
repository-relative path. Outside a git repository the criterion fails.

Globs are workdir-relative: ``*``, ``?`` and ``[...]`` match within one path
component, ``**`` any number of components, and a pattern ending with ``/``
everything under that folder.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import Field, field_validator, model_validator

from planrun import ArgsModel, CheckContext, CheckKind, StepTimeout, fail, git_argv, git_env, hookimpl

MAX_NAMED = 10
_OWN = (".planrun/",)  # planrun's own files in the workdir


class ScopeArgs(ArgsModel):
    only: list[str] = Field(min_length=1)
    timeout: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"only": [value]}
        if isinstance(value, list):
            return {"only": value}
        if isinstance(value, dict) and isinstance(value.get("only"), str):
            return {**value, "only": [value["only"]]}
        return value

    @field_validator("only")
    @classmethod
    def _globs(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            parts = glob.split("/")
            if not glob or glob.startswith("/") or ".." in parts:
                raise ValueError(f"only: {glob!r} is not a workdir-relative glob")
        return globs


def _git(ctx: CheckContext, args: ScopeArgs, failed: str, *argv: str) -> str:
    """The stdout of ``git ARGV`` in the workdir; the check fails with ``failed`` when git does."""
    cmd = git_argv(*argv)
    try:
        result = ctx.run(cmd, timeout=args.timeout, env=git_env())
    except OSError:  # git is not installed
        fail(failed)
    if result.timed_out:
        raise StepTimeout(f"git {argv[0]} did not finish in {args.timeout or ctx.timeout:g}s")
    if result.returncode != 0:
        fail(failed)
    return result.stdout


def glob_match(path: str, glob: str) -> bool:
    """``path`` (``a/b/c``) matches ``glob`` (see the module docstring)."""
    if glob.endswith("/"):
        glob += "**"
    return _match(path.split("/"), [p for p in glob.split("/") if p not in ("", ".")])


def _match(parts: list[str], pats: list[str]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and _match(parts[1:], pats[1:])


def scope(args: ScopeArgs, ctx: CheckContext) -> None:
    no_repo = "scope: needs a git repository (the workdir is not in one, or git is missing)"
    prefix = _git(ctx, args, no_repo, "rev-parse", "--show-prefix").strip()
    status_failed = "scope: git status failed in the workdir"
    status = _git(ctx, args, status_failed, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    stray = []
    for entry in status.split("\0"):
        if len(entry) < 4:
            continue
        path = entry[3:]
        if not path.startswith(prefix):
            stray.append(f"{path} (outside the workdir)")
            continue
        rel = path[len(prefix) :]
        if rel.startswith(_OWN) or any(glob_match(rel, g) for g in args.only):
            continue
        stray.append(rel)
    if stray:
        named = ", ".join(stray[:MAX_NAMED]) + (f" and {len(stray) - MAX_NAMED} more" if len(stray) > MAX_NAMED else "")
        fail(f"{len(stray)} changed files outside {', '.join(args.only)}: {named}")


def _describe(args: ScopeArgs) -> str:
    return f"scope only {', '.join(args.only)}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("scope", ScopeArgs, scope, _describe, default_timeout=60)]
