"""``planrun schema`` and the shipped plan.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.model import json_schema
from planrun.testing import Planrunner

ROOT = Path(__file__).resolve().parent.parent


def test_schema_command_prints_the_json_schema(planrunner: Planrunner) -> None:
    result = planrunner.run("schema")
    assert result.ret == ExitCode.OK
    schema = json.loads(result.outstr)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["required"] == ["plan", "tasks"]
    assert schema["additionalProperties"] is False
    task = schema["$defs"]["Task"]
    assert task["properties"]["id"]["pattern"] == "^[a-z0-9][a-z0-9_-]*$"
    assert set(task["required"]) == {"id", "name"}


def test_shipped_schema_is_current(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANRUN_DISABLE_PLUGIN_AUTOLOAD", "1")  # the shipped schema knows the built-ins only
    result = planrunner.run("schema")
    shipped = json.loads((ROOT / "plan.schema.json").read_text())
    assert shipped == json.loads(result.outstr), "plan.schema.json is stale: run `planrun schema > plan.schema.json`"


def test_schema_takes_no_arguments(planrunner: Planrunner) -> None:
    result = planrunner.run("schema", "extra")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: planrun schema takes no arguments, got extra"])


def _forms(schema: dict) -> dict[str, dict]:
    """The criterion's mapping forms, by check kind."""
    return {f["required"][0]: f for f in schema["$defs"]["Criterion"]["anyOf"] if "required" in f}


def test_schema_lists_every_builtin_check_kind_with_its_arguments(planrunner: Planrunner) -> None:
    schema = json.loads(planrunner.run("schema").outstr)
    forms = _forms(schema)
    assert {"command", "data", "file_absent", "file_contains", "file_exists", "http", "manual"} <= set(forms)
    command = forms["command"]["properties"]
    assert set(command) == {"command", "name", "timeout", "retry_for", "skip"}
    assert forms["command"]["additionalProperties"] is False
    args = command["command"]["anyOf"][0]
    assert "run" in args["properties"], args
    criteria = schema["$defs"]["Task"]["properties"]["criteria"]["items"]
    assert criteria == {"$ref": "#/$defs/Criterion"}
    assert schema["$defs"]["Criterion"]["anyOf"][0] == {"type": "string"}
    fallback = schema["$defs"]["Criterion"]["anyOf"][-1]
    assert {"required": ["command"]} in fallback["not"]["anyOf"], "a known kind's mapping must match its own form"


def test_schema_adds_check_kinds_of_a_p_plugin_and_the_rootdir_conftest(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    planrunner.makefile(
        "shoutplug.py",
        """
        from planrun import ArgsModel, CheckKind, hookimpl

        class Args(ArgsModel):
            word: str
            times: int = 1

        @hookimpl
        def planrun_register_checks():
            return [CheckKind("shout", Args, lambda a, c: None)]
        """,
    )
    planrunner.makeconftest(
        """
        from planrun import ArgsModel, CheckKind, hookimpl

        class Args(ArgsModel):
            n: int

        @hookimpl
        def planrun_register_checks():
            return [CheckKind("even", Args, lambda a, c: None)]
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(planrunner.path))
    monkeypatch.setenv("PLANRUN_PLUGINS", "shoutplug")
    result = planrunner.runsubprocess("schema")
    assert result.ret == ExitCode.OK, result.errstr
    forms = _forms(json.loads(result.outstr))
    shout = forms["shout"]["properties"]["shout"]["anyOf"][0]
    assert shout["properties"]["word"]["type"] == "string"
    assert shout["required"] == ["word"]
    assert forms["even"]["properties"]["even"]["anyOf"][0]["properties"]["n"]["type"] == "integer"
    assert "file_exists" in forms


def test_schema_with_a_broken_plugin_is_a_usage_error(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANRUN_PLUGINS", "no_such_planrun_plugin")
    result = planrunner.run("schema")
    assert result.ret == ExitCode.USAGE_ERROR
    assert result.outstr == ""
    result.stderr.fnmatch_lines(["ERROR: *no_such_planrun_plugin*"])
    assert len(result.errstr.splitlines()) == 1


def test_json_schema_without_check_kinds_keeps_the_generic_criterion() -> None:
    schema = json_schema()
    assert "Criterion" not in schema["$defs"]
    items = schema["$defs"]["Task"]["properties"]["criteria"]["items"]
    assert items == {"anyOf": [{"type": "string"}, {"type": "object", "minProperties": 1}]}


@pytest.mark.parametrize("plan", sorted((ROOT / "plans").glob("*.plan.yaml")), ids=lambda p: p.name)
def test_example_plan_starts_with_the_schema_modeline(plan: Path) -> None:
    first = plan.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../plan.schema.json", f"{plan.name}: {first!r}"


def test_there_are_example_plans() -> None:
    assert len(list((ROOT / "plans").glob("*.plan.yaml"))) >= 3
