"""--evidence PATH and planrun verify-evidence PATH: what was checked, on which tree, re-checked later."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, git_env, hookimpl
from planrun.testing import Planrunner, RunResult

BIG = f"{sys.executable} -c \"import sys; sys.stdout.write('0123456789abcdef' * 200000 + 'END')\""

PLAN = """
plan: p
tasks:
  - id: files
    name: Files
    criteria:
      - file_contains: {path: src/a.txt, text: hello}
      - file_not_contains: {path: src/b.txt, pattern: 'nope\\d'}
      - file_exists: [src/a.txt, docs/]
      - file_absent: gone.txt
      - data: {file: conf.json, path: name, equals: demo}
  - id: cmd
    name: Command
    criteria:
      - command: {run: "cat src/a.txt; echo warn >&2; exit 3", exit_code: 3}
"""


def project(planrunner: Planrunner) -> None:
    planrunner.makefile("src/a.txt", "hello world\n")
    planrunner.makefile("src/b.txt", "nothing to see\n")
    planrunner.makefile("docs/index.md", "# docs\n")
    planrunner.makefile("conf.json", '{"name": "demo"}\n')
    planrunner.makeplan("p", PLAN)


def run_evidence(planrunner: Planrunner, *args: str, plan: str = "p.plan.yaml") -> dict[str, Any]:
    result = planrunner.run("--verify-only", "--evidence", "ev.json", *args, plan)
    assert result.ret == ExitCode.OK, result
    return json.loads((planrunner.path / "ev.json").read_text())


def verify(planrunner: Planrunner, *args: str) -> RunResult:
    result = planrunner.run("verify-evidence", *(args or ("ev.json",)))
    assert result.no_traceback(), result
    return result


def criteria(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for plan in doc["plans"] for item in plan["items"] for c in item["criteria"]]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the record -------------------------------------------------------------------


def test_record_names_every_file_read_with_its_hash(planrunner: Planrunner) -> None:
    project(planrunner)
    doc = run_evidence(planrunner)
    assert (doc["format"], doc["version"]) == ("planrun-evidence", 1)
    assert doc["planrun"] and doc["plugins"]["files"] and "evidence" in doc["plugins"]
    (plan,) = doc["plans"]
    assert plan["path"] == "p.plan.yaml" and plan["file"] == "p.plan.yaml"
    assert plan["sha256"] == sha((planrunner.path / "p.plan.yaml").read_bytes())
    assert plan["workdir"] == os.path.realpath(planrunner.path) and plan["workdir_rel"] == "."
    contains, not_contains, exists, absent, data, command = criteria(doc)
    assert contains["record"]["files"] == [
        {"path": "src/a.txt", "type": "file", "size": 12, "sha256": sha(b"hello world\n")}
    ]
    assert not_contains["record"]["files"][0]["sha256"] == sha(b"nothing to see\n")
    assert data["record"]["files"][0]["sha256"] == sha(b'{"name": "demo"}\n')
    assert {f["path"]: f["type"] for f in exists["record"]["files"]} == {"src/a.txt": "file", "docs": "directory"}
    assert exists["record"]["files"][0]["sha256"] == sha(b"hello world\n")
    assert absent["record"]["globs"] == [{"pattern": "gone.txt", "found": [], "outside": []}]
    assert contains["location"] == {"path": "p.plan.yaml", "line": 6, "col": 9}
    assert (contains["name"], contains["kind"], contains["outcome"]) == (
        "file_contains src/a.txt 'hello'",
        "file_contains",
        "passed",
    )
    (ran,) = command["record"]["commands"]
    assert ran["command"] == "cat src/a.txt; echo warn >&2; exit 3"
    assert (ran["cwd"], ran["exit_code"], ran["timed_out"]) == (".", 3, False)
    assert ran["duration"] >= 0
    assert ran["stdout"] == {"bytes": 12, "sha256": sha(b"hello world\n"), "tail": "hello world\n"}
    assert ran["stderr"]["sha256"] == sha(b"warn\n")


def test_command_output_hash_covers_what_the_cap_left_out(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p", f"plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n      - command: {json.dumps(BIG)}\n"
    )
    doc = run_evidence(planrunner)
    (ran,) = criteria(doc)[0]["record"]["commands"]
    real = subprocess.run(BIG, shell=True, capture_output=True, check=True).stdout
    assert len(real) > 2 << 20  # more than the 1 MiB the capture keeps
    assert ran["stdout"]["bytes"] == len(real)
    assert ran["stdout"]["sha256"] == sha(real)
    assert ran["stdout"]["tail"].endswith("cdefEND") and len(ran["stdout"]["tail"]) == 4096
    assert ran["stderr"] == {"bytes": 0, "sha256": sha(b""), "tail": ""}


def test_a_check_of_another_process_helper_kind_records_its_command(planrunner: Planrunner) -> None:
    planrunner.makefile("src/mypkg/__init__.py", "VERSION = 1\n")
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - id: t
            name: T
            criteria:
              - python_import: {module: mypkg, path: src, names: [VERSION]}
        """,
    )
    doc = run_evidence(planrunner)
    (ran,) = criteria(doc)[0]["record"]["commands"]
    assert ran["exit_code"] == 0 and sys.executable in ran["command"] and "mypkg" in ran["command"]
    assert len(ran["stdout"]["sha256"]) == 64


def test_a_task_performed_by_an_executor_is_recorded_after_it_ran(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - id: t
            name: T
            run: printf made > out.txt
            criteria: ["out.txt contains `made`"]
        """,
    )
    result = planrunner.run("--evidence", "ev.json", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    doc = json.loads((planrunner.path / "ev.json").read_text())
    assert criteria(doc)[0]["record"]["files"][0]["sha256"] == sha(b"made")
    assert verify(planrunner).ret == ExitCode.OK


class Records:
    """A reporter plugin that keeps every criterion's ``record``."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    @hookimpl
    def planrun_runtest_logreport(self, report: Any) -> None:
        self.records.extend(c.record for c in report.criteria)


def test_no_record_without_evidence(planrunner: Planrunner) -> None:
    project(planrunner)
    on, off = Records(), Records()
    assert planrunner.run("--verify-only", "--evidence", "ev.json", "p.plan.yaml", plugins=[on]).ret == 0
    assert planrunner.run("--verify-only", "p.plan.yaml", plugins=[off]).ret == 0  # the same process, right after
    assert len(on.records) == len(off.records) == 6
    assert all(r is not None for r in on.records)
    assert off.records == [None] * 6


def test_evidence_is_written_for_a_failing_run_too(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "bye\n")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: ['a.txt contains `hello`']}\n")
    result = planrunner.run("--verify-only", "--evidence", "out/ev.json", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    doc = json.loads((planrunner.path / "out/ev.json").read_text())
    (c,) = criteria(doc)
    assert c["outcome"] == "failed" and "not found in a.txt" in c["message"]
    assert c["record"]["files"][0]["sha256"] == sha(b"bye\n")
    assert doc["exitstatus"] == 1


def test_evidence_path_that_is_a_directory_is_a_usage_error(planrunner: Planrunner) -> None:
    project(planrunner)
    (planrunner.path / "sentinel").mkdir()
    planrunner.makeplan("s", "plan: s\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [ran exists]}\n")
    result = planrunner.run("--evidence", "sentinel", "s.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.strip() == "ERROR: --evidence sentinel: is a directory"
    assert not (planrunner.path / "ran").exists()


# -- verify-evidence -----------------------------------------------------------------


def test_a_passing_runs_record_verifies(planrunner: Planrunner) -> None:
    project(planrunner)
    run_evidence(planrunner)
    result = verify(planrunner)
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        [
            "verify-evidence ev.json: 1 plan, 5 files, 3 globs checked; 1 recorded commands not re-run",
            "OK: everything recorded matches the tree",
        ]
    )


def _outside_same_content(root: Path) -> None:
    outside = root.parent / f"{root.name}-outside.txt"
    outside.write_text("hello world\n")
    (root / "src/a.txt").unlink()
    (root / "src/a.txt").symlink_to(outside)


def _dir_instead(root: Path) -> None:
    (root / "src/a.txt").unlink()
    (root / "src/a.txt").mkdir()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: (r / "src/a.txt").write_text("hello World\n"),
            "src/a.txt changed: 12 bytes with sha256 * now 12 bytes*",
        ),
        (lambda r: (r / "src/a.txt").unlink(), "src/a.txt does not exist"),
        (_outside_same_content, "src/a.txt resolves outside the workdir"),
        (lambda r: (r / "src/a.txt").write_text("hello"), "src/a.txt changed: 12 bytes * now 5 bytes*"),
        (_dir_instead, "src/a.txt is not a regular file"),
        (lambda r: (r / "conf.json").write_text('{"name": "demo"} \n'), "conf.json changed: *"),
    ],
    ids=["one-byte", "deleted", "symlink-out-same-content", "truncated", "now-a-directory", "data-file"],
)
def test_a_changed_file_fails_verification_naming_it(planrunner: Planrunner, change: Any, message: str) -> None:
    project(planrunner)
    run_evidence(planrunner)
    change(planrunner.path)
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"MISMATCH {message} (checked by p.plan.yaml::files criterion *)"])
    mismatches = [line for line in result.outstr.splitlines() if line.startswith("MISMATCH")]
    # Read by three criteria, the file is named once; file_exists's glob may say it no longer matches too.
    name = message.split(" ")[0]
    assert len(mismatches) <= 2 and all(name in line for line in mismatches), result
    assert sum(line.startswith(f"MISMATCH {name} ") for line in mismatches) == 1, result
    if "outside" in message:
        assert "no longer exists" not in result.outstr


def test_an_edited_plan_file_fails_verification(planrunner: Planrunner) -> None:
    project(planrunner)
    run_evidence(planrunner)
    plan = planrunner.path / "p.plan.yaml"
    plan.write_text(plan.read_text().replace("exit_code: 3", "exit_code: 0"))
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISMATCH p.plan.yaml: plan file p.plan.yaml changed (sha256 * recorded, * now)"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: (r / "gone.txt").write_text(""), "glob gone.txt no longer matches what it did: gone.txt now exists"),
        (lambda r: shutil.rmtree(r / "docs"), "docs is no longer a directory (missing, or something else now)"),
    ],
)
def test_what_existence_checks_saw_is_verified(planrunner: Planrunner, change: Any, message: str) -> None:
    project(planrunner)
    run_evidence(planrunner)
    change(planrunner.path)
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"MISMATCH {message} (checked by p.plan.yaml::files criterion *)"])


def test_a_file_named_like_a_home_path_is_an_ordinary_file(planrunner: Planrunner) -> None:
    planrunner.makefile("~notes.txt", "n")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [file_exists: '*notes.txt']}\n")
    run_evidence(planrunner)
    assert verify(planrunner).ret == ExitCode.OK
    (planrunner.path / "~notes.txt").write_text("N")
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISMATCH ~notes.txt changed: *"])


def test_hostile_file_names_are_printed_escaped(planrunner: Planrunner) -> None:
    name = "e\x1b[2Jvil.txt"
    planrunner.makefile(name, "x")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - id: t\n    name: T\n    criteria: [file_exists: 'e*vil.txt']\n")
    run_evidence(planrunner)
    (planrunner.path / name).write_text("y")
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    assert "\x1b" not in result.outstr
    result.stdout.fnmatch_lines(["MISMATCH e\\x1b[[]2Jvil.txt changed: *"])


def test_a_temp_workspace_cannot_be_verified_later(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        workspace: temp
        tasks:
          - {id: t, name: T, run: printf x > f.txt, criteria: [f.txt exists]}
        """,
    )
    assert planrunner.run("--evidence", "ev.json", "p.plan.yaml").ret == ExitCode.OK
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISMATCH p.plan.yaml: the workdir * no longer exists (a temp or copy workspace*"])


def test_rootdir_option_verifies_a_copy_of_the_tree(planrunner: Planrunner, tmp_path_factory: Any) -> None:
    project(planrunner)
    run_evidence(planrunner)
    copy = tmp_path_factory.mktemp("elsewhere") / "checkout"
    shutil.copytree(planrunner.path, copy)
    assert verify(planrunner, "ev.json", "--rootdir", str(copy)).ret == ExitCode.OK
    (copy / "src/a.txt").write_text("changed\n")
    result = verify(planrunner, "ev.json", "--rootdir", str(copy))
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISMATCH src/a.txt changed: *"])
    assert verify(planrunner).ret == ExitCode.OK  # the original tree is unchanged


# -- git ----------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    env = git_env(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(planrunner: Planrunner) -> Path:
    project(planrunner)
    root = planrunner.path
    (root / ".gitignore").write_text("*.log\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def test_git_state_of_a_clean_repository(repo: Path, planrunner: Planrunner) -> None:
    doc = run_evidence(planrunner)
    state = doc["plans"][0]["git"]
    assert state["repository"] is True
    assert state["commit"] == git(repo, "rev-parse", "HEAD")
    assert state["tree"] == git(repo, "rev-parse", "HEAD^{tree}")
    assert state["dirty"] is False
    assert state["excluded"] == [".planrun", "ev.json"]  # what the run writes itself is left out
    assert verify(planrunner).ret == ExitCode.OK


def test_git_state_of_a_dirty_repository_includes_uncommitted_changes(repo: Path, planrunner: Planrunner) -> None:
    (repo / "src/b.txt").write_text("nothing to see, changed\n")
    (repo / "new.txt").write_text("untracked\n")
    (repo / "ignored.log").write_text("ignored\n")
    index = (repo / ".git/index").read_bytes()
    status = git(repo, "status", "--porcelain")
    doc = run_evidence(planrunner)
    state = doc["plans"][0]["git"]
    assert state["dirty"] is True and state["commit"] == git(repo, "rev-parse", "HEAD")
    assert state["tree"] != git(repo, "rev-parse", "HEAD^{tree}")
    names = git(repo, "ls-tree", "-r", "--name-only", state["tree"]).splitlines()
    assert "new.txt" in names and "ignored.log" not in names and "ev.json" not in names
    assert git(repo, "show", f"{state['tree']}:src/b.txt") == "nothing to see, changed"
    assert (repo / ".git/index").read_bytes() == index  # the real index was never touched
    assert git(repo, "status", "--porcelain").replace("?? ev.json\n", "") == status
    # Committing exactly what was checked keeps the tree: verification holds and notes the new HEAD.
    # (the evidence file itself committed with it: it is never part of the tree compared)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the checked tree")
    result = verify(planrunner)
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["note: p.plan.yaml: HEAD is * now, * was recorded"])
    assert run_evidence(planrunner)["plans"][0]["git"]["dirty"] is False  # HEAD now is what is checked


def test_a_changed_tree_fails_verification_naming_what_changed(repo: Path, planrunner: Planrunner) -> None:
    run_evidence(planrunner)
    (repo / "unread.txt").write_text("no criterion reads this\n")
    (repo / "ignored.log").write_text("ignored files are not part of the tree\n")
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["MISMATCH p.plan.yaml: the git tree differs: * was checked, the working tree is * now (A unread.txt)"]
    )


def test_outside_a_repository_git_state_says_so(planrunner: Planrunner) -> None:
    project(planrunner)
    doc = run_evidence(planrunner)
    assert doc["plans"][0]["git"] == {"repository": False, "reason": "not a git repository"}


def test_workdir_below_the_repository_top(repo: Path, planrunner: Planrunner) -> None:
    planrunner.makefile("sub/f.txt", "f\n")
    planrunner.makeplan("sub/q", "plan: q\nworkdir: .\ntasks:\n  - {id: t, name: T, criteria: [f.txt exists]}\n")
    doc = run_evidence(planrunner, plan="sub/q.plan.yaml")
    (plan,) = doc["plans"]
    assert plan["workdir"] == os.path.realpath(repo / "sub") and plan["git"]["prefix"] == "sub/"
    assert plan["git"]["toplevel"] == os.path.realpath(repo)
    assert plan["git"]["dirty"] is True  # sub/ is not committed
    assert verify(planrunner).ret == ExitCode.OK


# -- malformed evidence files -------------------------------------------------------------


def good_doc(planrunner: Planrunner) -> dict[str, Any]:
    project(planrunner)
    return run_evidence(planrunner)


def _first_record(doc: dict[str, Any]) -> dict[str, Any]:
    record = criteria(doc)[0]["record"]
    assert record is not None
    return record


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=2), "evidence version 2 is not supported (this planrun reads version 1)"),
        (lambda d: d.update(version=True), "evidence version True is not supported*"),
        (
            lambda d: d.update(format="other"),
            "not a planrun evidence file (format 'other', expected 'planrun-evidence')",
        ),
        (lambda d: d.pop("plans"), "the document: missing key 'plans'"),
        (lambda d: d["plans"][0].pop("git"), "plans[0]: missing key 'git'"),
        (lambda d: d["plans"][0].update(sha256="abc"), "plans[0].sha256: not a SHA-256 (64 lowercase hex digits)"),
        (
            lambda d: d["plans"][0]["items"][0].update(criteria={}),
            "plans[0].items[0].criteria: expected array, got object",
        ),
        (
            lambda d: _first_record(d)["files"][0].pop("path"),
            "plans[0].items[0].criteria[0].record.files[0]: missing key 'path'",
        ),
        (
            lambda d: _first_record(d)["files"][0].update(path="../outside.txt"),
            "plans[0].items[0].criteria[0].record.files[0].path: path '../outside.txt' escapes the workdir with '..'*",
        ),
        (
            lambda d: _first_record(d)["files"][0].update(path="/etc/passwd"),
            "*.record.files[0].path: absolute path '/etc/passwd': criterion paths are relative to the workdir*refused*",
        ),
        (
            lambda d: criteria(d)[3]["record"]["globs"][0].update(pattern="../*"),
            "*.criteria[3].record.globs[0].pattern: path '../*' escapes the workdir*",
        ),
        (lambda d: d["plans"][0].update(file="/etc/passwd"), "plans[0].file: absolute path '/etc/passwd'*refused*"),
        (lambda d: d["plans"][0].update(workdir="relative"), "plans[0].workdir: not an absolute path"),
        (
            lambda d: d["plans"][0].update(
                git={"repository": True, "excluded": ["../x"], "tree": None, "commit": None}
            ),
            "plans[0].git.excluded[0]: path '../x' escapes*",
        ),
    ],
    ids=[
        "version",
        "version-bool",
        "format",
        "no-plans",
        "no-git",
        "bad-sha",
        "criteria-type",
        "file-no-path",
        "dotdot",
        "absolute",
        "glob-dotdot",
        "plan-absolute",
        "workdir-relative",
        "excluded-dotdot",
    ],
)
def test_malformed_evidence_is_refused_before_anything_is_read(planrunner: Planrunner, edit: Any, message: str) -> None:
    doc = good_doc(planrunner)
    # Were the escaping record read, it would match: the outside file holds what the record says.
    (planrunner.path.parent / "outside.txt").write_text("hello world\n")
    edit(doc)
    (planrunner.path / "ev.json").write_text(json.dumps(doc))
    result = verify(planrunner)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.outstr == ""  # nothing verified, nothing reported as checked
    (line,) = result.errstr.splitlines()
    pytest.LineMatcher([line]).fnmatch_lines([f"ERROR: ev.json: {message}".replace("[", "[[]")])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "ERROR: ev.json: not JSON: Expecting property name enclosed in double quotes*"),
        (b"", "ERROR: ev.json: not JSON: *"),
        (b"\xff\xfe{}", "ERROR: ev.json: not JSON: *"),
        (b"[" * 100000 + b"]" * 100000, "ERROR: ev.json: not JSON this planrun reads: nested too deeply"),
        (b"[1, 2]", "ERROR: ev.json: the document: expected object, got array"),
    ],
    ids=["syntax", "empty", "binary", "deep", "array"],
)
def test_an_evidence_file_that_is_not_json_is_a_usage_error(
    planrunner: Planrunner, content: bytes, message: str
) -> None:
    (planrunner.path / "ev.json").write_bytes(content)
    result = verify(planrunner)
    assert result.ret == ExitCode.USAGE_ERROR
    assert len(result.errstr.splitlines()) == 1
    result.stderr.fnmatch_lines([message])


def test_an_unreadable_evidence_file_is_a_usage_error(planrunner: Planrunner) -> None:
    result = verify(planrunner, "missing.json")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: missing.json: cannot be read: No such file or directory"])
    os.mkfifo(planrunner.path / "fifo.json")  # never blocks: it is not a regular file
    result = verify(planrunner, "fifo.json")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: fifo.json: not a regular file"])


@pytest.mark.parametrize(
    ("args", "ret", "message"),
    [
        ((), ExitCode.USAGE_ERROR, "ERROR: planrun verify-evidence: the evidence file is missing"),
        (("a.json", "b.json"), ExitCode.USAGE_ERROR, "ERROR: planrun verify-evidence: unexpected argument 'b.json'"),
        (("--bogus", "a.json"), ExitCode.USAGE_ERROR, "ERROR: planrun verify-evidence: unexpected argument '--bogus'"),
    ],
)
def test_verify_evidence_usage_errors(planrunner: Planrunner, args: tuple[str, ...], ret: int, message: str) -> None:
    from planrun.cli import main

    result = planrunner.run("verify-evidence", *args)
    assert result.ret == ret
    result.stderr.fnmatch_lines([message, "usage: planrun verify-evidence PATH [[]--rootdir DIR[]]"])
    assert main(["verify-evidence", "--help"]) == ExitCode.OK


def test_rootdir_that_is_not_a_directory_is_a_usage_error(planrunner: Planrunner) -> None:
    good_doc(planrunner)
    result = verify(planrunner, "ev.json", "--rootdir", "nowhere")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.errstr.strip() == "ERROR: --rootdir nowhere is not a directory"


def _shape(value: Any) -> Any:
    """The keys of every object, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def test_docs_show_the_shape_a_run_writes(repo: Path, planrunner: Planrunner) -> None:
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "evidence.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))  # type: ignore[union-attr]
    doc = run_evidence(planrunner)
    example["plugins"] = doc["plugins"]  # names to versions: the loaded plugins
    assert _shape(example) == _shape(doc)
    for key in _shape(doc["plans"][0]["items"][0]["criteria"][0]["record"]["files"][0]):
        assert f'"{key}"' in text
    for key in criteria(doc)[5]["record"]["commands"][0]:
        assert f"`{key}`" in text


def test_a_glob_that_matched_an_older_evidence_file_still_verifies(planrunner: Planrunner) -> None:
    planrunner.makefile("conf.json", "{}")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [file_exists: '*.json']}\n")
    run_evidence(planrunner)
    doc = run_evidence(planrunner)  # this run's glob matched the previous run's ev.json, then rewrote it
    assert "ev.json" in criteria(doc)[0]["record"]["globs"][0]["found"]
    assert verify(planrunner).ret == ExitCode.OK
    (planrunner.path / "conf.json").write_text("[]")
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISMATCH conf.json changed: *"])
    assert "ev.json changed" not in result.outstr


def test_recorded_text_is_printed_escaped(planrunner: Planrunner) -> None:
    project(planrunner)
    planrunner.run("--verify-only", "--evidence", "ev.json", "p.plan.yaml")
    doc = json.loads((planrunner.path / "ev.json").read_text())
    doc["plans"][0]["path"] = "p\x1b]0;pwned\x07.plan.yaml"
    doc["plans"][0]["sha256"] = "0" * 64
    (planrunner.path / "ev.json").write_text(json.dumps(doc))
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    assert "\x1b" not in result.outstr and "\x07" not in result.outstr
    result.stdout.fnmatch_lines(["MISMATCH p\\x1b]0;pwned\\x07.plan.yaml: plan file p.plan.yaml changed *"])


@pytest.mark.parametrize("hashed", [True, False])
def test_run_process_hashes_both_whole_streams(tmp_path: Path, hashed: bool) -> None:
    from planrun.process import run_process

    script = "import sys; sys.stdout.write('o' * 300000 + 'O'); sys.stderr.write('e' * 200000 + 'E')"
    result = run_process([sys.executable, "-c", script], cwd=tmp_path, timeout=60, max_output=1000, hash_output=hashed)
    assert result.stdout_omitted > 0 and result.stderr_omitted > 0  # the capture kept only head and tail
    if hashed:
        assert result.stdout_sha256 == sha(b"o" * 300000 + b"O")
        assert result.stderr_sha256 == sha(b"e" * 200000 + b"E")
    else:
        assert result.stdout_sha256 is None and result.stderr_sha256 is None


def test_a_command_that_timed_out_is_recorded_as_such(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    criteria: [command: {run: 'echo started; sleep 30', timeout: 0.5}]\n",
    )
    result = planrunner.run("--verify-only", "--evidence", "ev.json", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    (c,) = criteria(json.loads((planrunner.path / "ev.json").read_text()))
    assert c["outcome"] == "error" and c["message"].startswith("timed out")
    (ran,) = c["record"]["commands"]
    assert (ran["exit_code"], ran["timed_out"]) == (None, True)
    assert ran["stdout"]["tail"] == "started\n"


def test_a_file_over_the_read_limit_is_recorded_without_its_hash(planrunner: Planrunner) -> None:
    planrunner.makefile("big.bin", "x" * 5000)
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [big.bin exists]}\n")
    doc = run_evidence(planrunner, "--max-file-bytes", "1000")
    assert criteria(doc)[0]["record"]["files"] == [{"path": "big.bin", "type": "file", "size": 5000, "sha256": None}]
    assert verify(planrunner).ret == ExitCode.OK
    (planrunner.path / "big.bin").unlink()
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISMATCH big.bin does not exist (checked by p.plan.yaml::t criterion 1)"])


def test_an_http_check_records_each_request_and_what_came_back(planrunner: Planrunner) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = b'{"ok": true}' + b"x" * 5000

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/old":
                self.send_response(302)
                self.send_header("Location", "/new")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        planrunner.makeplan(
            "p",
            f"plan: p\ntasks:\n  - id: t\n    name: T\n    criteria: [{{http: {{url: '{url}/old', status: 200}}}}]\n",
        )
        doc = run_evidence(planrunner)
    finally:
        server.shutdown()
        server.server_close()
    (record,) = [c["record"] for c in criteria(doc)]
    first, second = record["requests"]
    assert (first["method"], first["url"], first["status"], first["bytes"]) == ("GET", f"{url}/old", 302, 0)
    assert (second["url"], second["status"], second["sha256"]) == (f"{url}/new", 200, sha(body))
    assert second["bytes"] == len(body) and second["tail"] == "x" * 4096
    assert verify(planrunner).ret == ExitCode.OK  # a record with requests verifies (they are not repeated)


@pytest.mark.parametrize("check", ["file_contains", "file_not_contains", "data"])
def test_the_hash_recorded_is_of_the_bytes_the_check_judged(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    """A file rewritten in place while a check reads it: the record's hash is of what the check read, not of
    another read of the file (a writer is stood in for by rewriting it just before the check's read)."""
    from planrun import types

    planrunner.makefile("a.json", '{"k": "old"}\n')
    criterion = {
        "file_contains": "file_contains: {path: a.json, text: new}",
        "file_not_contains": "file_not_contains: {path: a.json, text: old}",
        "data": "data: {file: a.json, path: k, equals: new}",
    }[check]
    planrunner.makeplan("p", f"plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n      - {criterion}\n")
    new = b'{"k": "new"}\n'  # the same size: a stat would not tell
    read_fd = types._read_fd

    def rewritten_first(fd: int, *args: Any) -> bytes:
        with open(planrunner.path / "a.json", "r+b") as f:
            f.write(new)
        return read_fd(fd, *args)

    monkeypatch.setattr(types, "_read_fd", rewritten_first)
    doc = run_evidence(planrunner)  # passes: the check judged the new bytes
    (judged,) = criteria(doc)
    assert judged["record"]["files"] == [{"path": "a.json", "type": "file", "size": len(new), "sha256": sha(new)}]


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_the_plan_recorded_is_the_plan_that_ran(planrunner: Planrunner, cache: str) -> None:
    """The plan file rewritten after it was collected: the record names the bytes that ran (from the loader, or
    the cache key its entry was found by), so verification flags the edit instead of vouching for it."""
    project(planrunner)
    ran = (planrunner.path / "p.plan.yaml").read_bytes()
    if cache == "warm":
        run_evidence(planrunner)  # the next run collects the plan from the cache
    planrunner.makeconftest(
        """
        import pathlib

        def planrun_collection_modifyitems(session):
            plan = pathlib.Path("p.plan.yaml")
            plan.write_text(plan.read_text().replace("exit_code: 3", "exit_code: 0"))
        """
    )
    doc = run_evidence(planrunner)  # the plan as collected: its command criterion expects exit code 3
    assert doc["plans"][0]["sha256"] == sha(ran)
    assert (planrunner.path / "p.plan.yaml").read_bytes() != ran
    (planrunner.path / "conftest.py").unlink()
    result = verify(planrunner)
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["MISMATCH*plan file p.plan.yaml changed*"])
