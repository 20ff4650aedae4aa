"""The checks' hot path: what is kept between criteria, and that keeping it changes no outcome.

A file read by one criterion is kept for the next ones until something runs
that may change the tree (a step, a command, a check that is not in-process, a
retry); a plain path is looked up in a folder verified once; the session's
timers are set lazily. Each test here fails if what is kept outlives a change,
crosses workdirs, or differs from what the uncached path says.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from planrun import ArgsModel, CheckFailed, CheckKind, ExitCode, StepTimeout, hookimpl
from planrun.plugins.files import _scan_literal
from planrun.testing import Planrunner
from planrun.types import CheckContext, _walk, alarm_handler, forget_paths, time_limit


@pytest.fixture(autouse=True)
def _fresh() -> None:
    forget_paths()  # nothing kept from another test's tree


def plan(*criteria: str, run: str | None = None, tasks: int = 1) -> str:
    lines = ["plan: p", "tasks:"]
    for t in range(tasks):
        lines += [f"  - id: t{t}", f"    name: T{t}"]
        if run is not None and t == tasks - 1:
            lines.append(f"    run: {json.dumps(run)}")
        lines.append("    criteria:")
        lines += [f"      - {c}" for c in criteria]
    return "\n".join(lines) + "\n"


# -- the content cache: a change is always seen ------------------------------------------------


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("file_contains: {path: a.txt, pattern: '^old'}", "file_contains: {path: a.txt, pattern: '^new'}"),
        ("file_contains: {path: a.txt, text: old}", "file_not_contains: {path: a.txt, text: old}"),
        ("data: {file: a.json, path: v, equals: old}", "data: {file: a.json, path: v, equals: new}"),
    ],
    ids=["regex", "literal", "data"],
)
def test_a_file_rewritten_by_a_command_criterion_is_read_again(planrunner: Planrunner, first: str, then: str) -> None:
    """In one item: read, a command rewrites the file, read again: the second read sees the new content."""
    planrunner.makefile("a.txt", "old\n")
    planrunner.makefile("a.json", '{"v": "old"}')
    rewrite = 'command: "printf \'new\\\\n\' > a.txt; printf \'{\\"v\\": \\"new\\"}\' > a.json"'
    planrunner.makeplan("p", plan(first, rewrite, then))
    result = planrunner.run("--verify-only", "-v", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert (planrunner.path / "a.txt").read_text() == "new\n"


@pytest.mark.parametrize(
    "criterion",
    [
        "file_contains: {path: a.txt, pattern: '^new'}",
        "file_not_contains: {path: a.txt, text: old}",
        "data: {file: a.json, path: v, equals: new}",
    ],
)
def test_a_file_rewritten_by_a_step_is_read_again(planrunner: Planrunner, criterion: str) -> None:
    """Task 0 reads the old file (and it is kept); task 1's step rewrites it; task 1's criteria see the new one."""
    planrunner.makefile("a.txt", "old\n")
    planrunner.makefile("a.json", '{"v": "old"}')
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n"
        "  - id: a\n    name: A\n    criteria:\n"
        "      - file_contains: {path: a.txt, text: old}\n"
        "      - data: {file: a.json, path: v, equals: old}\n"
        "  - id: b\n    name: B\n    depends_on: [a]\n"
        '    run: "printf \'new\\\\n\' > a.txt; printf \'{\\"v\\": \\"new\\"}\' > a.json"\n'
        f"    criteria:\n      - {criterion}\n",
    )
    result = planrunner.run("-v", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result  # task a's criteria regressed, as they should
    lines = result.outstr.splitlines()
    b = lines.index(next(line for line in lines if line.startswith("p.plan.yaml::b ")))
    assert lines[b + 1].endswith(" PASSED"), result  # b's own criterion read the new file
    assert lines[b + 2].startswith("    regression: criterion 1 of task a"), result  # a's kept read was not trusted
    assert lines[b + 3].startswith("    regression: criterion 2 of task a"), result


class _NoArgs(ArgsModel):
    pass


class _Marker:
    """A plugin with an in-process ``mark`` check that tells the test it ran."""

    def __init__(self) -> None:
        self.ran = threading.Event()

    @hookimpl
    def planrun_register_checks(self) -> list[CheckKind]:
        def mark(args: _NoArgs, ctx: CheckContext) -> None:
            self.ran.set()

        return [CheckKind("mark", _NoArgs, mark, inprocess=True)]


def test_a_retry_reads_the_file_afresh(planrunner: Planrunner) -> None:
    """retry_for waits for a change: each attempt reads the tree again, not what an earlier read kept."""
    planrunner.makefile("a.txt", "old\n")
    planrunner.makeplan(
        "p",
        plan(
            "file_contains: {path: a.txt, text: old}",  # read and kept before the file changes
            "mark: {}",
            "{file_contains: {path: a.txt, text: new}, retry_for: 60}",
        ),
    )
    marker = _Marker()

    def writer() -> None:
        if marker.ran.wait(60):  # the old text is kept by now
            (planrunner.path / "a.txt").write_text("new\n")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = planrunner.run("--verify-only", "p.plan.yaml", plugins=[marker])
    finally:
        marker.ran.set()
        thread.join()
    assert result.ret == ExitCode.OK, result  # an attempt after the write read "new"


def test_what_is_kept_never_crosses_workdirs(tmp_path: Path) -> None:
    for name, text in (("w1", "one\n"), ("w2", "two\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text(text)
        (tmp_path / name / "a.json").write_text(json.dumps({"v": text}))
    one, two = CheckContext(tmp_path / "w1", 10), CheckContext(tmp_path / "w2", 10)
    assert one.read_text("a.txt") == "one\n"
    assert two.read_text("a.txt") == "two\n"
    assert two.read_bytes("a.json") == b'{"v": "two\\n"}'
    assert one.read_or_open("a.txt") == b"one\n"
    assert one.glob("a.txt") == (["a.txt"], []) and two.glob("b.txt") == ([], [])
    (tmp_path / "w2" / "b.txt").write_text("")
    forget_paths()
    assert two.glob("b.txt") == (["b.txt"], []) and one.glob("b.txt") == ([], [])


def test_what_is_kept_never_crosses_generations(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old\n")
    ctx = CheckContext(tmp_path, 10)
    assert ctx.read_text("a.txt") == "old\n"
    (tmp_path / "a.txt").write_text("newer\n")
    assert ctx.read_text("a.txt") == "old\n"  # the same generation: what was read and verified then
    forget_paths()
    assert ctx.read_text("a.txt") == "newer\n"
    os.remove(tmp_path / "a.txt")
    forget_paths()
    with pytest.raises(CheckFailed, match="^a.txt does not exist$"):
        ctx.read_bytes("a.txt")


def test_a_kept_file_still_obeys_a_smaller_limit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"12345678")
    ctx = CheckContext(tmp_path, 10)
    assert ctx.read_bytes("a.txt") == b"12345678"
    with pytest.raises(CheckFailed) as info:
        ctx.read_bytes("a.txt", limit=7)
    assert info.value.message == "a.txt is 8 bytes, over the 7-byte limit (raise it with --max-file-bytes)"
    with pytest.raises(CheckFailed, match="over the 4-byte limit"):
        CheckContext(tmp_path, 10, max_file_bytes=4).read_text("a.txt")


def test_a_replaced_workdir_is_refused_though_its_files_were_kept(planrunner: Planrunner, tmp_path: Path) -> None:
    """The pinning check runs for every criterion, before anything kept is used."""
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    (elsewhere / "w").mkdir(parents=True)
    (elsewhere / "w" / "a.txt").write_text("old\n")
    planrunner.makefile("w/a.txt", "old\n")
    planrunner.makeplan(
        "p",
        "plan: p\nworkdir: w\ntasks:\n"
        "  - id: a\n    name: A\n    criteria:\n      - file_contains: {path: a.txt, text: old}\n"
        f"  - id: b\n    name: B\n    run: cd .. && mv w w.old && ln -s {elsewhere / 'w'} w\n"
        "    criteria:\n      - file_contains: {path: a.txt, text: old}\n",
    )
    result = planrunner.run("-v", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["*the workdir * was replaced*"])
    result.stdout.fnmatch_lines(["*p.plan.yaml::b FAILED*"])


def test_a_big_file_is_read_each_time_not_kept(tmp_path: Path) -> None:
    big = b"x" * (5 << 20)
    (tmp_path / "big.txt").write_bytes(big)
    ctx = CheckContext(tmp_path, 10)
    assert ctx.read_bytes("big.txt") == big
    (tmp_path / "big.txt").write_bytes(b"y" * (5 << 20))
    assert ctx.read_bytes("big.txt")[:1] == b"y"  # over the size kept: never held in memory for later
    opened = ctx.read_or_open("big.txt")
    assert not isinstance(opened, bytes)
    with opened:
        assert opened.read(2) == b"yy"


# -- --evidence on a kept file ---------------------------------------------------------------


def test_evidence_records_each_criterion_s_files_even_when_kept(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "def f():\n    pass\n")
    planrunner.makefile("m.json", '{"a": 1, "b": [2]}')
    planrunner.makeplan(
        "p",
        plan(
            "file_contains: {path: a.txt, pattern: '^def f'}",
            "file_not_contains: {path: a.txt, text: TODO}",
            "file_contains: {path: a.txt, text: pass}",
            "data: {file: m.json, path: a, equals: 1}",
            "data: {file: m.json, path: 'b[0]', equals: 2}",
            tasks=2,
        ),
    )
    result = planrunner.run("--verify-only", "--evidence", "ev.json", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    doc = json.loads((planrunner.path / "ev.json").read_text())
    records = [c["record"] for p in doc["plans"] for item in p["items"] for c in item["criteria"]]
    assert len(records) == 10
    text, data = b"def f():\n    pass\n", b'{"a": 1, "b": [2]}'
    for n, record in enumerate(records):
        rel, content = ("a.txt", text) if n % 5 < 3 else ("m.json", data)
        assert record["files"] == [
            {"path": rel, "type": "file", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        ], n


# -- plain paths: one lookup, the walk's outcomes -----------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A workdir with every kind of entry a plain path can name, and an outside folder."""
    work, out = tmp_path / "w", tmp_path / "out"
    (work / "d" / "sub").mkdir(parents=True)
    out.mkdir()
    (out / "secret.txt").write_text("secret")
    (work / "f.txt").write_text("f")
    (work / "d" / "g.txt").write_text("g")
    os.symlink("f.txt", work / "in-link")
    os.symlink("d", work / "in-dir-link")
    os.symlink(out / "secret.txt", work / "out-link")
    os.symlink(out, work / "out-dir")
    os.symlink("nowhere", work / "dangling-in")
    os.symlink(out / "nowhere", work / "dangling-out")
    os.mkfifo(work / "fifo")
    return work


PLAIN = [
    "missing.txt",
    "f.txt",
    "./f.txt",
    "d",
    "d/",
    "f.txt/",
    "d/g.txt",
    "d//g.txt",
    "d/sub/",
    "d/missing",
    "in-link",
    "in-link/",
    "in-dir-link/",
    "in-dir-link/g.txt",
    "out-link",
    "out-dir",
    "out-dir/secret.txt",
    "out-dir/nowhere",
    "dangling-in",
    "dangling-in/x",
    "dangling-out",
    "dangling-out/x",
    "fifo",
    "fifo/",
    "f.txt/x",
    "missing/x",
]


@pytest.mark.parametrize("pattern", PLAIN)
def test_a_plain_path_finds_what_the_walk_finds(tree: Path, pattern: str) -> None:
    ctx = CheckContext(tree, 10)
    root = os.path.realpath(tree)
    assert ctx.glob(pattern) == _walk(root, pattern)
    assert ctx.glob(pattern) == _walk(root, pattern)  # and again, from the folder kept


def test_the_plain_path_outcomes_are_the_ones_users_see(tree: Path) -> None:
    ctx = CheckContext(tree, 10)
    assert ctx.glob("in-dir-link/g.txt") == (["in-dir-link/g.txt"], [])
    assert ctx.glob("out-dir/secret.txt") == ([], ["out-dir/secret.txt"])
    assert ctx.glob("dangling-out") == ([], ["dangling-out"])
    assert ctx.glob("dangling-in") == (["dangling-in"], [])
    assert ctx.glob("fifo") == (["fifo"], [])
    assert ctx.glob("f.txt/") == ([], [])


@pytest.mark.parametrize(
    ("criterion", "line"),
    [
        ("file_exists: missing.txt", "not found: missing.txt"),
        ("file_exists: out-link", "out-link resolves outside the workdir"),
        ("file_exists: out-dir/secret.txt", "out-dir/secret.txt resolves outside the workdir"),
        ("file_exists: dangling-out", "dangling-out resolves outside the workdir"),
        ("file_absent: f.txt", "exists but should not: f.txt"),
        ("file_absent: fifo", "exists but should not: fifo"),
        ("file_absent: in-dir-link/g.txt", "exists but should not: in-dir-link/g.txt"),
        ("file_absent: out-dir/nowhere", "out-dir/nowhere resolves outside the workdir"),
    ],
)
def test_plain_path_messages(planrunner: Planrunner, tree: Path, criterion: str, line: str) -> None:
    assert tree.parent == planrunner.path  # the tree is in the rootdir, its workdir w
    planrunner.makeplan("p", plan(criterion).replace("plan: p\n", "plan: p\nworkdir: w\n"))
    result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"*{line}"])


def test_a_folder_swapped_for_a_symlink_out_after_it_was_verified_is_not_followed(tree: Path) -> None:
    """The folder is looked in by its descriptor: a name swapped in afterwards cannot redirect the lookup."""
    ctx = CheckContext(tree, 10)
    assert ctx.glob("d/g.txt") == (["d/g.txt"], [])
    os.rename(tree / "d", tree / "d.old")
    os.symlink(tree.parent / "out", tree / "d")
    assert ctx.glob("d/secret.txt") == ([], [])  # looked up in the folder verified before: no such name there
    assert ctx.read_text("d/g.txt") == "g"  # kept: what was read inside
    forget_paths()
    assert ctx.glob("d/secret.txt") == ([], ["d/secret.txt"])
    with pytest.raises(CheckFailed, match="^d/secret.txt resolves outside the workdir$"):
        ctx.read_bytes("d/secret.txt")


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("missing.txt", "missing.txt does not exist"),
        ("d/missing", "d/missing does not exist"),
        ("d", "d is not a regular file"),
        ("fifo", "fifo is not a regular file"),
        ("out-link", "out-link resolves outside the workdir"),
        ("out-dir/secret.txt", "out-dir/secret.txt resolves outside the workdir"),
        ("dangling-out", "dangling-out resolves outside the workdir"),
        ("dangling-in", "dangling-in does not exist"),
    ],
)
def test_reads_in_a_verified_folder_fail_as_before(tree: Path, rel: str, message: str) -> None:
    ctx = CheckContext(tree, 10)
    assert ctx.glob("d/g.txt")[0] and ctx.glob("f.txt")[0]  # the folders are verified and kept
    for read in (ctx.read_bytes, ctx.read_text, ctx.open, ctx.read_or_open):
        with pytest.raises(CheckFailed) as info:
            read(rel)
        assert info.value.message == message, read


def test_a_symlink_inside_is_read_through_a_verified_folder(tree: Path) -> None:
    ctx = CheckContext(tree, 10)
    assert ctx.glob("f.txt")[0]
    assert ctx.read_text("in-link") == "f"
    assert ctx.read_text("in-dir-link/g.txt") == "g"


# -- lazy session timers ------------------------------------------------------------------------


def test_a_catastrophic_regex_among_quick_checks_times_out_on_its_own_criterion(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "a" * 40 + "!\n")
    quick = ["file_contains: {path: a.txt, pattern: '^a'}"] * 20
    slow = "{file_contains: {path: a.txt, pattern: '(a+)+$'}, timeout: 0.5}"
    planrunner.makeplan("p", plan(*quick, slow, *quick, tasks=2))
    result = planrunner.run("--verify-only", "-v", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    lines = result.outstr.splitlines()
    timed_out = [
        lines[i - 1] for i, line in enumerate(lines) if line == "  timed out: regex '(a+)+$' ran longer than 0.5s"
    ]
    assert timed_out == ["criterion 21/41  file_contains a.txt /(a+)+$/"] * 2, result  # on its own criterion, per task
    assert result.outstr.count("PASSED") >= 80, result
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing left armed after the session
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_a_lazy_limit_whose_deadline_comes_first_fires_though_the_timer_was_set_later() -> None:
    """Nested the other way round (tests/test_time_limit.py has inner-first, eager and lazy)."""
    with alarm_handler():
        with pytest.raises(StepTimeout, match="late ran longer than 0.3s"):
            with time_limit(0.3, "late"):  # a deadline after the one the timer is set for
                with time_limit(10, "long"):
                    time.sleep(5)
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_an_alarm_after_a_quick_block_is_harmless() -> None:
    """Lazily the timer outlives a quick block; when it fires, nothing is raised and it stops."""
    with alarm_handler():
        for _ in range(100):
            with time_limit(2, "quick"):
                pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0  # still set (for the first deadline)
        deadline = time.monotonic() + 30
        while signal.getitimer(signal.ITIMER_REAL)[0] and time.monotonic() < deadline:
            time.sleep(0.05)  # the alarm comes, finds nothing due, and sets nothing again
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


# -- a literal searched in a small file kept whole --------------------------------------------


class _Streamed:
    """A context whose file is a stream: :func:`_scan_literal`'s chunk loop, for comparison."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read_or_open(self, rel: str) -> io.BytesIO:
        return io.BytesIO(self.data)


@pytest.mark.parametrize(
    "data",
    [b"", b"TODO", b"a\nb TODO\nc\n", b"x\n" * 100 + b"TODO TODO\nTODO", b"no match here\n", "é TODO\n".encode()],
)
@pytest.mark.parametrize("limit", [0, 1, 2, 5])
def test_a_kept_file_is_searched_as_the_stream_would_be(tmp_path: Path, data: bytes, limit: int) -> None:
    (tmp_path / "f.txt").write_bytes(data)
    kept = _scan_literal(CheckContext(tmp_path, 10), "f.txt", "TODO", limit)
    streamed = _scan_literal(_Streamed(data), "f.txt", "TODO", limit)  # type: ignore[arg-type]
    assert kept == streamed
    assert kept.found == min(data.count(b"TODO"), limit)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_sets_its_own_timer() -> None:
    """The parent's lazy timer is not inherited by a fork: a limit in the child still fires (not a hang)."""
    with alarm_handler():
        with time_limit(0.3, "parent"):
            pass  # the parent's timer is now set for 0.3 s from here
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports by its exit status
            code = 1
            try:
                time.sleep(0.5)  # past what the parent's timer was set for
                with time_limit(0.2, "child"):
                    time.sleep(20)
            except StepTimeout:
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 15
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0
