"""file_exists, file_absent, file_contains, file_not_contains: pass and fail, through the CLI."""

from __future__ import annotations

import os
import re
import time

import pytest

from planrun import ExitCode

from .conftest import CheckRun

PY = "import os\n\ndef main() -> None:\n    print('hi')\n\nclass User:\n    pass\n"


@pytest.mark.parametrize(
    "criterion",
    [
        "file_exists: src/app.py",
        "file_exists: [src/app.py, README.md]",
        "file_exists: {path: src/app.py}",
        "file_exists: 'src/*.py'",
        "file_exists: '**/app.py'",
        "file_exists: src",
    ],
)
def test_file_exists_passes(check: CheckRun, criterion: str) -> None:
    result = check(criterion, {"src/app.py": PY, "README.md": "hi"})
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=1)


def test_file_exists_fails_naming_what_is_missing(check: CheckRun) -> None:
    result = check("file_exists: [src/app.py, src/gone.py, 'lib/*.py']", {"src/app.py": PY})
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "criterion 1/1  file_exists src/app.py, src/gone.py, lib/*.py",
            "  not found: src/gone.py, lib/*.py",
            "  c.plan.yaml:6:9",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED c.plan.yaml::t - file_exists * - not found: src/gone.py, lib/*.py"])


def test_file_exists_symlink_out_of_the_workdir_fails(
    check: CheckRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("s")
    os.symlink(outside, "link.txt")
    result = check("file_exists: link.txt")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  link.txt resolves outside the workdir*"])


def test_file_absent(check: CheckRun) -> None:
    assert check("file_absent: [build, '*.log']", {"src/app.py": PY}).ret == ExitCode.OK
    result = check("file_absent: [src/app.py, '*.log']", {"src/app.py": PY, "debug.log": ""})
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  exists but should not: src/app.py, debug.log"])


@pytest.mark.parametrize(
    "criterion",
    [
        r"file_contains: {path: src/app.py, pattern: '^class User\b'}",
        "file_contains: {path: src/app.py, text: 'def main() -> None:'}",
        "file_contains: {path: src/app.py, pattern: 'import', count: 1}",
        "file_contains: {path: src/app.py, pattern: '\\w+', min: 5}",
    ],
)
def test_file_contains_passes(check: CheckRun, criterion: str) -> None:
    assert check(criterion, {"src/app.py": PY}).ret == ExitCode.OK


def test_file_contains_failure_shows_the_nearest_lines(check: CheckRun) -> None:
    result = check("file_contains: {path: src/app.py, text: 'class Users(Base):'}", {"src/app.py": PY})
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "criterion 1/1  file_contains src/app.py 'class Users(Base):'",
            "  'class Users(Base):' not found in src/app.py",
            "  nearest lines:",
            "  *5 | ",
            "  >    6 | class User:",
            "  *7 |     pass",
            "  c.plan.yaml:6:9",
        ]
    )


def test_file_contains_count_and_min(check: CheckRun) -> None:
    result = check("file_contains: {path: a.txt, text: x, count: 2}", {"a.txt": "x x x"})
    result.stdout.fnmatch_lines(["  'x' found more than 2 times in a.txt, expected exactly 2"])
    result = check("file_contains: {path: a.txt, text: x, min: 4}", {"a.txt": "x x x"})
    result.stdout.fnmatch_lines(["  'x' found 3 times, expected at least 4 in a.txt"])


def test_file_contains_on_missing_file_and_directory(check: CheckRun) -> None:
    check("file_contains: {path: nope.txt, text: x}").stdout.fnmatch_lines(["  nope.txt does not exist"])
    os.mkdir("adir")
    check("file_contains: {path: adir, text: x}").stdout.fnmatch_lines(["  adir is not a regular file"])


def test_file_contains_on_a_fifo_fails_without_hanging(check: CheckRun) -> None:
    os.mkfifo("pipe")
    result = check("file_contains: {path: pipe, text: x}")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  pipe is not a regular file"])


def test_catastrophic_regex_errors_instead_of_hanging(check: CheckRun) -> None:
    result = check("{file_contains: {path: a.txt, pattern: '(a+)+$'}, timeout: 0.5}", {"a.txt": "a" * 40 + "b"})
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= ERRORS =*", "  timed out: regex '(a+)+$' ran longer than 0.5s"])
    result.assert_outcomes(errors=1)


def test_file_not_contains(check: CheckRun) -> None:
    assert check("file_not_contains: {path: src/app.py, text: TODO}", {"src/app.py": PY}).ret == ExitCode.OK
    result = check("file_not_contains: {path: src/app.py, pattern: 'print\\('}", {"src/app.py": PY})
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["  /print\\(/ found in src/app.py at line 4", "  *3 | def main() -> None:", "  >    4 |     print('hi')"]
    )


@pytest.mark.parametrize(
    ("criterion", "content"),
    [
        ("file_contains: {path: a.py, text: 'class Users'}", "import os\n\nclass User:\n    pass\n"),
        ("file_contains: {path: a.py, pattern: 'class Users'}", "import os\n\nclass User:\n    pass\n"),
        ("file_not_contains: {path: a.py, text: pass}", "import os\n\nclass User:\n    pass\n"),
        ("file_not_contains: {path: a.py, pattern: pass}", "import os\n\nclass User:\n    pass\n"),
    ],
)
def test_excerpts_end_at_the_last_line_of_the_file(check: CheckRun, criterion: str, content: str) -> None:
    result = check(criterion, {"a.py": content})
    assert result.ret == ExitCode.TESTS_FAILED
    shown = [int(m[1]) for line in result.stdout.lines if (m := re.match(r"^\s*>?\s*(\d+) \| ", line))]
    assert shown and max(shown) == 4, result  # the file has 4 lines, the last one ends with a newline


# -- "name/." names a folder, as the OS reads it -------------------------------------------------------


@pytest.mark.parametrize(
    "criterion",
    [
        "{file_exists: a.txt/.}",
        "{file_exists: a.txt/./}",
        "{file_exists: 'a.*/.'}",
        "{file_contains: {path: a.txt/., text: hello}}",
        "{file_not_contains: {path: a.txt/., text: nope}}",
    ],
)
def test_a_file_followed_by_dot_is_not_found(check: CheckRun, criterion: str) -> None:
    os.mkdir("sub")
    result = check(criterion, {"a.txt": "hello\n"})
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "not found" in result.outstr or "does not exist" in result.outstr, result


@pytest.mark.parametrize("criterion", ["{file_exists: sub/.}", "{file_exists: sub/./}", "{file_absent: a.txt/.}"])
def test_a_folder_followed_by_dot_is_the_folder(check: CheckRun, criterion: str) -> None:
    os.mkdir("sub")
    check("{file_exists: a.txt}", {"a.txt": "hello\n"}).assert_outcomes(passed=1)
    check(criterion).assert_outcomes(passed=1)


# -- a tree that changes while a check resolves it: a failed criterion, never a crash -------------------


@pytest.mark.parametrize(
    "criterion",
    [
        "{file_exists: racy/f}",
        "{file_exists: 'racy/*'}",
        "{file_absent: link}",
        "{file_absent: 'l*'}",
        "{file_contains: {path: racy/f, text: x}}",
        "{data: {file: racy/f.json, path: x, exists: true}}",
        "{file_exists: link}",
    ],
)
@pytest.mark.parametrize("error", [FileNotFoundError(2, "gone"), OSError(22, "Invalid argument")])
def test_a_path_that_changes_while_it_is_resolved_fails_the_criterion(
    check: CheckRun, monkeypatch: pytest.MonkeyPatch, criterion: str, error: OSError
) -> None:
    # What Python's realpath raises when a component stops (or starts) being a symlink between its
    # lstat and its readlink: stood in for here, as the race itself cannot be timed.
    os.makedirs("racy")
    os.symlink("racy", "link")
    real = os.path.realpath

    def racing(path: str | os.PathLike[str], *args: object, **kw: object) -> str:
        if "racy" in os.fspath(path) or os.fspath(path).endswith("link"):
            raise error
        return real(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os.path, "realpath", racing)
    result = check(criterion)
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "crashed" not in result.outstr and "Traceback" not in result.outstr, result
    if "link" in criterion or "l*" in criterion:
        assert "changed while it was looked at, so nothing can be said" in result.outstr, result


@pytest.mark.parametrize("timeout", [1, 2])
def test_a_reading_check_is_stopped_at_its_own_timeout(check: CheckRun, timeout: int) -> None:
    # A 200 GB sparse file: a literal search reads it at disk speed, far longer than the timeout.
    with open("huge.txt", "wb") as f:
        f.truncate(200 << 30)
    start = time.monotonic()
    result = check(f"{{file_contains: {{path: huge.txt, text: needle}}, timeout: {timeout}}}")
    took = time.monotonic() - start
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert f"ran longer than {timeout}s" in result.outstr, result
    assert took < timeout + 3, took  # not timeout + the 5 s backstop of checks that run a process
