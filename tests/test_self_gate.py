"""plans/self/: the repository gates itself; each invariant fails when it no longer holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "plans" / "self" / "invariants.plan.yaml"


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planrun", "--verify-only", "-p", "no:state", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The files the invariants read, copied: the tests break the copy, never the repository."""
    dst = tmp_path / "repo"
    dst.mkdir()
    for name in ("README.md", "pyproject.toml", "plan.schema.json"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "plugins", dst / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plans", dst / "plans", ignore=shutil.ignore_patterns("__pycache__", "self"))
    return dst


def test_the_repository_meets_its_own_invariants() -> None:
    result = _run(str(PLAN))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_a_copy_of_the_repository_passes_too(copy: Path) -> None:
    result = _run(str(PLAN), "--workdir", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("planrun --no-such-option plans/", "unknown option --no-such-option"),
        ("pip install -e . && planrun --verify-onyl plans/", "unknown option --verify-onyl"),
        ("planrun verify-everything plans/", "unknown subcommand 'verify-everything'"),
    ],
)
def test_a_readme_command_that_does_not_exist_fails(copy: Path, line: str, named: str) -> None:
    readme = copy / "README.md"
    readme.write_text(readme.read_text() + f"\n```sh\n{line}\n```\n")
    result = _run(str(PLAN), "--workdir", str(copy), "-k", "readme")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "README command(s) do not exist" in result.stdout and named in result.stdout


def test_a_plugin_module_without_an_entry_point_fails(copy: Path) -> None:
    (copy / "plugins" / "extra_kind.py").write_text('"""A new built-in, not registered."""\n')
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('shell = "planrun.plugins.shell"\n', ""))
    result = _run(str(PLAN), "--workdir", str(copy), "-k", "entry")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not entry points: extra_kind, shell" in result.stdout


def test_a_stale_schema_file_fails(copy: Path) -> None:
    schema = copy / "plan.schema.json"
    schema.write_text(schema.read_text().replace('"title"', '"Title"', 1))
    result = _run(str(PLAN), "--workdir", str(copy), "-k", "schema")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "planrun schema | cmp - plan.schema.json" in result.stdout


def test_a_plan_that_does_not_lint_clean_fails(copy: Path) -> None:
    (copy / "plans" / "bad.plan.yaml").write_text("plan: bad\ntasks:\n  - id: t\n    name: T\n")
    result = _run(str(PLAN), "--workdir", str(copy), "-k", "lint")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "planrun lint plans/" in result.stdout
