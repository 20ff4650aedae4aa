"""Shared helpers for planrun's tests, and the check that the suite leaves no process behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from planrun.process import descendants, make_subreaper, reap_new_children
from planrun.testing import Planrunner, RunResult

CheckRun = Callable[..., RunResult]


def pytest_sessionstart(session: pytest.Session) -> None:
    # Escaped processes re-parent to pytest instead of PID 1, so the finish hook sees them.
    make_subreaper()


def leftover_processes() -> list[str]:
    """Every live descendant of this process, as ``pid command line`` (what the suite left running)."""
    found = []
    for pid in descendants():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cmdline = cmdline.strip() or f"[{Path(f'/proc/{pid}/comm').read_text().strip()}]"  # (inside exec)
        except OSError:
            continue  # gone meanwhile
        found.append(f"{pid} {cmdline}")
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = leftover_processes()
    if not left:
        return
    reap_new_children(())  # kill and reap them all, so they do not outlive the session either
    print("\nERROR: the test session left processes running:\n  " + "\n  ".join(left))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def check(planrunner: Planrunner) -> CheckRun:
    """Run one criterion (YAML flow text) against ``files`` in verify-only mode."""

    def run(criterion: str, files: dict[str, str] | None = None, *args: str) -> RunResult:
        for name, content in (files or {}).items():
            planrunner.makefile(name, content)
        planrunner.makeplan("c", f"plan: c\ntasks:\n  - id: t\n    name: T\n    criteria:\n      - {criterion}\n")
        return planrunner.run("--verify-only", *args, "c.plan.yaml")

    return run
