"""Meta-tests that keep the plugin surface documented and exercised."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from planrun import hookspecs

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
