"""``--readers-only``: plans that need more than reading files are refused before anything runs."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from planrun import ExitCode, git_env
from planrun.testing import Planrunner

pytestmark = pytest.mark.timeout(120)

MESSAGE = (
    "ERROR: --readers-only: {n} {what} more than reading files (a command, http, a judge or an executor); nothing ran"
)


@pytest.fixture(autouse=True)
def project(planrunner: Planrunner) -> None:
    """The temporary folder is the rootdir (plan paths show as ``plans/a.plan.yaml``)."""
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")


def refused(n: int) -> str:
    return MESSAGE.format(n=n, what="criterion or task needs" if n == 1 else "criteria or tasks need")


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 recording every request it gets."""
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def task(criteria: list[str], run: str | None = None, tid: str = "one") -> str:
    steps = f"    run: {run}\n" if run else ""
    body = "".join(f"      - {c}\n" for c in criteria)
    return f"  - id: {tid}\n    name: {tid}\n{steps}    criteria:\n{body}"


def assert_refused(result: object, offenders: list[str], sentinel: Path) -> None:
    assert result.ret == ExitCode.USAGE_ERROR, result  # type: ignore[attr-defined]
    lines = result.errstr.splitlines()  # type: ignore[attr-defined]
    assert lines == [*offenders, refused(len(offenders))], result
    assert result.no_traceback  # type: ignore[attr-defined]
    assert not sentinel.exists()
    assert "[100%]" not in result.outstr and ".plan.yaml::" not in result.outstr  # type: ignore[attr-defined]


CONFTEST = """\
from pathlib import Path
from planrun import ArgsModel, CheckKind, hookimpl

class Args(ArgsModel):
    name: str

def stamp(args, ctx):
    Path(ctx.workdir, args.name).write_text("ran")

@hookimpl
def planrun_register_checks():
    return [CheckKind("stamp", Args, stamp)]
"""


@pytest.mark.parametrize(
    ("criterion", "kind"),
    [
        ("command: 'touch ran'", "command"),
        ("tests: {run: 'touch ran; echo {junit}'}", "tests"),
        ("python_import: {module: os}", "python_import"),
        ("scope: ['src/**']", "scope"),
        ("stamp: {name: ran}", "stamp"),  # a plugin kind from a conftest that does not declare inprocess
        ("'`touch ran` passes'", "command"),  # a sentence compiling to a command
    ],
)
def test_a_criterion_that_is_no_reader_is_refused(planrunner: Planrunner, criterion: str, kind: str) -> None:
    planrunner.makeconftest(CONFTEST)
    planrunner.makeplan("plans/a", "plan: r\ntasks:\n" + task(["file_exists: [x]", criterion]))
    result = planrunner.run("--verify-only", "--readers-only", "plans")
    assert_refused(result, [f"plans/a.plan.yaml:7 {kind}"], planrunner.path / "ran")


def test_an_http_check_is_refused_and_no_request_is_made(planrunner: Planrunner, server: tuple[str, list[str]]) -> None:
    url, hits = server
    planrunner.makeplan("plans/a", "plan: r\ntasks:\n" + task([f"http: {{url: '{url}/hit', status: 200}}"]))
    assert planrunner.run("--verify-only", "plans").ret == ExitCode.OK  # the server answers
    assert hits == ["/hit"]
    result = planrunner.run("--verify-only", "--readers-only", "plans")
    assert_refused(result, ["plans/a.plan.yaml:6 http"], planrunner.path / "ran")
    assert hits == ["/hit"]  # no second request


def test_a_task_that_would_be_executed_is_refused(planrunner: Planrunner) -> None:
    planrunner.makeplan("plans/a", "plan: r\ntasks:\n" + task(["file_exists: [ran]"], run="touch ran"))
    result = planrunner.run("--readers-only", "plans")
    assert_refused(result, ["plans/a.plan.yaml:3 executor shell"], planrunner.path / "ran")


def test_a_plan_executor_is_refused(planrunner: Planrunner) -> None:
    planrunner.makeplan("plans/a", "plan: r\nexecutor: agent-cli\ntasks:\n" + task(["file_exists: [x]"]))
    result = planrunner.run("--readers-only", "plans")
    assert_refused(result, ["plans/a.plan.yaml:4 executor agent-cli"], planrunner.path / "ran")


def test_every_offender_is_listed_one_per_line(planrunner: Planrunner) -> None:
    planrunner.makeconftest(CONFTEST)
    planrunner.makeplan(
        "plans/a",
        "plan: r\nprerequisites:\n  - command: 'touch ran'\ntasks:\n"
        + task(["file_exists: [x]", "stamp: {name: ran}"], run="touch ran")
        + task(["data: {file: c.json, path: a, exists: true}"], tid="two"),
    )
    planrunner.makeplan("plans/b", "plan: b\ntasks:\n" + task(["python_import: os"]))
    result = planrunner.run("--readers-only", "plans")
    assert_refused(
        result,
        [
            "plans/a.plan.yaml:3 command",
            "plans/a.plan.yaml:5 executor shell",
            "plans/a.plan.yaml:10 stamp",
            "plans/b.plan.yaml:6 python_import",
        ],
        planrunner.path / "ran",
    )


def test_a_readers_only_plan_runs_normally(planrunner: Planrunner) -> None:
    planrunner.makefile("c.json", '{"a": 1}')
    planrunner.makefile("x", "hello")
    planrunner.makeplan(
        "plans/a",
        "plan: r\ntasks:\n"
        + task(
            [
                "file_exists: [x]",
                "file_contains: {path: x, text: hello}",
                "data: {file: c.json, path: a, equals: 1}",
                "manual: a person reads x",
                "{command: 'touch ran', skip: not in CI}",
            ]
        ),
    )
    result = planrunner.run("--verify-only", "--readers-only", "-v", "plans")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["plans/a.plan.yaml::one PASSED*"])
    assert not (planrunner.path / "ran").exists()
    failing = planrunner.run("--verify-only", "--readers-only", "-k", "nothing-matches", "plans")
    assert failing.ret == ExitCode.NO_TESTS_COLLECTED, failing


def test_deselected_items_are_not_refused(planrunner: Planrunner) -> None:
    planrunner.makefile("x", "hello")
    planrunner.makeplan(
        "plans/a", "plan: r\ntasks:\n" + task(["file_exists: [x]"]) + task(["command: 'touch ran'"], tid="two")
    )
    result = planrunner.run("--verify-only", "--readers-only", "-k", "one", "plans")
    assert result.ret == ExitCode.OK, result
    assert not (planrunner.path / "ran").exists()


def _git(path: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=path,
        env=git_env(),
        check=True,
        capture_output=True,
    )


def test_with_plans_from_ref_the_refs_plans_are_checked(planrunner: Planrunner) -> None:
    planrunner.makefile("x", "hello")
    planrunner.makeplan("plans/a", "plan: r\ntasks:\n" + task(["command: 'touch ran'"]))
    _git(planrunner.path, "init", "-q", "-b", "main", ".")
    _git(planrunner.path, "add", "-A")
    _git(planrunner.path, "commit", "-q", "-m", "base")
    planrunner.makeplan("plans/a", "plan: r\ntasks:\n" + task(["file_exists: [x]"]))  # the tree's is a reader
    assert planrunner.run("--verify-only", "--readers-only", "plans").ret == ExitCode.OK
    result = planrunner.run("--verify-only", "--readers-only", "--plans-from-ref", "main", "plans")
    assert_refused(result, ["plans/a.plan.yaml:6 command"], planrunner.path / "ran")
