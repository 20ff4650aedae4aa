"""The ``python_import`` check kind: a module imports and has the given names.

The import runs in a child ``python -I`` (isolated: no ``PYTHON*`` variables,
no user site, no current folder on ``sys.path``) in the workdir, with ``path``
(a workdir-relative folder, default the workdir itself) first on ``sys.path``,
an allowlisted environment and the criterion's timeout. What the module prints
goes to the child's stderr, so it cannot be taken for the child's report.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from pydantic import Field, field_validator, model_validator

from planrun import ArgsModel, CheckContext, CheckKind, RelPath, StepTimeout, fail, hookimpl

_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
_ENV_KEEP = ("PATH", "TMPDIR", "SYSTEMROOT", "LANG", "LC_ALL")
MAX_TRACEBACK_LINES = 15

# The child: report on the saved stdout, as one JSON line; the module's own output goes to stderr.
_CHILD = r"""
import json, os, sys, traceback
report = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
module, names, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path.insert(0, path)
import importlib
try:
    mod = importlib.import_module(module)
    missing = []
    for name in names:
        obj = mod
        for part in name.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                missing.append(name)
                break
    result = {"missing": missing}
except BaseException as exc:
    here = os.getcwd() + os.sep
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    frames = [f for f in frames if f.filename != importlib.__file__]
    for f in frames:
        if f.filename.startswith(here):
            f.filename = f.filename[len(here):]
    tb = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    result = {"error": traceback.format_exception_only(type(exc), exc)[-1].strip(), "traceback": tb}
report.write(json.dumps(result) + "\n")
report.flush()
os._exit(0)
"""


class PythonImportArgs(ArgsModel):
    module: str
    names: list[str] = Field(default_factory=list)
    path: RelPath = "."
    timeout: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"module": value} if isinstance(value, str) else value

    @field_validator("module")
    @classmethod
    def _module(cls, module: str) -> str:
        if not _DOTTED.match(module):
            raise ValueError(f"module: {module!r} is not a dotted module name (like pkg.mod)")
        return module

    @field_validator("names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _DOTTED.match(name):
                raise ValueError(f"names: {name!r} is not an attribute name (like App or App.run)")
        return names


def python_import(args: PythonImportArgs, ctx: CheckContext) -> None:
    try:
        folder = ctx.path(args.path)
        is_dir = folder.is_dir()
    except OSError as exc:
        fail(f"path {args.path} cannot be used: {exc.strerror or exc}")
    if not is_dir:
        fail(f"path {args.path} is not a directory")
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    argv = [sys.executable, "-I", "-X", "utf8", "-c", _CHILD, args.module, json.dumps(args.names), os.fspath(folder)]
    result = ctx.run(argv, timeout=args.timeout, env=env)
    if result.timed_out:
        raise StepTimeout(f"importing {args.module} did not finish in {args.timeout or ctx.timeout:g}s")
    lines = result.stdout.strip().splitlines()
    report: Any = None
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        fail(
            f"importing {args.module} ended (exit code {result.returncode}) before it could report",
            "output tail:\n" + (result.output_tail() or "(no output)"),
        )
    if "error" in report:
        tb = str(report.get("traceback", "")).rstrip().splitlines()[-MAX_TRACEBACK_LINES:]
        fail(f"import {args.module} failed: {report['error']}", "\n".join(tb))
    missing = [str(n) for n in report.get("missing", [])]
    if missing:
        fail(f"{args.module} has no {', '.join(missing)}")


def _describe(args: PythonImportArgs) -> str:
    names = f" with {', '.join(args.names)}" if args.names else ""
    return f"python_import {args.module}{names}"


@hookimpl
def planrun_register_checks() -> list[CheckKind]:
    return [CheckKind("python_import", PythonImportArgs, python_import, _describe, default_timeout=60)]
