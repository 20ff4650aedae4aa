"""``planrun lint``: every finding triggered and not, exit codes, formats, noqa."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planrun.testing import Planrunner

HEAD = "plan: P\ntasks:\n"


def lint(planrunner: Planrunner, body: str, *args: str, name: str = "p") -> object:
    planrunner.makeplan(name, HEAD + body)
    return planrunner.run("lint", *args, f"{name}.plan.yaml")


def codes(result: object) -> list[str]:
    return [line.split()[1] for line in result.outstr.splitlines() if ": PR" in line]  # type: ignore[attr-defined]


CLEAN_TASK = """\
  - id: a
    name: A
    action: create
    file: a.txt
    criteria:
      - file_exists: a.txt
"""


def test_clean_plan_exits_0(planrunner: Planrunner) -> None:
    result = lint(planrunner, CLEAN_TASK)
    assert result.ret == 0, result.outstr
    result.stdout.fnmatch_lines(["no findings in 1 plan"])


def test_pr001_schema_error_exits_2(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n    dependencies: [b]\n")
    assert result.ret == 2
    result.stdout.re_match_lines([r"p\.plan\.yaml:5:5: PR001 .*depends_on.* \(hint: fix the plan file\)"])


def test_pr001_cycle(planrunner: Planrunner) -> None:
    body = "  - {id: a, name: A, depends_on: [b], criteria: ['`true` passes']}\n"
    body += "  - {id: b, name: B, depends_on: [a], criteria: ['`true` passes']}\n"
    result = lint(planrunner, body)
    assert result.ret == 2
    assert codes(result) == ["PR001"]


def test_pr002_criterion_does_not_compile(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n    criteria:\n      - Model exports User type\n")
    assert result.ret == 2
    result.stdout.re_match_lines([r"p\.plan\.yaml:6:9: PR002 criterion .*not machine-checkable.*"])


def test_pr003_only_manual(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n    criteria:\n      - manual: look at it\n")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["p.plan.yaml:3:5: PR003 task 'a' has only manual criteria: nothing machine-checks that it is done (hint: *)"]
    )


def test_pr003_no_criteria(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n")
    result.stdout.fnmatch_lines(["p.plan.yaml:3:5: PR003 task 'a' has no criteria*"])
    assert result.ret == 1


def test_pr003_not_with_a_machine_check(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n    criteria:\n      - manual: look\n      - '`true` passes'\n")
    assert result.ret == 0, result.outstr


@pytest.mark.parametrize(
    "files",
    ["[a/1, b/2, c/3]", "[f1, f2, f3, f4, f5, f6]"],
)
def test_pr004_non_atomic(planrunner: Planrunner, files: str) -> None:
    result = lint(planrunner, f"  - id: a\n    name: A\n    files: {files}\n    criteria: ['`true` passes']\n")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["p.plan.yaml:5:5: PR004 task 'a' is not atomic: *"])


def test_pr004_not_for_related_files(planrunner: Planrunner) -> None:
    body = "  - id: a\n    name: A\n    files: [src/a.py, src/b.py, tests/t.py]\n    criteria: ['`true` passes']\n"
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr


PR005 = """\
  - {{id: a, name: A, file: x.txt, criteria: ['`true` passes']}}
  - {{id: b, name: B, file: y.txt, criteria: ['`true` passes']}}
  - id: c
    name: C
    files: [z.txt, {file}]
    depends_on: {deps}
    criteria: ['`true` passes']
"""


@pytest.mark.parametrize("file", ["x.txt", "./x.txt", "'*.txt'"])
def test_pr005_overlap_without_dependency(planrunner: Planrunner, file: str) -> None:
    result = lint(planrunner, PR005.format(file=file, deps="[b]"))
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["p.plan.yaml:7:20: PR005 tasks 'a' and 'c' both change * but neither depends on the other (hint: *)"]
    )


def test_pr005_not_with_a_transitive_dependency(planrunner: Planrunner) -> None:
    body = PR005.format(file="x.txt", deps="[b]").replace("file: y.txt,", "file: y.txt, depends_on: [a],")
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr


def test_pr006_delete_without_file_absent(planrunner: Planrunner) -> None:
    result = lint(
        planrunner, "  - id: a\n    name: A\n    action: delete\n    file: old.txt\n    criteria: ['`true` passes']\n"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["p.plan.yaml:5:5: PR006 delete task 'a' has no file_absent criterion (hint: add '- file_absent: old.txt')"]
    )


@pytest.mark.parametrize("criterion", ["file_absent: old.txt", "old.txt is deleted"])
def test_pr006_not_with_file_absent(planrunner: Planrunner, criterion: str) -> None:
    body = f"  - id: a\n    name: A\n    action: delete\n    file: old.txt\n    criteria:\n      - {criterion}\n"
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr


def test_pr007_create_without_criterion_on_its_file(planrunner: Planrunner) -> None:
    body = "  - id: a\n    name: A\n    action: create\n    files: [a.txt, b.txt]\n    criteria:\n      - file_exists: a.txt\n"
    result = lint(planrunner, body)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["p.plan.yaml:6:20: PR007 create task 'a' has no criterion on its file 'b.txt' (hint: *)"]
    )
    assert codes(result) == ["PR007"]


@pytest.mark.parametrize(
    ("file", "criterion"),
    [
        ("src/a.py", "file_exists: src"),
        ("src/a.py", "'src/a.py contains `x`'"),
        ("src/a.json", "{data: {file: src/a.json, path: x, exists: true}}"),
    ],
)
def test_pr007_not_with_a_file_criterion(planrunner: Planrunner, file: str, criterion: str) -> None:
    body = f"  - id: a\n    name: A\n    action: create\n    files: [{file}]\n    criteria:\n      - {criterion}\n"
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr


def test_pr008_edge_case_without_criteria(planrunner: Planrunner) -> None:
    body = (
        CLEAN_TASK
        + "edge_cases:\n  - case: Empty input\n    handling: refuse\n  - case: Big\n    criteria: ['`true` passes']\n"
    )
    result = lint(planrunner, body)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["p.plan.yaml:10:5: PR008 edge case 'Empty input' has no machine-checkable criterion*"])
    assert codes(result) == ["PR008"]


def test_pr009_vacuous_criterion(planrunner: Planrunner) -> None:
    body = "  - id: a\n    name: A\n    file: a.txt\n    criteria:\n      - file_exists: a.txt\n      - other.txt contains `x`\n"
    result = lint(planrunner, body)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["p.plan.yaml:8:9: PR009 criterion * of task 'a' checks 'other.txt', which neither*"])


@pytest.mark.parametrize(
    ("files", "criterion"),
    [
        ("[src]", "file_exists: 'src/*.py'"),
        ("['src/*.py']", "file_exists: src/a.py"),
        ("[src/]", "file_exists: src/a/b.py"),
    ],
)
def test_pr009_not_for_globs_and_folders(planrunner: Planrunner, files: str, criterion: str) -> None:
    body = f"  - id: a\n    name: A\n    files: {files}\n    criteria:\n      - {criterion}\n"
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr


@pytest.mark.parametrize("criterion", ["file_exists: 'lib/*.py'", "'lib/a.py contains `x`'", "file_absent: srcx/a.py"])
def test_pr009_variants(planrunner: Planrunner, criterion: str) -> None:
    body = f"  - id: a\n    name: A\n    files: [src]\n    criteria:\n      - {criterion}\n"
    result = lint(planrunner, body)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["p.plan.yaml:7:9: PR009 criterion * of task 'a' checks *"])


def test_pr009_not_for_a_file_of_a_dependency(planrunner: Planrunner) -> None:
    body = CLEAN_TASK + "  - id: b\n    name: B\n    file: b.txt\n    depends_on: [a]\n    criteria:\n"
    body += "      - file_exists: [a.txt, b.txt]\n"
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr


def test_noqa_on_the_line_and_on_the_task(planrunner: Planrunner) -> None:
    body = "  - id: a\n    name: A\n    action: delete\n    file: old.txt\n    criteria:\n      - manual: look\n"
    assert codes(lint(planrunner, body)) == ["PR003", "PR006"]
    noqa_line = body.replace("action: delete", "action: delete  # planrun: noqa PR006")
    assert codes(lint(planrunner, noqa_line)) == ["PR003"]
    other_code = body.replace("action: delete", "action: delete  # planrun: noqa PR003")
    assert codes(lint(planrunner, other_code)) == ["PR003", "PR006"]
    bare_on_task = body.replace("- id: a", "- id: a  # planrun: noqa")
    result = lint(planrunner, bare_on_task)
    assert codes(result) == [] and result.ret == 0


def test_noqa_does_not_hide_load_errors(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a  # planrun: noqa\n    name: A\n    criteria: [Model exports User]\n")
    assert result.ret == 2 and codes(result) == ["PR002"]


def test_format_json(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n", "--format=json")
    assert result.ret == 1
    assert json.loads(result.outstr) == [
        {
            "path": "p.plan.yaml",
            "line": 3,
            "col": 5,
            "code": "PR003",
            "message": "task 'a' has no criteria: nothing machine-checks that it is done",
            "hint": "add a check such as file_contains, command or tests",
        }
    ]


def test_format_github_escapes_properties_and_message(planrunner: Planrunner) -> None:
    body = "  - id: a\n    name: A\n    criteria: ['`true` passes']\nedge_cases:\n  - case: \"100% full, then: more\"\n"
    result = lint(planrunner, body, "--format", "github", name="a,b:c")
    assert result.ret == 1
    assert result.outstr.splitlines() == [
        "::warning file=a%2Cb%3Ac.plan.yaml,line=7,col=5,title=PR008::edge case '100%25 full, then: more'"
        " has no machine-checkable criterion (hint: add criteria that show it is handled (an http or command check))"
    ]


def test_newline_in_a_file_name(planrunner: Planrunner) -> None:
    planrunner.makeplan("x%\ny", HEAD + "  - id: a\n    name: A\n")
    github = planrunner.run("lint", "--format=github", "x%\ny.plan.yaml")
    assert github.outstr.splitlines() == [
        "::warning file=x%25%0Ay.plan.yaml,line=3,col=5,title=PR003::task 'a' has no criteria:"
        " nothing machine-checks that it is done (hint: add a check such as file_contains, command or tests)"
    ]
    text = planrunner.run("lint", "x%\ny.plan.yaml")
    assert text.outstr.splitlines()[0].startswith("x%\\ny.plan.yaml:3:5: PR003 task 'a' has no criteria")
    assert text.ret == github.ret == 1


def test_github_escaping_rules() -> None:
    from planrun.lint import _esc_data, _esc_prop

    assert _esc_data("50%\r\nx: a,b") == "50%25%0D%0Ax: a,b"
    assert _esc_prop("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert _esc_data("\x1b[2J") == "\\x1b[2J"  # a terminal escape from a plan is shown, not obeyed


def test_format_github_load_error_is_error(planrunner: Planrunner) -> None:
    result = lint(planrunner, "  - id: a\n    name: A\n    nope: 1\n", "--format=github")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["::error file=p.plan.yaml,line=5,col=5,title=PR001::*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format=xml", "."], "ERROR: --format=xml: unknown format (choose from text, github, json)"),
        (["missing.plan.yaml"], "ERROR: file or directory not found: missing.plan.yaml"),
        (["--format"], "ERROR: --format needs a value: text, github or json"),
    ],
)
def test_usage_errors_exit_4(planrunner: Planrunner, args: list[str], message: str) -> None:
    result = planrunner.run("lint", *args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])
    assert result.outstr == ""


def test_nothing_collected_exits_5(planrunner: Planrunner) -> None:
    (planrunner.path / "empty").mkdir()
    result = planrunner.run("lint", "empty")
    assert result.ret == 5
    result.stderr.fnmatch_lines(["ERROR: no plan files collected"])


def test_nothing_runs(planrunner: Planrunner) -> None:
    body = (
        "  - id: a\n    name: A\n    run: touch ran.txt\n    file: ran.txt\n    criteria: ['`touch ran2.txt` passes']\n"
    )
    result = lint(planrunner, body)
    assert result.ret == 0, result.outstr
    assert not (planrunner.path / "ran.txt").exists() and not (planrunner.path / "ran2.txt").exists()


def test_conftest_check_kinds_apply(planrunner: Planrunner) -> None:
    planrunner.makeconftest(
        """
        from pydantic import BaseModel
        from planrun import hookimpl, CheckKind

        class Args(BaseModel):
            pass

        def always(args, ctx):
            pass

        @hookimpl
        def planrun_register_checks():
            return [CheckKind("always", Args, always)]
        """
    )
    result = lint(planrunner, "  - id: a\n    name: A\n    criteria:\n      - always: {}\n")
    assert result.ret == 0, result.outstr + result.errstr


def test_help(planrunner: Planrunner) -> None:
    result = planrunner.run("lint", "--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["usage: planrun lint *"])


def test_shipped_plans_lint_clean(planrunner: Planrunner) -> None:
    plans = Path(__file__).resolve().parent.parent / "plans"
    result = planrunner.run("lint", str(plans))
    assert result.ret == 0, result.outstr


def test_load_error_and_findings_of_other_plans(planrunner: Planrunner) -> None:
    planrunner.makeplan("bad", HEAD + "  - id: a\n    nam: A\n")
    planrunner.makeplan("good", HEAD + "  - id: a\n    name: A\n")
    result = planrunner.run("lint", ".")
    assert result.ret == 2
    result.stdout.re_match_lines([r"bad\.plan\.yaml:4:5: PR001 .*", r"good\.plan\.yaml:3:5: PR003 .*"])


def test_json_clean_is_an_empty_list(planrunner: Planrunner) -> None:
    result = lint(planrunner, CLEAN_TASK, "--format=json")
    assert result.ret == 0
    assert json.loads(result.outstr) == []


@pytest.mark.parametrize(
    ("comment", "left"),
    [
        ("# planrun: noqa PR003, PR006", []),
        ("# planrun: noqa: PR006 PR003", []),
        ("#planrun:noqa pr006", ["PR003"]),
        ("# planrun: noqa PR007", ["PR003", "PR006"]),
    ],
)
def test_noqa_code_lists(planrunner: Planrunner, comment: str, left: list[str]) -> None:
    body = f"  - id: a  {comment}\n    name: A\n    action: delete\n    file: old.txt\n    criteria:\n      - manual: look\n"
    assert codes(lint(planrunner, body)) == left
