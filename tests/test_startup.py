"""A fast start: what ``planrun --version`` and a small verify-only run import (counted in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from planrun.testing import Planrunner

# Runs planrun as the console script does (``python -m planrun``, which ends with os._exit once the
# exit handlers have run), and writes the names of the imported modules from an exit handler.
DRIVER = """\
import atexit, json, runpy, sys
out, sys.argv = sys.argv[1], ["planrun", *sys.argv[2:]]
def write():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(write)
runpy.run_module("planrun", run_name="__main__")
"""

#: What an LLM feature or the network needs: never imported unless a criterion or executor uses it.
HEAVY = ("openai", "http.client", "ssl", "urllib.request", "planrun.agentprompt", "planrun.testing_openai")
#: The built-ins whose features need part of HEAVY: they import it only when used.
HEAVY_PLUGINS = ("openai_executor", "agent_cli", "http", "llm_judge")

PLAN = """\
plan: Start
tasks:
  - id: t
    name: T
    criteria:
      - file_exists: a.txt
      - file_contains: {path: a.txt, pattern: hi}
"""


def imported(planrunner: Planrunner, *args: str) -> tuple[int, set[str]]:
    out = planrunner.path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), *args], cwd=planrunner.path, capture_output=True, text=True
    )
    assert out.exists(), proc.stderr
    return proc.returncode, set(json.loads(out.read_text()))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def without_heavy_plugins() -> list[str]:
    return [arg for name in HEAVY_PLUGINS for arg in ("-p", f"no:{name}")]


@pytest.fixture
def project(planrunner: Planrunner, tmp_path: Path) -> Planrunner:
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makeplan("start", PLAN)
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    return planrunner


def test_version_imports_nothing_heavy_from_the_core(project: Planrunner) -> None:
    code, modules = imported(project, "--version", *without_heavy_plugins())
    assert code == 0
    assert heavy(modules) == []
    assert "planrun.plancache" not in modules  # --version collects nothing


def test_a_verify_only_run_imports_nothing_heavy_from_the_core(project: Planrunner) -> None:
    code, modules = imported(project, "--verify-only", "start.plan.yaml", *without_heavy_plugins())
    assert code == 0
    assert heavy(modules) == []
    assert "planrun.plancache" in modules  # the probe sees what a run imports


def test_an_http_criterion_does_import_the_http_client(project: Planrunner) -> None:
    """The probe can fail: a run that needs the network does import it."""
    project.makeplan("start", PLAN + "      - {http: {url: 'http://127.0.0.1:9/', status: 200}, timeout: 1}\n")
    code, modules = imported(project, "--verify-only", "start.plan.yaml")
    assert code == 1
    assert "http.client" in modules


def test_default_plugins_import_nothing_heavy(project: Planrunner) -> None:
    _, version = imported(project, "--version")
    _, run = imported(project, "--verify-only", "start.plan.yaml")
    assert heavy(version) == heavy(run) == []


#: What ``--version`` needs none of: the plan models and their validation, YAML, the terminal, the session.
NOT_FOR_VERSION = ("pydantic", "pydantic_core", "yaml", "rich", "planrun.types", "planrun.model", "planrun.session")


def not_for_version(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_FOR_VERSION))


@pytest.mark.parametrize(
    "args",
    [["--version"], ["--version", "-p", "no:data"], ["-q", "--version", "start.plan.yaml"]],
    ids=["plain", "p-no", "with-core-options"],
)
def test_version_imports_no_builtin_no_pydantic_and_no_yaml(project: Planrunner, args: list[str]) -> None:
    code, modules = imported(project, *args)
    assert code == 0
    assert not_for_version(modules) == []
    assert sorted(m for m in modules if m.startswith("planrun.plugins.")) == []
    assert heavy(modules) == []


def test_version_with_a_plugins_option_imports_every_plugin(project: Planrunner) -> None:
    """The probe can fail: when the command line needs every plugin's parser, every plugin is imported."""
    code, modules = imported(project, "--version", "--lf")
    assert code == 0
    assert {"planrun.plugins.files", "planrun.plugins.state", "pydantic"} <= modules


def test_version_imports_a_rootdir_conftest_and_what_it_imports(project: Planrunner) -> None:
    project.makeconftest("import planrun_probe_dep\n\ndef planrun_configure(config):\n    pass\n")
    project.makefile("planrun_probe_dep.py", "from planrun import CheckKind\n")
    code, modules = imported(project, "--version")
    assert code == 0
    assert {"planrun_probe_dep", "planrun.types", "pydantic"} <= modules  # the conftest's own imports
    assert sorted(m for m in modules if m.startswith("planrun.plugins.")) == []


def test_importing_planrun_imports_only_what_a_name_needs() -> None:
    code = (
        "import json, sys\n"
        "import planrun\n"
        "before = set(sys.modules)\n"
        "from planrun import hookimpl, write_atomic\n"
        "after = set(sys.modules)\n"
        "from planrun import CheckKind\n"
        "print(json.dumps([sorted(before), sorted(after), sorted(sys.modules)]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    before, after, last = (set(m) for m in json.loads(proc.stdout))
    assert not_for_version(before) == not_for_version(after) == []
    assert {"planrun.hookspecs", "planrun.atomic"} <= after
    assert {"planrun.types", "pydantic"} <= last
