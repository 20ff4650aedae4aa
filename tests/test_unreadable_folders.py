"""A folder the checks cannot read is never taken for an empty one: ``file_absent`` must not pass on what it cannot see.

Root reads every folder whatever its mode, so as root these run planrun
without the two capabilities that let it (``setpriv``), as any other user would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from planrun import ExitCode

if os.geteuid() == 0:
    if shutil.which("setpriv") is None:
        pytest.skip("root reads every folder, and setpriv is not here to drop that", allow_module_level=True)
    _AS_A_USER = [
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search",
        "--inh-caps=-dac_override,-dac_read_search",
    ]
else:
    _AS_A_USER = []


def _run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_AS_A_USER, sys.executable, "-m", "planrun", "--verify-only", "-p", "no:cacheprovider", *args],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """``w/`` with ``listable/f.log``, ``searchable/f.log`` (mode 111), ``locked/f.log`` (000), ``dark/f.log`` (600)."""
    w = tmp_path / "w"
    for name, mode in (("listable", 0o755), ("searchable", 0o111), ("locked", 0o000), ("dark", 0o600)):
        (w / name).mkdir(parents=True)
        (w / name / "f.log").write_text("x\n")
        (w / name).chmod(mode)
    yield tmp_path
    for name in ("searchable", "locked", "dark"):
        (w / name).chmod(0o755)


def _plan(path: Path, *criteria: str) -> None:
    body = "".join(f"      - {c}\n" for c in criteria)
    (path / "p.plan.yaml").write_text(f"plan: p\nworkdir: w\ntasks:\n  - id: t\n    name: T\n    criteria:\n{body}")


@pytest.mark.parametrize(
    ("criterion", "reason"),
    [
        ("{file_absent: searchable/*.log}", "searchable cannot be read"),
        ("{file_absent: locked/f.log}", "locked/f.log cannot be looked up"),
        ("{file_absent: locked/*}", "locked cannot be read"),
        ("{file_absent: '**/g.log'}", "cannot be read"),
        ("{file_absent: dark/f.log}", "dark/f.log cannot be looked up"),
        ("{file_absent: '*/nothing.txt'}", "cannot be read"),
        ("{file_exists: locked/f.log}", "locked/f.log cannot be looked up"),
        ("{file_exists: 'searchable/*.log'}", "searchable cannot be read"),
        ("{file_exists: 'dark/*'}", "dark/f.log cannot be read"),  # listed, but nothing in it can be looked at
        ("{file_absent: '**/f.log'}", "exists but should not: listable/f.log"),
    ],
)
def test_what_cannot_be_seen_fails_and_says_why(tree: Path, criterion: str, reason: str) -> None:
    _plan(tree, criterion)
    done = _run(tree, "p.plan.yaml")
    assert done.returncode == ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert reason in done.stdout, done.stdout
    assert "nothing can be said" in done.stdout or "exists but" in reason, done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "criterion",
    [
        "{file_exists: searchable/f.log}",  # a folder that can be searched: a plain name is found
        "{file_absent: searchable/other.log}",  # ... and a plain name is known to be missing
        "{file_exists: '**/f.log'}",  # found where it can be seen: what cannot be read changes nothing
        "{file_absent: 'listable/*.txt'}",  # nothing unreadable on the way
        "{file_contains: {path: searchable/f.log, text: x}}",
    ],
)
def test_what_can_be_seen_is_judged_as_usual(tree: Path, criterion: str) -> None:
    _plan(tree, criterion)
    done = _run(tree, "p.plan.yaml")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
