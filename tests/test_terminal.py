"""The terminal reporter: escaped output, pytest's header, -r, --durations, colours, blank lines, long lines."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

import pytest
from pydantic import field_validator

import planrun
from planrun import ArgsModel, CheckKind, ExitCode, hookimpl
from planrun.reports import printable
from planrun.testing import Planrunner, RunResult

# What must never reach a terminal raw: ESC, BEL, C1 CSI, CR, DEL, bidi overrides and isolates.
RAW = ("\x1b", "\x07", "\x9b", "\r", "\x7f", "\u202e", "\u2066", "\u2069", "\x00")
SGR = re.compile(r"\x1b\[[0-9;]*m")
EVIL = "\x1b]0;TITLE\x07\x1b[2J"


def assert_no_raw_control(result: RunResult) -> None:
    __tracebackhide__ = True
    text = SGR.sub("", result.outstr) + result.errstr  # rich's own colour codes are ours to write
    found = [hex(ord(c)) for c in RAW if c in text]
    assert not found, f"raw {found} reached the terminal\n{result!r}"


# -- printable() -----------------------------------------------------------------


def test_printable_escapes_controls_and_format_characters() -> None:
    assert printable(EVIL) == "\\x1b]0;TITLE\\x07\\x1b[2J"
    assert printable("a\rb\x7fc\x9bd\x85") == "a\\x0db\\x7fc\\x9bd\\x85"
    assert printable("\u202eevil\u2066x\u2069\u200b\ufeff") == "\\u202eevil\\u2066x\\u2069\\u200b\\ufeff"
    assert printable("tag\U000e0041 lone\ud800 sep\u2028") == "tag\\U000e0041 lone\\ud800 sep\\u2028"
    # Newlines, tabs, spaces of every width and ordinary text stay as they are.
    kept = "line 1\n\tline 2 caf\u00e9 \u65e5\u672c \u00a0nbsp \u3000wide \U0001f600 \u00bd"
    assert printable(kept) == kept


def test_printable_leaves_nothing_unprintable_in_the_whole_of_unicode() -> None:
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    shown = printable(everything)
    assert shown.isascii() or all(
        c in "\n\t" or c.isprintable() or unicodedata.category(c) == "Zs" for c in set(shown)
    ), "an unprintable character survived"
    assert shown.count("\n") == 1 and shown.count("\t") == 1


# -- nothing from a plan or a workdir reaches the terminal raw ----------------------------

INJECTED = f"{EVIL}\u202eevil\u2066\x9b31m\rover"


@pytest.mark.parametrize("args", [(), ("--tb=short",), ("--tb=line",), ("-v",), ("-rA",), ("--color=yes",)])
def test_escapes_in_nearest_lines_command_output_and_shell_output(planrunner: Planrunner, args: tuple[str]) -> None:
    planrunner.makefile("notes.txt", f"first\n{INJECTED}\nlast\n")
    planrunner.makefile("emit.py", f"import sys\nsys.stdout.write({INJECTED!r} + '\\n')\nsys.exit(1)\n")
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - id: nearest
            name: Nearest
            criteria: [{file_contains: {path: notes.txt, text: TITLE2}}]
          - id: output
            name: Output
            criteria: [{command: python3 emit.py}]
          - id: step
            name: Step
            run: python3 emit.py
            criteria: [{file_exists: notes.txt}]
        """,
    )
    result = planrunner.run(*args, "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=3)
    assert_no_raw_control(result)
    if args[:1] in ((), ("-v",), ("-rA",)):
        assert result.outstr.count("\\x1b]0;TITLE\\x07\\x1b[2J\\u202eevil\\u2066\\x9b31m") == 3, result


def test_escapes_in_a_criterion_name_and_a_plan_file_name(planrunner: Planrunner) -> None:
    evil = planrunner.path / f"a{EVIL}.plan.yaml"
    evil.write_text('plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: x, name: "n\u20662J\u202eman"}]}\n')
    for args in ((), ("-v",), ("--tb=line",), ("--co",), ("-rA",)):
        result = planrunner.run(*args, ".")
        assert_no_raw_control(result)
        assert "a\\x1b]0;TITLE\\x07\\x1b[2J.plan.yaml" in result.outstr, result
    result = planrunner.run(".")
    result.stdout.fnmatch_lines(["criterion 1/1  n\\u20662J\\u202eman"])


class Picky(ArgsModel):
    word: str

    @field_validator("word")
    @classmethod
    def _word(cls, word: str) -> str:
        raise ValueError(f"cannot use {word}")  # quotes plan content as it is, as a plugin may


class PickyPlugin:
    @hookimpl
    def planrun_register_checks(self) -> list[CheckKind]:
        return [CheckKind("picky", Picky, lambda args, ctx: None)]


def test_escapes_in_a_collection_error_that_quotes_plan_content(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p", 'plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{picky: {word: "w\u20662J\u202ex"}}]}\n'
    )
    for args in ((), ("-q",), ("--co",), ("--tb=line",)):
        result = planrunner.run(*args, "p.plan.yaml", plugins=[PickyPlugin()])
        assert result.ret == ExitCode.INTERRUPTED, result
        assert_no_raw_control(result)
        result.stdout.fnmatch_lines(["*p.plan.yaml:3:*: picky: word: cannot use w\\u20662J\\u202ex"])
    assert not Path("ran").exists()


def test_a_terminal_summary_plugin_writes_through_the_same_escaping(planrunner: Planrunner) -> None:
    class Section:
        @hookimpl
        def planrun_terminal_summary(self, terminalreporter):  # type: ignore[no-untyped-def]
            terminalreporter.write_sep("-", f"from a plugin {EVIL}")
            terminalreporter.write_line(f"line {EVIL}")

    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    result = planrunner.run("p.plan.yaml", plugins=[Section()])
    assert_no_raw_control(result)
    result.stdout.fnmatch_lines(["*- from a plugin \\x1b]0;TITLE\\x07\\x1b[[]2J -*", "line \\x1b]0;TITLE*"])


# -- long lines --------------------------------------------------------------------


def test_a_100_mb_output_line_is_cut_to_the_width(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - id: t
            name: T
            criteria: [{command: "head -c 100000000 /dev/zero | tr '\\\\0' x; echo; exit 3"}]
        """,
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert max(len(line) for line in result.stdout.lines) <= 500, "a line longer than any cut"
    cut = [line for line in result.stdout.lines if line.startswith("  xxx")]
    assert cut and all(len(line) <= 80 for line in cut), result
    assert all(re.fullmatch(r"  x+\.\.\. \[\d+ more characters\]", line) for line in cut), cut
    assert len(result.outstr) < 10_000


def test_long_messages_are_cut_with_a_marker_and_vv_widens_evidence(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "y" * 3000 + "\n")
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_contains: {path: a.txt, text: z}}]}\n"
    )
    result = planrunner.run("p.plan.yaml")
    evidence = [line for line in result.stdout.lines if "yyyy" in line]
    assert evidence and all(len(line) <= 80 for line in evidence), result
    assert re.search(r"y\.\.\. \[\d+ more characters\]$", evidence[0]), evidence
    wide = planrunner.run("-vv", "p.plan.yaml")
    assert any(80 < len(line) <= 500 for line in wide.stdout.lines if "yyyy" in line), wide
    assert all(len(line) <= 500 for line in wide.stdout.lines), wide


# -- the header ----------------------------------------------------------------------


def test_header_is_pytest_shaped_and_counts_what_the_final_line_counts(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makeplan(
        "plans/p",
        """
        plan: p
        prerequisites: [{file_exists: pyproject.toml}]
        tasks:
          - {id: a, name: A, criteria: [{file_exists: pyproject.toml}, {file_absent: x}]}
          - {id: b, name: B, criteria: [{file_absent: x}]}
        edge_cases:
          - {case: E, criteria: [{file_absent: y}]}
        verification: [{file_absent: z}]
        """,
    )
    result = planrunner.run("plans")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        [
            "*= plan session starts =*",
            f"platform {sys.platform} -- Python *, planrun-{planrun.__version__}, pluggy-*",
            f"rootdir: {planrunner.path}",
            "configfile: pyproject.toml",
            "collected 5 items (1 plan, 2 tasks, 6 criteria)",
            "",
            "plans/p.plan.yaml ..... *[[]100%]",
            "",
            "*= 5 passed in *",
        ]
    )
    assert "plugins:" not in result.outstr  # built-ins belong in --version
    result = planrunner.run("-k", "b", "plans")
    result.stdout.fnmatch_lines(["collected 5 items / 3 deselected / 2 selected (1 plan, 1 task, 2 criteria)"])
    result.assert_outcomes(passed=2, deselected=3)  # the prerequisites stay with a selected task


def test_header_without_config_file_and_with_errors(planrunner: Planrunner) -> None:
    planrunner.makeplan("good", "plan: g\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    planrunner.makeplan("bad", "plan: b\ntasks: [\n")
    result = planrunner.run(".")
    assert result.ret == ExitCode.INTERRUPTED
    assert "configfile:" not in result.outstr
    result.stdout.fnmatch_lines(["collected 1 item / 1 error (1 plan, 1 task, 1 criterion)", "", "*= ERRORS =*"])


def test_header_lists_third_party_plugins_only(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    planrunner.makefile(
        "extra_plug.py", "from planrun import hookimpl\n\n@hookimpl\ndef planrun_configure(config):\n    pass\n"
    )
    planrunner.makeconftest("from planrun import hookimpl\n\n@hookimpl\ndef planrun_configure(config):\n    pass\n")
    monkeypatch.syspath_prepend(str(planrunner.path))
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    try:
        result = planrunner.run("-p", "extra_plug", "p.plan.yaml")
    finally:
        sys.modules.pop("extra_plug", None)
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["rootdir: *", "plugins: extra_plug, conftest.py", "collected 1 item *"])


# -- -r ------------------------------------------------------------------------------

MIXED = """
plan: m
tasks:
  - {id: ok, name: OK, run: echo hello-from-ok, criteria: [{file_absent: nothing}]}
  - {id: bad, name: Bad, criteria: [{file_exists: missing.txt}]}
  - {id: after, name: After, depends_on: [bad], criteria: [{file_absent: nothing}]}
  - {id: crash, name: Crash, run: 'true', criteria: [{command: {run: 'sleep 5', timeout: 0.2}}]}
"""


def _summary(result: RunResult) -> list[str]:
    lines = result.stdout.lines
    if not any("short plan summary info" in line for line in lines):
        return []
    start = next(i for i, line in enumerate(lines) if "short plan summary info" in line) + 1
    return [line.split(" - ")[0] for line in lines[start:] if not line.startswith("=")]


@pytest.mark.parametrize(
    ("chars", "expected"),
    [
        (None, ["FAILED m.plan.yaml::bad", "ERROR m.plan.yaml::crash"]),
        ("fE", ["FAILED m.plan.yaml::bad", "ERROR m.plan.yaml::crash"]),
        ("s", ["SKIPPED m.plan.yaml::after"]),
        ("Ef", ["ERROR m.plan.yaml::crash", "FAILED m.plan.yaml::bad"]),
        ("p", ["PASSED m.plan.yaml::ok"]),
        ("a", ["SKIPPED m.plan.yaml::after", "ERROR m.plan.yaml::crash", "FAILED m.plan.yaml::bad"]),
        (
            "A",
            [
                "PASSED m.plan.yaml::ok",
                "SKIPPED m.plan.yaml::after",
                "ERROR m.plan.yaml::crash",
                "FAILED m.plan.yaml::bad",
            ],
        ),
        ("N", []),
        ("fN", []),
        ("Ns", ["SKIPPED m.plan.yaml::after"]),
    ],
)
def test_r_chooses_the_short_summary_lines(planrunner: Planrunner, chars: str | None, expected: list[str]) -> None:
    planrunner.makeplan("m", MIXED)
    result = planrunner.run(*(() if chars is None else (f"-r{chars}",)), "m.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(passed=1, failed=1, skipped=1, errors=1)
    assert _summary(result) == expected, result


def test_r_capital_p_shows_the_output_of_passed_items(planrunner: Planrunner) -> None:
    planrunner.makeplan("m", MIXED)
    result = planrunner.run("-rP", "m.plan.yaml")
    result.stdout.fnmatch_lines(
        ["*= PASSES =*", "*_ m.plan.yaml::ok _*", "*- output of shell -*", "$ echo hello-from-ok", "hello-from-ok"]
    )
    assert "PASSES" not in planrunner.run("m.plan.yaml").outstr


def test_blocked_is_listed_by_default_and_selected_by_b(planrunner: Planrunner) -> None:
    class Stuck(planrun.Executor):
        def execute(self, task: planrun.Task, context: planrun.ExecutionContext) -> planrun.ExecutionResult:
            return planrun.ExecutionResult(status="blocked", message="needs a key")

    class Plugin:
        @hookimpl
        def planrun_register_executors(self) -> list[planrun.ExecutorKind]:
            return [planrun.ExecutorKind("stuck", lambda config: Stuck())]

    planrunner.makeplan(
        "p",
        "plan: p\nexecutor: stuck\ntasks:\n  - {id: s, name: S, criteria: [{file_exists: x}]}\n"
        "  - {id: f, name: F, run: 'true', criteria: [{file_exists: y}]}\n",
    )
    result = planrunner.run("p.plan.yaml", plugins=[Plugin()])
    assert _summary(result) == ["BLOCKED p.plan.yaml::s", "FAILED p.plan.yaml::f"], result
    result = planrunner.run("-rB", "p.plan.yaml", plugins=[Plugin()])
    assert _summary(result) == ["BLOCKED p.plan.yaml::s"], result


@pytest.mark.parametrize("value", ["x", "fz", "-"])
def test_r_with_an_unknown_character_is_a_usage_error(planrunner: Planrunner, value: str) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{file_exists: ran}]}\n")
    result = planrunner.run(f"-r{value}", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines(["ERROR: planrun: argument -r: unknown character * (known: fEsBpPaAN)"])
    assert not Path("ran").exists()


# -- --durations -------------------------------------------------------------------------

SLOW = """
plan: d
tasks:
  - {id: slow, name: Slow, run: sleep 0.3, criteria: [{file_absent: x}]}
  - {id: quick1, name: Q1, criteria: [{file_absent: x}]}
  - {id: quick2, name: Q2, criteria: [{file_absent: x}]}
"""


def test_durations_lists_the_slowest_items(planrunner: Planrunner) -> None:
    planrunner.makeplan("d", SLOW)
    result = planrunner.run("--durations", "1", "d.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["*= slowest 1 durations =*", "*s d.plan.yaml::slow", "*= 3 passed*"])
    result = planrunner.run("--durations=0", "-vv", "d.plan.yaml")
    result.stdout.fnmatch_lines(
        ["*= slowest durations =*", "*s d.plan.yaml::slow", "*s d.plan.yaml::quick*", "*s d.plan.yaml::quick*"]
    )
    assert "hidden" not in result.outstr
    result = planrunner.run("--durations=0", "d.plan.yaml")
    shown = [line for line in result.stdout.lines if re.fullmatch(r"\d+\.\d\ds d\.plan\.yaml::\w+", line)]
    hidden = re.search(r"\((\d+) durations < 0\.005s hidden\.  Use -vv to show these durations\.\)", result.outstr)
    assert shown[0].endswith("::slow") and len(shown) + (int(hidden.group(1)) if hidden else 0) == 3, result
    assert "slowest" not in planrunner.run("d.plan.yaml").outstr


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_durations_must_be_a_count(planrunner: Planrunner, value: str) -> None:
    planrunner.makeplan("d", SLOW)
    result = planrunner.run(f"--durations={value}", "d.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: planrun: argument --durations: *"])


# -- colours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "args", "colored"),
    [
        ({}, (), False),  # not a TTY
        ({"PY_COLORS": "1"}, (), True),
        ({"PY_COLORS": "1", "NO_COLOR": "1"}, (), True),  # PY_COLORS beats NO_COLOR, as in pytest
        ({"PY_COLORS": "0", "FORCE_COLOR": "1"}, (), False),  # and FORCE_COLOR
        ({"PY_COLORS": "1", "TERM": "dumb"}, (), True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, (), False),
        ({"PY_COLORS": "1"}, ("--color=no",), False),  # the option beats the environment
        ({"PY_COLORS": "0"}, ("--color=yes",), True),
        ({"PY_COLORS": "yes"}, (), False),  # only 0 and 1 mean something
    ],
)
def test_py_colors(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: tuple[str], colored: bool
) -> None:
    monkeypatch.delenv("PY_COLORS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    result = planrunner.run(*args, "p.plan.yaml")
    assert ("\x1b[" in result.outstr) is colored, result


# -- blank lines ------------------------------------------------------------------------------


def test_blank_lines_where_pytest_has_them(planrunner: Planrunner) -> None:
    planrunner.makeplan("ok", "plan: ok\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    planrunner.makeplan("ko", "plan: ko\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: x}]}\n")
    lines = planrunner.run("ok.plan.yaml").stdout.lines
    assert lines[-3:-1] == [lines[-3], ""] and lines[-3].startswith("ok.plan.yaml .")
    lines = planrunner.run("ko.plan.yaml").stdout.lines
    i = next(i for i, line in enumerate(lines) if " FAILURES " in line)
    assert lines[i - 2].startswith("ko.plan.yaml F") and lines[i - 1] == ""
    lines = planrunner.run("-v", "ko.plan.yaml").stdout.lines
    i = next(i for i, line in enumerate(lines) if " FAILURES " in line)
    assert lines[i - 1] == "" and lines[i - 2].strip().endswith("FAILED")
    lines = planrunner.run("-q", "ko.plan.yaml").stdout.lines
    assert "" not in lines  # -q: no blank lines, as pytest -q
    lines = planrunner.run("--co", "ok.plan.yaml").stdout.lines
    assert lines[-2] == "" and "1 item collected" in lines[-1]
    assert all(not (a == b == "") for a, b in zip(lines, lines[1:]))


# -- warnings -------------------------------------------------------------------------------------


def test_config_warnings_are_shown_and_counted(planrunner: Planrunner) -> None:
    class Warn:
        @hookimpl
        def planrun_configure(self, config):  # type: ignore[no-untyped-def]
            config.warnings = [f"pyproject.toml: unknown key 'pathz' in [tool.planrun] {EVIL}"]

    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    result = planrunner.run("p.plan.yaml", plugins=[Warn()])
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "pyproject.toml: unknown key 'pathz' in [[]tool.planrun[]] \\x1b*",
            "*= 1 passed, 1 warning in *",
        ]
    )
    result.assert_outcomes(passed=1, warnings=1)
    assert_no_raw_control(result)


def test_verbose_shows_each_plan_s_workdir(planrunner: Planrunner) -> None:
    planrunner.makefile("sub/keep.txt", "x\n")
    planrunner.makeplan(
        "a", "plan: a\nworkdir: sub\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: keep.txt}]}\n"
    )
    planrunner.makeplan(
        "b", "plan: b\nworkspace: temp\ntasks:\n  - {id: t, name: T, run: touch x, criteria: [{file_exists: x}]}\n"
    )
    result = planrunner.run("-v", "a.plan.yaml", "b.plan.yaml")
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(
        [
            f"a.plan.yaml: workdir {planrunner.path / 'sub'}",
            "a.plan.yaml::t PASSED*",
            "b.plan.yaml: workdir */planrun-b-*",
        ]
    )
    quiet = planrunner.run("a.plan.yaml")
    assert "workdir" not in quiet.outstr


@pytest.mark.parametrize(
    "args",
    [
        ["\x1b]0;TITLE\x07\x1b[2J.plan.yaml"],  # a missing path, echoed in the usage error
        ["-k", "a\x1b[2Jb"],  # a -k expression, echoed in its error
        ["--executor", "\x1b[31mred", "p.plan.yaml"],  # an unknown executor name
    ],
)
def test_usage_errors_escape_what_they_echo(planrunner: Planrunner, args: list[str]) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: x}]}\n")
    result = planrunner.run(*args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr.startswith("ERROR: ") and len(result.errstr.splitlines()) == 1, result
    assert "\x1b" not in result.errstr and "\x07" not in result.errstr
    assert "\\x1b" in result.errstr


# Characters str.splitlines breaks at besides "\n": each must stay inside its line, shown escaped, or a
# line a process or a file wrote could start a line of planrun's report ("FORGED: all passed").
BREAKS = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("args", [(), ("-v",), ("--tb=short",), ("-vv",)])
def test_no_line_break_but_newline_splits_what_a_process_or_file_wrote(planrunner: Planrunner, args: tuple) -> None:
    payload = "".join(f"before{ch}FORGED {n}\n" for n, ch in enumerate(BREAKS))
    planrunner.makefile("emit.py", f"import sys\nsys.stdout.write({payload!r})\nsys.exit(1)\n")
    planrunner.makefile("notes.txt", payload)
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - id: output
            name: Output
            criteria: [{command: python3 emit.py}]
          - id: nearest
            name: Nearest
            criteria: [{file_contains: {path: notes.txt, text: FORGED 0X}}]
        """,
    )
    result = planrunner.run(*args, "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    lines = result.outstr.split("\n")
    assert not [line for line in lines if line.lstrip().startswith("FORGED")], result
    if args != ("--tb=short",):  # which shows no output
        for n, ch in enumerate(BREAKS):
            assert f"before{printable(ch)}FORGED {n}" in result.outstr, (n, result)
    assert_no_raw_control(result)


def test_a_separator_fits_the_width_whatever_the_title_holds(planrunner: Planrunner) -> None:
    title = "\x1b]0;T\x07\u202e\r\x85"
    planrunner.makeplan("p", f'plan: p\ntasks:\n  - {{id: t, name: T, criteria: [{{file_exists: "{title}"}}]}}\n')
    (planrunner.path / f"e{title}.plan.yaml").write_text("plan: p\ntasks:\n  - {id: t, name: T, criteria: [x]}\n")
    for args in ((), ("-v",)):
        result = planrunner.run(*args, ".")
        assert result.ret in (ExitCode.TESTS_FAILED, ExitCode.INTERRUPTED), result
        seps = [line for line in result.outstr.split("\n") if line.startswith(("___", "===", "---"))]
        assert any("\\x1b]0;T" in line for line in seps), result
        assert all(len(line) <= 80 for line in seps), [len(line) for line in seps]
