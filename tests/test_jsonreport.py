"""``--json PATH``: the documented, versioned shape; every key documented; hostile strings round-trip exactly."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from planrun import ExecutionContext, ExecutionResult, Executor, ExecutorKind, ExitCode, ItemReport, Task, hookimpl
from planrun.testing import Planrunner
from tests.test_junitxml import SLOW, ScriptedPlugin, _wait_for, write_mix

DOC = Path(__file__).resolve().parent.parent / "docs" / "json-report.md"

REGRESS = """
plan: Regress
id: regress
tasks:
  - id: one
    name: Make a.txt
    run: echo a > a.txt
    criteria: [a.txt exists, pre.txt exists]
  - id: two
    name: Remove a.txt
    depends_on: [one]
    run: rm a.txt && echo b > b.txt
    criteria: [b.txt exists]
"""


class Recorder:
    """Keeps the reports as the session logged them, to compare with the file."""

    def __init__(self, record: bool = False) -> None:
        self.reports: list[ItemReport] = []
        self.record = record

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        self.reports.append(report)
        if self.record:  # what the evidence-record helper's checks attach (CriterionResult.record)
            for c in report.criteria:
                c.record = {"checked": c.kind, "sha256": "0" * 64}  # type: ignore[attr-defined]


def run_json(planrunner: Planrunner, *args: str, plugins: list[Any] | None = None) -> tuple[Any, dict[str, Any]]:
    result = planrunner.run("--json", "out/r.json", *args, plugins=plugins)
    return result, json.loads((planrunner.path / "out" / "r.json").read_text(encoding="ascii"))


def test_the_shape(planrunner: Planrunner) -> None:
    write_mix(planrunner)
    planrunner.makefile("pre.txt", "")
    planrunner.makeplan("regress", REGRESS)
    planrunner.makefile("pyproject.toml", "[tool.planrun]\nbogus_key = 1\n")
    result, doc = run_json(planrunner, "mix.plan.yaml", "regress.plan.yaml", plugins=[ScriptedPlugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines(["*generated json file: *out*r.json*"])
    assert (doc["format"], doc["version"], doc["exitstatus"]) == ("planrun-report", 1, 1)
    assert doc["rootdir"] == str(planrunner.path)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", doc["started"])
    assert isinstance(doc["duration"], float) and doc["duration"] >= 0
    assert doc["counts"] == {
        "passed": 2,
        "failed": 3,
        "error": 1,
        "blocked": 1,
        "skipped": 1,
        "interrupted": 0,
        "deselected": 0,
        "collection_errors": 0,
    }
    assert doc["collection_errors"] == []
    assert any("bogus_key" in w for w in doc["warnings"])
    assert any("vacuous criterion 'pre.txt exists'" in w for w in doc["warnings"])
    mix, regress = doc["plans"]
    assert (mix["path"], mix["id"], mix["title"]) == ("mix.plan.yaml", "mix", "Mix")
    assert (regress["path"], regress["id"], regress["title"]) == ("regress.plan.yaml", "regress", "Regress")
    items = {i["id"]: i for i in mix["items"]}
    assert [i["outcome"] for i in mix["items"]] == ["passed", "failed", "blocked", "error", "skipped", "failed"]
    ok = items["ok"]
    assert ok["nodeid"] == "mix.plan.yaml::ok" and ok["kind"] == "task" and ok["name"] == "passes"
    assert ok["location"] == {"file": "mix.plan.yaml", "line": 4, "col": 5}
    assert (ok["attempts"], ok["tokens_in"], ok["tokens_out"], ok["cost"], ok["executor"]) == (
        1,
        120,
        30,
        0.25,
        "scripted",
    )
    assert items["after"]["executor"] is None and items["after"]["message"] == "dependency wrong failed"
    assert items["blocked"]["message"] == "blocked: needs an API key"
    (crit,) = items["wrong"]["criteria"]
    assert crit["name"] == "wrong.txt exists" and crit["kind"] == "file_exists" and crit["outcome"] == "failed"
    assert crit["location"] == {"file": "mix.plan.yaml", "line": 13, "col": 9}
    assert crit["message"] == "not found: wrong.txt" and crit["vacuous"] is False and crit["regression_of"] is None
    assert "record" not in crit  # only when a check kept one
    one, two = regress["items"]
    assert [c["vacuous"] for c in one["criteria"]] == [False, True]
    assert two["outcome"] == "failed"
    regression = two["criteria"][-1]
    assert regression["regression_of"] == "one" and regression["outcome"] == "failed"


def _doc_paths() -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", DOC.read_text(), re.M))


def _emitted(value: Any, prefix: str = "") -> set[str]:
    """Every key path in ``value``: ``a.b``, ``a[].c`` (the ``record`` object is opaque, as documented)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            if key != "record":
                found |= _emitted(sub, path)
    elif isinstance(value, list):
        for sub in value:
            found |= _emitted(sub, prefix + "[]")
    return found


def test_every_documented_key_appears_and_every_emitted_key_is_documented(planrunner: Planrunner) -> None:
    write_mix(planrunner)
    planrunner.makefile("pre.txt", "")
    planrunner.makeplan("regress", REGRESS)
    _, full = run_json(planrunner, "mix.plan.yaml", "regress.plan.yaml", plugins=[ScriptedPlugin(), Recorder(True)])
    planrunner.makeplan("broken", "plan: [unclosed\n")
    _, errors = run_json(planrunner, "broken.plan.yaml")
    emitted = _emitted(full) | _emitted(errors)
    documented = _doc_paths()
    assert emitted - documented == set(), "emitted but not documented in docs/json-report.md"
    assert documented - emitted == set(), "documented but never emitted"


def test_the_doc_states_the_version_rule() -> None:
    text = " ".join(DOC.read_text().split())
    assert '"format": "planrun-report", "version": 1,' in text
    assert "keys are only ever added" in text


def test_collection_errors(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "good", "plan: G\ntasks:\n  - id: t\n    name: T\n    run: touch ran\n    criteria: [ran exists]\n"
    )
    planrunner.makeplan("bad", "plan: B\ntasks:\n  - id: t\n    name: T\n    criteria: [a exists]\n    bogus: 1\n")
    result, doc = run_json(planrunner, ".")
    assert result.ret == ExitCode.INTERRUPTED, result
    assert doc["exitstatus"] == 2 and doc["counts"]["collection_errors"] == 1
    (err,) = doc["collection_errors"]
    assert (err["file"], err["line"], err["col"]) == ("bad.plan.yaml", 6, 5)
    assert "bogus" in err["message"]
    assert [p["items"] for p in doc["plans"]] == [[]]  # collected, nothing ran
    assert not (planrunner.path / "ran").exists()


@pytest.mark.parametrize(
    "text",
    [
        "".join(map(chr, range(32))) + "\x7f",
        "lone \ud800 and \udcff surrogates",
        '\ufffe\uffff ]]> <![CDATA[ & \\u0000 "quoted" \\',
        "astral \U0001f600 bidi \u202e tail",
    ],
)
def test_hostile_strings_round_trip_exactly(planrunner: Planrunner, text: str) -> None:
    class Odd(Executor):
        name = "odd"

        def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
            return ExecutionResult(status="failed", message=text, evidence=text, summary=text)

    class Plugin:
        @hookimpl
        def planrun_register_executors(self) -> list[ExecutorKind]:
            return [ExecutorKind("odd", lambda config: Odd())]

    planrunner.makeplan(
        "p", "plan: P\nexecutor: odd\ntasks:\n  - id: t\n    name: T\n    description: d\n    criteria: [x exists]\n"
    )
    result, doc = run_json(planrunner, "p.plan.yaml", plugins=[Plugin()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    (item,) = doc["plans"][0]["items"]
    assert item["message"] == text and item["evidence"] == text and item["summary"] == text
    (planrunner.path / "out" / "r.json").read_bytes().decode("ascii")  # ASCII only: nothing unencodable


def test_command_output_round_trips_exactly(planrunner: Planrunner) -> None:
    write_mix(planrunner)
    recorder = Recorder()
    result, doc = run_json(planrunner, "mix.plan.yaml", plugins=[ScriptedPlugin(), recorder])
    assert result.ret == ExitCode.TESTS_FAILED, result
    (kept,) = [r for r in recorder.reports if r.item_id == "verification"]
    (item,) = [i for i in doc["plans"][0]["items"] if i["id"] == "verification"]
    assert item["criteria"][0]["evidence"] == kept.criteria[0].evidence
    assert "\x1b[31mred" in kept.criteria[0].evidence and "]]>" in kept.criteria[0].evidence


@pytest.mark.parametrize(
    "where, reason",
    [("adir", "is a directory"), ("afile/r.json", "afile is not a directory"), ("", "the path is empty")],
)
def test_bad_paths_are_usage_errors_before_anything_runs(planrunner: Planrunner, where: str, reason: str) -> None:
    planrunner.makefile("afile", "keep\n")
    (planrunner.path / "adir").mkdir()
    planrunner.makeplan(
        "p", "plan: P\ntasks:\n  - id: t\n    name: T\n    run: touch ran\n    criteria: [ran exists]\n"
    )
    result = planrunner.run(f"--json={where}", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    lines = result.errstr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: --json") and lines[0].endswith(reason), lines
    assert result.no_traceback()
    assert not (planrunner.path / "ran").exists()
    assert (planrunner.path / "afile").read_text() == "keep\n" and list((planrunner.path / "adir").iterdir()) == []


def test_the_report_is_complete_after_an_interrupted_run(planrunner: Planrunner) -> None:
    planrunner.makeplan("slow", SLOW)
    proc = planrunner.popen("--json", "r.json", "--junitxml", "r.xml", "slow.plan.yaml")
    try:
        _wait_for(planrunner.path / "step.pid")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    doc = json.loads((planrunner.path / "r.json").read_text())
    assert doc["exitstatus"] == 2
    assert [(i["id"], i["outcome"]) for i in doc["plans"][0]["items"]] == [("quick", "passed"), ("hang", "interrupted")]
    assert doc["counts"]["interrupted"] == 1 and doc["counts"]["passed"] == 1
