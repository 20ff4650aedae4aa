"""Error messages that name what is wrong: missing keys, unknown ids, YAML's misleading errors, huge numbers."""

from __future__ import annotations

import re

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

# A plan that leaves a mark if anything runs: one bad file must stop them all.
GOOD = """
plan: good
tasks:
  - id: touch
    name: leaves a mark
    run: touch executed.txt
    criteria: [{file_exists: executed.txt}]
"""

TASK = "  - id: a\n    name: A\n    run: touch executed.txt\n    criteria: [{file_exists: x}]\n"


def _glob(text: str) -> str:
    """``text`` as an fnmatch pattern: only ``*`` is a wildcard."""
    return re.sub(r"[\[\]?]", lambda m: f"[{m.group()}]", text)


def assert_collection_error(planrunner: Planrunner, text: str, expected: str) -> str:
    """Run ``text`` beside a good plan: exit 2, ``bad.plan.yaml:expected`` on one line, nothing executed."""
    planrunner.makeplan("a_good", GOOD)
    (planrunner.path / "bad.plan.yaml").write_text(text, encoding="utf-8")
    result = planrunner.run(".")
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines([f"bad.plan.yaml:{_glob(expected)}"])
    assert result.no_traceback(), result
    assert not (planrunner.path / "executed.txt").exists(), "something ran despite a collection error"
    return result.outstr


# -- item 23: the missing key is named, at the mapping that lacks it -------------------

MISSING = [
    ("plan", "tasks:\n" + TASK, "1:1: plan: required key 'plan' missing"),
    ("tasks", "plan: p\noverview: nothing to do\n", "1:1: plan: required key 'tasks' missing"),
    (
        "task-id",
        "plan: p\ntasks:\n  - name: A\n    criteria: [{file_exists: x}]\n",
        "3:5: tasks[0]: required key 'id' missing",
    ),
    (
        "task-name",
        "plan: p\ntasks:\n" + TASK + "  - id: b\n    criteria: []\n",
        "7:5: tasks[1]: required key 'name' missing",
    ),
    (
        "edge-case",
        "plan: p\ntasks:\n" + TASK + "edge_cases:\n  - case: fine\n  - handling: x\n",
        "9:5: edge_cases[1]: required key 'case' missing",
    ),
    (
        "data-file",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{data: {path: a, exists: true}}"),
        "6:23: data: required key 'file' missing",
    ),
    (
        "http-url",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{http: {status: 200}}"),
        "6:23: http: required key 'url' missing",
    ),
    (
        "file-contains-path",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{file_contains: {text: x}}"),
        "6:32: file_contains: required key 'path' missing",
    ),
]


EMPTY = [
    ("title", "plan:\ntasks:\n" + TASK, "1:6: plan: expected a string, but the value is empty"),
    ("tasks", "plan: p\ntasks:\n", "2:7: tasks: expected a list, but the value is empty"),
    (
        "name",
        "plan: p\ntasks:\n" + TASK.replace("name: A", "name:"),
        "4:10: tasks[0].name: expected a string, but the value is empty",
    ),
    ("task", "plan: p\ntasks:\n" + TASK + "  -\n", "7:4: tasks[1]: expected a mapping, but the value is empty"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in EMPTY], ids=[c[0] for c in EMPTY])
def test_empty_value_says_so(planrunner: Planrunner, text: str, expected: str) -> None:
    assert_collection_error(planrunner, text, expected)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in MISSING], ids=[c[0] for c in MISSING])
def test_missing_key_is_named(planrunner: Planrunner, text: str, expected: str) -> None:
    out = assert_collection_error(planrunner, text, expected)
    assert "required key missing" not in out


def _tasks(*ids: str, depends: str) -> str:
    body = "".join(f"  - id: {i}\n    name: {i}\n    criteria: [{{file_exists: x}}]\n" for i in ids)
    return f"plan: p\ntasks:\n{body}  - id: last\n    name: last\n    depends_on: [{depends}]\n    criteria: []\n"


DEPENDS = [
    (
        "close-match",
        _tasks("setup", "build", depends="setpu"),
        "11:18: task 'last' depends on unknown task 'setpu'; did you mean 'setup'? (tasks in this plan: setup, build, last)",
    ),
    (
        "no-close-match",
        _tasks("setup", "build", depends="zzz"),
        "11:18: task 'last' depends on unknown task 'zzz' (tasks in this plan: setup, build, last)",
    ),
    (
        "long-list-capped",
        _tasks(*[f"t{i:02d}" for i in range(14)], depends="nothing-like-it"),
        "47:18: task 'last' depends on unknown task 'nothing-like-it'"
        " (tasks in this plan: t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, ... (5 more))",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in DEPENDS], ids=[c[0] for c in DEPENDS])
def test_unknown_dependency_lists_the_tasks_that_exist(planrunner: Planrunner, text: str, expected: str) -> None:
    assert_collection_error(planrunner, text, expected)


# -- item 25: where YAML's own message misleads ----------------------------------------

HINTS = [
    (
        "backtick-sentence",
        "plan: p\ntasks:\n" + TASK.replace("criteria: [{file_exists: x}]", "criteria:\n      - `pytest` passes"),
        "7:9: a plain value cannot start with '`'; quote it: '`pytest` passes'",
    ),
    (
        "backtick-with-comment-and-quote",
        "plan: p\ntasks:\n" + TASK.replace("criteria: [{file_exists: x}]", "criteria:\n      - `it's` passes  # why"),
        "7:9: a plain value cannot start with '`'; quote it: '`it''s` passes'",
    ),
    (
        "backtick-top-level",
        "plan: `make` works\ntasks:\n" + TASK,
        "1:7: a plain value cannot start with '`'; quote it: '`make` works'",
    ),
    (
        "backtick-in-flow-list",
        "plan: p\ntasks:\n" + TASK.replace("[{file_exists: x}]", "[`make` passes]"),
        "6:16: a plain value cannot start with '`'; quote it",
    ),
    ("at-sign", "plan: @home\ntasks:\n" + TASK, "1:7: a plain value cannot start with '@'; quote it: '@home'"),
    (
        "over-indented-run",
        "plan: p\ntasks:\n  - id: a\n    name: A\n      run: touch executed.txt\n    criteria: [{file_exists: x}]\n",
        "5:10: mapping values are not allowed * context; is this key indented more than the keys above it?",
    ),
    (
        "over-indented-top-level-key",
        "plan: p\n  tasks:\n" + TASK,
        "2:8: mapping values are not allowed * context; is this key indented more than the keys above it?",
    ),
    (
        "colon-in-continued-prose",
        "plan: p\noverview: a long line\n  that says: this\ntasks:\n" + TASK,
        "3:12: mapping values are not allowed * context; a value that contains ': ' must be quoted or written as a block (|)",
    ),
    (
        "string-for-depends-on",
        "plan: p\ntasks:\n" + TASK + "  - id: b\n    name: B\n    depends_on: a\n    criteria: [{file_exists: x}]\n",
        "9:17: tasks[1].depends_on: expected a list; write [a]",
    ),
    (
        "string-for-files",
        "plan: p\ntasks:\n" + TASK.replace("    run:", "    files: src/app.py\n    run:"),
        "5:12: tasks[0].files: expected a list; write [src/app.py]",
    ),
    (
        "string-for-criteria",
        "plan: p\ntasks:\n" + TASK.replace("[{file_exists: x}]", '"`make` passes"'),
        "6:15: tasks[0].criteria: expected a list; write ['`make` passes']",
    ),
    (
        "string-for-assumptions",
        "plan: p\nassumptions: it is Linux\ntasks:\n" + TASK,
        "2:14: assumptions: expected a list; write [it is Linux]",
    ),
    (
        "misspelt-pattern",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{file_contains: {path: x, patern: y}}"),
        "6:42: file_contains: unknown key 'patern'; did you mean 'pattern'?",
    ),
    (
        "misspelt-data-exists",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{data: {file: a.json, path: x, exist: true}}"),
        "6:47: data: unknown key 'exist'; did you mean 'exists'?",
    ),
    (
        "misspelt-http-status",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{http: {url: 'http://127.0.0.1/', stauts: 200}}"),
        "6:50: http: unknown key 'stauts'; did you mean 'status'?",
    ),
    (
        "misspelt-command-exit-code",
        "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{command: {run: 'true', exitcode: 1}}"),
        "6:40: command: unknown key 'exitcode'; did you mean 'exit_code'?",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in HINTS], ids=[c[0] for c in HINTS])
def test_hint_where_yaml_misleads(planrunner: Planrunner, text: str, expected: str) -> None:
    assert_collection_error(planrunner, text, expected)


def test_over_indented_key_does_not_get_the_quoting_hint(planrunner: Planrunner) -> None:
    text = "plan: p\ntasks:\n  - id: a\n    name: A\n      run: touch executed.txt\n    criteria: [{file_exists: x}]\n"
    out = assert_collection_error(planrunner, text, "5:10: *indented more*")
    assert "must be quoted" not in out


def test_string_for_a_list_of_tasks_does_not_suggest_brackets(planrunner: Planrunner) -> None:
    out = assert_collection_error(planrunner, "plan: p\ntasks: setup\n", "2:8: tasks: *")
    assert "write [" not in out


def test_unknown_argument_without_a_close_match_has_no_guess(planrunner: Planrunner) -> None:
    text = "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{command: {run: 'true', zzzzz: 1}}")
    out = assert_collection_error(planrunner, text, "6:40: command: unknown key 'zzzzz'")
    assert "did you mean" not in out


# -- item 9: huge numbers anywhere are located one-line errors ----------------------------

HUGE = [
    ("hex-400", "0x" + "f" * 400, "a 482-digit number is out of range"),
    ("decimal-400", "9" * 400, "a 400-digit number is out of range"),
    ("negative-400", "-" + "9" * 400, "a 400-digit negative number is out of range"),
    ("octal-400", "0" + "7" * 400, "a 362-digit number is out of range"),
    ("binary-400", "0b" + "1" * 400, "a 121-digit number is out of range"),
    ("hex-5000", "0x" + "f" * 5000, "a 6021-digit number is out of range"),
    ("sexagesimal", "1" + ":59" * 300, "is out of range"),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in HUGE], ids=[c[0] for c in HUGE])
@pytest.mark.parametrize(
    ("where", "template", "col"),
    [
        ("timeout", "    criteria: [{{file_exists: x, timeout: {v}}}]\n", 42),
        ("retry-for", "    criteria: [{{file_exists: x, retry_for: {v}}}]\n", 44),
        ("count", "    criteria: [{{file_contains: {{path: x, text: y, count: {v}}}}}]\n", 58),
        ("http-status", "    criteria: [{{http: {{url: 'http://127.0.0.1/', status: {v}}}}}]\n", 58),
    ],
    ids=["timeout", "retry-for", "count", "http-status"],
)
def test_huge_number_is_a_located_error(
    planrunner: Planrunner, value: str, expected: str, where: str, template: str, col: int
) -> None:
    text = "plan: p\ntasks:\n  - id: a\n    name: A\n    run: touch executed.txt\n" + template.format(v=value)
    out = assert_collection_error(planrunner, text, f"6:{col}: tasks[0].criteria[0]* {expected}*")
    assert max(len(line) for line in out.splitlines()) < 300  # the number itself is not printed


def test_huge_number_as_a_top_level_value(planrunner: Planrunner) -> None:
    text = "plan: p\noverview: 0x" + "f" * 400 + "\ntasks:\n" + TASK
    assert_collection_error(planrunner, text, "2:11: overview: a 482-digit number is out of range*")


def test_too_many_decimal_digits_for_python_is_a_located_error(planrunner: Planrunner) -> None:
    text = "plan: p\ntasks:\n" + TASK.replace("{file_exists: x}", "{file_exists: x, timeout: " + "9" * 5000 + "}")
    out = assert_collection_error(
        planrunner,
        text,
        "6:42: cannot read '99999999999999999999'... (5000 characters) as an integer: too many digits*",
    )
    assert "set_int_max_str_digits" not in out
