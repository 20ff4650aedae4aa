"""Chat Completions for planrun's LLM features: the ``openai`` executor, the planner and ``llm_judge``.

One client setup for all of them: the model, endpoint and API key from the
command line, ``[tool.planrun]`` and the environment (:class:`LLMSettings`);
planrun's own request timeout and bounded retries with the ``Retry-After``
cap (:class:`ChatModel`); answers as SDK-independent :class:`Turn` objects;
secrets redacted from anything shown (:class:`Redactor`). ``openai`` is
imported only when a :class:`ChatModel` is made.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun.errors import UsageError
from planrun.reports import printable
from planrun.types import ExecutorError, StepTimeout

if TYPE_CHECKING:
    from planrun.config import Config

DEFAULT_REQUEST_TIMEOUT = 60.0
#: Retries of one request after a 408/409/429/5xx, a timeout or a connection failure.
RETRIES = 3
#: First backoff in seconds (doubled each retry, capped at ``BACKOFF_CAP``) when the server gives no Retry-After.
BACKOFF = 0.25
BACKOFF_CAP = 8.0
#: The longest ``Retry-After`` honoured, in seconds.
RETRY_AFTER_CAP = 30.0
STOP_UNREACHABLE = "stopping: the model endpoint is unreachable"
STOP_REFUSED = "stopping: the model endpoint refused the API key"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` from a model with every lone surrogate made U+FFFD: what can be sent back, written and printed.

    JSON lets a reply carry ``"\\ud800"``; Python decodes it into a string that
    no UTF-8 encoder takes (the SDK's next request, a transcript, the state).
    """
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def loads(text: str) -> Any:
    """A tool call's arguments (JSON) with every string :func:`clean`: an escaped ``\\ud800`` is one too."""
    return _clean_deep(json.loads(text))


def _clean_deep(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_clean_deep(v) for v in value]
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: _clean_deep(v) for k, v in value.items()}
    return value


@dataclass
class Call:
    id: str
    name: str
    arguments: str


@dataclass
class Turn:
    """One model answer, independent of the SDK (so a transcript can stand in for it)."""

    content: str
    calls: list[Call]
    finish_reason: str
    tokens_in: int
    tokens_out: int

    def record(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.calls],
            "finish_reason": self.finish_reason,
            "usage": {"prompt_tokens": self.tokens_in, "completion_tokens": self.tokens_out},
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Turn:
        usage = data.get("usage") or {}
        return cls(
            clean(str(data.get("content") or "")),
            [
                Call(clean(str(c["id"])), clean(str(c["name"])), clean(str(c["arguments"])))
                for c in data.get("tool_calls") or []
            ],
            clean(str(data.get("finish_reason") or "stop")),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
        )


class Redactor:
    """Replaces secrets (the API key, values of ``*KEY*``/``*TOKEN*``/``*SECRET*`` variables) in text."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    @classmethod
    def from_environ(cls, *extra: str) -> Redactor:
        found = [v for k, v in os.environ.items() if _SECRET_NAME.search(k)]
        return cls([*extra, *found])

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        return value


def one_line(text: str, width: int = 300) -> str:
    line = " ".join(str(text).split())
    return printable(line if len(line) <= width else line[: width - 3] + "...")


def error_text(exc: Any) -> str:
    """The server's own message from an SDK status error (OpenAI-style ``{"error": {"message": ...}}``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", "") or exc)


def retry_after(exc: Any) -> float | None:
    """The server's ``Retry-After`` (``retry-after-ms`` too), in seconds, capped; ``None`` when absent or unreadable."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            value = float(ms) / 1000
        else:
            raw = headers.get("retry-after")
            if raw is None:
                return None
            try:
                value = float(raw)
            except ValueError:
                from email.utils import parsedate_to_datetime  # imports urllib: only for a dated Retry-After

                value = parsedate_to_datetime(raw).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    return min(max(value, 0.0), RETRY_AFTER_CAP)


class LLMSettings:
    """The model, endpoint, key and request timeout, from the command line, ``[tool.planrun]`` and the environment.

    Options are read with ``getattr`` (``--model``, ``--base-url``,
    ``--request-timeout``: the ``openai`` executor's plugin adds them), so a
    run without that plugin still reads the config file. A malformed setting
    is a :class:`planrun.UsageError`.
    """

    def __init__(self, config: Config, *, model: str | None = None) -> None:
        option, ini = config.option, config.inicfg
        self.rootdir = Path(config.rootdir)
        self.model = model or getattr(option, "model", None) or ini.get("model")
        if self.model is not None and not isinstance(self.model, str):
            raise UsageError(f"[tool.planrun] model must be a string, got {self.model!r}")
        self.base_url = (
            getattr(option, "base_url", None) or ini.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
        )
        if self.base_url is not None and not isinstance(self.base_url, str):
            raise UsageError(f"[tool.planrun] base_url must be a string, got {self.base_url!r}")
        key_env = ini.get("api_key_env", "OPENAI_API_KEY")
        if not isinstance(key_env, str) or not key_env:
            raise UsageError(f"[tool.planrun] api_key_env must name an environment variable, got {key_env!r}")
        self.key_env = key_env
        self.key_configured = "api_key_env" in ini
        self.api_key = os.environ.get(key_env) or ""
        self.request_timeout = float(
            setting_number(getattr(option, "request_timeout", None), ini, "request_timeout", DEFAULT_REQUEST_TIMEOUT)  # type: ignore[arg-type]
        )
        self.price = price_of(ini.get("prices"), self.model)

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        """The price of that many tokens, or ``None`` when ``[tool.planrun.prices]`` has none for the model."""
        if self.price is None:
            return None
        return (tokens_in * self.price[0] + tokens_out * self.price[1]) / 1_000_000


def setting_number(value: Any, ini: dict[str, Any], key: str, default: float | None, *, integer: bool = False) -> Any:
    if value is not None:
        return value
    value = ini.get(key, default)
    if value is None:
        return None
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        kind = "a positive whole number" if integer else "a positive number"
        raise UsageError(f"[tool.planrun] {key} must be {kind}, got {value!r}")
    return value


def spent(
    turns: int, tokens: int, cost: float | None, max_turns: int, max_tokens: int, max_cost: float | None
) -> tuple[str, str, str] | None:
    """The first budget a model conversation has reached: ``(what was spent, the limit's name, the limit)``.

    ``("12 turns", "turns", "12")``, ``("5000 tokens", "tokens", "4000")``,
    ``("cost 0.0123", "cost", "0.01")``; ``None`` while within all three (no
    known price: no cost limit). Each command words it for its own options.
    """
    if turns >= max_turns:
        return f"{turns} turns", "turns", str(max_turns)
    if tokens >= max_tokens:
        return f"{tokens} tokens", "tokens", str(max_tokens)
    if max_cost is not None and cost is not None and cost >= max_cost:
        return f"cost {cost:.4f}", "cost", f"{max_cost:g}"
    return None


def price_of(prices: Any, model: str | None) -> tuple[float, float] | None:
    """(input, output) in currency per million tokens for ``model`` from ``[tool.planrun.prices]``; None if unknown."""
    if prices is None:
        return None
    if not isinstance(prices, dict):
        raise UsageError(f"[tool.planrun] prices must be a table of models, got {prices!r}")
    entry = prices.get(model) if model else None
    if entry is None:
        return None
    try:
        pair = (float(entry["input"]), float(entry["output"]))
    except (TypeError, KeyError, ValueError):
        raise UsageError(
            f"[tool.planrun.prices] {model!r} must be {{input = N, output = N}} (per million tokens), got {entry!r}"
        ) from None
    if not all(math.isfinite(p) and p >= 0 for p in pair):
        raise UsageError(f"[tool.planrun.prices] {model!r}: prices must be finite and not negative, got {entry!r}")
    return pair


class ChatModel:
    """Chat Completions through the ``openai`` SDK, with planrun's own timeout and retries."""

    def __init__(self, settings: LLMSettings, redact: Redactor) -> None:
        import openai  # only here: a request is about to be sent

        self.openai = openai
        self.settings = settings
        self.redact = redact
        self.where = settings.base_url or "https://api.openai.com/v1"
        self.client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "unused",  # local servers need some key; a real endpoint answers 401
            timeout=settings.request_timeout,
            max_retries=0,  # retried here, with a bound and the Retry-After cap
        )

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        deadline: float,
        *,
        tool_choice: str | None = None,
    ) -> Turn:
        """One request (retried on 408/409/429/5xx, timeouts and connection failures, within ``deadline``).

        :param tool_choice: a tool's name to force that call (``llm_judge``'s
            verdict), ``"required"`` for any tool, or ``None`` for the model's choice.
        :raises planrun.ExecutorError: the endpoint refused, kept failing or answered unusably.
        :raises planrun.StepTimeout: ``deadline`` (a ``time.monotonic()`` value) passed.
        """
        openai = self.openai
        extra: dict[str, Any] = {}
        if tool_choice in ("required", "auto", "none"):
            extra["tool_choice"] = tool_choice
        elif tool_choice is not None:
            extra["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
        failures: list[str] = []
        last_unreachable = False
        for retry in range(RETRIES + 1):
            timeout = min(self.settings.request_timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise StepTimeout("the task's time ran out waiting for the model")
            wait: float | None = None
            try:
                response = self.client.chat.completions.create(
                    model=self.settings.model,  # type: ignore[arg-type]
                    messages=messages,  # type: ignore[arg-type]
                    tools=tools,  # type: ignore[arg-type]
                    timeout=timeout,
                    **extra,
                )
                return self._turn(response)
            except openai.APITimeoutError:
                failures.append(f"timed out after {timeout:g}s")
                last_unreachable = False
            except openai.APIConnectionError as exc:
                failures.append(f"cannot connect ({one_line(str(exc.__cause__ or exc), 120)})")
                last_unreachable = True
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                hint = "" if self.settings.api_key else f"; {self.settings.key_env} is not set"
                raise ExecutorError(
                    self.redact(
                        f"the model endpoint {self.where} refused the API key ({exc.status_code}):"
                        f" {one_line(error_text(exc))}{hint}"
                    ),
                    stop=STOP_REFUSED,
                ) from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                text = one_line(error_text(exc))
                if status not in (408, 409, 429) and status < 500:
                    raise ExecutorError(
                        self.redact(f"the model endpoint {self.where} answered {status}: {text}")
                    ) from None
                failures.append(f"{status} {text}")
                wait = retry_after(exc)
                last_unreachable = False
            except openai.OpenAIError as exc:
                raise ExecutorError(
                    self.redact(f"the model endpoint {self.where} gave an unusable answer: {one_line(str(exc))}")
                ) from None
            if retry == RETRIES:
                break
            if wait is None:
                wait = min(BACKOFF * 2**retry, BACKOFF_CAP)
            time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
        summary = self.redact(f"{len(failures)} requests to {self.where} failed (last: {failures[-1]})")
        if last_unreachable:
            raise ExecutorError(f"the model endpoint is unreachable: {summary}", stop=STOP_UNREACHABLE)
        raise ExecutorError(f"the model endpoint keeps failing: {summary}")

    def close(self) -> None:
        self.client.close()

    def _turn(self, response: Any) -> Turn:
        if not response.choices:
            raise ExecutorError(f"the model endpoint {self.where} answered without a choice")
        choice = response.choices[0]
        message = choice.message
        calls = []
        for n, tc in enumerate(message.tool_calls or [], 1):
            function = getattr(tc, "function", None)
            if function is None:
                continue  # a custom tool call: none was offered
            calls.append(Call(clean(tc.id or f"call_{n}"), clean(function.name or ""), clean(function.arguments or "")))
        usage = response.usage
        return Turn(
            clean(message.content or ""),
            calls,
            clean(choice.finish_reason or "stop"),
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        )
