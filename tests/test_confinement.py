"""Nothing outside the workdir is read, listed or trusted: reads, globs, workdirs, sizes, caches, values."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from planrun import CheckContext, CheckFailed, ExitCode
from planrun.testing import Planrunner, RunResult

from .conftest import CheckRun

SECRET = "TOP-SECRET-outside"
LEAK = "LEAKED-LINE-42"  # only ever in the outside files: never in any output

# One criterion per reading kind. Inside, each is false; the outside file would make it true.
READERS = {
    "file_contains": "file_contains: {path: %s, text: TOP-SECRET}",
    "file_contains_regex": "file_contains: {path: %s, pattern: 'TOP-SECRET'}",
    "file_not_contains": "file_not_contains: {path: %s, text: harmless}",
    "data": "data: {file: %s, path: v, equals: TOP-SECRET-outside}",
}
INSIDE = {"txt": "harmless inside\n", "json": '{"v": "harmless"}\n'}
OUTSIDE = {"txt": f"{SECRET}\n{LEAK}\n", "json": f'{{"v": "{SECRET}", "w": "{LEAK}"}}\n'}


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the workdir holding secret.txt, secret.json and a FIFO."""
    folder = tmp_path_factory.mktemp("outside")
    for ext, text in OUTSIDE.items():
        (folder / f"secret.{ext}").write_text(text)
    os.mkfifo(folder / "pipe.txt")
    return folder


def _ext(kind: str) -> str:
    return "json" if kind == "data" else "txt"


def _assert_refused(result: RunResult, message: str) -> None:
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert f"\n  {message}\n" in result.outstr, result
    assert LEAK not in result.outstr, result


# -- 1. reads: open first, then verify what was opened ------------------------


@pytest.mark.parametrize("kind", READERS)
def test_a_symlink_to_an_outside_file_is_not_read(check: CheckRun, outside: Path, kind: str) -> None:
    ext = _ext(kind)
    os.symlink(outside / f"secret.{ext}", f"link.{ext}")
    _assert_refused(check(READERS[kind] % f"link.{ext}"), f"link.{ext} resolves outside the workdir")


@pytest.mark.parametrize("kind", READERS)
def test_a_symlinked_folder_to_outside_is_not_read(check: CheckRun, outside: Path, kind: str) -> None:
    ext = _ext(kind)
    os.makedirs("sub")
    os.symlink(outside, "sub/out")
    _assert_refused(
        check(READERS[kind] % f"sub/out/secret.{ext}"), f"sub/out/secret.{ext} resolves outside the workdir"
    )


@pytest.mark.parametrize("kind", READERS)
def test_a_relative_symlink_chain_out_is_not_read(check: CheckRun, outside: Path, kind: str) -> None:
    """inside/a -> b (inside) -> ../../outside/secret: each hop looks harmless, the end is outside."""
    ext = _ext(kind)
    os.makedirs("d")
    os.symlink(os.path.relpath(outside / f"secret.{ext}", Path.cwd() / "d"), f"d/b.{ext}")
    os.symlink(f"d/b.{ext}", f"a.{ext}")
    _assert_refused(check(READERS[kind] % f"a.{ext}"), f"a.{ext} resolves outside the workdir")


@pytest.mark.parametrize("kind", READERS)
def test_a_symlink_to_an_outside_fifo_or_device_fails_without_opening_it(
    check: CheckRun, outside: Path, kind: str
) -> None:
    os.symlink(outside / "pipe.txt", "pipe.json" if kind == "data" else "pipe.txt")
    name = "pipe.json" if kind == "data" else "pipe.txt"
    _assert_refused(check(READERS[kind] % name), f"{name} resolves outside the workdir")
    os.remove(name)
    os.symlink("/dev/zero", name)
    _assert_refused(check(READERS[kind] % name), f"{name} resolves outside the workdir")


@pytest.mark.parametrize("kind", READERS)
def test_symlinks_that_stay_inside_still_work(check: CheckRun, kind: str) -> None:
    ext = _ext(kind)
    os.makedirs("real")
    Path(f"real/f.{ext}").write_text(OUTSIDE[ext])  # what the kinds look for, but inside
    os.symlink("real", "alias")
    os.symlink(f"alias/f.{ext}", f"l.{ext}")
    for rel in (f"alias/f.{ext}", f"l.{ext}"):
        result = check(READERS[kind] % rel)
        assert result.ret == ExitCode.OK, result


def test_a_hard_link_is_a_file_of_the_workdir(check: CheckRun, outside: Path) -> None:
    """Not an escape for reads: whoever could make the link could read the file already."""
    os.link(outside / "secret.txt", "hard.txt")
    assert check("file_contains: {path: hard.txt, text: TOP-SECRET}").ret == ExitCode.OK


_RACER = """
import os, shutil, sys
name, outside, content = sys.argv[1:]
i = 0
while True:
    tmp = f"{name}.{i % 2}.tmp"
    try:
        if i % 2:
            os.symlink(outside, tmp)
        elif os.path.isdir(outside):  # a real folder holding the file, then a symlinked one
            os.mkdir(tmp)
            with open(os.path.join(tmp, "f." + content[:4]), "w") as f:
                f.write(content[4:])
        else:
            with open(tmp, "w") as f:
                f.write(content[4:])
        if os.path.isdir(outside) and os.path.isdir(name) and not os.path.islink(name):
            shutil.rmtree(name)
        os.replace(tmp, name)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.lexists(tmp):
            os.remove(tmp)
    i += 1
"""


@contextmanager
def _racer(name: str, outside: Path, content: str) -> Iterator[None]:
    """A process flipping ``name`` between a real file (or folder) and a symlink to ``outside``."""
    proc = subprocess.Popen([sys.executable, "-c", _RACER, name, str(outside), content], stdin=subprocess.DEVNULL)
    try:
        for _ in range(10_000):  # until the racer has started (a hang guard, not a timing)
            if os.path.lexists(name):
                break
            time.sleep(0.001)
        yield
    finally:
        proc.kill()
        proc.wait()


def _inside_content(kind: str) -> str:
    """What the racer writes inside: the criterion is false on it (``ext`` + text)."""
    ext = _ext(kind)
    return ext.ljust(4) + ("harmless\n" if kind == "file_not_contains" else INSIDE[ext])


@pytest.mark.parametrize("folder", [False, True], ids=["file", "folder"])
@pytest.mark.parametrize("kind", READERS)
def test_a_racer_swapping_a_symlink_never_makes_a_criterion_read_outside(
    planrunner: Planrunner, outside: Path, kind: str, folder: bool
) -> None:
    """Hundreds of reads of a path a racer flips between inside and outside: none passes."""
    ext = _ext(kind)
    if folder:
        (outside / f"f.{ext}").write_text(OUTSIDE[ext])
        rel, name, target = f"sub/f.{ext}", "sub", outside
    else:
        rel, name, target = f"race.{ext}", f"race.{ext}", outside / f"secret.{ext}"
    n = 300
    criteria = "".join(f"      - {READERS[kind] % rel}\n" for _ in range(n - 1))
    criteria += "      - {" + READERS[kind] % rel + ", retry_for: 1}\n"
    planrunner.makeplan("p", f"plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n{criteria}")
    with _racer(name, target, _inside_content(kind)):
        result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    failing = [line for line in result.outstr.splitlines() if line.startswith("criterion ")]
    assert len(failing) == n, result  # every one of them failed
    assert LEAK not in result.outstr, result


def test_the_read_helper_never_returns_outside_content_under_a_racer(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of reads while a file flips to a symlink out: each is the inside text or a failure."""
    work = tmp_path / "work"
    work.mkdir()
    ctx = CheckContext(work, 10)
    monkeypatch.chdir(work)
    outcomes = set()
    with _racer("race.txt", outside / "secret.txt", "txt harmless\n"):
        for _ in range(3000):
            try:
                outcomes.add(ctx.read_text("race.txt"))
            except CheckFailed as exc:
                outcomes.add(exc.message)
    assert OUTSIDE["txt"] not in outcomes
    assert outcomes <= {"harmless\n", "", "race.txt resolves outside the workdir", "race.txt does not exist"}


@pytest.mark.parametrize("rel", ["/etc/passwd", "../secret.txt", "d/../../secret.txt"])
def test_the_read_helpers_refuse_paths_that_leave_the_workdir_by_name(tmp_path: Path, rel: str) -> None:
    """Plans cannot write these (compile errors); a plugin passing them to ``ctx.read_*`` fails its check."""
    (tmp_path / "w" / "d").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text(LEAK)
    ctx = CheckContext(tmp_path / "w", 10)
    for read in (ctx.read_bytes, ctx.read_text, ctx.open):
        with pytest.raises(CheckFailed) as info:
            read(rel)
        assert info.value.message == f"{rel} resolves outside the workdir"


def test_the_read_helpers_bound_what_they_return(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"a\r\nb\rc\xff\n")
    ctx = CheckContext(tmp_path, 10, max_file_bytes=8)
    assert ctx.read_text("f.txt") == "a\nb\nc\ufffd\n"
    assert ctx.read_bytes("f.txt", limit=8) == b"a\r\nb\rc\xff\n"
    with pytest.raises(
        CheckFailed, match=r"^f.txt is 8 bytes, over the 7-byte limit \(raise it with --max-file-bytes\)$"
    ):
        ctx.read_bytes("f.txt", limit=7)
    with ctx.open("f.txt") as f:
        assert f.read(1) == b"a"
        assert ctx.read(f, "f.txt") == b"\r\nb\rc\xff\n"


# -- 2. file_exists / file_absent never follow a symlink out -------------------


@pytest.fixture
def linked_out(outside: Path) -> Path:
    """sub/out -> the outside folder; sub/in.txt and keep/x.txt are real files."""
    for name in ("present.txt", "hidden-name-7.txt"):
        (outside / name).write_text("x")
    os.makedirs("sub")
    os.makedirs("keep")
    Path("sub/in.txt").write_text("x")
    Path("keep/x.txt").write_text("x")
    os.symlink(outside, "sub/out")
    return outside


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ("file_absent: sub/out/present.txt", "sub/out/present.txt resolves outside the workdir"),
        ("file_absent: sub/out/missing.txt", "sub/out/missing.txt resolves outside the workdir"),
        ("file_absent: 'sub/out/*'", "sub/out resolves outside the workdir"),
        ("file_absent: 'sub/out/**'", "sub/out resolves outside the workdir"),
        ("file_exists: sub/out/present.txt", "sub/out/present.txt resolves outside the workdir"),
        ("file_exists: 'sub/out/*.txt'", "sub/out resolves outside the workdir"),
        ("file_exists: 'sub/o?t/[ph]*.txt'", "not found: sub/o?t/[ph]*.txt"),
        ("file_exists: 'sub/*/present.txt'", "not found: sub/*/present.txt"),
        ("file_exists: '**/present.txt'", "not found: **/present.txt"),
        ("file_exists: 'sub/*'", "sub/out resolves outside the workdir"),
        ("file_absent: 'sub/*'", "sub/out resolves outside the workdir"),
    ],
)
def test_paths_and_globs_never_reach_through_a_symlink_out(
    check: CheckRun, linked_out: Path, criterion: str, message: str
) -> None:
    result = check(criterion)
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert f"\n  {message}\n" in result.outstr, result
    assert "hidden-name-7" not in result.outstr and str(linked_out) not in result.outstr, result


@pytest.mark.parametrize(
    "criterion",
    [
        "file_absent: '**/present.txt'",
        "file_absent: 'sub/*/present.txt'",
        "file_absent: '*/*/hidden-name-7.txt'",
        "file_exists: ['**/x.txt', 'sub/*.txt', 'sub/in.txt', 'k?ep/[x]*']",
    ],
)
def test_globs_see_only_the_workdir(check: CheckRun, linked_out: Path, criterion: str) -> None:
    result = check(criterion)
    assert result.ret == ExitCode.OK, result


def test_glob_matches_that_are_symlinks_out_fail_and_inside_ones_count(check: CheckRun, outside: Path) -> None:
    os.symlink(outside / "secret.txt", "a.log")
    Path("b.log").write_text("")
    result = check("file_exists: '*.log'")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["  a.log resolves outside the workdir"])
    os.remove("a.log")
    os.makedirs("src")
    Path("src/app.py").write_text("")
    os.symlink("src", "lib")
    assert check("file_exists: ['lib/*.py', 'lib/app.py', '*.log']").ret == ExitCode.OK
    result = check("file_absent: 'lib/*.py'")
    result.stdout.fnmatch_lines(["  exists but should not: lib/app.py"])


def test_a_dangling_symlink_out_resolves_outside(check: CheckRun, outside: Path) -> None:
    os.symlink(outside / "no-such-file", "dangling")
    for kind in ("file_exists", "file_absent"):
        result = check(f"{kind}: dangling")
        assert result.ret == ExitCode.TESTS_FAILED, result
        result.stdout.fnmatch_lines(["  dangling resolves outside the workdir"])


def test_a_symlink_loop_under_a_glob_ends(check: CheckRun) -> None:
    os.makedirs("a")
    os.symlink("..", "a/up")
    Path("a/f.txt").write_text("")
    assert check("file_exists: '**/f.txt'").ret == ExitCode.OK
    assert check("file_absent: '**/nothing.txt'").ret == ExitCode.OK


def test_hostile_file_names_are_escaped_in_messages(check: CheckRun) -> None:
    Path("evil\n\x1b[31mFAKE.log").write_text("")
    result = check("file_absent: '*.log'")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "\n  exists but should not: evil\\n\\x1b[31mFAKE.log\n" in result.outstr, result
    assert "\x1b[31m" not in result.outstr


def test_many_matches_are_listed_bounded(check: CheckRun) -> None:
    for i in range(50):
        Path(f"f{i:02d}.log").write_text("")
    result = check("file_absent: '*.log'")
    result.stdout.fnmatch_lines(["  exists but should not: f00.log, f01.log, *, f09.log and 40 more"])


def test_a_racer_flipping_a_folder_never_makes_a_glob_list_outside_names(planrunner: Planrunner, outside: Path) -> None:
    """``sub`` flips between a real folder and a symlink out: no message ever names what is outside."""
    (outside / "hidden-name-7.txt").write_text("x")
    n = 1000
    kinds = ["file_absent: 'sub/*'", "file_absent: 'sub/**'", "file_exists: 'sub/hidden*'", "file_absent: '*/*'"]
    criteria = "".join(f"      - {kinds[i % len(kinds)]}\n" for i in range(n))
    planrunner.makeplan("p", f"plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n{criteria}")
    with _racer("sub", outside, "txt x"):
        result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "hidden-name-7" not in result.outstr, result
    assert result.no_traceback(), result


def test_the_inode_fallback_never_names_a_file_that_was_swapped(tmp_path: Path) -> None:
    """Without /proc a descriptor's path is the realpath only if it is the very inode opened."""
    from planrun.types import _realpath_by_inode

    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    os.symlink("a", tmp_path / "link")
    fd = os.open(tmp_path / "link", os.O_RDONLY)
    try:
        assert _realpath_by_inode(fd, str(tmp_path / "link")) == str(tmp_path / "a")
        os.replace(tmp_path / "b", tmp_path / "a")  # the name now holds another inode
        assert _realpath_by_inode(fd, str(tmp_path / "link")) is None
        os.remove(tmp_path / "a")
        assert _realpath_by_inode(fd, str(tmp_path / "link")) is None
    finally:
        os.close(fd)


@pytest.mark.parametrize("pattern", ["../*", "a/../../*", "/etc/*", "/etc/passwd", "x/../y"])
def test_the_glob_helper_refuses_what_leaves_the_workdir_by_name(tmp_path: Path, pattern: str) -> None:
    """Plans cannot write these (compile errors); a plugin calling ``ctx.glob`` gets them as outside."""
    (tmp_path / "w" / "a").mkdir(parents=True)
    (tmp_path / "y").write_text("")
    assert CheckContext(tmp_path / "w", 10).glob(pattern) == ([], [pattern])


# -- 3. a plan's workdir stays inside the rootdir; --workdir overrides -----------

PLAN = """\
plan: p
workdir: {workdir}
tasks:
  - id: t
    name: T
    run: echo ran > executed.txt
    criteria:
      - file_exists: executed.txt
"""


@pytest.mark.parametrize("workdir", ["/etc", "../../../../etc", "'..'", "link-out", "inner/../.."])
def test_a_plan_workdir_outside_the_rootdir_is_a_located_error(
    planrunner: Planrunner, outside: Path, workdir: str
) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    os.makedirs("inner")
    os.symlink(outside, "link-out")
    planrunner.makeplan("p", PLAN.format(workdir=workdir))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines(
        ["p.plan.yaml:2:10: workdir * resolves outside the rootdir * (to run against*--workdir*"]
    )
    assert result.no_traceback(), result
    assert not list(planrunner.path.rglob("executed.txt")) and not (outside / "executed.txt").exists()


def test_a_plan_workdir_inside_the_rootdir_through_a_symlink_is_fine(planrunner: Planrunner) -> None:
    os.makedirs("real")
    os.symlink("real", "alias")
    planrunner.makeplan("p", PLAN.format(workdir="alias"))
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert (planrunner.path / "real/executed.txt").exists()


@pytest.mark.parametrize("own", ["/etc", "..", "nowhere", "sub"])
def test_workdir_option_overrides_every_plans_workdir(
    planrunner: Planrunner, tmp_path_factory: pytest.TempPathFactory, own: str
) -> None:
    """The person running planrun chose the tree: a plan's own workdir (even a bad one) is not consulted."""
    other = tmp_path_factory.mktemp("other-tree")
    os.makedirs("sub")
    planrunner.makeplan("p", PLAN.format(workdir=own))
    result = planrunner.run("--workdir", str(other), "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert (other / "executed.txt").exists()
    assert not list(planrunner.path.rglob("executed.txt"))


def test_workdir_option_confines_reads_to_that_tree(
    planrunner: Planrunner, tmp_path_factory: pytest.TempPathFactory, outside: Path
) -> None:
    other = tmp_path_factory.mktemp("other-tree")
    os.symlink(outside / "secret.txt", other / "link.txt")
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n      - file_contains: {path: link.txt, text: S}\n",
    )
    result = planrunner.run("--workdir", str(other), "p.plan.yaml")
    _assert_refused(result, "link.txt resolves outside the workdir")


@pytest.mark.parametrize("value", ["missing-dir", "file.txt", ""])
def test_workdir_option_must_name_a_directory(planrunner: Planrunner, value: str) -> None:
    planrunner.makefile("file.txt", "x")
    planrunner.makeplan("p", PLAN.format(workdir="."))
    result = planrunner.run("--workdir", value, "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert f"argument --workdir: not a directory: {value!r}" in result.errstr, result
    assert result.no_traceback(), result
    assert not (planrunner.path / "executed.txt").exists()


# -- 15. reads are bounded; literal text is searched in a stream --------------------


def _sparse(name: str, size: int, *writes: tuple[int, bytes]) -> None:
    with open(name, "wb") as f:
        f.truncate(size)
        for offset, data in writes:
            f.seek(offset)
            f.write(data)


@pytest.mark.parametrize(
    ("criterion", "limit"),
    [
        ("file_contains: {path: big.txt, pattern: 'x+'}", 1000),
        ("file_not_contains: {path: big.txt, pattern: 'x+'}", 1000),
        ("file_contains: {path: big.txt, pattern: x, count: 1}", 64 << 20),
        ("data: {file: big.json, path: a, exists: true}", 1000),
        ("data: {file: big.json, path: a, exists: true}", 64 << 20),
    ],
)
def test_a_2gib_sparse_file_fails_with_its_size_without_being_read(check: CheckRun, criterion: str, limit: int) -> None:
    name = "big.json" if "data" in criterion else "big.txt"
    _sparse(name, 2 << 30)
    result = check(criterion, None, *(["--max-file-bytes", str(limit)] if limit != 64 << 20 else []))
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(
        [f"  {name} is 2147483648 bytes, over the {limit}-byte limit (raise it with --max-file-bytes)"]
    )


def test_the_default_limit_applies_without_the_option(check: CheckRun) -> None:
    _sparse("big.json", (64 << 20) + 1)
    result = check("data: {file: big.json, path: a, exists: true}")
    result.stdout.fnmatch_lines(["  big.json is 67108865 bytes, over the 67108864-byte limit*"])
    Path("small.json").write_text('{"a": 1}')
    assert check("data: {file: small.json, path: a, exists: true}", None, "--max-file-bytes", "8").ret == ExitCode.OK


@pytest.mark.parametrize(
    ("criterion", "ret"),
    [
        ("file_contains: {path: big.txt, text: NEEDLE}", ExitCode.OK),
        ("file_contains: {path: big.txt, text: NEEDLE, count: 3}", ExitCode.OK),
        ("file_contains: {path: big.txt, text: NEEDLE, min: 3}", ExitCode.OK),
        ("file_contains: {path: big.txt, text: NEEDLE, min: 4}", ExitCode.TESTS_FAILED),
        ('file_contains: {path: big.txt, text: "end\\nof it"}', ExitCode.OK),
        ("file_not_contains: {path: big.txt, text: ABSENT}", ExitCode.OK),
    ],
)
def test_literal_text_is_searched_in_a_stream_past_the_limit(check: CheckRun, criterion: str, ret: int) -> None:
    """NEEDLE straddles the first 1 MiB chunk boundary, sits in a CRLF line, and at the end."""
    chunk = 1 << 20
    size = 96 << 20
    _sparse("big.txt", size, (chunk - 3, b"NEEDLE"), (50 << 20, b"a\r\nNEEDLE\r\n"), (size - 16, b"NEEDLEend\r\nof it"))
    result = check(criterion, None, "--max-file-bytes", "1000")
    assert result.ret == ret, result


def test_file_not_contains_in_a_stream_reports_the_line(check: CheckRun) -> None:
    Path("log.txt").write_text("ok\n" * 200_000 + "boom \x1b[2J here\r\nafter\n")
    result = check("file_not_contains: {path: log.txt, text: boom}", None, "--max-file-bytes", "1000")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(
        [
            "  'boom' found in log.txt at line 200001",
            "  *200000 | ok",
            "  >200001 | boom \\x1b[2J here",
            "  *200002 | after",
        ]
    )
    assert "\x1b[2J" not in result.outstr


def test_a_streamed_search_stays_small_in_memory(planrunner: Planrunner) -> None:
    """planrun in a subprocess over a 2 GiB sparse file: a few MiB, not the file's size."""
    _sparse("big.txt", 2 << 30, (256 << 20, b"NEEDLE"))
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    criteria:\n"
        "      - {file_contains: {path: big.txt, text: NEEDLE}, timeout: 120}\n"
        "      - {file_contains: {path: big.txt, pattern: NEEDLE}}\n",
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = planrunner.runsubprocess("--verify-only", "p.plan.yaml")
    maxrss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result.stdout.fnmatch_lines(["  big.txt is 2147483648 bytes, over the 67108864-byte limit*"])
    result.assert_outcomes(failed=1)
    assert "criterion 1/2" not in result.outstr, result  # the streamed literal passed
    assert maxrss_kib < 400 * 1024 or before >= maxrss_kib, maxrss_kib


# -- 16. nothing read before a step is trusted after it ----------------------------


def test_a_same_size_same_mtime_rewrite_by_a_step_is_seen(planrunner: Planrunner) -> None:
    """``cp -p`` rewrites data.json in place: same inode, size and mtime; the next task must see it."""
    planrunner.makefile("data.json", '{"v": "old1"}\n')
    planrunner.makefile("new.json", '{"v": "new1"}\n')
    for name in ("data.json", "new.json"):
        os.utime(name, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    inode = os.stat("data.json").st_ino
    planrunner.makeplan(
        "p",
        textwrap.dedent(
            """\
            plan: p
            tasks:
              - id: a
                name: before
                criteria:
                  - data: {file: data.json, path: v, equals: old1}
              - id: b
                name: rewrite in place
                depends_on: [a]
                run: cp -p new.json data.json
                criteria:
                  - data: {file: data.json, path: v, equals: new1}
                  - data: {file: data.json, path: v, matches: '^new'}
            """
        ),
    )
    result = planrunner.run("-v", "p.plan.yaml")
    st = os.stat("data.json")
    assert (st.st_ino, st.st_size, st.st_mtime_ns) == (inode, 14, 1_000_000_000_000_000_000)
    assert result.ret == ExitCode.TESTS_FAILED, result  # task a's criterion regressed, as it should
    result.stdout.fnmatch_lines(["*regression: criterion 1 of task a*", '*expected "old1", got "new1"*'])
    result.stdout.fnmatch_lines(["*p.plan.yaml::b FAILED*", '    data data.json:v equals "new1" PASSED'])
    result.stdout.no_fnmatch_line('*expected "new1", got "old1"*')


# -- 9. regexes and values that break Python's limits --------------------------------


@pytest.mark.parametrize(
    ("criterion", "col"),
    [
        ("file_contains: {path: a.txt, pattern: 'a{4294967296}'}", 24),
        ("file_not_contains: {path: a.txt, pattern: 'x{1,99999999999999999999}'}", 28),
        ("data: {file: a.json, path: v, matches: 'a{4294967296}'}", 15),
        ("file_contains: {path: a.txt, pattern: '%s'}" % ("(" * 3000 + ")" * 3000), 24),
    ],
)
def test_a_regex_python_cannot_compile_is_a_located_error(check: CheckRun, criterion: str, col: int) -> None:
    result = check(criterion)
    assert result.ret == ExitCode.INTERRUPTED, result
    result.stdout.fnmatch_lines([f"c.plan.yaml:6:{col}: *invalid regex*"])
    assert result.no_traceback(), result


BIG = "1" * 5000


@pytest.mark.parametrize(
    ("name", "text"),
    [("d.json", f'{{"v": {BIG}}}'), ("d.yaml", f"v: {BIG}\n"), ("d.toml", f"v = {BIG}\n")],
)
def test_a_data_file_with_a_5000_digit_integer_fails_in_one_line(check: CheckRun, name: str, text: str) -> None:
    result = check(f"data: {{file: {name}, path: v, equals: 1}}", {name: text})
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"  {name} does not parse: a number has more than 4300 digits"])
    assert result.no_traceback() and "check crashed" not in result.outstr, result


HEX = "0x" + "f" * 5000


@pytest.mark.parametrize(
    ("name", "text"),
    [("h.yaml", f"v: {HEX}\n"), ("h.toml", f"v = {HEX}\n"), ("h.yml", f"v: [{HEX}]\n")],
)
@pytest.mark.parametrize("test", ["equals: 1", "matches: '^1$'", "type: string", "contains: 1"])
def test_an_integer_too_long_to_print_is_shown_safely(check: CheckRun, name: str, text: str, test: str) -> None:
    result = check(f"data: {{file: {name}, path: v, {test}}}", {name: text})
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["  *(an integer of 20000 bits)*"])
    assert result.no_traceback() and "check crashed" not in result.outstr, result


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000),
        (
            "bomb.yaml",
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefgh", "bcdefghi")
            )
            + "v: *i\n",
        ),
        ("ctl.json", '{"v": "\\u001b[2J\\u202eevil' + "x" * 5000 + '"}'),
    ],
)
def test_values_shown_in_messages_are_bounded_and_printable(check: CheckRun, name: str, text: str) -> None:
    path = "v" if "deep" not in name else ""
    result = check(f"{{data: {{file: {name}, path: '{path}', equals: 1}}, timeout: 5}}", {name: text})
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert result.no_traceback() and "check crashed" not in result.outstr, result
    line = next(x for x in result.outstr.splitlines() if x.startswith(f"  {name}:") or "does not parse" in x)
    assert len(line) < 300 and line.isprintable(), line


@pytest.mark.parametrize("path", ["a[" + "9" * 5000 + "]", "a[-" + "1" * 30 + "]", "x." * 3000 + "["])
def test_a_data_path_python_cannot_read_is_a_located_error(check: CheckRun, path: str) -> None:
    result = check(f"data: {{file: a.json, path: '{path}', exists: true}}")
    assert result.ret == ExitCode.INTERRUPTED, result
    line = next(x for x in result.outstr.splitlines() if x.startswith("c.plan.yaml:6:15: "))
    assert "cannot parse data path" in line and len(line) < 250, line
    assert result.no_traceback(), result


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("contains: [a]", 'd.json:deps: {"a": 1} does not contain ["a"]'),
        ("contains: {a: 1}", 'd.json:deps: {"a": 1} does not contain {"a": 1}'),
        ("matches: '^1'", 'd.json:deps: {"a": 1} does not match /^1/'),
    ],
)
def test_data_tests_on_a_mapping_fail_cleanly_with_any_argument(check: CheckRun, test: str, message: str) -> None:
    result = check(f"data: {{file: d.json, path: deps, {test}}}", {"d.json": '{"deps": {"a": 1}}'})
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert f"\n  {message}\n" in result.outstr, result
    assert result.no_traceback() and "check crashed" not in result.outstr, result


@pytest.mark.parametrize("layout", ["loop", "self", "dangling"])
def test_a_workdir_that_is_a_bad_symlink_is_a_located_error(planrunner: Planrunner, layout: str) -> None:
    if layout == "loop":
        os.symlink("w2", planrunner.path / "w1")
        os.symlink("w1", planrunner.path / "w2")
    elif layout == "self":
        os.symlink("w1", planrunner.path / "w1")
    else:
        os.symlink("missing-folder", planrunner.path / "w1")
    planrunner.makeplan(
        "p", "plan: p\nworkdir: w1\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{file_exists: ran}]}\n"
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert result.no_traceback(), result
    result.stdout.fnmatch_lines(["p.plan.yaml:2:10: workdir 'w1' *"])
    assert not any(planrunner.path.rglob("ran"))
