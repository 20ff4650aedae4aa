"""Collected plans are held packed until they run, and packed again after: a session's memory grows by kilobytes per plan.

Reading ``cplan.plan``, ``cplan.checks``, ``item.task`` or ``item.checks``
is always right: a packed plan is unpacked by the read, and stays unpacked
until it has run, so what a plugin changes before the run holds for the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import planrun
from planrun import ExitCode
from planrun.testing import Planrunner

PLAN = """\
plan: Plan {n}
tasks:
  - id: a
    name: A
    criteria:
      - file_exists: f{n}.txt
      - file_contains: {{path: f{n}.txt, pattern: '^ok'}}
  - id: b
    name: B
    depends_on: [a]
    criteria:
      - file_not_contains: {{path: f{n}.txt, text: TODO}}
"""


@pytest.fixture(autouse=True)
def machine_key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path.parent / f"{tmp_path.name}-xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def project(planrunner: Planrunner, plans: int = 4) -> None:
    for n in range(plans):
        planrunner.makefile(f"f{n}.txt", "ok\n")
        planrunner.makeplan(f"p{n}", PLAN.format(n=n))


class Watch:
    """Whether each plan was in memory when its first item started, and while the other plans ran."""

    def __init__(self) -> None:
        self.session: Any = None
        self.at_start: dict[str, list[bool]] = {}

    @planrun.hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        self.session = session

    @planrun.hookimpl
    def planrun_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.at_start[nodeid] = [cplan.unpacked for cplan in self.session.plans]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_only_the_running_plan_is_unpacked(planrunner: Planrunner, warm: bool) -> None:
    project(planrunner)
    if warm:
        planrunner.run("--verify-only")
    watch = Watch()
    result = planrunner.run("--verify-only", plugins=[watch])
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=8)
    for n in range(4):
        expected = [i == n for i in range(4)]  # the plan that runs, and no other
        assert watch.at_start[f"p{n}.plan.yaml::a"] == expected
        assert watch.at_start[f"p{n}.plan.yaml::b"] == expected
    assert [cplan.unpacked for cplan in watch.session.plans] == [False] * 4  # all packed again


class Models:
    """Whether each plan's models (``cplan.plan``) were unpacked while its items ran."""

    def __init__(self) -> None:
        self.session: Any = None
        self.models: dict[str, bool] = {}

    @planrun.hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        self.session = session

    @planrun.hookimpl
    def planrun_runtest_makereport(self, report: Any) -> None:
        cplan = next(c for c in self.session.plans if c.display == report.plan)
        self.models[report.nodeid] = cplan._plan is not None


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("verify_only", [True, False], ids=["verify-only", "performed"])
def test_a_run_that_only_verifies_never_unpacks_the_models(
    planrunner: Planrunner, warm: bool, verify_only: bool
) -> None:
    project(planrunner)
    planrunner.makeplan(
        "run", "plan: Run\ntasks:\n  - {id: r, name: R, run: 'touch r.txt', criteria: [{file_exists: r.txt}]}\n"
    )
    args = ["--verify-only"] if verify_only else []
    if warm:
        assert planrunner.run(*args).ret == (ExitCode.TESTS_FAILED if verify_only else ExitCode.OK)
        (planrunner.path / "r.txt").unlink(missing_ok=True)
    models = Models()
    result = planrunner.run(*args, plugins=[models])
    assert result.ret == (ExitCode.TESTS_FAILED if verify_only else ExitCode.OK), result
    for n in range(4):
        assert models.models[f"p{n}.plan.yaml::a"] is False  # only checks: never a model
    assert models.models["run.plan.yaml::r"] is (not verify_only)  # the shell executor reads the task's models


class SkipPlanTwo:
    """Changes the checks of one plan before the run, as a plugin may (``-m``-like selection, judges)."""

    @planrun.hookimpl
    def planrun_collection_modifyitems(self, session: Any, config: Any, items: list[Any]) -> None:
        for item in items:
            if item.cplan.display == "p2.plan.yaml":
                for check in item.checks:
                    check.skip = "skipped by the plugin"


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_what_a_plugin_changes_before_the_run_holds_for_the_run(planrunner: Planrunner, warm: bool) -> None:
    project(planrunner)
    planrunner.makefile("f2.txt", "TODO: not ok\n")  # would fail; the plugin skips it
    if warm:
        planrunner.run("--verify-only")
    result = planrunner.run("--verify-only", "-rs", plugins=[SkipPlanTwo()])
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=6, skipped=2)
    result.stdout.fnmatch_lines(["*p2.plan.yaml::a*skipped by the plugin*"])


class ReadAfter:
    """Reads every plan's models after the run: they unpack again, whole."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, list[str]]] = []

    @planrun.hookimpl
    def planrun_sessionfinish(self, session: Any, exitstatus: int) -> None:
        for cplan in session.plans:
            checks = [c.name for item in cplan.items for c in item.checks]
            self.seen.append((cplan.plan.plan, len(cplan.plan.tasks), checks))


def test_a_plan_read_after_it_ran_unpacks_whole(planrunner: Planrunner) -> None:
    project(planrunner, plans=2)
    planrunner.run("--verify-only")
    after = ReadAfter()
    assert planrunner.run("--verify-only", plugins=[after]).ret == ExitCode.OK
    assert [(title, tasks, len(checks)) for title, tasks, checks in after.seen] == [("Plan 0", 2, 3), ("Plan 1", 2, 3)]
    assert after.seen[0][2][0] == "file_exists f0.txt"


def test_items_answer_what_selection_needs_without_unpacking(planrunner: Planrunner) -> None:
    """``-k`` brings a selected task's dependencies, as before, from what each item keeps."""
    project(planrunner, plans=2)
    planrunner.run("--verify-only")
    result = planrunner.run("--verify-only", "-v", "-k", "p1 and b")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(["*p1.plan.yaml::a*PASSED*", "*p1.plan.yaml::b*PASSED*"])
    assert "p0.plan.yaml" not in result.outstr.split("deselected")[-1]


CONFTEST = """\
import planrun


class AnswerArgs(planrun.ArgsModel):
    value: int


def answer(args, ctx):
    if ctx.read_text("answer.txt").strip() != str(args.value):
        planrun.fail("not the answer")


@planrun.hookimpl
def planrun_register_checks():
    return [planrun.CheckKind("answer", AnswerArgs, answer, inprocess=True)]


@planrun.hookimpl
def planrun_compile_criterion(text, location, config):
    if text.startswith("the answer is "):
        open("compiled.marker", "a").close()  # compiling happened (a cache hit compiles nothing)
        return {"answer": {"value": int(text.rsplit(" ", 1)[1])}}
"""


def test_a_conftest_kind_is_a_cache_hit_in_the_next_process(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its argument model is a conftest's class: the module it pickles as has the same name in every process."""
    planrunner.makefile("conftest.py", CONFTEST)
    planrunner.makefile("answer.txt", "42\n")
    planrunner.makeplan("p", "plan: P\ntasks:\n  - id: a\n    name: A\n    criteria:\n      - the answer is 42\n")
    marker = planrunner.path / "compiled.marker"
    for seed in ("1", "2"):  # str hashes differ between these two processes
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        result = planrunner.runsubprocess("--verify-only")
        assert result.ret == ExitCode.OK, result.outstr
        result.assert_outcomes(passed=1)
        assert marker.exists() == (seed == "1")  # the second run took the plan from the cache
        marker.unlink(missing_ok=True)


RICH_PLAN = """\
plan: Rich
prerequisites:
  - file_exists: f0.txt
tasks:
  - id: a
    name: A
    criteria:
      - file_exists: [f0.txt, f0.txt]
      - {file_contains: {path: f0.txt, pattern: '^ok', min: 1}, name: named, timeout: 3}
      - {file_not_contains: {path: f0.txt, text: TODO}, retry_for: 0.5}
      - {data: {file: d.json, path: 'k[0].v', equals: 1}}
      - {data: {file: d.json, path: 'k', type: array}, skip: not today}
      - "`f0.txt` exists"
verification:
  - file_absent: nothing.txt
"""


class Snapshot:
    """Every check of the collected plan as the runner sees it, read before the run and during it."""

    def __init__(self) -> None:
        self.before: list[Any] = []
        self.during: list[Any] = []

    @staticmethod
    def of(session: Any) -> list[Any]:
        return [
            (
                item.nodeid,
                c.kind,
                type(c.args).__name__,
                c.args.model_dump(),
                c.args.model_fields_set,
                c.function.__name__,
                c.name,
                tuple(c.location),
                c.timeout,
                c.retry_for,
                c.skip,
                c.inprocess,
                c.text,
                c.source,
            )
            for item in session.items
            for c in item.checks
        ]

    @planrun.hookimpl
    def planrun_collection_finish(self, session: Any) -> None:
        self.session = session

    @planrun.hookimpl
    def planrun_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if not self.during:
            self.during = self.of(self.session)


def test_checks_unpacked_from_the_cache_equal_the_compiled_ones(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, machine_key_home: Path
) -> None:
    """Compiled and held (no cache key: nothing is packed) vs packed and unpacked, cold and warm."""
    planrunner.makefile("f0.txt", "ok\n")
    planrunner.makefile("d.json", '{"k": [{"v": 1}]}')
    planrunner.makeplan("rich", RICH_PLAN)
    blocked = planrunner.path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # no key can be made: plans are never packed
    live = Snapshot()
    assert planrunner.run("--verify-only", plugins=[live]).ret == ExitCode.OK
    assert live.session.plancache.stores == 0 and live.session.plans[0].unpacked
    monkeypatch.setenv("XDG_CACHE_HOME", str(machine_key_home))
    cold, warm = Snapshot(), Snapshot()
    assert planrunner.run("--verify-only", plugins=[cold]).ret == ExitCode.OK
    assert planrunner.run("--verify-only", plugins=[warm]).ret == ExitCode.OK
    assert cold.session.plancache.misses == 1 and warm.session.plancache.hits == 1
    assert len(live.during) == 8
    assert cold.during == live.during
    assert warm.during == live.during
    missing = [row[3]["contains"] for row in warm.during if row[1] == "data"]
    assert all(value is planrun.MISSING for value in missing)  # the sentinel comes back as itself
