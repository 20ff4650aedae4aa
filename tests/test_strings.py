"""String criteria: each sentence form compiles to its check; others are compile errors."""

from __future__ import annotations

import pytest

from planrun import ExitCode
from planrun.plugins.strings import compile_sentence
from planrun.testing import Planrunner


@pytest.mark.parametrize(
    ("sentence", "compiled"),
    [
        ("`make build` passes", {"command": {"run": "make build"}}),
        ("`make build` succeeds", {"command": {"run": "make build"}}),
        ("`make build` exits 0", {"command": {"run": "make build"}}),
        ("`make build` runs", {"command": {"run": "make build"}}),
        ("`npm test` runs successfully.", {"command": {"run": "npm test"}}),
        ("`python -V` outputs `Python 3`", {"command": {"run": "python -V", "stdout_contains": "Python 3"}}),
        ("File src/app.ts exists", {"file_exists": "src/app.ts"}),
        ("the file `src/app.ts` exists", {"file_exists": "src/app.ts"}),
        ("src/app.ts exists", {"file_exists": "src/app.ts"}),
        ("package.json exists", {"file_exists": "package.json"}),
        (
            "src/models/user.ts contains `export interface User`",
            {"file_contains": {"path": "src/models/user.ts", "text": "export interface User"}},
        ),
        ("old/legacy.py is deleted", {"file_absent": "old/legacy.py"}),
        ("tmp.log does not exist", {"file_absent": "tmp.log"}),
        ('File "src/x.py" exists', {"file_exists": "src/x.py"}),  # quotes are not part of the path
        ("File 'src/x.py' exists", {"file_exists": "src/x.py"}),
        ('"src/x.py" contains `def f`', {"file_contains": {"path": "src/x.py", "text": "def f"}}),
        ("'old.py' is deleted", {"file_absent": "old.py"}),
        (
            "HTTP GET http://127.0.0.1:3000/health returns 200",
            {"http": {"method": "GET", "url": "http://127.0.0.1:3000/health", "status": 200}},
        ),
        (
            "http post https://x.test/login returns 401",
            {"http": {"method": "POST", "url": "https://x.test/login", "status": 401}},
        ),
    ],
)
def test_sentence_compiles(sentence: str, compiled: dict[str, object]) -> None:
    assert compile_sentence(sentence) == compiled


@pytest.mark.parametrize(
    "sentence",
    [
        "Model exports User type",
        "Everything exists",  # prose: not a path, though a bare word can be one
        "Users can log in",
        "`unterminated passes",
        'File "src/x.py exists',  # a quote not closed
        "File `src/x.py' exists",  # quotes that do not match
        "File `src/x.py exists",
    ],
)
def test_other_sentences_do_not_compile(sentence: str) -> None:
    assert compile_sentence(sentence) is None


def test_string_criteria_run_end_to_end(planrunner: Planrunner) -> None:
    planrunner.makefile("src/app.py", "VERSION = '1'\n")
    planrunner.makeplan(
        "s",
        """
        plan: strings
        tasks:
          - id: t
            name: T
            criteria:
              - "`true` passes"
              - "`echo hi there` outputs `hi`"
              - File src/app.py exists
              - src/app.py contains `VERSION =`
              - build/ does not exist
              - old.txt is deleted
        """,
    )
    result = planrunner.run("-v", "s.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        ["*s.plan.yaml::t PASSED*", "    `true` passes PASSED", "    src/app.py contains `VERSION =` PASSED"]
    )


def test_failing_string_criterion_reports_the_sentence(planrunner: Planrunner) -> None:
    planrunner.makeplan("s", "plan: s\ntasks:\n  - id: t\n    name: T\n    criteria: ['`false` passes']\n")
    result = planrunner.run("s.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["criterion 1/1  `false` passes", "  `false` exited with 1, expected 0", "*", "  s.plan.yaml:5:16"]
    )


def test_collect_only_shows_what_each_criterion_compiled_to(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "s",
        """
        plan: s
        tasks:
          - id: build
            name: Build
            run: make
            criteria: ["`make` passes", {file_exists: dist}]
        """,
    )
    result = planrunner.run("--co", "s.plan.yaml")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "<Plan s.plan.yaml id=s>",
            "  <Task build executor=shell>",
            """    '`make` passes' -> {"command": {"run": "make"}}  [s.plan.yaml:6:16]""",
            """    {"file_exists": "dist"}  [s.plan.yaml:6:33]""",
            "*= 1 item collected in *",
        ]
    )


def test_a_conftest_compiler_runs_before_the_built_in_one(planrunner: Planrunner) -> None:
    planrunner.makeconftest(
        """
        import planrun

        @planrun.hookimpl
        def planrun_compile_criterion(text):
            if text.startswith("no file "):
                return {"file_absent": text[len("no file "):]}
        """
    )
    planrunner.makeplan("s", "plan: s\ntasks:\n  - id: t\n    name: T\n    criteria: ['no file junk.txt']\n")
    result = planrunner.run("--co", "s.plan.yaml")
    result.stdout.fnmatch_lines(["""    'no file junk.txt' -> {"file_absent": "junk.txt"}*"""])
    assert planrunner.run("s.plan.yaml").ret == ExitCode.OK


# -- bare words are paths where the sentence says so (issue 6, item 24) ----------------


@pytest.mark.parametrize(
    ("sentence", "compiled"),
    [
        ("LICENSE exists", {"file_exists": "LICENSE"}),
        ("`LICENSE` exists", {"file_exists": "LICENSE"}),
        ("Makefile exists.", {"file_exists": "Makefile"}),
        ("File Dockerfile exists", {"file_exists": "Dockerfile"}),
        ("the directory src exists", {"file_exists": "src"}),
        ("Makefile contains `all:`", {"file_contains": {"path": "Makefile", "text": "all:"}}),
        ("the file Procfile contains `web:`", {"file_contains": {"path": "Procfile", "text": "web:"}}),
        ("LICENSE is deleted", {"file_absent": "LICENSE"}),
        ("CHANGES is removed", {"file_absent": "CHANGES"}),
        ("Dockerfile does not exist", {"file_absent": "Dockerfile"}),
    ],
)
def test_a_bare_word_is_a_path_in_the_file_forms(sentence: str, compiled: dict[str, object]) -> None:
    assert compile_sentence(sentence) == compiled


@pytest.mark.parametrize(
    "sentence",
    [
        "It exists",
        "This exists.",
        "Nothing is deleted",
        "output contains `ok`",
        "The output contains `ok`",
        "Everything is removed",
        ". exists",
        "User model exists",
        "LICENSE file exists",
    ],
)
def test_prose_is_still_not_a_path(sentence: str) -> None:
    assert compile_sentence(sentence) is None


def test_readme_sentences_run_end_to_end(planrunner: Planrunner) -> None:
    planrunner.makefile("LICENSE", "MIT\n")
    planrunner.makefile("Makefile", "all:\n\ttrue\n")
    planrunner.makeplan(
        "s",
        "plan: s\ntasks:\n  - id: t\n    name: T\n    criteria:\n"
        "      - LICENSE exists\n      - 'Makefile contains `all:`'\n      - CHANGES is deleted\n",
    )
    result = planrunner.run("--verify-only", "-v", "s.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        ["    LICENSE exists PASSED", "    Makefile contains `all:` PASSED", "    CHANGES is deleted PASSED"]
    )


# -- the not-checkable hint names the closest sentence forms --------------------------


@pytest.mark.parametrize(
    ("sentence", "hint"),
    [
        ("`make` works", "write it as '`CMD` passes', or as a check (e.g. command)"),
        ("`npm run build` completes", "write it as '`CMD` passes', or as a check (e.g. command)"),
        ("`ls` shows `a`", "write it as '`CMD` outputs `TEXT`', or as a check (e.g. command)"),
        ("README.md has `x`", "write it as 'PATH contains `TEXT`', or as a check (e.g. file_contains)"),
        ("Makefile mentions `all:`", "write it as 'PATH contains `TEXT`', or as a check (e.g. file_contains)"),
        ("README.md is present", "write it as 'PATH exists', or as a check (e.g. file_exists)"),
        ("old.txt was removed", "write it as 'PATH is deleted', or as a check (e.g. file_absent)"),
        ("curl returns 200", "write it as 'HTTP METHOD URL returns NNN', or as a check (e.g. http)"),
        ("Model exports User type", "write it as a check (e.g. file_contains)"),
        ("Users can log in", "write it as a check (e.g. file_contains)"),
    ],
)
def test_not_checkable_hint_names_the_closest_forms(planrunner: Planrunner, sentence: str, hint: str) -> None:
    quoted = "'" + sentence.replace("'", "''") + "'"
    planrunner.makeplan(
        "s", f"plan: s\ntasks:\n  - id: t\n    name: T\n    run: touch ran\n    criteria:\n      - {quoted}\n"
    )
    result = planrunner.run("s.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    expected = f"s.plan.yaml:7:9: criterion {sentence!r} is not machine-checkable; {hint} or enable --judge"
    assert expected in result.stdout.lines, result
    assert result.no_traceback()
    assert not (planrunner.path / "ran").exists()


def test_a_plugin_compiler_s_forms_are_offered_too(planrunner: Planrunner) -> None:
    planrunner.makeconftest(
        """
        import planrun

        SENTENCE_FORMS = [("PATH is tidy", "tidy", ("PATH is tidy",))]

        @planrun.hookimpl
        def planrun_compile_criterion(text):
            return None
        """
    )
    planrunner.makeplan("s", "plan: s\ntasks:\n  - id: t\n    name: T\n    criteria: ['notes.md is tidy']\n")
    result = planrunner.run("s.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["s.plan.yaml:5:16: criterion 'notes.md is tidy' is not machine-checkable; write it as 'PATH is tidy', *"]
    )


def test_a_quoted_path_that_escapes_is_a_compile_error(planrunner: Planrunner) -> None:
    planrunner.makeplan("q", """plan: q\ntasks:\n  - {id: t, name: T, criteria: ['File "../x" exists']}\n""")
    result = planrunner.run("--co", "q.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert "escapes the workdir" in result.outstr, result
