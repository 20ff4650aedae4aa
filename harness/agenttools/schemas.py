"""The agent tools' definitions for a model (:data:`TOOL_SCHEMAS`, :func:`schemas`) and the check of a call."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from planrun.agenttools.messages import ToolError, _shown


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


def _arguments(name: object, arguments: object, readonly: bool) -> dict[str, Any]:
    """The arguments of a call of tool ``name``, ``null`` ones left out; a refusal is a :class:`ToolError`.

    The checks of :meth:`~planrun.agenttools.Toolbox.call`: unknown tools, missing, unexpected and wrongly
    typed arguments.
    """
    if not isinstance(name, str) or name not in _PARAMS:
        known = ", ".join(s["function"]["name"] for s in schemas(readonly))
        raise ToolError(f"unknown tool {_shown(str(name), 60)}; the tools are: {known}")
    if name in _EXECUTOR_TOOLS:
        raise ToolError(f"{name} is handled by the executor, not by the toolbox")
    if readonly and name in _WRITE_TOOLS:
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
    return given
