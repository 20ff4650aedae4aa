"""What an execution agent is told: its role, and the context of one task (nothing more).

Shared by every agent executor (``openai``, ``agent-cli``): the same role and
the same per-task context, so an agent never sees other tasks' descriptions
or earlier transcripts (SPEC section 6).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from planrun.errors import UsageError
from planrun.outcomes import CheckFailed
from planrun.types import CheckContext

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Task
    from planrun.types import ExecutionContext

#: The execution agent's role, in planrun's own words.
DEFAULT_SYSTEM_PROMPT = """\
You are the execution agent of a plan. A planner wrote the plan; your job is to
carry out exactly one of its tasks, the one described below, in the working
directory you are given, and nothing else.

Rules:
- Do what this task asks, completely, and add nothing it does not ask for: no
  extra features, files, refactors or clean-ups.
- Stay inside the task's files unless the task clearly needs another one.
- Never edit the plan, its success criteria, the tests or scripts that check
  them, version-control data or CI configuration. Your work is judged only by
  the success criteria; weakening them does not make the task pass.
- Use the tools to read before you change, and to check your work.
- If you cannot do the task as written (something it needs is missing, the
  task contradicts the code, or it needs a decision that is not yours), call
  report_blocked with the reason instead of improvising.
- When the task is done, call finish with a short summary (one to three
  sentences) of what you changed; the tasks that depend on this one read it.
"""

#: Bytes of one file of the task shown in its context.
FILE_CAP = 20_000
#: Bytes of all the task's files together.
FILES_CAP = 100_000


def system_prompt(config: Config) -> tuple[str, str]:
    """The system prompt and where it came from (``"default"`` or the file's path).

    ``[tool.planrun] executor_prompt`` names a file (relative to the rootdir)
    whose text replaces the default role.
    """
    return prompt_from_config(config, "executor_prompt", DEFAULT_SYSTEM_PROMPT)


def prompt_from_config(config: Config, key: str, default: str) -> tuple[str, str]:
    """``default``, or the text of the file ``[tool.planrun] KEY`` names (relative to the rootdir), and its source.

    :raises UsageError: the value is not a path, the file cannot be read, or it is empty.
    """
    name = config.inicfg.get(key)
    if name is None:
        return default, "default"
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"[tool.planrun] {key} must be a file path, got {name!r}")
    path = Path(config.rootdir, name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"[tool.planrun] {key} {name!r}: cannot read it: {exc}") from None
    if not text.strip():
        raise UsageError(f"[tool.planrun] {key} {name!r} is empty")
    return text, str(path)


def task_prompt(task: Task, context: ExecutionContext) -> str:
    """The user message for ``task``: the plan overview, this task, its criteria,
    the summaries of its dependencies and the current contents of its files."""
    plan = context.plan
    parts = [f"# Plan: {plan.plan}"]
    if plan.overview.strip():
        parts.append(plan.overview.strip())
    parts.append(f"Working directory: {context.workdir}")
    lines = [f"# Your task: {task.name} (id {task.id})"]
    if task.action:
        lines.append(f"Action: {task.action}")
    if task.files:
        lines.append("Files: " + ", ".join(task.files))
    if task.description.strip():
        lines += ["", task.description.strip()]
    parts.append("\n".join(lines))
    if context.criteria:
        parts.append(
            "# Success criteria (checked by planrun after you finish)\n"
            + "\n".join(f"{n}. {text}" for n, text in enumerate(context.criteria, 1))
        )
    if context.dependencies:
        parts.append(
            "# Done before this task\n"
            + "\n".join(f"- {dep}: {summary or '(no summary)'}" for dep, summary in context.dependencies.items())
        )
    files = _file_contents(task, context)
    if files:
        parts.append("# Current contents of the task's files\n" + files)
    return "\n\n".join(parts) + "\n"


def _file_contents(task: Task, context: ExecutionContext) -> str:
    """Each of the task's files as it is now (confined to the workdir, capped)."""
    reader = CheckContext(context.workdir, context.timeout)
    shown: list[str] = []
    budget = FILES_CAP
    for rel in task.files:
        if budget <= 0:
            shown.append(f"## {rel}\n(not shown: the files' size budget is used up)")
            continue
        cap = min(FILE_CAP, budget)
        try:
            with reader.open(rel) as f:
                data = f.read(cap)
                size = os.fstat(f.fileno()).st_size
        except CheckFailed as exc:
            note = "does not exist yet" if "does not exist" in exc.message else exc.message
            shown.append(f"## {rel}\n({note})")
            continue
        text = data.decode("utf-8", "replace")
        budget -= len(data)
        cut = f"\n[... {size - len(data)} more bytes not shown ...]" if size > len(data) else ""
        shown.append(f"## {rel}\n```\n{text}{cut}\n```")
    return "\n\n".join(shown)


def feedback_prompt(feedback: str) -> str:
    """The message that starts a retry in the same conversation."""
    return feedback + "\n\nContinue working on the same task; call finish when the criteria hold."
