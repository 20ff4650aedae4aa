"""``--junitxml PATH``: one testsuite per plan, one testcase per item; valid XML whatever the output held."""

from __future__ import annotations

import os
import signal
import sys
import time
import xml.dom.minidom
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorError, ExecutorKind, ExitCode, Task, hookimpl
from planrun.testing import Planrunner

SCHEMA = Path(__file__).parent / "data" / "junit.xsd"

#: Every byte a hostile command can print: all C0 controls (NUL and ESC among them), DEL, "]]>",
#: a CDATA opener, markup characters, U+FFFE and U+FFFF as UTF-8, invalid UTF-8, CR LF.
HOSTILE = (
    bytes(range(32))
    + b"\x7f ]]> <![CDATA[ x ]]> & &amp; < > \" ' \xef\xbf\xbe \xef\xbf\xbf \xff\xfe\xc3 \x1b[31mred\x1b[0m\r\nend\n"
)

MIX = """
plan: Mix
executor: scripted
tasks:
  - id: ok
    name: passes
    description: write ok.txt
    criteria:
      - ok.txt exists
  - id: wrong
    name: fails
    description: writes nothing
    criteria:
      - wrong.txt exists
  - id: blocked
    name: is blocked
    description: cannot
    criteria:
      - blocked.txt exists
  - id: boom
    name: executor crashes
    description: boom
    criteria:
      - boom.txt exists
  - id: after
    name: skipped
    description: after wrong
    depends_on: [wrong]
    criteria:
      - ok.txt exists
verification:
  - command: {run: "PYTHON hostile.py", stdout_contains: never}
"""


class Scripted(Executor):
    """Passes ``ok`` (with tokens and cost), does nothing for ``wrong``, blocks ``blocked``, errors ``boom``."""

    name = "scripted"

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        if task.id == "ok":
            (context.workdir / "ok.txt").write_text("ok\n")
            return ExecutionResult(tokens_in=120, tokens_out=30, cost=0.25, output="wrote ok.txt\n")
        if task.id == "blocked":
            return ExecutionResult(status="blocked", message="needs an API key")
        if task.id == "boom":
            raise ExecutorError("the agent process died\nwith more detail")
        return ExecutionResult(output="did nothing <&>\n")


class ScriptedPlugin:
    @hookimpl
    def planrun_register_executors(self) -> list[ExecutorKind]:
        return [ExecutorKind("scripted", lambda config: Scripted())]


def write_mix(planrunner: Planrunner, name: str = "mix") -> Path:
    planrunner.makefile("hostile.py", f"import sys\nsys.stdout.buffer.write({HOSTILE!r})\n")
    return planrunner.makeplan(name, MIX.replace("PYTHON", sys.executable))


# -- a strict reading of the file ------------------------------------------------

#: element -> (allowed attributes, required attributes, allowed children)
STRUCTURE: dict[str, tuple[set[str], set[str], set[str]]] = {
    "testsuites": ({"name", "tests", "failures", "errors", "skipped", "time"}, {"tests"}, {"testsuite"}),
    "testsuite": (
        {"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"},
        {"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"},
        {"testcase", "properties", "system-out", "system-err"},
    ),
    "testcase": (
        {"classname", "name", "file", "line", "time"},
        {"classname", "name", "file", "line", "time"},
        {"properties", "failure", "error", "skipped", "system-out", "system-err"},
    ),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, {"name", "value"}, set()),
    "failure": ({"message", "type"}, {"message"}, set()),
    "error": ({"message", "type"}, {"message"}, set()),
    "skipped": ({"message", "type"}, {"message"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}


def strict_read(path: Path) -> ET.Element:
    """Parse ``path`` with two strict parsers, validate it against tests/data/junit.xsd and check its counts."""
    data = path.read_bytes()
    xml.dom.minidom.parseString(data)  # expat: raises on anything not well formed
    root = ET.fromstring(data)
    assert root.tag == "testsuites"
    for el in root.iter():
        allowed, required, children = STRUCTURE[el.tag]
        assert set(el.attrib) <= allowed, (el.tag, set(el.attrib) - allowed)
        assert required <= set(el.attrib), (el.tag, required - set(el.attrib))
        assert {c.tag for c in el} <= children, (el.tag, {c.tag for c in el} - children)
        for key in ("tests", "failures", "errors", "skipped", "line"):
            if key in el.attrib:
                assert el.attrib[key].isdigit(), (el.tag, key, el.attrib[key])
        if "time" in el.attrib:
            float(el.attrib["time"])
    for suite in [root, *root.iter("testsuite")]:
        cases = list(suite.iter("testcase"))
        assert int(suite.get("tests", "-1")) == len(cases)
        for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(suite.get(attr, "-1")) == sum(1 for c in cases if c.find(tag) is not None), (suite.attrib, attr)
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema10(str(SCHEMA)).validate(str(path))
    return root


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def props(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


# -- the shape -------------------------------------------------------------------


def test_a_mix_of_outcomes(planrunner: Planrunner) -> None:
    write_mix(planrunner)
    result = planrunner.run("--junitxml", "out/report.xml", "mix.plan.yaml", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["*generated xml file: *out*report.xml*"])
    root = strict_read(planrunner.path / "out" / "report.xml")
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("6", "3", "1", "1")
    (suite,) = root.iter("testsuite")
    assert suite.get("name") == "mix.plan.yaml"
    assert suite.get("hostname") and suite.get("timestamp")
    found = cases(root)
    assert list(found) == [f"mix::{n}" for n in ("ok", "wrong", "blocked", "boom", "after", "verification")]
    ok = found["mix::ok"]
    assert [c.tag for c in ok] == ["properties", "system-out"]
    assert "wrote ok.txt" in (ok.findtext("system-out") or "")

    wrong = found["mix::wrong"].find("failure")
    assert wrong is not None and wrong.get("type") == "planrun.CriteriaNotMet"
    assert wrong.get("message") == "criterion 1/1 wrong.txt exists: not found: wrong.txt"
    assert "mix.plan.yaml:13:9" in (wrong.text or "")

    blocked = found["mix::blocked"].find("failure")
    assert blocked is not None and blocked.get("type") == "planrun.Blocked"
    assert blocked.get("message") == "blocked: needs an API key"

    boom = found["mix::boom"].find("error")
    assert boom is not None and boom.get("type") == "planrun.ExecutorError"
    assert boom.get("message") == "the agent process died"  # the first line only
    assert "with more detail" in (boom.text or "")

    skipped = found["mix::after"].find("skipped")
    assert skipped is not None and skipped.get("message") == "dependency wrong failed"
    assert found["mix::after"].find("failure") is None and found["mix::after"].find("error") is None


def test_file_line_and_classname(planrunner: Planrunner) -> None:
    planrunner.makefile("plans/sub/x.txt", "x")
    planrunner.makeplan(
        "plans/sub/deploy",
        """
        plan: Deploy
        prerequisites:
          - plans/sub/x.txt exists
        tasks:
          - id: build
            name: Build
            criteria:
              - plans/sub/x.txt exists


          - id: ship
            name: Ship
            criteria: [plans/sub/x.txt exists]
        edge_cases:
          - case: Nothing there
            criteria: [y.txt does not exist]
        """,
    )
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    (planrunner.path / "elsewhere").mkdir()
    os.chdir(planrunner.path / "elsewhere")  # file= is relative to the rootdir, not the invocation folder
    try:
        result = planrunner.run("--verify-only", "--junit-xml=r.xml", "../plans")
    finally:
        os.chdir(planrunner.path)
    assert result.ret == ExitCode.OK, result
    root = strict_read(planrunner.path / "elsewhere" / "r.xml")
    got = [(c.get("classname"), c.get("name"), c.get("file"), c.get("line")) for c in root.iter("testcase")]
    assert got == [
        ("plans.sub.deploy", "prerequisites", "plans/sub/deploy.plan.yaml", "2"),
        ("plans.sub.deploy", "build", "plans/sub/deploy.plan.yaml", "5"),
        ("plans.sub.deploy", "ship", "plans/sub/deploy.plan.yaml", "11"),
        ("plans.sub.deploy", "edge_cases[0]", "plans/sub/deploy.plan.yaml", "15"),
    ]


def test_properties(planrunner: Planrunner) -> None:
    write_mix(planrunner)
    planrunner.run("--junitxml", "r.xml", "mix.plan.yaml", plugins=[ScriptedPlugin()])
    found = cases(strict_read(planrunner.path / "r.xml"))
    assert props(found["mix::ok"]) == {
        "attempts": "1",
        "tokens_in": "120",
        "tokens_out": "30",
        "cost": "0.250000",
        "executor": "scripted",
    }
    assert props(found["mix::wrong"]) == {"attempts": "1", "tokens_in": "0", "tokens_out": "0", "executor": "scripted"}
    assert props(found["mix::after"]) == {"attempts": "0", "tokens_in": "0", "tokens_out": "0"}  # never executed
    assert props(found["mix::verification"]) == {"attempts": "0", "tokens_in": "0", "tokens_out": "0"}


# -- valid XML whatever the bytes -------------------------------------------------


def test_hostile_command_output_stays_valid_and_visible(planrunner: Planrunner) -> None:
    write_mix(planrunner)
    result = planrunner.run("--junitxml", "r.xml", "mix.plan.yaml", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    root = strict_read(planrunner.path / "r.xml")
    case = cases(root)["mix::verification"]
    failure = case.find("failure")
    assert failure is not None
    for text in (failure.text or "", case.findtext("system-out") or ""):
        # What XML cannot carry is shown escaped; what it can survives as it was, CR included.
        for code in [*range(0, 9), 0x0B, 0x0C, *range(0x0E, 0x20)]:
            assert f"\\x{code:02x}" in text, hex(code)
        assert "\t\n" in text and "\r\nend" in text
        assert "\\ufffe" in text and "\\uffff" in text
        assert "]]> <![CDATA[ x ]]> & &amp; < >" in text
        assert "\\x1b[31mred\\x1b[0m" in text
        assert "\ufffd" in text  # the invalid UTF-8, as the command check decoded it
    raw = (planrunner.path / "r.xml").read_bytes()
    assert b"\x1b" not in raw and b"\x00" not in raw and b"]]>" not in raw
    raw.decode("utf-8")  # strict: no lone surrogate was written


@pytest.mark.parametrize(
    "text, shown",
    [
        ("nul \x00 esc \x1b bell \x07", "nul \\x00 esc \\x1b bell \\x07"),
        ("lone \ud800 surrogate \udcff", "lone \\ud800 surrogate \\udcff"),
        ("non-characters \ufffe \uffff kept visible", "non-characters \\ufffe \\uffff kept visible"),
        ("cdata ]]> end <![CDATA[ & <x/>", "cdata ]]> end <![CDATA[ & <x/>"),
        ("line\r\nbreaks\rand\ttabs", "line\r\nbreaks\rand\ttabs"),
        ("astral \U0001f600 and \u00e9 stay", "astral \U0001f600 and \u00e9 stay"),
    ],
)
def test_messages_and_names_from_a_plugin_round_trip_through_a_strict_parser(
    planrunner: Planrunner, text: str, shown: str
) -> None:
    """Messages, names and evidence a plugin reports (attributes and text alike) survive any character."""

    class Odd(Executor):
        name = "odd"

        def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
            return ExecutionResult(status="failed", message=text, evidence=text, output=text, summary=text)

    class Plugin:
        @hookimpl
        def planrun_register_executors(self) -> list[ExecutorKind]:
            return [ExecutorKind("odd", lambda config: Odd())]

    planrunner.makeplan(
        "p", "plan: P\nexecutor: odd\ntasks:\n  - id: t\n    name: T\n    description: d\n    criteria: [x exists]\n"
    )
    result = planrunner.run("--junitxml", "r.xml", "p.plan.yaml", plugins=[Plugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    case = cases(strict_read(planrunner.path / "r.xml"))["p::t"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == shown.strip().splitlines()[0]
    assert (failure.text or "").startswith(shown)
    assert shown in (case.findtext("system-out") or "")


def test_system_out_is_capped(planrunner: Planrunner) -> None:
    class Chatty(Executor):
        name = "chatty"

        def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
            return ExecutionResult(output="o" * 3_000_000 + "THE-END")

    class Plugin:
        @hookimpl
        def planrun_register_executors(self) -> list[ExecutorKind]:
            return [ExecutorKind("chatty", lambda config: Chatty())]

    planrunner.makeplan(
        "big",
        "plan: B\nexecutor: chatty\ntasks:\n  - id: t\n    name: T\n    description: d\n    criteria: [x exists]\n",
    )
    result = planrunner.run("--junitxml", "r.xml", "big.plan.yaml", plugins=[Plugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert (planrunner.path / "r.xml").stat().st_size < 100_000
    out = cases(strict_read(planrunner.path / "r.xml"))["big::t"].findtext("system-out") or ""
    assert "[2984007 characters before this cut]" in out and out.endswith("THE-END")


# -- collection errors ------------------------------------------------------------


def test_collection_errors_are_testcases_with_file_and_line(planrunner: Planrunner) -> None:
    planrunner.makeplan("good", "plan: G\ntasks:\n  - id: t\n    name: T\n    criteria: [a exists]\n")
    planrunner.makeplan("bad", "plan: B\ntasks:\n  - id: t\n    name: T\n    criteria: [a exists]\n    bogus: 1\n")
    planrunner.makeplan("broken", "plan: [unclosed\n")
    result = planrunner.run("--junitxml", "r.xml", ".")
    assert result.ret == ExitCode.INTERRUPTED, result
    root = strict_read(planrunner.path / "r.xml")
    assert root.get("errors") == "2" and root.get("tests") == "2"
    assert [s.get("name") for s in root.iter("testsuite")] == ["bad.plan.yaml", "broken.plan.yaml"]
    bad, broken = list(root.iter("testcase"))
    assert (bad.get("classname"), bad.get("name"), bad.get("file"), bad.get("line")) == (
        "bad",
        "collection",
        "bad.plan.yaml",
        "6",
    )
    error = bad.find("error")
    assert error is not None and error.get("type") == "planrun.PlanInvalid"
    assert "bogus" in (error.get("message") or "") and (error.text or "").startswith("bad.plan.yaml:6:")
    assert broken.get("file") == "broken.plan.yaml" and broken.find("error") is not None
    assert not (planrunner.path / "a").exists()


# -- bad paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, reason",
    [
        ("adir", "is a directory"),
        ("afile/r.xml", "afile is not a directory"),
        ("afile/deeper/r.xml", "afile is not a directory"),
        ("", "the path is empty"),
    ],
)
@pytest.mark.parametrize("option", ["--junitxml", "--junit-xml"])
def test_unwritable_path_is_a_usage_error_before_anything_runs(
    planrunner: Planrunner, where: str, reason: str, option: str
) -> None:
    planrunner.makefile("afile", "I am a file\n")
    (planrunner.path / "adir").mkdir()
    planrunner.makeplan(
        "p", "plan: P\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n    criteria: [ran.txt exists]\n"
    )
    result = planrunner.run(f"{option}={where}", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    lines = result.errstr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: --junitxml") and lines[0].endswith(reason), lines
    assert result.no_traceback()
    assert not (planrunner.path / "ran.txt").exists()
    assert (planrunner.path / "afile").read_text() == "I am a file\n"
    assert list((planrunner.path / "adir").iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder_is_a_usage_error(planrunner: Planrunner) -> None:
    ro = planrunner.path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    planrunner.makeplan(
        "p", "plan: P\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n    criteria: [ran.txt exists]\n"
    )
    try:
        result = planrunner.run("--junitxml", "ro/sub/r.xml", "p.plan.yaml")
    finally:
        ro.chmod(0o700)
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr.strip().endswith("is not writable") and len(result.errstr.splitlines()) == 1
    assert not (planrunner.path / "ran.txt").exists()


def test_an_existing_report_is_replaced_whole(planrunner: Planrunner) -> None:
    planrunner.makefile("r.xml", "old content that is not XML" * 1000)
    planrunner.makeplan("p", "plan: P\ntasks:\n  - id: t\n    name: T\n    criteria: [p.plan.yaml exists]\n")
    assert planrunner.run("--junitxml", "r.xml", "p.plan.yaml").ret == ExitCode.OK
    root = strict_read(planrunner.path / "r.xml")
    assert root.get("tests") == "1"
    assert [p.name for p in planrunner.path.iterdir() if "tmp" in p.name] == []  # no temp file left


# -- interrupted runs ---------------------------------------------------------------

SLOW = """
plan: Slow
tasks:
  - id: quick
    name: Quick
    run: touch quick.txt
    criteria: [quick.txt exists]
  - id: hang
    name: Hang
    depends_on: [quick]
    run: 'echo $$ > step.pid; sleep 300'
    criteria: [never.txt exists]
  - id: after
    name: After
    run: touch after.txt
    criteria: [after.txt exists]
"""


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_report_is_complete_after_an_interrupted_run(planrunner: Planrunner, sig: signal.Signals) -> None:
    planrunner.makeplan("slow", SLOW)
    proc = planrunner.popen("--junitxml", "r.xml", "slow.plan.yaml")
    try:
        _wait_for(planrunner.path / "step.pid")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    root = strict_read(planrunner.path / "r.xml")
    found = cases(root)
    assert list(found) == ["slow::quick", "slow::hang"]
    assert found["slow::quick"].find("failure") is None
    error = found["slow::hang"].find("error")
    assert error is not None and error.get("type") == "planrun.Interrupted" and error.get("message") == "interrupted"
    assert not (planrunner.path / "after.txt").exists()


def test_collect_only_writes_an_empty_report(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p", "plan: P\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n    criteria: [ran.txt exists]\n"
    )
    result = planrunner.run("--co", "--junitxml", "r.xml", "p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    root = strict_read(planrunner.path / "r.xml")
    assert root.get("tests") == "0" and list(root) == []
    assert not (planrunner.path / "ran.txt").exists()


@pytest.mark.parametrize(
    "bad",
    [
        '<testsuites><testsuite name="p" tests="1"><testcase name="t" time="0.000"/></testsuite></testsuites>',
        '<testsuites><testsuite name="p" tests="1"><testcase classname="c" name="t" time="0.000">'
        '<failure message="a"/><failure message="b"/></testcase></testsuite></testsuites>',
        '<testsuites><testsuite name="p" tests="x"/></testsuites>',
        '<testsuites><testsuite name="p" tests="0" timestamp="2026-01-01T00:00:00+00:00"/></testsuites>',
        '<testsuites><testsuite name="p" tests="0"><bogus/></testsuite></testsuites>',
    ],
)
def test_the_schema_is_strict(tmp_path: Path, bad: str) -> None:
    """The validator the tests use rejects what CI readers trip on (so a passing validation means something)."""
    xmlschema = pytest.importorskip("xmlschema")
    path = tmp_path / "bad.xml"
    path.write_text(bad)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        xmlschema.XMLSchema10(str(SCHEMA)).validate(str(path))


@pytest.mark.parametrize("option", ["--junitxml", "--json"])
@pytest.mark.parametrize(
    "step, reason",
    [
        ("rm -rf out && echo x > out", "/out is not a directory"),
        ("rm -rf out && mkdir -p out/r/report", "out/r/report: is a directory"),
    ],
)
def test_a_path_broken_during_the_run_is_a_one_line_usage_error(
    planrunner: Planrunner, option: str, step: str, reason: str
) -> None:
    """The run replaced the report's folder: the error names what is in the way, exit 4, no traceback."""
    (planrunner.path / "out" / "r").mkdir(parents=True)
    planrunner.makeplan(
        "p", f"plan: P\ntasks:\n  - id: t\n    name: T\n    run: {step}\n    criteria: [p.plan.yaml exists]\n"
    )
    result = planrunner.run(option, "out/r/report", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    lines = result.errstr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: {option} out/r/report: "), lines
    assert lines[0].endswith(reason), lines
    assert result.no_traceback()


def test_unmet_prerequisites_regressions_and_deselected_plans(planrunner: Planrunner) -> None:
    """Prerequisites not met: an <error> listing them, the rest skipped; a regression is a failure;
    a plan whose items are all deselected has no suite."""
    planrunner.makeplan(
        "pre",
        """
        plan: Pre
        prerequisites: [needed.txt exists]
        tasks:
          - id: t
            name: T
            run: touch t.txt
            criteria: [t.txt exists]
        """,
    )
    planrunner.makeplan(
        "reg",
        """
        plan: Reg
        tasks:
          - id: one
            name: One
            run: echo a > a.txt
            criteria: [a.txt exists]
          - id: two
            name: Two
            depends_on: [one]
            run: rm a.txt && touch b.txt
            criteria: [b.txt exists]
        """,
    )
    planrunner.makeplan("other", "plan: O\ntasks:\n  - id: zzz\n    name: Z\n    criteria: [other.plan.yaml exists]\n")
    result = planrunner.run("--junitxml", "r.xml", "-k", "not zzz", "pre.plan.yaml", "reg.plan.yaml", "other.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result
    root = strict_read(planrunner.path / "r.xml")
    assert [s.get("name") for s in root.iter("testsuite")] == ["pre.plan.yaml", "reg.plan.yaml"]
    found = cases(root)
    error = found["pre::prerequisites"].find("error")
    assert error is not None and error.get("type") == "planrun.Error"
    assert error.get("message") == "prerequisites not met: plan skipped"
    assert "criterion 1/1 needed.txt exists [failed] at pre.plan.yaml:2:" in (error.text or "")
    skipped = found["pre::t"].find("skipped")
    assert skipped is not None and skipped.get("message") == "prerequisites not met"
    assert not (planrunner.path / "t.txt").exists()
    failure = found["reg::two"].find("failure")
    assert failure is not None
    assert (failure.get("message") or "").startswith("criterion 2/2 regression: criterion 1 of task one")
