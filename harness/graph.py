"""A plan's task graph as Mermaid: for ``planrun graph``, the GitHub step summary and docs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planrun.model import Plan

# outcome or state -> Mermaid class (fill, stroke, text colour)
_CLASSES: dict[str, str] = {
    "passed": "fill:#d4f7d4,stroke:#2e7d32,color:#1b5e20",
    "failed": "fill:#ffd6d6,stroke:#c62828,color:#7f0000",
    "error": "fill:#ffd6d6,stroke:#c62828,color:#7f0000,stroke-dasharray:4",
    "blocked": "fill:#ffe9c6,stroke:#ef6c00,color:#6d3a00",
    "skipped": "fill:#eeeeee,stroke:#9e9e9e,color:#424242",
    "interrupted": "fill:#ffe9c6,stroke:#ef6c00,color:#6d3a00,stroke-dasharray:4",
    "in_progress": "fill:#d6e6ff,stroke:#1565c0,color:#0d3c78",
    "executed": "fill:#d6e6ff,stroke:#1565c0,color:#0d3c78,stroke-dasharray:4",
    "pending": "fill:#ffffff,stroke:#9e9e9e,color:#424242",
}


def _label(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes, brackets, markup and controls become entities."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in " -_.,:/()+=@%!?'":
            out.append(ch)
        else:
            out.append(f"#{ord(ch)};")
    return "".join(out)


def mermaid(plan: Plan, outcomes: Mapping[str, str] | None = None) -> str:
    """The plan's tasks as a Mermaid ``flowchart TD``, each node coloured by ``outcomes[task_id]``.

    :param plan: the plan (its tasks and ``depends_on``).
    :param outcomes: task id -> an outcome (``passed``, ``failed``, ...) or a
        state (``pending``, ``in_progress``, ``executed``); tasks not in it
        are drawn uncoloured.
    :return: the Mermaid source, without a fence.

    Nodes are numbered in plan order (``t1``, ``t2``: no id can clash with a
    Mermaid keyword or with another id); ids, names and outcomes go into
    quoted labels with everything unusual escaped.
    """
    outcomes = outcomes or {}
    lines = ["flowchart TD"]
    used: set[str] = set()
    nodes = {task.id: f"t{n}" for n, task in enumerate(plan.tasks, 1)}
    for task in plan.tasks:
        state = outcomes.get(task.id)
        label = _label(task.name if task.name == task.id else f"{task.id}: {task.name}")
        if state:
            label += f"<br/><i>{_label(state)}</i>"
        node = nodes[task.id]
        lines.append(f'    {node}["{label}"]')
        if state in _CLASSES:
            lines.append(f"    class {node} {state}")
            used.add(state)
    for task in plan.tasks:
        for dep in task.depends_on:
            if dep in nodes:
                lines.append(f"    {nodes[dep]} --> {nodes[task.id]}")
    for state in sorted(used):
        lines.append(f"    classDef {state} {_CLASSES[state]}")
    return "\n".join(lines) + "\n"
