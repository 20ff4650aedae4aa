"""The ``python_import`` check kind: imported in an isolated child, names looked up, errors shown."""

from __future__ import annotations

import pytest

from planrun import ExitCode

from .conftest import CheckRun

PKG = {
    "src/mypkg/__init__.py": "VERSION = '1'\n\nclass App:\n    def run(self):\n        pass\n",
    "src/mypkg/util.py": "def helper():\n    pass\n",
    "top.py": "X = 1\n",
}


@pytest.mark.parametrize(
    "criterion",
    [
        "python_import: top",
        "python_import: {module: top, names: [X]}",
        "python_import: {module: mypkg, path: src, names: [VERSION, App, App.run]}",
        "python_import: {module: mypkg.util, path: src, names: [helper]}",
        "python_import: {module: json, names: [dumps]}",  # the standard library is there
    ],
)
def test_importable_module_passes(check: CheckRun, criterion: str) -> None:
    result = check(criterion, PKG)
    assert result.ret == ExitCode.OK, result.outstr


def test_missing_module_fails_with_the_import_error(check: CheckRun) -> None:
    result = check("python_import: {module: nothere}", PKG)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  import nothere failed: ModuleNotFoundError: No module named 'nothere'"])


def test_module_outside_path_is_not_found(check: CheckRun) -> None:
    """``path`` replaces the workdir on sys.path: src/mypkg is not importable from the workdir itself."""
    result = check("python_import: {module: mypkg}", PKG)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*No module named 'mypkg'*"])


def test_import_error_inside_shows_the_traceback_tail(check: CheckRun) -> None:
    files = {"broken.py": "import os\n\ndef f():\n    pass\n\nfrom os import does_not_exist\n"}
    result = check("python_import: broken", files)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(
        [
            "  import broken failed: ImportError: cannot import name 'does_not_exist' from 'os'*",
            '  *File "broken.py", line 6, in <module>',
            "      from os import does_not_exist",
        ]
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def f(:\n", "SyntaxError: *"),
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ],
)
def test_module_that_raises_at_import_fails(check: CheckRun, source: str, error: str) -> None:
    result = check("python_import: bad", {"bad.py": source})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines([f"  import bad failed: {error}"])


def test_missing_names_are_named(check: CheckRun) -> None:
    result = check("python_import: {module: mypkg, path: src, names: [App, Nope, App.stop, VERSION]}", PKG)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  mypkg has no Nope, App.stop"])


def test_module_that_hangs_is_a_timeout_error(check: CheckRun) -> None:
    result = check("python_import: {module: slow, timeout: 1}", {"slow.py": "import time\ntime.sleep(60)\n"})
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*importing slow did not finish in 1s*"])
    result.assert_outcomes(errors=1)


def test_module_output_cannot_forge_the_report(check: CheckRun) -> None:
    files = {
        "loud.py": 'print("hello from loud")\nprint(\'{"missing": []}\')\nimport os, sys\nsys.stdout.flush()\nos._exit(0)\n'
    }
    result = check("python_import: {module: loud, names: [anything]}", files)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["*importing loud ended (exit code 0) before it could report*", "*hello from loud*"])


def test_module_that_prints_passes(check: CheckRun) -> None:
    result = check("python_import: {module: chatty, names: [X]}", {"chatty.py": "print('hi there')\nX = 1\n"})
    assert result.ret == ExitCode.OK, result.outstr


def test_environment_does_not_leak_into_the_import(check: CheckRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANRUN_SECRET_FOR_TEST", "s3cret")
    files = {"envcheck.py": "import os\nassert 'PLANRUN_SECRET_FOR_TEST' not in os.environ, 'leaked'\n"}
    result = check("python_import: envcheck", files)
    assert result.ret == ExitCode.OK, result.outstr


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ("python_import: 'os; import x'", "*is not a dotted module name*"),
        ("python_import: {module: os, names: ['a b']}", "*is not an attribute name*"),
        ("python_import: {module: os, path: ../up}", "*path*"),
    ],
)
def test_bad_arguments_are_collection_errors(check: CheckRun, criterion: str, message: str) -> None:
    result = check(criterion)
    assert result.ret == ExitCode.INTERRUPTED, result.outstr
    result.stdout.fnmatch_lines([message])


def test_path_that_is_not_a_folder_fails(check: CheckRun) -> None:
    result = check("python_import: {module: top, path: top.py}", PKG)
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["  path top.py is not a directory"])
