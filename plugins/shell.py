"""The ``shell`` executor: runs a task's ``run:`` steps in the workdir."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, StepTimeout, hookimpl

if TYPE_CHECKING:
    from planrun import Task

_SUMMARY = 60
"""Characters of a step's first line shown in a one-line message."""


def _summary(step: str) -> str:
    """The first line of ``step``, shortened, with `` ...`` when something was left out."""
    lines = step.strip().splitlines() or [""]
    first = lines[0]
    if len(first) > _SUMMARY:
        return first[:_SUMMARY] + " ..."
    return first + (" ..." if len(lines) > 1 else "")


def shell_argv(shell: str | None, script: str) -> list[str]:
    """The argument vector that runs a step as the ``shell:`` value says (``{0}``: the script file's path).

    ``None`` is the default: ``bash`` when it is on ``PATH``, else ``sh``.
    """
    if shell is None:
        shell = "bash" if shutil.which("bash") else "sh"
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail", script]
    if shell == "sh":
        return ["sh", "-e", script]
    return [word.replace("{0}", script) for word in shlex.split(shell)]


@contextmanager
def _script(step: str) -> Iterator[str]:
    """The step in a temporary file outside the workdir (so the scope guard never sees it)."""
    fd, path = tempfile.mkstemp(prefix="planrun-step-", suffix=".sh")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(step if step.endswith("\n") else step + "\n")
        yield path
    finally:
        os.unlink(path)


class ShellExecutor(Executor):
    """Each step in its own process group; the task's timeout covers all its steps.

    A step runs the way CI systems run one (``bash --noprofile --norc -eo
    pipefail``, or ``sh -e`` without bash), so a failing command ends it; the
    task's ``shell:`` (else the plan's) chooses another.
    """

    name = "shell"

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        deadline = time.monotonic() + context.timeout
        shell = task.shell if task.shell is not None else context.plan.shell
        transcript: list[str] = []
        steps = task.steps
        for n, step in enumerate(steps, 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepTimeout(f"task {task.id!r} ran out of its {context.timeout:g}s before step {n}")
            with _script(step) as path:
                argv = shell_argv(shell, path)
                try:
                    result = context.run(argv, timeout=remaining)
                except FileNotFoundError:
                    return ExecutionResult(
                        status="failed",
                        message=f"step {n}/{len(steps)}: shell {argv[0]!r} not found",
                        evidence=f"shell: {shell}\nstep:\n{step}",
                        output="\n".join(transcript),
                    )
            transcript.append(f"$ {step}\n{result.stdout}{result.stderr}")
            if result.timed_out:
                raise StepTimeout(
                    f"step {n}/{len(steps)} killed after {context.timeout:g}s (the task's timeout): `{_summary(step)}`"
                )
            if result.returncode != 0:
                return ExecutionResult(
                    status="failed",
                    message=f"step {n}/{len(steps)} exited with {result.returncode}: `{_summary(step)}`",
                    evidence=f"step:\n{step.rstrip()}\noutput tail:\n" + (result.output_tail() or "(no output)"),
                    output="\n".join(transcript),
                )
        return ExecutionResult(status="done", output="\n".join(transcript))


@hookimpl
def planrun_register_executors() -> list[ExecutorKind]:
    return [ExecutorKind("shell", lambda config: ShellExecutor())]
