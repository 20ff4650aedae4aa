"""What the planning agent is told: its role (replaceable), the request, and planrun's review of its plan.

The role is ``[tool.planrun] planner_prompt`` (a file, relative to the rootdir)
or :data:`DEFAULT_PLANNER_PROMPT`; it is validated as the executor's
``executor_prompt`` is. The rules the role states are also enforced: the
planner's tools can only read, and planrun reviews every plan it submits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planrun.config import Config

#: The phases a planner goes through, as ``note(phase, text)`` names them.
PHASES = ("interview", "gap_analysis", "plan_creation", "handoff")

#: The planning agent's role, in planrun's own words.
DEFAULT_PLANNER_PROMPT = """\
You are the planning agent. You turn a request into a plan of atomic tasks that
an execution agent will carry out later, one task at a time, judged only by
each task's success criteria. You never write code and never run anything:
your tools can only read the repository (list_dir, read_file, search).

Work in four phases and announce each with the note tool (note(phase, text)):
1. interview: understand the request. If you can ask (ask_user exists), ask
   short clarifying questions, one at a time, only where the answer changes the
   plan. If you cannot ask, decide, and record every such decision in the
   plan's "assumptions" list.
2. gap_analysis: read the code the request touches and list what the request
   implies but does not say: implicit requirements, integration points,
   breaking changes for callers, missing infrastructure (dependencies,
   configuration, tests, fixtures).
3. plan_creation: write the plan. Each task is atomic (one concern, a few
   related files, one action), lists the files it may change, depends on the
   tasks it needs, has a complexity, and has success criteria that a machine
   checks (file_exists, file_contains, data, command, tests, http, ...): never
   prose that only a person can judge. Cover edge cases with their own
   criteria, and end with a verification (the test suite).
4. handoff: call submit_plan with the whole plan. planrun validates it,
   compiles every criterion and lints it; fix every problem it reports and
   submit the whole plan again.

Rules:
- Never propose to write or run anything yourself; the plan is your only output.
- Criteria check the result of the task, not the repository as it already is.
- Prefer the repository's own conventions, commands and test runner.
"""

#: The reviewer's instructions (``planrun review`` with a model, without ``--fix``).
REVIEW_PROMPT = """\
This time you do not write a plan: you review the existing plan below against
the repository (your tools can only read; there is no submit_plan). Look for
gaps: implicit requirements, integration points, breaking changes, missing
infrastructure, tasks that are not atomic, criteria that do not prove the task
is done, edge cases without criteria. Then call report_findings once with
every finding (an empty list when there is none); each finding names the
place in the plan as a path such as tasks[2].criteria[0] ("plan" for the
whole plan) and says what is missing and how to fix it.
"""

#: The fixer's instructions (``planrun review --fix``).
FIX_PROMPT = """\
Revise the plan below: keep what is right, fix the problems listed under it
and any gap you find in the repository (your tools can only read), then call
submit_plan with the whole revised plan.
"""


def planner_prompt(config: Config) -> tuple[str, str]:
    """The planner's system prompt and where it came from (``"default"`` or the file's path).

    :raises UsageError: ``planner_prompt`` is not a path, cannot be read, or is empty.
    """
    from planrun.agentprompt import prompt_from_config

    return prompt_from_config(config, "planner_prompt", DEFAULT_PLANNER_PROMPT)


def request_prompt(request: str, context: str, interactive: bool, kinds: Sequence[str], forms: Sequence[str]) -> str:
    """The first user message of ``planrun plan``."""
    ask = (
        "You may ask the person clarifying questions with ask_user."
        if interactive
        else "Nobody can answer questions: record every assumption you make under assumptions: (at least one)."
    )
    lines = [
        "# Request",
        request.strip(),
        "",
        f"The repository is at {context} (tools take paths relative to it).",
        ask,
        "",
        "Check kinds planrun knows (criteria are mappings with exactly one of them): " + ", ".join(kinds) + ".",
    ]
    if forms:
        lines.append("String criteria it compiles: " + "; ".join(forms) + ".")
    return "\n".join(lines) + "\n"


def plan_prompt(instructions: str, display: str, text: str, problems: Sequence[str]) -> str:
    """The first user message of ``planrun review``: the instructions, the plan file, planrun's own findings."""
    parts = [instructions.rstrip(), f"# The plan: {display}\n```yaml\n{text.rstrip()}\n```"]
    if problems:
        parts.append("# planrun's static review found\n" + "\n".join(f"- {p}" for p in problems))
    else:
        parts.append("# planrun's static review found nothing (it compiles and lints clean).")
    return "\n\n".join(parts) + "\n"


def review_feedback(round_no: int, max_rounds: int, problems: Sequence[str]) -> str:
    """The ``submit_plan`` result when planrun's review found problems."""
    head = (
        f"planrun reviewed the plan (round {round_no} of {max_rounds}) and found {len(problems)}"
        f" problem{'' if len(problems) == 1 else 's'}:"
    )
    tail = "Fix every one and call submit_plan again with the whole plan."
    return "\n".join([head, *(f"- {p}" for p in problems), tail])


# -- the tools' definitions ----------------------------------------------------

#: The agent tools the planner gets from :mod:`planrun.agenttools`: the reading ones, nothing else.
READ_TOOLS = ("list_dir", "read_file", "search")


def _tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


NOTE_TOOL = _tool(
    "note",
    "Mark the phase you are in and say what you found or decided in it (shown to the person).",
    _object(
        {
            "phase": {"type": "string", "enum": list(PHASES)},
            "text": {"type": "string", "description": "A few sentences."},
        },
        ["phase", "text"],
    ),
)
ASK_TOOL = _tool(
    "ask_user",
    "Ask the person one clarifying question; returns their answer.",
    _object({"question": {"type": "string", "description": "One short question."}}, ["question"]),
)
FINDINGS_TOOL = _tool(
    "report_findings",
    "Report the review's findings, once, at the end (an empty list when there is none).",
    _object(
        {
            "findings": {
                "type": "array",
                "items": _object(
                    {
                        "path": {"type": "string", "description": "Where in the plan: tasks[2].criteria[0], or plan."},
                        "message": {"type": "string", "description": "What is missing, and how to fix it."},
                    },
                    ["path", "message"],
                ),
            }
        },
        ["findings"],
    ),
)


def submit_tool(checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``submit_plan(plan)``: its ``plan`` parameter is the plan JSON Schema with the given check kinds."""
    from planrun.model import json_schema

    schema = json_schema(checks)
    schema.pop("$schema", None)
    defs = schema.pop("$defs", {})
    params = _object({"plan": schema}, ["plan"])
    params["$defs"] = defs  # the schema's "#/$defs/..." references resolve from the root
    return _tool(
        "submit_plan",
        "Submit the whole plan. planrun validates, compiles and lints it and answers with every problem found.",
        params,
    )


def tool_list(*, interactive: bool, end: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool the planner has, in one list: the read-only agent tools, ``note``, ``ask_user``
    (with ``--interactive``) and ``end`` (``submit_plan`` or ``report_findings``). Nothing that writes or runs."""
    from planrun import agenttools

    reads = [s for s in agenttools.schemas(readonly=True) if s["function"]["name"] in READ_TOOLS]
    return [*reads, NOTE_TOOL, *([ASK_TOOL] if interactive else []), end]
