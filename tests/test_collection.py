"""Collection: what is opened, symlink loops, long names, and what ``workspace: copy`` copies."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import planrun
from planrun import ExitCode
from planrun.testing import Planrunner

TOUCH = "plan: p\n{extra}tasks:\n  - {{id: t, name: T, run: touch made.txt, criteria: [{{file_exists: made.txt}}]}}\n"


def plan_text(extra: str = "") -> str:
    return TOUCH.format(extra=extra)


class Capture:
    """Keeps what the session knew at its end: the warnings and each plan's workdir."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.workdirs: dict[str, Path | None] = {}
        self.listing: dict[str, list[str]] = {}

    @planrun.hookimpl
    def planrun_sessionfinish(self, session: Any, exitstatus: int) -> None:
        self.warnings = list(session.config.warnings)
        self.workdirs = {p.display: p.workdir for p in session.plans}

    @planrun.hookimpl
    def planrun_task_execute(self, task: Any, executor: Any, context: Any) -> None:
        # What the workspace held when the task ran (None: the executor goes on as usual).
        found = []
        for dirpath, dirnames, filenames in os.walk(context.workdir):
            rel = os.path.relpath(dirpath, context.workdir)
            found += [os.path.normpath(os.path.join(rel, n)) for n in dirnames + filenames]
        self.listing[task.id] = sorted(found)


@pytest.fixture
def unix_socket(planrunner: Planrunner) -> Iterator[Any]:
    socks: list[socket.socket] = []

    def make(name: str) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(name)  # relative: the cwd is the project
        socks.append(s)

    yield make
    for s in socks:
        s.close()


# -- item 8: what is not a regular file is never opened for reading ------------------


def test_fifo_named_like_a_plan_in_a_scanned_folder_is_a_collection_error(planrunner: Planrunner) -> None:
    planrunner.makeplan("plans/good", plan_text())
    os.mkfifo("plans/x.plan.yaml")
    result = planrunner.run("plans")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["x.plan.yaml: not a regular file (a FIFO)", "*1 error*"])
    assert not Path("plans/made.txt").exists() and not Path("made.txt").exists()  # nothing ran
    assert result.no_traceback()


def test_fifo_given_by_path_is_a_collection_error(planrunner: Planrunner) -> None:
    os.mkfifo("x.plan.yaml")
    result = planrunner.run("x.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["x.plan.yaml: not a regular file (a FIFO)"])


def test_socket_named_like_a_plan(planrunner: Planrunner, unix_socket: Any) -> None:
    planrunner.makeplan("good", plan_text())
    unix_socket("s.plan.yaml")
    for args in ((".",), ("s.plan.yaml", "good.plan.yaml")):
        result = planrunner.run(*args)
        assert result.ret == ExitCode.INTERRUPTED, result
        result.stdout.fnmatch_lines(["s.plan.yaml: not a regular file (a socket)"])
    assert not Path("made.txt").exists()


def test_directory_named_like_a_plan_inside_a_scanned_folder(planrunner: Planrunner) -> None:
    Path("plans/odd.plan.yaml").mkdir(parents=True)
    planrunner.makeplan("plans/odd.plan.yaml/inner", plan_text())  # not collected: its folder is refused
    result = planrunner.run("plans")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["odd.plan.yaml: not a regular file (a directory)"])
    assert not Path("made.txt").exists()


def test_device_given_by_path(planrunner: Planrunner) -> None:
    result = planrunner.run("/dev/null")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["null: not a regular file (a character device)"])  # the rootdir is /dev


def test_symlink_to_a_fifo(planrunner: Planrunner) -> None:
    os.mkfifo("pipe")
    os.symlink("pipe", "l.plan.yaml")
    result = planrunner.run(".")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["l.plan.yaml: not a regular file (a FIFO)"])


# -- item 10: symlink loops and long names ---------------------------------------------


@pytest.mark.parametrize(
    "links",
    [
        {"a.plan.yaml": "b.plan.yaml", "b.plan.yaml": "a.plan.yaml"},
        {"a.plan.yaml": "a.plan.yaml"},
        {"a.plan.yaml": "c.plan.yaml", "c.plan.yaml": "d.plan.yaml", "d.plan.yaml": "a.plan.yaml"},
    ],
    ids=["a-b-a", "a-a", "a-c-d-a"],
)
def test_symlink_loop_among_plan_files_in_a_scanned_folder(planrunner: Planrunner, links: dict[str, str]) -> None:
    Path("plans").mkdir()
    planrunner.makeplan("plans/good", plan_text())
    for name, target in links.items():
        os.symlink(target, f"plans/{name}")
    result = planrunner.run("plans")
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(["a.plan.yaml: cannot read the plan file: a symlink loop"])
    assert result.no_traceback()
    assert not Path("plans/made.txt").exists()


@pytest.mark.parametrize("arg", ["a.plan.yaml", "loop", "loop/x.plan.yaml", "a.plan.yaml::t"])
def test_symlink_loop_given_by_path_says_so(planrunner: Planrunner, arg: str) -> None:
    os.symlink("b.plan.yaml", "a.plan.yaml")
    os.symlink("a.plan.yaml", "b.plan.yaml")
    os.symlink("loop", "loop")  # a folder link to itself
    result = planrunner.run(arg)
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: symlink loop: {arg.partition('::')[0]}"])


def test_directory_symlink_loop_in_a_scanned_folder_is_not_followed(planrunner: Planrunner) -> None:
    Path("plans/sub").mkdir(parents=True)
    os.symlink("..", "plans/sub/up")  # a cycle through a folder link
    os.symlink("self", "plans/self")
    planrunner.makeplan("plans/sub/p", plan_text())
    result = planrunner.run("plans")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=1)


def test_broken_symlink_given_by_path(planrunner: Planrunner) -> None:
    os.symlink("gone.plan.yaml", "x.plan.yaml")
    result = planrunner.run("x.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: file or directory not found: x.plan.yaml (a broken symlink)"])


@pytest.mark.parametrize("length", [200, 245, 255])
@pytest.mark.parametrize("workspace", ["temp", "copy"])
def test_long_plan_file_names(planrunner: Planrunner, length: int, workspace: str) -> None:
    name = "n" * (length - len(".plan.yaml")) + ".plan.yaml"
    assert len(name) == length
    Path("work").mkdir()
    planrunner.makefile(name, plan_text(f"workspace: {workspace}\n"))
    capture = Capture()
    result = planrunner.run(name, plugins=[capture])
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=1)
    assert not Path("made.txt").exists()  # it ran in the workspace
    workdir = capture.workdirs[name]
    assert workdir is not None and not workdir.exists()  # and the workspace is gone


def test_odd_plan_id_characters_make_a_plain_workspace_name(planrunner: Planrunner) -> None:
    planrunner.makefile("sp ace ü.plan.yaml", plan_text("workspace: temp\n"))
    capture = Capture()
    result = planrunner.run("sp ace ü.plan.yaml", plugins=[capture])
    assert result.ret == ExitCode.OK, result
    workdir = capture.workdirs["sp ace ü.plan.yaml"]
    assert workdir is not None and workdir.name.startswith("planrun-sp_ace__-")


# -- item 11: workspace: copy ------------------------------------------------------------

COPY_PLAN = """
plan: c
workspace: copy
workdir: work
tasks:
  - id: t
    name: T
    run: touch made.txt
    criteria: [{file_exists: made.txt}, {file_exists: kept.txt}, {file_absent: pipe}]
"""


def test_copy_skips_a_fifo_and_a_socket_and_lists_them(planrunner: Planrunner, unix_socket: Any) -> None:
    Path("work/sub").mkdir(parents=True)
    planrunner.makefile("work/kept.txt", "x")
    os.mkfifo("work/pipe")
    os.mkfifo("work/sub/pipe2")
    unix_socket("work/sock")
    planrunner.makeplan("c", COPY_PLAN)
    capture = Capture()
    result = planrunner.run("c.plan.yaml", plugins=[capture])
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=1)
    assert capture.listing["t"] == ["kept.txt", "sub"]
    assert capture.warnings == [
        "c.plan.yaml: workspace copy skipped 3 entries (only files, folders and links are copied):"
        " pipe (a FIFO), sock (a socket), sub/pipe2 (a FIFO)"
    ]
    assert not Path("work/made.txt").exists()


def test_copy_keeps_symlinks_as_links_and_never_follows_them(planrunner: Planrunner, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "secret.txt").write_text("s")
    Path("work").mkdir()
    planrunner.makefile("work/kept.txt", "x")
    os.symlink(outside, "work/out")
    os.symlink("kept.txt", "work/alias.txt")
    os.symlink("missing", "work/dangling")
    os.symlink("loop", "work/loop")
    planrunner.makeplan("c", COPY_PLAN)
    capture = Capture()
    result = planrunner.run("c.plan.yaml", plugins=[capture])
    assert result.ret == ExitCode.OK, result
    assert capture.listing["t"] == ["alias.txt", "dangling", "kept.txt", "loop", "out"]
    assert capture.warnings == []
    assert (outside / "deep" / "secret.txt").read_text() == "s"


def test_copy_with_tmpdir_inside_the_workdir_does_not_copy_into_itself(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("work/tmp").mkdir(parents=True)
    planrunner.makefile("work/kept.txt", "x")
    monkeypatch.setenv("TMPDIR", str(Path("work/tmp").resolve()))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR (the stdlib caches it)
    planrunner.makeplan("c", COPY_PLAN)
    capture = Capture()
    result = planrunner.run("c.plan.yaml", plugins=[capture])
    assert result.ret == ExitCode.OK, result
    assert capture.listing["t"] == ["kept.txt", "tmp"]  # tmp itself, empty: not the copy inside it
    assert os.listdir("work/tmp") == []  # and the workspace is gone


def test_copy_of_a_read_only_folder_is_removed_afterwards(planrunner: Planrunner) -> None:
    Path("work/ro").mkdir(parents=True)
    planrunner.makefile("work/kept.txt", "x")
    planrunner.makefile("work/ro/f.txt", "x")
    os.chmod("work/ro", 0o555)
    planrunner.makeplan("c", COPY_PLAN)
    capture = Capture()
    try:
        result = planrunner.run("c.plan.yaml", plugins=[capture])
    finally:
        os.chmod("work/ro", 0o755)
    assert result.ret == ExitCode.OK, result
    assert capture.listing["t"] == ["kept.txt", "ro", "ro/f.txt"]
    workdir = capture.workdirs["c.plan.yaml"]
    assert workdir is not None and not workdir.parent.exists()


def test_copy_names_are_printed_safely(planrunner: Planrunner) -> None:
    Path("work").mkdir()
    planrunner.makefile("work/kept.txt", "x")
    os.mkfifo("work/bad\x1b[31mname")
    planrunner.makeplan("c", COPY_PLAN)
    capture = Capture()
    assert planrunner.run("c.plan.yaml", plugins=[capture]).ret == ExitCode.OK
    assert capture.warnings[0].endswith(r"bad\x1b[31mname (a FIFO)")


# -- item 21: each plan's workdir is known -----------------------------------------------


def test_each_plan_records_its_workdir(planrunner: Planrunner) -> None:
    Path("work").mkdir()
    planrunner.makefile("work/kept.txt", "x")
    planrunner.makeplan("c", COPY_PLAN)
    planrunner.makeplan("i", plan_text())
    capture = Capture()
    result = planrunner.run("c.plan.yaml", "i.plan.yaml", plugins=[capture])
    assert result.ret == ExitCode.OK, result
    assert capture.workdirs["i.plan.yaml"] == Path.cwd()
    copy_dir = capture.workdirs["c.plan.yaml"]
    assert copy_dir is not None and copy_dir.name == "work" and copy_dir.parent.name.startswith("planrun-c-")


# -- item 25: a folder of .yaml files that are not plan files ----------------------------


def test_yaml_files_that_are_not_plan_files_are_named_when_nothing_is_collected(planrunner: Planrunner) -> None:
    planrunner.makefile("plans/x.yaml", plan_text())
    planrunner.makefile("plans/sub/y.yml", plan_text())
    capture = Capture()
    result = planrunner.run("plans", plugins=[capture])
    assert result.ret == ExitCode.NO_TESTS_COLLECTED
    assert capture.warnings == [
        "no plan files collected: plans holds .yaml files, but plan files are named *.plan.yaml"
    ]


def test_no_yaml_hint_when_plans_are_collected(planrunner: Planrunner) -> None:
    planrunner.makefile("plans/x.yaml", "a: 1\n")
    planrunner.makeplan("plans/p", plan_text())
    capture = Capture()
    assert planrunner.run("plans", plugins=[capture]).ret == ExitCode.OK
    assert capture.warnings == []
