"""The ``shell`` executor: runs a task's ``run:`` steps in the workdir."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, StepTimeout, hookimpl

if TYPE_CHECKING:
    from planrun import Task


class ShellExecutor(Executor):
    """Each step in its own process group; the task's timeout covers all its steps."""

    name = "shell"

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        deadline = time.monotonic() + context.timeout
        transcript: list[str] = []
        steps = task.steps
        for n, step in enumerate(steps, 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepTimeout(f"task {task.id!r} ran out of its {context.timeout:g}s before step {n}")
            result = context.run(step, timeout=remaining)
            transcript.append(f"$ {step}\n{result.stdout}{result.stderr}")
            if result.timed_out:
                raise StepTimeout(
                    f"step {n}/{len(steps)} `{step}` killed after {context.timeout:g}s (the task's timeout)"
                )
            if result.returncode != 0:
                return ExecutionResult(
                    status="failed",
                    message=f"step {n}/{len(steps)} `{step}` exited with {result.returncode}",
                    evidence="output tail:\n" + (result.output_tail() or "(no output)"),
                    output="\n".join(transcript),
                )
        return ExecutionResult(status="done", output="\n".join(transcript))


@hookimpl
def planrun_register_executors() -> list[ExecutorKind]:
    return [ExecutorKind("shell", lambda config: ShellExecutor())]
