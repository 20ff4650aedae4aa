"""planrun.llm: the shared model setup, against the scripted server with the real openai client."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from planrun import ExecutorError, UsageError, llm
from planrun.cli import build_config
from planrun.testing_openai import ScriptedOpenAI, error, tool_turn


def _model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: ScriptedOpenAI, *args: str) -> llm.ChatModel:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123456")
    config = build_config(["--model", "judge-1", "--base-url", server.url, *args])
    settings = llm.LLMSettings(config)
    return llm.ChatModel(settings, llm.Redactor.from_environ(settings.api_key))


TOOLS = [{"type": "function", "function": {"name": "verdict", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("verdict", {"type": "function", "function": {"name": "verdict"}}),
        ("required", "required"),
        (None, None),
    ],
)
def test_tool_choice_reaches_the_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_server: ScriptedOpenAI, choice: str | None, sent: object
) -> None:
    openai_server.add(tool_turn(("verdict", {"pass": True}), usage=(7, 3)))
    model = _model(tmp_path, monkeypatch, openai_server)
    try:
        turn = model.complete([{"role": "user", "content": "x"}], TOOLS, time.monotonic() + 30, tool_choice=choice)
    finally:
        model.close()
    body = openai_server.requests[0].body
    assert body.get("tool_choice") == sent
    assert body["model"] == "judge-1"
    assert [c.name for c in turn.calls] == ["verdict"] and (turn.tokens_in, turn.tokens_out) == (7, 3)


def test_a_refusal_is_an_error_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_server: ScriptedOpenAI
) -> None:
    openai_server.add(error(401, "bad key sk-test-secret-123456"))
    model = _model(tmp_path, monkeypatch, openai_server)
    with pytest.raises(ExecutorError) as info:
        model.complete([{"role": "user", "content": "x"}], TOOLS, time.monotonic() + 30)
    model.close()
    assert "refused the API key (401)" in str(info.value)
    assert "sk-test-secret-123456" not in str(info.value) and "[redacted]" in str(info.value)


def test_settings_read_the_config_file_without_the_executor_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.planrun]\nmodel = "m-from-ini"\nrequest_timeout = 5\n[tool.planrun.prices]\nm-from-ini = {input = 2, output = 4}\n'
    )
    monkeypatch.chdir(tmp_path)
    settings = llm.LLMSettings(build_config(["-p", "no:openai_executor"]))
    assert settings.model == "m-from-ini" and settings.request_timeout == 5.0
    assert settings.cost(1_000_000, 500_000) == pytest.approx(4.0)
    assert llm.LLMSettings(build_config(["-p", "no:openai_executor"]), model="other").cost(1, 1) is None


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("model = 3", "model must be a string"),
        ("request_timeout = -1", "request_timeout must be a positive number"),
        ('api_key_env = ""', "api_key_env must name an environment variable"),
    ],
)
def test_bad_settings_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ini: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.planrun]\n{ini}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=message):
        llm.LLMSettings(build_config([]))
