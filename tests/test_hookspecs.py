"""Meta-tests that keep the plugin surface documented and exercised."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, Plan, hookimpl, hookspecs
from planrun.testing import Planrunner

HOOKS = [name for name in dir(hookspecs) if name.startswith("planrun_")]
SPEC_HOOKS = {
    "planrun_addoption",
    "planrun_configure",
    "planrun_register_checks",
    "planrun_compile_criterion",
    "planrun_register_executors",
    "planrun_collect_file",
    "planrun_collection_modifyitems",
    "planrun_task_execute",
    "planrun_runtest_logreport",
    "planrun_terminal_summary",
    "planrun_sessionstart",
    "planrun_sessionfinish",
}


def test_every_hook_the_spec_names_exists() -> None:
    assert SPEC_HOOKS <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name: str) -> None:
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func) or ""
    assert doc.splitlines()[0].endswith("."), f"{name}: summary line"
    for arg in inspect.signature(func).parameters:
        assert f":param {arg}:" in doc, f"{name}: no :param {arg}:"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_used_by_a_test_or_a_builtin(name: str) -> None:
    root = Path(__file__).resolve().parent.parent
    texts = [p.read_text() for p in (root / "tests").glob("test_*.py") if p.name != "test_hookspecs.py"]
    texts += [p.read_text() for p in (root / "plugins").glob("*.py")]
    texts += [(root / "harness" / f).read_text() for f in ("session.py", "runner.py")]
    assert any(f"def {name}(" in t for t in texts), f"no implementation of {name} is exercised"


def test_hook_reference_says_what_it_returns_when_it_is_called_and_how_results_combine() -> None:
    for name in HOOKS:
        func = getattr(hookspecs, name)
        doc = " ".join((inspect.getdoc(func) or "").split())
        opts = func.planrun_spec
        assert ":return:" in doc, f"{name}: no :return:"
        assert "Called " in doc, f"{name}: does not say when it is called"
        if opts["firstresult"]:
            assert "firstresult: stops at the first non-``None`` result" in doc, f"{name}: firstresult not explained"
        else:
            assert "firstresult" not in doc, f"{name}: says firstresult but is not"
            assert "every implementation" in doc, f"{name}: does not say every implementation is called"
        if opts["historic"]:
            assert "Historic" in doc, f"{name}: historic not explained"


def test_compile_criterion_reference_documents_sentence_forms() -> None:
    doc = inspect.getdoc(hookspecs.planrun_compile_criterion) or ""
    assert "``SENTENCE_FORMS``" in doc
    from planrun.plugins import strings

    assert strings.SENTENCE_FORMS and all(len(f) == 3 for f in strings.SENTENCE_FORMS)


def test_every_hook_has_an_implementation_in_the_tests() -> None:
    """Stricter than "used": a third-party implementation of each hook runs in some test."""
    root = Path(__file__).resolve().parent.parent
    texts = [p.read_text() for p in (root / "tests").glob("test_*.py")]
    missing = [name for name in HOOKS if not any(re.search(rf"\n\s+def {name}\(", t) for t in texts)]
    assert not missing, f"no test implements {missing}"


def test_collect_file_sessionstart_and_modifyitems_from_a_plugin(planrunner: Planrunner) -> None:
    seen: list[str] = []

    class Plugin:
        @hookimpl
        def planrun_sessionstart(self, session: object) -> None:
            seen.append("start")

        @hookimpl
        def planrun_collect_file(self, file_path: str) -> Plan | None:
            if not file_path.endswith(".tasks"):
                return None
            lines = Path(file_path).read_text().split()
            tasks = [{"id": w, "name": w, "criteria": [{"file_exists": w}]} for w in lines]
            return Plan.model_validate({"plan": "from a list", "tasks": tasks})

        @hookimpl
        def planrun_collection_modifyitems(self, session: Any, items: list[Any]) -> None:
            dropped = [i for i in items if i.nodeid.endswith("::skipme")]
            items[:] = [i for i in items if i not in dropped]
            session.deselect(dropped)
            seen.append("modify")

    planrunner.makefile("a", "")
    planrunner.makefile("list.tasks", "a b skipme\n")
    result = planrunner.run("list.tasks", plugins=[Plugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["FAILED list.tasks::b - *"])
    assert seen == ["start", "modify"]
    assert planrunner.run("a", plugins=[Plugin()]).ret != ExitCode.OK  # not a .tasks file: the YAML loader's turn


def test_installed_entry_points_match_pyproject() -> None:
    """The metadata planrun loads from is the pyproject's (a stale ``pip install -e .`` would hide a plugin)."""
    import importlib.metadata

    import tomllib

    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]["planrun"]
    installed = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group="planrun")
        if ep.dist is not None and ep.dist.name == "planrun"
    }
    assert installed == declared, "run `pip install -e .` after editing [project.entry-points.planrun]"
    modules = {p.stem for p in (root / "plugins").glob("*.py") if p.stem != "__init__"}
    assert set(installed) == modules
