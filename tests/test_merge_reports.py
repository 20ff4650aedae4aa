"""``planrun merge-reports``: the reports of shard runs merge into the report of one run of the whole suite."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from planrun import ExitCode, plan_order_key
from planrun.testing import Planrunner
from tests.test_junitxml import strict_read


def plan(title: str, ok: bool) -> str:
    return f"""
plan: {title}
workspace: temp
tasks:
  - id: make
    name: Make out.txt
    run: printf '{title} <&> ]]>\\033[0m' > out.txt
    criteria: [out.txt exists]
  - id: check
    name: Check
    depends_on: [make]
    run: "true"
    criteria:
      - {"out.txt exists" if ok else "missing.txt exists"}
  - id: later
    name: Later
    depends_on: [check]
    run: "true"
    criteria: [out.txt exists]
"""


SUITE = {
    "b.plan.yaml": plan("B", True),
    "a/x.plan.yaml": plan("X", False),
    "a/y.plan.yaml": plan("Y", True),
    "a/deeper/w.plan.yaml": plan("W", True),
    "c/z.plan.yaml": plan("Z", False),
}


@pytest.fixture
def suite(planrunner: Planrunner) -> Planrunner:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    for name, text in SUITE.items():
        planrunner.makeplan(name, text)
    return planrunner


def normal_xml(path: Path) -> list[Any]:
    """The document without times, timestamps and hostnames."""
    root = ET.fromstring(path.read_bytes())
    out = []
    for el in root.iter():
        attrs = {k: v for k, v in el.attrib.items() if k not in ("time", "timestamp", "hostname")}
        out.append((el.tag, attrs, (el.text or "").strip()))
    return out


def normal_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normal_json(v) for k, v in value.items() if k not in ("duration", "started")}
    if isinstance(value, list):
        return [normal_json(v) for v in value]
    return value


def test_the_serial_order_is_the_walk_order(suite: Planrunner) -> None:
    result = suite.run("--junitxml", "whole.xml", ".")
    suites = [s.get("name", "") for s in strict_read(suite.path / "whole.xml").iter("testsuite")]
    assert suites == ["b.plan.yaml", "a/x.plan.yaml", "a/y.plan.yaml", "a/deeper/w.plan.yaml", "c/z.plan.yaml"], result
    assert sorted(suites, key=plan_order_key) == suites


@pytest.mark.parametrize(
    "shards",
    [
        [["a/y.plan.yaml", "b.plan.yaml"], ["c", "a/x.plan.yaml", "a/deeper"]],
        [["c/z.plan.yaml"], ["a"], ["b.plan.yaml"]],
        [["a/deeper/w.plan.yaml", "c", "b.plan.yaml", "a/y.plan.yaml", "a/x.plan.yaml"]],
    ],
)
def test_merged_shards_equal_one_run_of_the_whole_suite(suite: Planrunner, shards: list[list[str]]) -> None:
    whole = suite.run("--junitxml", "whole.xml", "--json", "whole.json", ".")
    assert whole.ret == ExitCode.TESTS_FAILED, whole
    xmls, jsons = [], []
    for n, paths in enumerate(shards):
        suite.run("--junitxml", f"shard{n}.xml", "--json", f"shard{n}.json", *paths)
        xmls.append(f"shard{n}.xml")
        jsons.append(f"shard{n}.json")
    merged = suite.run("merge-reports", "-o", "out/merged.xml", *reversed(xmls))
    assert merged.ret == ExitCode.OK, merged
    strict_read(suite.path / "out" / "merged.xml")
    assert normal_xml(suite.path / "out" / "merged.xml") == normal_xml(suite.path / "whole.xml")
    merged = suite.run("merge-reports", "--output", "merged.json", *jsons)
    assert merged.ret == ExitCode.OK, merged
    got = json.loads((suite.path / "merged.json").read_text())
    want = json.loads((suite.path / "whole.json").read_text())
    assert normal_json(got) == normal_json(want)
    assert got["exitstatus"] == 1 and got["counts"]["failed"] == 2


def test_totals_are_recomputed(suite: Planrunner) -> None:
    suite.run("--junitxml", "one.xml", "a")
    suite.run("--junitxml", "two.xml", "b.plan.yaml", "c")
    assert suite.run("merge-reports", "-o", "m.xml", "one.xml", "two.xml").ret == ExitCode.OK
    root = strict_read(suite.path / "m.xml")  # checks every count against the testcases
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == ("15", "2", "2", "0")
    assert float(root.get("time", "-1")) == pytest.approx(
        sum(float(s.get("time", "0")) for s in root.iter("testsuite")), abs=0.01
    )


def test_the_same_plan_in_two_inputs_names_both_files(suite: Planrunner) -> None:
    suite.run("--junitxml", "one.xml", "--json", "one.json", "a", "b.plan.yaml")
    suite.run("--junitxml", "two.xml", "--json", "two.json", "b.plan.yaml", "c")
    for one, two in (("one.xml", "two.xml"), ("one.json", "two.json")):
        result = suite.run("merge-reports", "-o", "m.out", one, two)
        assert result.ret == ExitCode.USAGE_ERROR, result
        assert result.errstr.splitlines() == [
            f"ERROR: merge-reports: plan b.plan.yaml is in two reports: {one} and {two}"
            " (merge the reports of disjoint shards)"
        ]
        assert not (suite.path / "m.out").exists()


NOT_JUNIT: dict[str, tuple[str | bytes, str]] = {
    "html.xml": ("<html><body/></html>", "not a JUnit XML report (the root element is <html>)"),
    "broken.xml": ("<testsuites><testsuite name='a' tests='0'>", "not a JUnit XML report: no element found: line 1"),
    "child.xml": ("<testsuites><testcase name='a'/></testsuites>", "(<testcase> inside <testsuites>)"),
    "count.xml": ("<testsuites><testsuite name='a' tests='many'/></testsuites>", "testsuite a: tests='many'"),
    "nameless.xml": ("<testsuites><testsuite tests='1'/></testsuites>", "a <testsuite> without a name"),
    "entity.xml": (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<testsuites><testsuite name='&b;' tests='0'/></testsuites>",
        "not a JUnit XML report (it declares a DTD)",
    ),
    "binary.xml": ("\x00\x01garbage", "not a JUnit XML report: "),
    "utf16.xml": (
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE t [<!ENTITY a "x">]><testsuites/>'.encode("utf-16"),
        "not a JUnit XML report (not UTF-8 at byte 0)",
    ),
    "other.json": ('{"format": "something-else"}', 'not a planrun JSON report (no "format": "planrun-report")'),
    "future.json": (
        '{"format": "planrun-report", "version": 2}',
        "JSON report version 2 (this planrun merges version 1)",
    ),
    "bad.json": ("{not json", "not a planrun JSON report: "),
    "plans.json": (
        '{"format": "planrun-report", "version": 1, "plans": {}, "collection_errors": [], "warnings": [], "counts": {}}',
        "not a planrun JSON report ('plans' is not a list)",
    ),
}


@pytest.mark.parametrize("name", sorted(NOT_JUNIT))
def test_an_input_that_is_not_a_report_is_a_one_line_usage_error(suite: Planrunner, name: str) -> None:
    text, reason = NOT_JUNIT[name]
    (suite.path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    kind = "json" if name.endswith(".json") else "xml"
    if kind == "xml":
        suite.run("--junitxml", "good", "b.plan.yaml")
    else:
        suite.run("--json", "good", "b.plan.yaml")
    result = suite.run("merge-reports", "-o", "m.out", "good", name)
    assert result.ret == ExitCode.USAGE_ERROR, result
    lines = result.errstr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: merge-reports: {name}: ") and reason in lines[0], lines
    assert result.no_traceback()
    assert not (suite.path / "m.out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "m.xml", "missing.xml"], "missing.xml: cannot read: No such file or directory"),
        (["-o", "m.xml", "adir"], "adir: is a directory, not a report"),
        (["-o", "m.xml", "good.xml", "good.json"], "cannot merge JUnit XML (good.xml) with JSON (good.json)"),
        (["-o", "adir", "good.xml"], "-o adir: is a directory"),
        (["-o", "afile/m.xml", "good.xml"], "-o afile/m.xml: "),
        (["good.xml"], "the merged report's path is missing (-o OUT)"),
        (["-o", "m.xml"], "no reports to merge"),
        (["-o"], "-o needs a value"),
        (["--bogus", "-o", "m.xml", "good.xml"], "unrecognized argument: --bogus"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(suite: Planrunner, args: list[str], message: str) -> None:
    suite.run("--junitxml", "good.xml", "--json", "good.json", "b.plan.yaml")
    suite.makefile("afile", "keep")
    (suite.path / "adir").mkdir()
    result = suite.run("merge-reports", *args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    lines = result.errstr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: merge-reports: ") and message in lines[0], lines
    assert not (suite.path / "m.xml").exists() and list((suite.path / "adir").iterdir()) == []
    assert (suite.path / "afile").read_text() == "keep"


def test_help(planrunner: Planrunner) -> None:
    result = planrunner.run("merge-reports", "--help")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(["usage: planrun merge-reports -o OUT INPUT*"])


def test_collection_errors_merge_in_order(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makeplan("z/bad", "plan: [unclosed\n")
    planrunner.makeplan("a/bad", "plan: B\ntasks: []\n")
    planrunner.run("--junitxml", "whole.xml", "--json", "whole.json", ".")
    planrunner.run("--junitxml", "z.xml", "--json", "z.json", "z")
    planrunner.run("--junitxml", "a.xml", "--json", "a.json", "a")
    assert planrunner.run("merge-reports", "-o", "m.xml", "z.xml", "a.xml").ret == ExitCode.OK
    assert normal_xml(planrunner.path / "m.xml") == normal_xml(planrunner.path / "whole.xml")
    assert planrunner.run("merge-reports", "-o", "m.json", "z.json", "a.json").ret == ExitCode.OK
    got = json.loads((planrunner.path / "m.json").read_text())
    assert normal_json(got) == normal_json(json.loads((planrunner.path / "whole.json").read_text()))
    assert got["exitstatus"] == 2 and [e["file"] for e in got["collection_errors"]] == [
        "a/bad.plan.yaml",
        "z/bad.plan.yaml",
    ]


@pytest.mark.parametrize(
    "paths, order",
    [
        (["b.plan.yaml", "a/x.plan.yaml", "a.plan.yaml"], ["a.plan.yaml", "b.plan.yaml", "a/x.plan.yaml"]),
        (["a/b/c.plan.yaml", "a/z.plan.yaml", "a/b.plan.yaml"], ["a/b.plan.yaml", "a/z.plan.yaml", "a/b/c.plan.yaml"]),
        (["z/a.plan.yaml", "y.plan.yaml", "z/a/b.plan.yaml"], ["y.plan.yaml", "z/a.plan.yaml", "z/a/b.plan.yaml"]),
    ],
)
def test_plan_order_key_is_the_session_walk(planrunner: Planrunner, paths: list[str], order: list[str]) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    for p in paths:
        planrunner.makeplan(p, "plan: P\ntasks:\n  - id: t\n    name: T\n    criteria: [pyproject.toml exists]\n")
    planrunner.run("--junitxml", "r.xml", ".")
    walked = [s.get("name") for s in ET.parse(planrunner.path / "r.xml").getroot().iter("testsuite")]
    assert walked == order
    assert sorted(paths, key=plan_order_key) == order


NAMESPACED = """<?xml version="1.0" encoding="utf-8"?>
<testsuites>
 <testsuite name="plans/a.plan.yaml" tests="1" failures="0" errors="0" skipped="0" time="0.1"
   xmlns:x="urn:x" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="junit.xsd">
  <testcase classname="plans.a" name="t" x:note="hi" xml:lang="en" time="0.1"><x:extra>v</x:extra></testcase>
 </testsuite>
</testsuites>
"""


def test_namespaced_names_are_written_back_well_formed(suite: Planrunner) -> None:
    import xml.etree.ElementTree as ET

    suite.makefile("a.xml", NAMESPACED)
    suite.run("--junitxml", "b.xml", "b.plan.yaml")
    result = suite.run("merge-reports", "-o", "m.xml", "a.xml", "b.xml")
    assert result.ret == ExitCode.OK, result
    merged = ET.parse(suite.path / "m.xml").getroot()  # well formed
    original = ET.fromstring(NAMESPACED.encode())
    case = merged.find("./testsuite[@name='plans/a.plan.yaml']/testcase")
    assert case is not None
    assert case.get("{urn:x}note") == "hi" and case.get(f"{{{'http://www.w3.org/XML/1998/namespace'}}}lang") == "en"
    assert case.find("{urn:x}extra") is not None and case.find("{urn:x}extra").text == "v"  # type: ignore[union-attr]
    suite_el = merged.find("./testsuite[@name='plans/a.plan.yaml']")
    schema = "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation"
    assert suite_el is not None and suite_el.get(schema) == original[0].get(schema) == "junit.xsd"
