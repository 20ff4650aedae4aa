"""Test support for planrun and its plugins: the ``planrunner`` fixture (a small pytester)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from planrun.testing_openai import ScriptedOpenAI

_COUNT = re.compile(r"(\d+) (\w+)")
_WORDS = {"error": "errors", "warning": "warnings"}


class RunResult:
    """The result of one planrun run: exit code, output as :class:`pytest.LineMatcher`."""

    def __init__(self, ret: int, out: str, err: str, duration: float) -> None:
        self.ret = ret
        self.outstr = out
        self.errstr = err
        self.stdout = pytest.LineMatcher(out.splitlines())
        self.stderr = pytest.LineMatcher(err.splitlines())
        self.duration = duration

    def __repr__(self) -> str:
        return f"<RunResult ret={self.ret}>\n--- stdout ---\n{self.outstr}\n--- stderr ---\n{self.errstr}"

    def parseoutcomes(self) -> dict[str, int]:
        """The counts on the summary line (``{"passed": 2, "errors": 1}``), before its `` in 3.21s``."""
        for line in reversed(self.outstr.splitlines()):
            duration = re.search(r" in \d+\.\d\ds\b", line)
            if duration:
                counts = {}
                for n, word in _COUNT.findall(line[: duration.start()].strip("= ")):
                    counts[_WORDS.get(word, word)] = int(n)
                return counts
        raise ValueError(f"no summary line in the output:\n{self.outstr}")

    def assert_outcomes(
        self,
        passed: int = 0,
        failed: int = 0,
        skipped: int = 0,
        errors: int = 0,
        blocked: int = 0,
        deselected: int = 0,
        warnings: int | None = None,
    ) -> None:
        __tracebackhide__ = True
        got = self.parseoutcomes()
        want = dict(
            passed=passed, failed=failed, skipped=skipped, errors=errors, blocked=blocked, deselected=deselected
        )
        have = {k: got.get(k, 0) for k in want}
        if warnings is not None:
            want["warnings"], have["warnings"] = warnings, got.get("warnings", 0)
        assert have == want, f"{have} != {want}\n{self!r}"

    def no_traceback(self) -> bool:
        return "Traceback (most recent call last)" not in self.outstr + self.errstr


class Planrunner:
    """Writes plans and conftests into a temporary project and runs planrun on them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def makefile(self, name: str, text: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return p

    def makeplan(self, name: str, text: str) -> Path:
        """Write ``name`` (``.plan.yaml`` added if it has no suffix) with dedented ``text``."""
        if not name.endswith((".yaml", ".yml")):
            name += ".plan.yaml"
        return self.makefile(name, text)

    def makeconftest(self, text: str, folder: str = ".") -> Path:
        return self.makefile(f"{folder}/conftest.py", text)

    def run(self, *args: str, plugins: list[Any] | None = None) -> RunResult:
        """Run planrun in this process (``planrun.main``), capturing its output."""
        from planrun.cli import main

        out, err = io.StringIO(), io.StringIO()
        start = time.monotonic()
        with redirect_stdout(out), redirect_stderr(err):
            ret = main([str(a) for a in args], plugins=plugins)
        return RunResult(int(ret), out.getvalue(), err.getvalue(), time.monotonic() - start)

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        """Start ``python -m planrun`` in a subprocess (for signal tests)."""
        return subprocess.Popen(
            [sys.executable, "-m", "planrun", *map(str, args)],
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            **kw,
        )

    def runsubprocess(self, *args: str, timeout: float = 120) -> RunResult:
        """Run ``python -m planrun`` in a subprocess."""
        start = time.monotonic()
        proc = self.popen(*args)
        out, err = proc.communicate(timeout=timeout)
        return RunResult(proc.returncode, out, err, time.monotonic() - start)


@pytest.fixture
def planrunner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Planrunner:
    """A :class:`Planrunner` in an empty temporary folder that is also the cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    for name in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS", "PLANRUN_ADDOPTS", "PLANRUN_PLUGINS", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    return Planrunner(tmp_path)


@pytest.fixture
def openai_server() -> Iterator[ScriptedOpenAI]:
    """A started :class:`ScriptedOpenAI` (empty script: ``.add(...)`` replies); closed after the test."""
    from planrun.testing_openai import ScriptedOpenAI

    with ScriptedOpenAI() as server:
        yield server


_OPENAI_NAMES = ("RecordedRequest", "Reply", "ScriptedOpenAI", "delay", "error", "text", "tool_turn")


def __getattr__(name: str) -> Any:
    """The scripted OpenAI server's names, imported on first use (see :mod:`planrun.testing_openai`)."""
    if name in _OPENAI_NAMES:
        from planrun import testing_openai

        return getattr(testing_openai, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Planrunner", "RunResult", "openai_server", "planrunner", *_OPENAI_NAMES]
