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
