"""Shared helpers for planrun's tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from planrun.testing import Planrunner, RunResult

CheckRun = Callable[..., RunResult]


@pytest.fixture
def check(planrunner: Planrunner) -> CheckRun:
    """Run one criterion (YAML flow text) against ``files`` in verify-only mode."""

    def run(criterion: str, files: dict[str, str] | None = None, *args: str) -> RunResult:
        for name, content in (files or {}).items():
            planrunner.makefile(name, content)
        planrunner.makeplan("c", f"plan: c\ntasks:\n  - id: t\n    name: T\n    criteria:\n      - {criterion}\n")
        return planrunner.run("--verify-only", *args, "c.plan.yaml")

    return run
