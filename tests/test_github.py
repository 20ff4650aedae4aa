"""GitHub Actions: annotations at the failing criteria, the step summary, and output that cannot inject commands.

The injection tests read planrun's output the way the Actions runner does
(actions/runner ``ActionCommand.TryParseV2``/``TryParse`` and
``ActionCommandManager.TryProcessCommand``, re-implemented below).
"""

from __future__ import annotations

import io
import itertools
import os
import re
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.plugins.github import SUMMARY_CAP, CommandGuard, esc_data, esc_prop, fenced, md_text
from planrun.testing import Planrunner, RunResult

pytest_plugins = ["pytester"]

# -- the runner's reading of a step's output -------------------------------------------------

# Char.IsWhiteSpace: what .NET's TrimStart() removes.
DOTNET_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
REGISTERED = {
    "error",
    "warning",
    "notice",
    "debug",
    "group",
    "endgroup",
    "add-mask",
    "set-env",
    "add-path",
    "set-output",
    "save-state",
    "echo",
    "add-matcher",
    "remove-matcher",
    "stop-commands",
}


def runner_lines(text: str) -> list[str]:
    """StreamReader.ReadLine: lines end at \\r\\n, \\r or \\n."""
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def parse(line: str, registered: set[str]) -> tuple[str, str] | None:
    """(command, data) if the runner takes ``line`` for a command (V2 ``::cmd::``, then legacy ``##[cmd]``)."""
    names = {n.lower() for n in registered}
    text = line.lstrip(DOTNET_SPACE)
    if text.startswith("::"):
        end = text.find("::", 2)
        if end >= 0:
            name = text[2:end].split(" ", 1)[0]
            if name.lower() in names:
                return name, text[end + 2 :]
    start = line.find("##[")
    if start >= 0:
        end = line.find("]", start)
        if end >= 0:
            name = line[start + 3 : end].split(" ", 1)[0]
            if name.lower() in names:
                return name, line[end + 1 :]
    return None


def commands(text: str, extra: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Every line of ``text`` that parses as a workflow command, stop-commands or not."""
    return [line for line in runner_lines(text) if parse(line, REGISTERED | extra)]


def processed(text: str) -> list[str]:
    """The commands the runner would act on, honouring ``::stop-commands::TOKEN`` ... ``::TOKEN::``."""
    registered, token, acted = set(REGISTERED), None, []
    for line in runner_lines(text):
        found = parse(line, registered)
        if found is None:
            continue
        name, data = found
        if token is not None:
            if name.lower() == token.lower():
                registered.discard(token)
                token = None
            continue
        if name == "stop-commands":
            token = data
            registered.add(token)
            continue
        acted.append(line)
    return acted


def stop_token(result: RunResult) -> str:
    first = result.outstr.splitlines()[0]
    assert first.startswith("::stop-commands::"), result
    return first.removeprefix("::stop-commands::")


def assert_only_planruns_commands(result: RunResult) -> list[str]:
    """Every line of stdout and stderr that the runner would parse as a command is one planrun meant."""
    __tracebackhide__ = True
    token = stop_token(result)
    ours = [f"::stop-commands::{token}", f"::{token}::"]
    ours += [line for line in runner_lines(result.outstr) if line.startswith(("::error ", "::warning title=planrun"))]
    assert commands(result.errstr, {token}) == [], result
    assert commands(result.outstr, {token}) == ours, result
    tail = result.outstr.splitlines()
    resume = tail.index(f"::{token}::")
    assert all(line.startswith(("::error ", "::warning ")) for line in tail[resume + 1 :]), result
    assert processed(result.outstr) == ours[2:]  # with the stop, only the annotations act
    return ours[2:]


@pytest.fixture
def summary(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Under GITHUB_ACTIONS=true with the workspace at the project; the step summary file (empty)."""
    path = tmp_path_factory.mktemp("step") / "summary.md"
    path.write_text("")
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(planrunner.path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    return path


def errors(result: RunResult) -> list[str]:
    return [line for line in result.outstr.splitlines() if line.startswith("::error")]


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the only line of ``path`` that holds ``text``."""
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


# -- annotations -------------------------------------------------------------------------------


def test_failing_criteria_are_annotated_at_their_plan_lines(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makefile("here.txt", "present\n")
    a = planrunner.makeplan(
        "a",
        """
        plan: a
        tasks:
          - id: one
            name: One
            criteria:
              - here.txt exists
              - missing.txt exists
              - here.txt contains `absent`
        """,
    )
    b = planrunner.makeplan(
        "plans/b",
        """
        plan: b
        tasks:
          - id: two
            name: Two
            criteria:
              - "`echo one; echo two; exit 3` passes"
          - id: three
            name: Three
            criteria:
              - here.txt exists
        """,
    )
    result = planrunner.run(".")
    assert result.ret == ExitCode.TESTS_FAILED
    found = errors(result)
    heads = [line.split("::", 2)[1] for line in found]
    title = "title=planrun%3A "
    assert heads == [
        f"error file=a.plan.yaml,line={line_of(a, 'missing.txt')},col=9,{title}a.plan.yaml%3A%3Aone",
        f"error file=a.plan.yaml,line={line_of(a, 'absent')},col=9,{title}a.plan.yaml%3A%3Aone",
        f"error file=plans/b.plan.yaml,line={line_of(b, 'exit 3')},col=9,{title}plans/b.plan.yaml%3A%3Atwo",
    ], result
    assert found[0].endswith("::criterion 2/3 missing.txt exists: not found: missing.txt")
    assert "::criterion 3/3 here.txt contains `absent`: " in found[1]
    assert "::criterion 1/1 `echo one; echo two; exit 3` passes: " in found[2]
    assert found[2].endswith("%0Aone%0Atwo")  # the output tail, one command however many lines
    assert "%0A" in errors(result)[2]  # a message of several lines stays one command
    assert_only_planruns_commands(result)


def test_a_failed_step_and_a_blocked_task_annotate_their_item_line(planrunner: Planrunner, summary: Path) -> None:
    plan = planrunner.makeplan(
        "a",
        """
        plan: a
        tasks:
          - id: broken
            name: Broken
            run: exit 7
            criteria:
              - x.txt exists
          - id: later
            name: Later
            depends_on: [broken]
            criteria:
              - x.txt exists
        """,
    )
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    found = errors(result)
    assert len(found) == 1, result
    assert found[0].startswith(f"::error file=a.plan.yaml,line={line_of(plan, 'id: broken')},col=")
    assert "title=planrun%3A a.plan.yaml%3A%3Abroken::" in found[0]
    assert "exit" in found[0].split("::", 2)[2].lower()


def test_a_collection_error_is_annotated_at_its_location(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makeplan(
        "bad",
        """
        plan: bad
        tasks:
          - id: one
            name: One
            criteria:
              - the moon is made of cheese
        """,
    )
    result = planrunner.run("bad.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    (line,) = errors(result)
    assert line.startswith("::error file=bad.plan.yaml,line=6,col=9,title=planrun%3A collection error::"), line
    assert "moon" in line
    assert_only_planruns_commands(result)
    assert "collection error" in summary.read_text()


@pytest.mark.parametrize("value", [None, "false", "True", "1", "yes"])
def test_off_unless_github_actions_is_exactly_true(
    planrunner: Planrunner, summary: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("GITHUB_ACTIONS")
    else:
        monkeypatch.setenv("GITHUB_ACTIONS", value)
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert "::" not in result.outstr.replace("a.plan.yaml::one", "") + result.errstr
    assert summary.read_text() == ""


def test_flags_force_it_on_and_off(planrunner: Planrunner, summary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    off = planrunner.run("a.plan.yaml", "--no-gha-annotations")
    assert off.ret == ExitCode.TESTS_FAILED
    assert errors(off) == [] and summary.read_text() == ""
    assert_only_planruns_commands(off)  # on Actions the output stays guarded all the same

    monkeypatch.delenv("GITHUB_ACTIONS")
    on = planrunner.run("a.plan.yaml", "--gha-annotations")
    assert on.ret == ExitCode.TESTS_FAILED
    assert len(errors(on)) == 1 and errors(on)[0].startswith("::error file=a.plan.yaml,line=6,col=9,")
    assert summary.read_text().startswith("### planrun: 1 failed in ")


def test_escaping_of_percent_cr_lf_colon_and_comma() -> None:
    assert esc_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert esc_prop("50% a\r\nb: c, d") == "50%25 a%0D%0Ab%3A c%2C d"
    assert esc_prop("%3A") == "%253A"  # escaped once, not read back as a colon


def test_paths_and_titles_with_percent_colon_and_comma_are_escaped(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makeplan(
        "we%ird,na:me",
        "plan: w\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n",
    )
    result = planrunner.run(".")
    (line,) = errors(result)
    assert line.startswith("::error file=we%25ird%2Cna%3Ame.plan.yaml,line=6,col=9,")
    assert ",title=planrun%3A we%25ird%2Cna%3Ame.plan.yaml%3A%3Aone::" in line
    props = line.split("::")[1].split(" ", 1)[1]
    assert len(props.split(",")) == 4  # file, line, col, title: no comma of the name splits a property


def test_file_is_relative_to_the_workspace_by_components(
    planrunner: Planrunner, summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    root = planrunner.path
    monkeypatch.setenv("GITHUB_WORKSPACE", str(root.parent))
    assert errors(planrunner.run("a.plan.yaml"))[0].startswith(f"::error file={esc_prop(root.name)}/a.plan.yaml,")
    # A sibling whose name is a prefix of the project's is not an ancestor: the rootdir-relative path.
    monkeypatch.setenv("GITHUB_WORKSPACE", str(root)[:-1])
    assert errors(planrunner.run("a.plan.yaml"))[0].startswith("::error file=a.plan.yaml,")
    monkeypatch.delenv("GITHUB_WORKSPACE")
    assert errors(planrunner.run("a.plan.yaml"))[0].startswith("::error file=a.plan.yaml,")


def test_at_most_ten_errors_then_one_line_saying_how_many_more(planrunner: Planrunner, summary: Path) -> None:
    criteria = "".join(f"      - gone{n:02d}.txt exists\n" for n in range(13))
    planrunner.makeplan("a", f"plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n{criteria}")
    result = planrunner.run("a.plan.yaml")
    found = errors(result)
    assert len(found) == 10
    assert [int(re.search(r",line=(\d+),", e).group(1)) for e in found] == list(range(6, 16))  # type: ignore[union-attr]
    more = [line for line in result.outstr.splitlines() if line.startswith("::warning")]
    assert more == [
        "::warning title=planrun::3 more failures not annotated (GitHub shows 10 per step), see the job summary and the log"
    ]
    assert_only_planruns_commands(result)


def test_the_stop_comes_before_the_header_and_the_annotations_after_the_final_line(
    planrunner: Planrunner, summary: Path
) -> None:
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    result = planrunner.run("a.plan.yaml")
    lines = result.outstr.splitlines()
    token = stop_token(result)
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert "plan session starts" in lines[1]
    final = max(n for n, line in enumerate(lines) if re.search(r"=+ 1 failed in .* =+", line))
    assert lines[final + 1] == f"::{token}::" and lines[final + 2].startswith("::error ")
    assert stop_token(planrunner.run("a.plan.yaml")) != token  # a new token each run


def test_a_passing_run_resumes_commands_and_annotates_nothing(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makefile("here.txt", "x\n")
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - here.txt exists\n")
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.OK
    assert assert_only_planruns_commands(result) == []
    assert summary.read_text().startswith("### planrun: 1 passed in ")


# -- injection ---------------------------------------------------------------------------------

HOSTILE = [
    "::error::pwned",
    "  ::add-mask::x",
    "::set-env name=A::B",
    "%0A::warning::x",
    "\t::warning file=a::tab",
    "\u00a0\u3000::error::wide spaces",
    "x ##[error]legacy mid-line",
    "###[add-mask]three hashes",
    "::stop-commands::guess",
    "::guess::",
    "::0123456789abcdef0123456789abcdef::",  # a guess at planrun's own token
    "::ERROR::upper case",
    "\r::error::after a carriage return",
    "\u2028::error::after a line separator",
]


def _hostile_plan(planrunner: Planrunner) -> None:
    script = "".join(f"printf '%s\\n' {_sh(line)}\n" for line in HOSTILE)
    planrunner.makefile("say.sh", script)
    planrunner.makefile("notes.txt", "".join(f"{line}\n" for line in HOSTILE))
    planrunner.makeplan(
        "a",
        """
        plan: a
        tasks:
          - id: step
            name: A step that fails loudly
            run: sh say.sh; sh say.sh >&2; exit 1
            criteria:
              - notes.txt exists
          - id: command
            name: A command that fails loudly
            criteria:
              - "`sh say.sh; sh say.sh >&2; exit 1` passes"
          - id: file
            name: A file line shown
            criteria:
              - notes.txt contains `needle that is not there`
              - file_contains: {path: notes.txt, pattern: '::error'}
              - file_not_contains: {path: notes.txt, pattern: 'pwned'}
        """,
    )


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.mark.parametrize("args", [(), ("-v",), ("--tb=short",), ("--tb=line",), ("-rA",), ("--color=yes",)])
def test_nothing_echoed_from_the_workdir_acts_as_a_workflow_command(
    planrunner: Planrunner, summary: Path, args: tuple[str, ...]
) -> None:
    _hostile_plan(planrunner)
    result = planrunner.run("a.plan.yaml", *args)
    assert result.ret == ExitCode.TESTS_FAILED
    assert_only_planruns_commands(result)
    if args in ((), ("-v",), ("-rA",)):  # the hostile lines are shown, neutralised, not hidden
        assert ":\\:error::pwned" in result.outstr
        assert "##\\[error]legacy" in result.outstr


def test_the_annotations_messages_cannot_break_out_either(planrunner: Planrunner, summary: Path) -> None:
    _hostile_plan(planrunner)
    result = planrunner.run("a.plan.yaml")
    ours = assert_only_planruns_commands(result)
    assert len(ours) >= 3
    for line in ours:
        assert "\n" not in line and "\r" not in line


@pytest.mark.parametrize("text", HOSTILE + ["\n".join(HOSTILE), "a\n  ::error::x\r::warning::y ##[debug]z\n"])
def test_the_guard_catches_commands_split_across_writes(text: str) -> None:
    for cut in range(len(text) + 1):
        for second in (cut, min(cut + 1, len(text))):
            out = io.StringIO()
            guard = CommandGuard(out)
            for part in (text[:cut], text[cut:second], text[second:]):
                guard.write(part)
            written = out.getvalue()
            assert commands(written, {"guess"}) == [], (cut, second, written)
            # Only backslashes were added.
            assert written.replace("\\", "") == text.replace("\\", "")


def test_the_guard_changes_nothing_else() -> None:
    text = "plain: text, a::b, [x] # not a command\n  : : spaced\n##\n[x]\n"
    out = io.StringIO()
    CommandGuard(out).write(text)
    assert out.getvalue() == text


# -- the step summary ----------------------------------------------------------------------------


def test_step_summary_appends_counts_table_details_and_the_task_graph(planrunner: Planrunner, summary: Path) -> None:
    summary.write_text("## an earlier step's summary\n")
    plan = planrunner.makeplan(
        "a",
        """
        plan: a
        tasks:
          - id: build
            name: Build
            criteria:
              - dist/app exists
          - id: ship
            name: Ship
            depends_on: [build]
            criteria:
              - dist/app.tar exists
        """,
    )
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    text = summary.read_text()
    assert text.startswith("## an earlier step's summary\n### planrun: 1 failed, 1 skipped in ")
    row = f"| ❌ | a\\.plan\\.yaml\\:\\:build | a\\.plan\\.yaml\\:{line_of(plan, 'dist/app exists')} | failed |"
    assert row + " dist/app exists\\: not found\\: dist/app |" in text.splitlines()
    assert "<details><summary>a.plan.yaml::build — dist/app exists: not found: dist/app</summary>" in text
    graph = re.search(r"```mermaid\n(.*?)\n```", text, re.S)
    assert graph, text
    assert '    t1["build: Build<br/><i>failed</i>"]' in graph.group(1)
    assert '    t2["ship: Ship<br/><i>skipped</i>"]' in graph.group(1)
    assert "    t1 --> t2" in graph.group(1)
    planrunner.run("a.plan.yaml")
    assert summary.read_text().startswith(text) and summary.read_text().count("### planrun:") == 2  # appended


def test_step_summary_links_to_the_plan_line_at_the_commit(
    planrunner: Planrunner, summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    planrunner.makeplan("a b", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    planrunner.run(".")
    assert "(https://github.com/acme/app/blob/0123abc/a%20b.plan.yaml#L6)" in summary.read_text()


def test_step_summary_escapes_what_comes_from_the_workdir(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makefile("say.sh", "printf 'a | b <script>alert(1)</script> & ```\\n```` fence\\n'; exit 1\n")
    planrunner.makeplan(
        "a",
        """
        plan: a
        tasks:
          - id: one
            name: One
            criteria:
              - file_contains: {path: say.sh, text: '| <b>x</b> &amp; `'}
              - "`sh say.sh` passes"
        """,
    )
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    text = summary.read_text()
    assert "<script>" not in text.split("```")[0]  # outside code blocks, markup is escaped
    table = [line for line in text.splitlines() if line.startswith("| ❌")]
    assert len(table) == 1
    assert len(re.findall(r"(?<!\\)\|", table[0])) == 6, table  # five cells: no pipe of the workdir splits one
    assert "\\| &lt;b&gt;x&lt;/b&gt; &amp;amp; \\`" in table[0], table
    details = text[text.index("<details>") :]
    summary_line = details.splitlines()[0]
    assert "<script>" not in summary_line and "<b>" not in summary_line
    fence = re.search(r"^(`{3,})text$", details, re.M)
    assert fence and len(fence.group(1)) == 5, details  # longer than the four backticks of the output
    assert fenced("a\n````\nb").startswith("`````text\n")
    assert md_text("a|b\nc `d` <e> & f") == "a\\|b<br>c \\`d\\` &lt;e&gt; &amp; f"


def _failing_tasks(planrunner: Planrunner, n: int, script: str = "") -> None:
    if script:
        planrunner.makefile("loud.sh", script)
    criterion = '"`sh loud.sh` passes"' if script else "gone.txt exists"
    tasks = "".join(f"  - id: t{i}\n    name: Task {i}\n    criteria:\n      - {criterion}\n" for i in range(n))
    planrunner.makeplan("a", f"plan: a\ntasks:\n{tasks}")


def test_step_summary_of_huge_output_stays_under_the_cap(planrunner: Planrunner, summary: Path) -> None:
    line = "x" * 2000
    _failing_tasks(planrunner, 120, f"i=0; while [ $i -lt 300 ]; do echo {line}; i=$((i+1)); done; exit 1\n")
    summary.write_text("p" * 700_000)
    result = planrunner.run("a.plan.yaml", "--tb=no")
    assert result.ret == ExitCode.TESTS_FAILED
    size = summary.stat().st_size
    assert 700_000 < size < SUMMARY_CAP
    text = summary.read_text()
    assert text.startswith("p" * 700_000 + "### planrun: 120 failed in ")
    assert re.search(r"\d+ more failure details omitted", text)
    assert text.count("| ❌ |") == 120  # details go first, rows stay
    assert len(errors(result)) == 10


def test_step_summary_drops_rows_when_even_they_do_not_fit(planrunner: Planrunner, summary: Path) -> None:
    _failing_tasks(planrunner, 60)
    summary.write_text("p" * (SUMMARY_CAP - 3000))
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    text = summary.read_text()
    assert len(text.encode()) < SUMMARY_CAP
    assert "<details>" not in text and "```mermaid" not in text
    omitted = re.search(r"\| \| (\d+) more omitted \|", text)
    assert omitted and int(omitted.group(1)) + text.count("| ❌ |") == 60


def test_a_full_step_summary_is_left_alone_with_a_warning(planrunner: Planrunner, summary: Path) -> None:
    _failing_tasks(planrunner, 1)
    summary.write_text("p" * (SUMMARY_CAP - 10))
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert summary.read_text() == "p" * (SUMMARY_CAP - 10)
    result.stdout.fnmatch_lines(["*GITHUB_STEP_SUMMARY * no room under the 1000000-byte cap*"])
    result.assert_outcomes(failed=1, warnings=1)


@pytest.mark.parametrize("where", ["directory", "missing folder", "below a file", "fifo without a reader"])
def test_an_unwritable_step_summary_is_a_warning_not_a_crash(
    planrunner: Planrunner, summary: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "directory":
        target = summary.parent
    elif where == "missing folder":
        target = summary.parent / "no" / "such.md"
    elif where == "below a file":
        target = summary / "x.md"
    else:
        target = summary.parent / "fifo"
        os.mkfifo(target)  # opening it to write would wait for a reader: planrun must not hang
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    planrunner.makefile("here.txt", "x\n")
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - here.txt exists\n")
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.OK
    assert result.no_traceback()
    result.stdout.fnmatch_lines([f"GITHUB_STEP_SUMMARY {target}: * the step summary was not written"])
    result.assert_outcomes(passed=1, warnings=1)
    assert_only_planruns_commands(result)


def test_graphs_for_every_plan_when_none_failed(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makefile("here.txt", "x\n")
    for name in ("a", "b"):
        planrunner.makeplan(
            name, f"plan: {name}\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - here.txt exists\n"
        )
    assert planrunner.run(".").ret == ExitCode.OK
    text = summary.read_text()
    assert text.count("```mermaid") == 2 and "| ❌" not in text
    assert list(itertools.islice(re.finditer(r"<i>passed</i>", text), 3)).__len__() == 2


def test_a_crash_at_session_start_still_resumes_the_commands(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makeconftest(
        """
        def planrun_sessionstart(session):
            raise RuntimeError("boom\\n::error::from a traceback")
        """
    )
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.INTERNAL_ERROR
    assert "\n:\\:error::from a traceback\n" in result.errstr  # the traceback went through the guard
    assert assert_only_planruns_commands(result) == []


def test_under_pytest_the_output_is_pytests(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    pytester.makefile(
        ".plan.yaml", a="plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "a.plan.yaml")
    result.assert_outcomes(failed=1)
    assert "::stop-commands::" not in result.stdout.str() and "::error" not in result.stdout.str()
    assert not (pytester.path / "summary.md").exists()


def test_what_another_plugin_prints_is_guarded_too(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makeconftest(
        """
        import sys

        def planrun_runtest_logreport(report):
            sys.stderr.write("\\n  ::error::from a plugin on stderr\\n")
            sys.stderr.write(":")
            sys.stderr.write(":add-mask::split across two writes\\n")
            print("\\n::warning::from a plugin on stdout ##[debug]legacy")
        """
    )
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    result = planrunner.run("a.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    assert "  :\\:error::from a plugin on stderr" in result.errstr
    assert ":\\:add-mask::split across two writes" in result.errstr
    assert ":\\:warning::from a plugin on stdout ##\\[debug]legacy" in result.outstr
    assert len(assert_only_planruns_commands(result)) == 1


def test_collect_only_annotates_collection_errors_and_writes_no_summary(planrunner: Planrunner, summary: Path) -> None:
    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    planrunner.makeplan("b", "plan: b\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - the moon is cheese\n")
    result = planrunner.run(".", "--co")
    assert result.ret == ExitCode.INTERRUPTED
    (line,) = assert_only_planruns_commands(result)
    assert line.startswith("::error file=b.plan.yaml,line=6,col=9,title=planrun%3A collection error::")
    assert summary.read_text() == ""


def test_planruns_own_commands_always_start_a_line() -> None:
    out = io.StringIO()
    guard = CommandGuard(out)
    guard.write("a partial line")
    guard.raw_write("::tok::\n")
    guard.write("::error::after")
    assert out.getvalue() == "a partial line\n::tok::\n:\\:error::after"


def test_the_guards_are_taken_off_after_the_run(planrunner: Planrunner, summary: Path) -> None:
    import sys
    from contextlib import redirect_stderr, redirect_stdout

    from planrun import hookimpl, main

    seen = []

    class Spy:
        @hookimpl
        def planrun_runtest_logreport(self) -> None:
            seen.append((type(sys.stdout).__name__, type(sys.stderr).__name__))

    planrunner.makeplan("a", "plan: a\ntasks:\n  - id: one\n    name: One\n    criteria:\n      - gone.txt exists\n")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["a.plan.yaml"], plugins=[Spy()]) == ExitCode.TESTS_FAILED
        after = (sys.stdout, sys.stderr)
    assert seen == [("CommandGuard", "CommandGuard")]
    assert after == (out, err)
    assert processed(out.getvalue())[0].startswith("::error file=a.plan.yaml,")


# -- subcommands whose output is data: exact where the runner cannot read it, never a command where it can ----

HOSTILE_PLAN = 'plan: p\ntasks:\n  - {id: t, name: "T ::error::a", criteria: ["::error::x ##[group] is done"]}\n'


def _subcommand(planrunner: Planrunner, args: list[str], *, actions: bool, into_file: bool) -> tuple[str, str]:
    """(stdout, stderr) of ``python -m planrun ARGS``, stdout a pipe or a regular file, on Actions or not."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    if actions:
        env["GITHUB_ACTIONS"] = "true"
    out_file = planrunner.path / "stdout.txt"
    with open(out_file, "w") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "planrun", *args],
            cwd=planrunner.path,
            env=env,
            stdout=sink if into_file else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    return (out_file.read_text() if into_file else done.stdout), done.stderr


@pytest.mark.parametrize(
    "args",
    [["lint", "--format=json", "p.plan.yaml"], ["schema"]],
    ids=["lint-json", "schema"],
)
def test_json_output_on_actions_is_the_same_json_and_holds_no_command(planrunner: Planrunner, args: list[str]) -> None:
    import json

    planrunner.makeplan("p", HOSTILE_PLAN)
    plain, _ = _subcommand(planrunner, args, actions=False, into_file=False)
    assert "##[group]" in plain or args == ["schema"], plain  # the finding quotes the criterion
    piped, err = _subcommand(planrunner, args, actions=True, into_file=False)
    assert json.loads(piped) == json.loads(plain), piped
    assert commands(piped) == [] and "warning" not in err, piped
    filed, _ = _subcommand(planrunner, args, actions=True, into_file=True)
    assert filed == plain  # a file the runner never reads: the very text


def test_lint_github_format_on_actions_prints_real_annotations(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", HOSTILE_PLAN)
    out, _ = _subcommand(planrunner, ["lint", "--format=github", "p.plan.yaml"], actions=True, into_file=False)
    found = commands(out)
    assert found and all(line.startswith("::error file=p.plan.yaml,line=3,") for line in found), out
    assert processed(out) == found  # acted on, and nothing else in the output is a command
    assert [parse(line, REGISTERED)[0] for line in found] == ["error"] * len(found)  # type: ignore[index]


def test_imported_yaml_on_actions_is_exact_into_a_file_and_guarded_with_a_warning_into_a_pipe(
    planrunner: Planrunner,
) -> None:
    planrunner.makefile(
        "plan.md",
        "# Plan: P\n\n## Overview\nFirst line.\n::error::from the overview ##[group]x\n\n## Tasks\n\n"
        "### Task 1: One\n- id: one\n\n**Success criteria:**\n- `one.txt` exists\n",
    )
    args = ["import", "plan.md"]
    plain, _ = _subcommand(planrunner, args, actions=False, into_file=False)
    assert commands(plain), plain  # the hostile text is in the data, a line of its own
    filed, err = _subcommand(planrunner, args, actions=True, into_file=True)
    assert filed == plain and "warning" not in err
    piped, err = _subcommand(planrunner, args, actions=True, into_file=False)
    assert commands(piped) == [], piped
    assert "redirect the output to a file for the exact text" in err, err


def test_a_graph_on_actions_is_the_same_graph(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", 'plan: p\ntasks:\n  - {id: t, name: "::error::a ##[group]b", criteria: [x.txt exists]}\n')
    plain, _ = _subcommand(planrunner, ["graph", "p.plan.yaml"], actions=False, into_file=False)
    for into_file in (False, True):
        shown, err = _subcommand(planrunner, ["graph", "p.plan.yaml"], actions=True, into_file=into_file)
        assert shown == plain and commands(shown) == [] and "warning" not in err, shown
