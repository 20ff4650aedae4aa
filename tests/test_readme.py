"""The README's example plan is a real plan that passes."""

from __future__ import annotations

import re
from pathlib import Path

from planrun import ExitCode
from planrun.testing import Planrunner

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_plan_runs(planrunner: Planrunner) -> None:
    block = re.search(r"```yaml\n(# hello\.plan\.yaml\n.*?)```", README.read_text(), re.S)
    assert block, "the README lost its example plan"
    planrunner.makefile("hello.plan.yaml", block.group(1))
    result = planrunner.run("-v", "hello.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=3, skipped=1)  # the verification holds only a manual criterion
    result.stdout.fnmatch_lines(
        [
            "    `python3 hello.py` outputs `hello, world!` PASSED",
            "    manual: Read the output once; is it friendly? SKIPPED",
        ]
    )


def test_readme_conftest_example_adds_a_check(planrunner: Planrunner) -> None:
    block = re.search(r"```python\n(# conftest\.py next to your plans\n.*?)```", README.read_text(), re.S)
    assert block, "the README lost its conftest example"
    planrunner.makefile("conftest.py", block.group(1))
    planrunner.makefile("src/app.py", "a = 1\n" * 500)
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - {id: short, name: S, criteria: [max_lines: {path: src/app.py, lines: 600}]}
          - {id: long, name: L, criteria: [max_lines: {path: src/app.py, lines: 400}]}
        """,
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["criterion 1/1  max_lines src/app.py 400", "  src/app.py has 500 lines, more than 400"]
    )
