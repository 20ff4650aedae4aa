"""Every plan error of SPEC sections 2, 3 and 10: located message, exit 2, nothing executed."""

from __future__ import annotations

import re

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

# A plan that would leave a file behind if anything ran: collection errors
# anywhere must stop the whole run before it executes.
GOOD = """
plan: good
tasks:
  - id: touch
    name: leaves a mark
    run: touch executed.txt
    criteria: [{file_exists: executed.txt}]
"""

T = "tasks:\n  - id: a\n    name: A\n    run: touch executed.txt\n"

CASES = [
    # (id, plan text, "LINE:COL: message")
    (
        "unknown-key-dependencies",
        "plan: p\n" + T + "    dependencies: [b]\n    criteria: [{file_exists: x}]\n",
        "6:5: unknown key 'dependencies'; did you mean 'depends_on'?",
    ),
    (
        "unknown-key-success-criteria",
        "plan: p\n" + T + "    success_criteria: [{file_exists: x}]\n",
        "6:5: unknown key 'success_criteria'; did you mean 'criteria'?",
    ),
    (
        "unknown-top-level-key",
        "plan: p\ntaks: []\n" + T + "    criteria: [{file_exists: x}]\n",
        "2:1: unknown key 'taks'; did you mean 'tasks'?",
    ),
    (
        "unknown-depends-on",
        "plan: p\n" + T + "    depends_on: [ghost]\n    criteria: [{file_exists: x}]\n",
        "6:18: task 'a' depends on unknown task 'ghost' (tasks in this plan: a)",
    ),
    (
        "cycle",
        "plan: p\n" + T + "    depends_on: [b]\n    criteria: [{file_exists: x}]\n"
        "  - id: b\n    name: B\n    depends_on: [a]\n    criteria: [{file_exists: x}]\n",
        "6:17: dependency cycle: a -> b -> a",
    ),
    (
        "duplicate-task-id",
        "plan: p\n"
        + T
        + "    criteria: [{file_exists: x}]\n  - id: a\n    name: again\n    criteria: [{file_exists: x}]\n",
        "7:9: duplicate task id 'a' (first defined at line 3)",
    ),
    (
        "duplicate-yaml-key",
        "plan: p\nplan: q\n" + T + "    criteria: [{file_exists: x}]\n",
        "2:1: duplicate key 'plan' (first defined at line 1)",
    ),
    ("empty-file", "", "1:1: empty plan file"),
    ("comments-only", "# nothing here\n", "1:1: empty plan file"),
    ("top-level-list", "- plan: p\n", "1:1: a plan file must be a mapping"),
    ("missing-title", T + "    criteria: [{file_exists: x}]\n", "1:1: plan: required key 'plan' missing"),
    ("no-tasks", "plan: p\ntasks: []\n", "2:8: tasks: List should have at least 1 item"),
    (
        "id-no",
        "plan: p\n" + T.replace("id: a", "id: no") + "    criteria: [{file_exists: x}]\n",
        "3:9: tasks[0].id: expected a string, but YAML reads this unquoted value as a boolean (False); quote it",
    ),
    (
        "id-float",
        "plan: p\nid: 1.10\n" + T + "    criteria: [{file_exists: x}]\n",
        "2:5: id: expected a string, but YAML reads this unquoted value as a number (1.1); quote it",
    ),
    (
        "id-date",
        "plan: p\n" + T.replace("id: a", "id: 2024-01-01") + "    criteria: [{file_exists: x}]\n",
        "3:9: tasks[0].id: expected a string, but YAML reads this unquoted value as a date (2024-01-01); quote it",
    ),
    (
        "name-int",
        "plan: p\n" + T.replace("name: A", "name: 12") + "    criteria: [{file_exists: x}]\n",
        "4:11: tasks[0].name: expected a string, but YAML reads this unquoted value as a number (12); quote it",
    ),
    (
        "unquoted-colon-in-step",
        "plan: p\n"
        + T.replace("run: touch executed.txt", "run:\n      - echo a: b")
        + "    criteria: [{file_exists: x}]\n",
        "6:9: tasks[0].run[0]: expected a string, got a mapping (an unquoted ': ' starts one); quote the string",
    ),
    (
        "bad-task-id",
        "plan: p\n" + T.replace("id: a", "id: Add Deps") + "    criteria: [{file_exists: x}]\n",
        "3:9: tasks[0].id: 'Add Deps' does not match",
    ),
    (
        "timeout-nan",
        "plan: p\n" + T + "    criteria: [{file_exists: x, timeout: .nan}]\n",
        "6:42: tasks[0].criteria[0].timeout: nan is not a finite number",
    ),
    (
        "timeout-negative",
        "plan: p\n" + T + "    criteria: [{file_exists: x, timeout: -1}]\n",
        "6:42: timeout: Input should be greater than 0",
    ),
    (
        "timeout-huge",
        "plan: p\n" + T + "    criteria: [{file_exists: x, timeout: 1.0e+12}]\n",
        "6:42: tasks[0].criteria[0].timeout: 1e+12 is out of range",
    ),
    # PyYAML reads `1e12` (no dot) as a string
    (
        "timeout-1e12",
        "plan: p\n" + T + "    criteria: [{file_exists: x, timeout: 1e12}]\n",
        "6:42: timeout: expected a number, got a string ('1e12')",
    ),
    (
        "timeout-bool",
        "plan: p\n" + T + "    criteria: [{file_exists: x, timeout: no}]\n",
        "6:42: timeout: expected a number, but YAML reads this unquoted value as a boolean (False)",
    ),
    (
        "control-character",
        'plan: "bad\\x01title"\n' + T + "    criteria: [{file_exists: x}]\n",
        "1:7: control character U+0001",
    ),
    (
        "two-documents",
        "plan: p\n" + T + "    criteria: [{file_exists: x}]\n---\nplan: q\n",
        "7:1: a plan file holds one YAML document",
    ),
    (
        "unquoted-colon-in-value",
        "plan: p\n"
        + T.replace("run: touch executed.txt", "run: echo '{\"a\": 1}' > x.json")
        + "    criteria: [{file_exists: x}]\n",
        "5:20: mapping values are not allowed *; a value that contains ': ' must be quoted or written as a block (|)",
    ),
    ("syntax-error", "plan: p\ntasks:\n  - id: a\n   name: bad indent\n", "4:4:"),
    ("deep-nesting", "plan: " + "[" * 200 + "]" * 200 + "\n", "1:70: nesting deeper than 64 levels"),
    (
        "deep-block-nesting",
        "plan:\n" + "".join(" " * i + "- \n" for i in range(1, 80)),
        "65:65: nesting deeper than 64 levels",
    ),
    (
        "alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi")
        ),
        "5:4: alias expansion exceeds 100000 nodes",
    ),
    # compile errors (SPEC section 3)
    (
        "not-machine-checkable",
        "plan: p\n" + T + "    criteria:\n      - Model exports User type\n",
        "7:9: criterion 'Model exports User type' is not machine-checkable; write it as a check (e.g. file_contains)",
    ),
    (
        "unknown-check-kind",
        "plan: p\n" + T + "    criteria:\n      - file_exist: x\n",
        "7:9: unknown check kind 'file_exist'; did you mean 'file_exists'?",
    ),
    (
        "two-check-kinds",
        "plan: p\n" + T + "    criteria:\n      - {file_exists: x, file_absent: y}\n",
        "7:9: criterion has 2 check kinds (file_exists, file_absent)",
    ),
    (
        "criterion-not-mapping",
        "plan: p\n" + T + "    criteria:\n      - 42\n",
        "7:9: tasks[0].criteria[0]: a criterion is a string or a mapping with one check kind, not int",
    ),
    (
        "no-needle",
        "plan: p\n" + T + "    criteria:\n      - file_contains: {path: x}\n",
        "7:24: file_contains: give exactly one of 'pattern' (a regex) or 'text' (literal)",
    ),
    (
        "bad-regex",
        "plan: p\n" + T + "    criteria:\n      - file_contains: {path: x, pattern: '(unclosed'}\n",
        "7:24: file_contains: invalid regex '(unclosed'",
    ),
    (
        "unknown-arg",
        "plan: p\n" + T + "    criteria:\n      - file_contains: {path: x, patern: y}\n",
        "7:34: file_contains: unknown key 'patern'; did you mean 'pattern'?",
    ),
    (
        "absolute-path",
        "plan: p\n" + T + "    criteria:\n      - file_exists: /etc/passwd\n",
        "7:22: file_exists: paths[0]: absolute path '/etc/passwd'",
    ),
    (
        "dotdot-path",
        "plan: p\n" + T + "    criteria:\n      - file_contains: {path: ../secret, text: x}\n",
        "7:31: file_contains: path: path '../secret' escapes the workdir with '..'",
    ),
    (
        "string-criterion-dotdot",
        "plan: p\n" + T + '    criteria:\n      - "../x exists"\n',
        "7:9: file_exists: paths[0]: path '../x' escapes the workdir",
    ),
    (
        "bad-data-type",
        "plan: p\n" + T + "    criteria:\n      - data: {file: a.json, path: x, type: thing}\n",
        "7:15: data: type 'thing' is not one of",
    ),
    (
        "unknown-executor",
        "plan: p\nexecutor: nosuch\ntasks:\n  - id: a\n    name: A\n    criteria: [{file_exists: x}]\n",
        "2:11: unknown executor 'nosuch'",
    ),
    (
        "workdir-missing",
        "plan: p\nworkdir: nowhere\n" + T + "    criteria: [{file_exists: x}]\n",
        "2:10: workdir 'nowhere' is not a directory",
    ),
    # Keys YAML reads as something else than a name: located at the key, as written.
    ("date-key", "plan: p\n2024-01-01: 1\n" + T + "    criteria: [x exists]\n", "2:1: the key '2024-01-01' is a date"),
    (
        "bool-key",
        "plan: p\n" + T + "    yes: 1\n    criteria: [x exists]\n",
        "6:5: tasks[0]: the key 'yes' is a boolean",
    ),
    (
        "float-key",
        "plan: p\n" + T + "    criteria: [x exists]\n    1.5: 2\n",
        "7:5: tasks[0]: the key '1.5' is a number",
    ),
    ("null-key", "plan: p\n" + T + "    ~: 1\n    criteria: [x exists]\n", "6:5: tasks[0]: the key '~' is empty"),
    (
        "arg-key",
        "plan: p\n" + T + '    criteria: [{command: {run: "true", 2.5: x}}]\n',
        "6:40: command: the key '2.5' is a number",
    ),
]

# A criterion's argument that YAML 1.1 read as something else than the text it looks like, or of the wrong
# shape: what was expected and what YAML read, as for the plan's own keys, never a model's class name.
_C = "plan: p\n" + T + "    criteria:\n      - "
CASES += [
    (
        "shorthand-float",
        _C + "file_exists: 1.10\n",
        "7:22: file_exists: expected a string or a mapping, but YAML reads this unquoted value as a number (1.1);"
        " quote it",
    ),
    (
        "shorthand-bool",
        _C + "command: yes\n",
        "7:18: command: expected a string or a mapping, but YAML reads this unquoted value as a boolean (True);"
        " quote it",
    ),
    (
        "shorthand-date",
        _C + "python_import: 2024-01-01\n",
        "7:24: python_import: expected a string or a mapping, but YAML reads this unquoted value as a date"
        " (2024-01-01); quote it",
    ),
    (
        "shorthand-empty",
        _C + "file_exists:\n",
        "7:21: file_exists: expected a string or a mapping, but the value is empty",
    ),
    ("shorthand-list", _C + "command: [make]\n", "7:18: command: expected a string or a mapping, got a list"),
    (
        "no-shorthand-string",
        _C + "file_contains: notes.txt\n",
        "7:24: file_contains: expected a mapping (keys: path, pattern, text, count, min), got a string ('notes.txt')",
    ),
    (
        "no-shorthand-bool",
        _C + "data: no\n",
        "7:15: data: expected a mapping (keys: file, path, exists, equals, matches, contains, ...), got a boolean"
        " (False)",
    ),
    (
        "list-item-float",
        _C + "file_exists: [a.txt, 3.10]\n",
        "7:30: file_exists: paths[1]: expected a string, but YAML reads this unquoted value as a number (3.1);"
        " quote it",
    ),
    (
        "arg-int",
        _C + "file_contains: {path: a.txt, text: 42}\n",
        "7:44: file_contains: text: expected a string, but YAML reads this unquoted value as a number (42); quote it",
    ),
    (
        "arg-bool-for-int",
        _C + "command: {run: 'true', exit_code: no}\n",
        "7:43: command: exit_code: expected an integer, but YAML reads this unquoted value as a boolean (False)",
    ),
    (
        "arg-string-for-int",
        _C + "command: {run: 'true', exit_code: one}\n",
        "7:43: command: exit_code: expected an integer, got a string ('one')",
    ),
]


def _glob(text: str) -> str:
    """``text`` as a literal fnmatch pattern (``[0]`` is not a character class)."""
    return re.sub(r"[\[\]]", lambda m: f"[{m.group()}]", text)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_error_is_located_and_stops_the_run(planrunner: Planrunner, text: str, expected: str) -> None:
    planrunner.makeplan("a_good", GOOD)
    bad = planrunner.makefile("b_bad.plan.yaml", "")
    bad.write_text(text, encoding="utf-8")
    result = planrunner.run(".")
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(
        ["*= ERRORS =*", "*ERROR collecting b_bad.plan.yaml*", f"b_bad.plan.yaml:{_glob(expected)}*"]
    )
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*", "*= 1 error in *"])
    assert result.no_traceback(), result
    assert not (planrunner.path / "executed.txt").exists(), "a run: step executed despite a collection error"


def test_very_deep_nesting_is_a_located_error_not_a_crash(planrunner: Planrunner) -> None:
    # libyaml's composer recurses in C: this file used to kill the interpreter.
    (planrunner.path / "deep.plan.yaml").write_text("plan: " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = planrunner.runsubprocess("deep.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    # Newer libyaml stops at its own limit (1000) first; both are located errors.
    result.stdout.re_match_lines(
        [r"deep\.plan\.yaml:1:\d+: (nesting deeper than 64 levels|exceeded maximum nesting depth)"]
    )
    assert result.no_traceback()


def test_invalid_utf8_names_line_and_column(planrunner: Planrunner) -> None:
    (planrunner.path / "bad.plan.yaml").write_bytes(b"plan: ok\ntasks:\n  - id: \xff\n")
    result = planrunner.run("bad.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["bad.plan.yaml:3:9: not valid UTF-8 (byte 0xff)"])
    assert result.no_traceback()


def test_size_cap_and_raising_it(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "big", "plan: " + "x" * 200 + "\ntasks:\n  - {id: a, name: A, criteria: [{file_absent: nope}]}\n"
    )
    result = planrunner.run("--max-plan-bytes", "100", ".")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["big.plan.yaml:1:1: plan file is * bytes, over the 100-byte limit (raise it with --max-plan-bytes)"]
    )
    assert planrunner.run("--max-plan-bytes", "10000", ".").ret == ExitCode.OK


def test_every_error_of_a_file_is_reported(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "two",
        """
        plan: p
        tasks:
          - id: a
            name: A
            criteria: [Model exports User type]
          - id: b
            name: B
            criteria: [{file_exist: x}]
        """,
    )
    result = planrunner.run(".")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "two.plan.yaml:5:16: criterion 'Model exports User type'*",
            "two.plan.yaml:8:17: unknown check kind 'file_exist'*",
        ]
    )


def test_collect_only_reports_collection_errors_too(planrunner: Planrunner) -> None:
    planrunner.makeplan("bad", "plan: p\ntasks: []\n")
    result = planrunner.run("--co", ".")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["bad.plan.yaml:2:8: tasks: List should have at least 1 item*"])
