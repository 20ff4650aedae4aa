"""What steps, command criteria and test runs see of planrun's environment: an allowlist (and ``passenv``), no secrets."""

from __future__ import annotations

import json

import pytest

from planrun import ExitCode
from planrun.testing import Planrunner

SECRETS = {
    "OPENAI_API_KEY": "sk-canary-openai-0001",
    "GITHUB_TOKEN": "ghp_canary0002",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-0003",
    "MY_SERVICE_PASSWORD": "canary-pw-0004",
}

PLAN = """
plan: env
tasks:
  - id: step
    name: A step prints its environment
    run: |
      env
      env > seen-by-step.txt
      false
    criteria: [{file_exists: nothing}]
  - id: command
    name: A command criterion prints its environment
    criteria:
      - command: {run: "env; env > seen-by-command.txt; exit 1"}
  - id: explicit
    name: What a criterion sets itself it gets
    criteria:
      - command: {run: 'test "$EXTRA" = given && test -n "$PATH" && test -n "$HOME"', env: {EXTRA: given}}
"""


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_PAPER", "C")
    monkeypatch.setenv("OTHER_SETTING", "other-0005")


@pytest.mark.usefixtures("secrets")
def test_no_secret_reaches_a_step_a_command_or_any_report(planrunner: Planrunner) -> None:
    planrunner.makeplan("env", PLAN)
    result = planrunner.runsubprocess("-v", "--json", "r.json", "--junitxml", "r.xml", "--evidence", "ev.json", ".")
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.assert_outcomes(failed=2, passed=1)
    for name in ("seen-by-step.txt", "seen-by-command.txt"):
        seen = dict(line.split("=", 1) for line in (planrunner.path / name).read_text().splitlines() if "=" in line)
        assert not set(SECRETS) & set(seen), seen
        assert "OTHER_SETTING" not in seen  # not on the allowlist
        assert {"PATH", "HOME", "LC_PAPER", "PLANRUN_RUNNING"} <= set(seen), seen
    shown = result.outstr + result.errstr
    shown += "".join((planrunner.path / f).read_text() for f in ("r.json", "r.xml", "ev.json"))
    for path in (planrunner.path / ".planrun").rglob("*"):
        if path.is_file():
            shown += path.read_bytes().decode("utf-8", "replace")
    assert "PATH=" in result.outstr  # the output was shown...
    for value in SECRETS.values():
        assert value not in shown  # ...with no secret in it


@pytest.mark.usefixtures("secrets")
def test_passenv_adds_names_and_patterns(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", '[tool.planrun]\npassenv = ["MY_*", "OTHER_SETTING", "NOT_SET"]\n')
    planrunner.makeplan(
        "env",
        """
        plan: env
        tasks:
          - id: t
            name: T
            criteria:
              - command: 'test "$MY_SERVICE_PASSWORD" = canary-pw-0004 && test "$OTHER_SETTING" = other-0005'
              - command: 'test -z "$OPENAI_API_KEY" && test -z "${NOT_SET+set}"'
        """,
    )
    result = planrunner.runsubprocess("env.plan.yaml")
    assert result.ret == ExitCode.OK, result


@pytest.mark.parametrize("value", ['"MY_*"', '["A=B"]', '[""]', "[1]", "true"])
def test_a_bad_passenv_is_a_usage_error(planrunner: Planrunner, value: str) -> None:
    planrunner.makefile("pyproject.toml", f"[tool.planrun]\npassenv = {value}\n")
    planrunner.makeplan("env", "plan: env\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [ran exists]}\n")
    result = planrunner.run("env.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert "[tool.planrun] passenv must be a list of variable names or patterns" in result.errstr, result
    assert not (planrunner.path / "ran").exists()


@pytest.mark.usefixtures("secrets")
def test_a_test_run_gets_the_allowlist_too(planrunner: Planrunner) -> None:
    planrunner.makefile(
        "test_env.py",
        "import os\n\ndef test_env():\n    assert 'OPENAI_API_KEY' not in os.environ\n    assert os.environ['PATH']\n",
    )
    run = "python3 -m pytest -q -p no:cacheprovider test_env.py --junitxml={junit}"
    planrunner.makeplan("env", f'plan: env\ntasks:\n  - {{id: t, name: T, criteria: [{{tests: {{run: "{run}"}}}}]}}\n')
    result = planrunner.runsubprocess("--json", "r.json", "env.plan.yaml")
    assert result.ret == ExitCode.OK, (result, json.loads((planrunner.path / "r.json").read_text()))
