"""What keeps planrun near the floor, counted (never timed): validations, signal calls, writes, the collector."""

from __future__ import annotations

import gc
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import planrun
from planrun import ExitCode
from planrun.testing import Planrunner


def plan(tasks: int, *, common: bool = False) -> str:
    extra = ", name: named" if common else ""
    lines = ["plan: Counted", "tasks:"]
    for t in range(tasks):
        lines += [
            f"  - id: t{t}",
            f"    name: T{t}",
            "    criteria:",
            "      - {file_exists: a.txt" + extra + "}",
            "      - file_contains: {path: a.txt, pattern: hi}",
            "      - data: {file: d.json, path: k, equals: 1}",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def counting_calls() -> Iterator[Counter[str]]:
    """Count the C functions called (by name) while the block runs: sys.setprofile sees each one."""
    calls: Counter[str] = Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            calls[getattr(arg, "__name__", "?")] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def counted_run(planrunner: Planrunner, tasks: int, *args: str, common: bool = False) -> Counter[str]:
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makefile("d.json", '{"k": 1}')
    planrunner.makeplan("p", plan(tasks, common=common))
    with counting_calls() as calls:
        result = planrunner.run("--verify-only", "--cache-clear", *args)
    assert result.ret == ExitCode.OK, result
    return calls


@pytest.mark.parametrize("tasks", [1, 4, 12])
def test_one_validation_per_criterion(planrunner: Planrunner, tasks: int) -> None:
    calls = counted_run(planrunner, tasks)
    assert calls["validate_python"] == 1 + 3 * tasks  # the plan once, then each criterion's arguments


def test_common_keys_cost_a_validation_only_where_they_are_written(planrunner: Planrunner) -> None:
    calls = counted_run(planrunner, 4, common=True)
    assert calls["validate_python"] == 1 + 3 * 4 + 4  # plus the common keys of the 4 named criteria


def test_a_warm_run_validates_nothing(planrunner: Planrunner, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path.parent / f"{tmp_path.name}-xdg"))
    counted_run(planrunner, 4)
    with counting_calls() as calls:
        assert planrunner.run("--verify-only").ret == ExitCode.OK
    assert calls["validate_python"] == 0


@pytest.mark.parametrize("tasks", [2, 20])
def test_the_alarm_handler_is_installed_once_per_session_not_per_check(planrunner: Planrunner, tasks: int) -> None:
    calls = counted_run(planrunner, tasks)
    small = counted_run(planrunner, 1)
    assert calls["signal"] == small["signal"]  # the same few calls (interrupts, the alarm) whatever the count
    # Nor is the timer set per check: a limit notes its deadline and the timer is set only when that deadline is
    # the earliest (a few times a session; once more if the run outlasts a limit). Each check is still limited:
    # a catastrophic regex is interrupted on its own criterion (test_checks_files, test_processes).
    assert calls["setitimer"] <= small["setitimer"] + 2


@pytest.mark.parametrize("tasks", [5, 40])
def test_progress_is_written_a_line_at_a_time_off_a_terminal(planrunner: Planrunner, tasks: int) -> None:
    many = counted_run(planrunner, tasks)
    one = counted_run(planrunner, 1)
    assert many["write"] - one["write"] <= 2  # not one write per item


class FreezeProbe:
    """Records, when each item starts, whether what collection kept is frozen; and after collection the marks."""

    def __init__(self) -> None:
        self.frozen: list[int] = []
        self.docs: list[Any] = []

    @planrun.hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        self.docs = [cplan.source._doc for cplan in session.plans]

    @planrun.hookimpl
    def planrun_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.frozen.append(gc.get_freeze_count())


def test_collection_is_frozen_for_the_run_and_unfrozen_after(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makefile("d.json", '{"k": 1}')
    planrunner.makeplan("p", plan(3))
    before = gc.get_freeze_count()
    probe = FreezeProbe()
    assert planrunner.run("--verify-only", "--cache-clear", plugins=[probe]).ret == ExitCode.OK
    assert len(probe.frozen) == 3 and all(n > before for n in probe.frozen)
    assert gc.get_freeze_count() == before  # the session gave its objects back to the collector


def test_small_cached_plans_settle_together_not_one_pass_each(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makefile("d.json", '{"k": 1}')
    for n in range(30):
        planrunner.makeplan(f"p{n:02d}", plan(2))
    assert planrunner.run("--verify-only").ret == ExitCode.OK  # fills the cache
    passes: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] >= 1:
            passes.append(info["generation"])

    probe = FreezeProbe()
    gc.callbacks.append(count)
    try:
        assert planrunner.run("--verify-only", plugins=[probe]).ret == ExitCode.OK
    finally:
        gc.callbacks.remove(count)
    assert len(probe.frozen) == 60 and all(n > 0 for n in probe.frozen)  # collection is frozen for the run
    assert len(passes) < 30  # 30 plans read from the cache and run: not a pass after each, twice


def test_the_marks_are_dropped_after_collection_and_come_back_exact(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makefile("d.json", '{"k": 1}')
    planrunner.makeplan("p", plan(2))
    probe = FreezeProbe()
    assert planrunner.run("--verify-only", "--cache-clear", plugins=[probe]).ret == ExitCode.OK
    assert probe.docs == [None]  # no marks, no second copy of the data held through the run
    from planrun.planfile import PlanSource

    source = PlanSource("p.plan.yaml", text=plan(2))
    assert str(source.locate(("tasks", 1, "criteria", 2, "data", "equals"))) == "p.plan.yaml:14:47"
    source.release()
    assert str(source.locate(("tasks", 1, "criteria", 2, "data", "equals"))) == "p.plan.yaml:14:47"
