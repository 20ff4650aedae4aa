"""The ``command`` check kind: a command's exit code and output."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pydantic import Field, model_validator

from planrun import ArgsModel, CheckContext, CheckKind, RelPath, StepTimeout, command_environment, fail, hookimpl


class CommandArgs(ArgsModel):
    run: str = Field(min_length=1)
    exit_code: int = 0
    stdout_contains: str | None = None
    stdout_matches: str | None = None
    stderr_contains: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: RelPath | None = None
    timeout: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _valid_regex(self) -> CommandArgs:
        for name in self.env:
            if not name or "=" in name:
                raise ValueError(f"env: {name!r} is not a variable name (names are not empty and hold no '=')")
        if self.stdout_matches is not None:
            try:
                re.compile(self.stdout_matches, re.MULTILINE)
            except Exception as exc:  # re.error, and OverflowError for a{4294967296}, RecursionError, ...
                raise ValueError(f"invalid regex {self.stdout_matches!r}: {exc}") from None
        return self


def command(args: CommandArgs, ctx: CheckContext) -> None:
    env = {**command_environment(), **args.env} if args.env else None
    if args.cwd is not None:
        try:
            is_dir = ctx.path(args.cwd).is_dir()  # ctx.path fails a symlink out of the workdir
        except OSError as exc:  # a name too long, a folder that cannot be searched
            fail(f"cwd {args.cwd} cannot be used: {exc.strerror or exc}")
        if not is_dir:
            fail(f"cwd {args.cwd} is not a directory")
    out_needles = () if args.stdout_contains is None else (args.stdout_contains,)
    err_needles = () if args.stderr_contains is None else (args.stderr_contains,)
    # The literal expectations are looked for in the whole streams as they are read, past the output cap.
    try:
        result = ctx.run(
            args.run, timeout=args.timeout, env=env, cwd=args.cwd, watch_stdout=out_needles, watch_stderr=err_needles
        )
    except OSError as exc:  # the shell could not start there (the cwd went away, an environment too big)
        fail(f"`{args.run}` could not be started: {exc.strerror or exc}")
    if result.timed_out:
        raise StepTimeout(f"`{args.run}` did not finish in {args.timeout or ctx.timeout:g}s")
    problems = []
    if result.returncode != args.exit_code:
        problems.append(f"exited with {result.returncode}, expected {args.exit_code}")
    if args.stdout_contains is not None and args.stdout_contains not in result.stdout_seen:
        problems.append(f"stdout does not contain {args.stdout_contains!r}")
    if args.stdout_matches is not None:
        pattern = re.compile(args.stdout_matches, re.MULTILINE)
        limited = dataclasses.replace(ctx, timeout=args.timeout or ctx.timeout)  # the command's own timeout
        if limited.search(pattern, result.stdout) is None:
            problems.append(f"stdout does not match /{args.stdout_matches}/")
    if args.stderr_contains is not None and args.stderr_contains not in result.stderr_seen:
        problems.append(f"stderr does not contain {args.stderr_contains!r}")
    if problems:
        fail(f"`{args.run}` {'; '.join(problems)}", "output tail:\n" + (result.output_tail() or "(no output)"))


def _describe(args: CommandArgs) -> str:
    extra = ""
    if args.exit_code:
        extra += f" exits {args.exit_code}"
    if args.stdout_contains is not None:
        extra += f" outputs {args.stdout_contains!r}"
    return f"command `{args.run}`{extra}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("command", CommandArgs, command, _describe, default_timeout=60)]
