"""The scripted OpenAI-compatible server of planrun.testing, driven by the real ``openai`` client."""

from __future__ import annotations

import json

import openai
import pytest

import planrun.testing
from planrun.testing import ScriptedOpenAI, delay, error, text, tool_turn


def client(server: ScriptedOpenAI, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0, **kw)  # type: ignore[arg-type]


def ask(c: openai.OpenAI, content: str = "hi") -> object:
    return c.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])


def test_names_are_exported_lazily() -> None:
    for name in ("ScriptedOpenAI", "tool_turn", "text", "error", "delay", "Reply", "RecordedRequest"):
        assert name in planrun.testing.__all__
        assert getattr(planrun.testing, name) is not None
    assert "openai_server" in planrun.testing.__all__
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        planrun.testing.nothing  # noqa: B018


def test_plays_tool_calls_and_text_in_order_and_records_requests(openai_server: ScriptedOpenAI) -> None:
    openai_server.add(
        tool_turn(("write_file", {"path": "a.txt", "content": "x"}), ("finish", {"summary": "s"}), usage=(7, 3)),
        text("done", usage=(11, 2)),
    )
    c = client(openai_server)
    first = c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "one"}], tools=[], extra_headers={"X-Probe": "p"}
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [  # type: ignore[union-attr]
        ("write_file", {"path": "a.txt", "content": "x"}),
        ("finish", {"summary": "s"}),
    ]
    assert first.usage is not None and (first.usage.prompt_tokens, first.usage.completion_tokens) == (7, 3)
    second = ask(c, "two")
    assert second.choices[0].message.content == "done"  # type: ignore[attr-defined]
    assert [r.messages[0]["content"] for r in openai_server.requests] == ["one", "two"]
    assert openai_server.requests[0].header("authorization") == "Bearer sk-test"
    assert openai_server.requests[0].header("x-probe") == "p"
    assert openai_server.requests[0].path == "/v1/chat/completions"


def test_malformed_arguments_and_finish_reasons_pass_through(openai_server: ScriptedOpenAI) -> None:
    openai_server.add(tool_turn(("write_file", '{"path": "a'), ("nope", {})), text("cut", finish_reason="length"))
    c = client(openai_server)
    calls = ask(c).choices[0].message.tool_calls  # type: ignore[attr-defined]
    assert calls[0].function.arguments == '{"path": "a'
    assert calls[1].function.name == "nope"
    assert ask(c).choices[0].finish_reason == "length"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (401, openai.AuthenticationError),
    ],
)
def test_injected_status_errors(openai_server: ScriptedOpenAI, status: int, exc: type[Exception]) -> None:
    openai_server.add(error(status, "injected", retry_after=2))
    with pytest.raises(exc) as info:
        ask(client(openai_server))
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.response.headers["retry-after"] == "2"  # type: ignore[attr-defined]
    assert "injected" in str(info.value)


def test_a_delay_past_the_client_timeout_times_out_and_the_server_stays_usable(openai_server: ScriptedOpenAI) -> None:
    openai_server.add(delay(30), text("after"))
    with pytest.raises(openai.APITimeoutError):
        ask(client(openai_server, timeout=0.3))
    assert ask(client(openai_server)).choices[0].message.content == "after"  # type: ignore[attr-defined]
    assert len(openai_server.requests) == 2


def test_close_does_not_wait_for_a_pending_delay() -> None:
    server = ScriptedOpenAI([delay(3600)]).start()  # far past pytest-timeout: waiting for it would fail the test
    c = client(server, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        ask(c)
    thread = server._thread
    server.close()
    assert thread is not None and not thread.is_alive()
    with pytest.raises(openai.APIConnectionError):
        ask(c)  # nothing serves any more
    c.close()


def test_an_exhausted_script_is_a_loud_400(openai_server: ScriptedOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="script is exhausted"):
        ask(client(openai_server))
    assert len(openai_server.requests) == 1


def test_both_paths_and_models(openai_server: ScriptedOpenAI) -> None:
    openai_server.add(text("root"))
    root = openai.OpenAI(base_url=openai_server.url[: -len("/v1")], api_key="k", max_retries=0)
    assert ask(root).choices[0].message.content == "root"  # type: ignore[attr-defined]
    assert openai_server.requests[0].path == "/chat/completions"
    assert [m.id for m in client(openai_server).models.list()] == ["scripted"]
