"""``planrun schema`` and the shipped plan.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

from planrun import ExitCode
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


def test_shipped_schema_is_current(planrunner: Planrunner) -> None:
    result = planrunner.run("schema")
    shipped = json.loads((ROOT / "plan.schema.json").read_text())
    assert shipped == json.loads(result.outstr), "plan.schema.json is stale: run `planrun schema > plan.schema.json`"


def test_schema_takes_no_arguments(planrunner: Planrunner) -> None:
    result = planrunner.run("schema", "extra")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: planrun schema takes no arguments, got extra"])
