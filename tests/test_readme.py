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


def _table_after(heading: str) -> set[str]:
    """The first-column names of the markdown table that follows ``heading``."""
    text = README.read_text()
    start = text.index(heading)
    names = set()
    for line in text[start:].splitlines()[1:]:
        if names and not line.startswith("|"):
            break
        m = re.match(r"\| `([^`]+)` \|", line)
        if m:
            names.add(m.group(1))
    return names


def test_readme_documents_every_plan_and_task_field() -> None:
    from planrun.model import EdgeCase, Plan, Task

    plan_fields = {f.alias or n for n, f in Plan.model_fields.items()} - {"$schema"}
    task_fields = {f.alias or n for n, f in Task.model_fields.items()} - {"file"}  # shorthand, in the files row
    assert plan_fields <= _table_after("Every field of a plan:"), plan_fields - _table_after("Every field of a plan:")
    assert task_fields <= _table_after("Every field of a task:"), task_fields - _table_after("Every field of a task:")
    text = README.read_text()
    assert "`file: X` is shorthand" in text
    for name in EdgeCase.model_fields:
        assert f"`{name}`" in text
    actions = Task.model_fields["action"].annotation.__args__[0].__args__  # Literal[...] | None
    for action in actions:
        assert f"`{action}`" in text, action


def test_readme_documents_every_outcome() -> None:
    from typing import get_args

    from planrun.reports import Outcome

    text = README.read_text()
    table = text[text.index("| outcome | letter | meaning |") :].split("\n\n")[0]
    documented = {line.split("|")[1].strip() for line in table.splitlines()[2:]}
    assert documented == set(get_args(Outcome))
    assert "**vacuous**" in text and "**regression**" in text


def test_the_shipped_example_plans_pass_cleanly() -> None:
    """The README's first line: `planrun plans/` passes offline, with no warning (scope included)."""
    import subprocess
    import sys

    root = README.parent
    proc = subprocess.run(
        [sys.executable, "-m", "planrun", "plans/"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    final = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ \d+ passed in [\d.]+s =+", final), final
