"""The ``openai`` executor: an execution agent over any OpenAI-compatible Chat Completions endpoint.

The model gets the role prompt and one task's context (:mod:`planrun.agentprompt`),
and works through tools (:mod:`planrun.agenttools`) until it calls ``finish``
or ``report_blocked``. Only the criteria decide the outcome. ``openai`` is
imported only when this executor sends a request.

Faults end the task as an error with one line: budgets (turns, tokens, cost),
the same failing call three times, a cut-off or filtered answer, an endpoint
that keeps failing. An unreachable endpoint or a refused key also stops the run.
Every attempt is recorded under ``.planrun/transcripts/`` (secrets redacted);
``--replay`` answers from that record instead of the network.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import (
    ExecutionContext,
    ExecutionResult,
    Executor,
    ExecutorError,
    ExecutorKind,
    StepTimeout,
    UsageError,
    hookimpl,
    printable,
    whole_number,
)

if TYPE_CHECKING:
    from planrun import Task
    from planrun.config import Config

DEFAULT_MAX_TURNS = 30
DEFAULT_MAX_TOKENS = 200_000
DEFAULT_REQUEST_TIMEOUT = 60.0
#: Retries of one request after a 408/409/429/5xx, a timeout or a connection failure.
RETRIES = 3
#: First backoff in seconds (doubled each retry, capped at ``BACKOFF_CAP``) when the server gives no Retry-After.
BACKOFF = 0.25
BACKOFF_CAP = 8.0
#: The longest ``Retry-After`` honoured, in seconds.
RETRY_AFTER_CAP = 30.0
#: The same failing call this many times in a row ends the task as "no progress".
SAME_FAILURES = 3
STOP_UNREACHABLE = "stopping: the model endpoint is unreachable"
STOP_REFUSED = "stopping: the model endpoint refused the API key"
NUDGE = (
    "You answered without calling a tool. Call finish with a short summary when the task is done,"
    " or report_blocked with the reason if you cannot do it."
)
WORKDIR_MARK = "<workdir>"
TRANSCRIPT_FORMAT = 1
_CLIENTS = "openai_executor.clients"  # config.stash key: the live clients, closed at the session's end
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


@dataclass
class _Call:
    id: str
    name: str
    arguments: str


@dataclass
class _Turn:
    """One model answer, independent of the SDK (so a transcript can stand in for it)."""

    content: str
    calls: list[_Call]
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
    def from_record(cls, data: dict[str, Any]) -> _Turn:
        usage = data.get("usage") or {}
        return cls(
            str(data.get("content") or ""),
            [_Call(str(c["id"]), str(c["name"]), str(c["arguments"])) for c in data.get("tool_calls") or []],
            str(data.get("finish_reason") or "stop"),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
        )


@dataclass
class _Conversation:
    """One task's conversation, kept across its attempts (a retry continues it)."""

    messages: list[dict[str, Any]]
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None


@dataclass
class _AttemptUsage:
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None

    def result(self, **kw: Any) -> ExecutionResult:
        return ExecutionResult(tokens_in=self.tokens_in, tokens_out=self.tokens_out, cost=self.cost, **kw)


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


def _one_line(text: str, width: int = 300) -> str:
    line = " ".join(str(text).split())
    return printable(line if len(line) <= width else line[: width - 3] + "...")


def _error_text(exc: Any) -> str:
    """The server's own message from an SDK status error (OpenAI-style ``{"error": {"message": ...}}``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", "") or exc)


def _retry_after(exc: Any) -> float | None:
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
                value = parsedate_to_datetime(raw).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    return min(max(value, 0.0), RETRY_AFTER_CAP)


class _Settings:
    """What the executor needs from the command line, ``[tool.planrun]`` and the environment."""

    def __init__(self, config: Config) -> None:
        option, ini = config.option, config.inicfg
        self.rootdir = Path(config.rootdir)
        self.model = option.model or ini.get("model")
        if self.model is not None and not isinstance(self.model, str):
            raise UsageError(f"[tool.planrun] model must be a string, got {self.model!r}")
        self.base_url = option.base_url or ini.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
        if self.base_url is not None and not isinstance(self.base_url, str):
            raise UsageError(f"[tool.planrun] base_url must be a string, got {self.base_url!r}")
        key_env = ini.get("api_key_env", "OPENAI_API_KEY")
        if not isinstance(key_env, str) or not key_env:
            raise UsageError(f"[tool.planrun] api_key_env must name an environment variable, got {key_env!r}")
        self.key_env = key_env
        self.key_configured = "api_key_env" in ini
        self.api_key = os.environ.get(key_env) or ""
        self.max_turns = _number(option.max_turns, ini, "max_turns", DEFAULT_MAX_TURNS, integer=True)
        self.max_tokens = _number(option.max_tokens, ini, "max_tokens", DEFAULT_MAX_TOKENS, integer=True)
        cost = _number(option.max_cost, ini, "max_cost", None)
        self.max_cost = None if cost is None else float(cost)
        self.request_timeout = float(
            _number(option.request_timeout, ini, "request_timeout", DEFAULT_REQUEST_TIMEOUT)  # type: ignore[arg-type]
        )
        self.replay = bool(option.replay)
        self.price = _price(ini.get("prices"), self.model)


def _number(value: Any, ini: dict[str, Any], key: str, default: float | None, *, integer: bool = False) -> Any:
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


def _price(prices: Any, model: str | None) -> tuple[float, float] | None:
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


class _LiveModel:
    """Chat Completions through the ``openai`` SDK, with planrun's own timeout and retries."""

    def __init__(self, settings: _Settings, redact: Redactor) -> None:
        import openai  # only here: the executor is running

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

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], deadline: float) -> _Turn:
        openai = self.openai
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
                )
                return self._turn(response)
            except openai.APITimeoutError:
                failures.append(f"timed out after {timeout:g}s")
                last_unreachable = False
            except openai.APIConnectionError as exc:
                failures.append(f"cannot connect ({_one_line(str(exc.__cause__ or exc), 120)})")
                last_unreachable = True
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                hint = "" if self.settings.api_key else f"; {self.settings.key_env} is not set"
                raise ExecutorError(
                    self.redact(
                        f"the model endpoint {self.where} refused the API key ({exc.status_code}):"
                        f" {_one_line(_error_text(exc))}{hint}"
                    ),
                    stop=STOP_REFUSED,
                ) from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                text = _one_line(_error_text(exc))
                if status not in (408, 409, 429) and status < 500:
                    raise ExecutorError(
                        self.redact(f"the model endpoint {self.where} answered {status}: {text}")
                    ) from None
                failures.append(f"{status} {text}")
                wait = _retry_after(exc)
                last_unreachable = False
            except openai.OpenAIError as exc:
                raise ExecutorError(
                    self.redact(f"the model endpoint {self.where} gave an unusable answer: {_one_line(str(exc))}")
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

    def _turn(self, response: Any) -> _Turn:
        if not response.choices:
            raise ExecutorError(f"the model endpoint {self.where} answered without a choice")
        choice = response.choices[0]
        message = choice.message
        calls = []
        for n, tc in enumerate(message.tool_calls or [], 1):
            function = getattr(tc, "function", None)
            if function is None:
                continue  # a custom tool call: none was offered
            calls.append(_Call(tc.id or f"call_{n}", function.name or "", function.arguments or ""))
        usage = response.usage
        return _Turn(
            message.content or "",
            calls,
            choice.finish_reason or "stop",
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        )


class _ReplayModel:
    """Answers from a recorded transcript; a request that differs from the recorded one is an error."""

    def __init__(self, path: Path, data: dict[str, Any], normalize: Any) -> None:
        self.path = path
        self.messages: list[dict[str, Any]] = data.get("messages") or []
        self.exchanges: list[dict[str, Any]] = data.get("exchanges") or []
        self.normalize = normalize
        self.index = 0

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], deadline: float) -> _Turn:
        n = self.index + 1
        if self.index >= len(self.exchanges):
            raise ExecutorError(
                f"replay: request {n} diverges from {self.path}: the transcript has only {len(self.exchanges)} requests"
            )
        exchange = self.exchanges[self.index]
        recorded = self.messages[: int(exchange["sent"])]
        sent = self.normalize(messages)
        where = f"request {n} (attempt {exchange.get('attempt')}, turn {exchange.get('turn')})"
        for i, (want, got) in enumerate(zip(recorded, sent), 1):
            if want != got:
                raise ExecutorError(
                    f"replay: {where} diverges from {self.path}: message {i} ({got.get('role')}) differs:"
                    f" recorded {_one_line(json.dumps(want.get('content')), 120)},"
                    f" now {_one_line(json.dumps(got.get('content')), 120)}"
                )
        if len(recorded) != len(sent):
            raise ExecutorError(
                f"replay: {where} diverges from {self.path}: {len(sent)} messages, the transcript has {len(recorded)}"
            )
        self.index += 1
        return _Turn.from_record(exchange["response"])


class OpenAIExecutor(Executor):
    """Chat Completions with tool calling; one conversation per task, continued on a retry."""

    name = "openai"
    max_attempts = 2

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = _Settings(config)
        self.redact = Redactor.from_environ(self.settings.api_key)
        self.conversations: dict[str, _Conversation] = {}
        self._replays: dict[str, _ReplayModel] = {}
        self._model: _LiveModel | None = None

    # -- the task -------------------------------------------------------

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        from planrun import agentprompt

        try:
            from planrun import agenttools  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            raise ExecutorError("the agent tools (planrun.agenttools) are not installed", stop="stopping") from None
        settings = self.settings
        if not settings.model:
            raise ExecutorError(
                "the openai executor needs a model: pass --model NAME or set [tool.planrun] model",
                stop="stopping: no model configured",
            )
        if settings.key_configured and not settings.api_key:
            raise ExecutorError(
                f"the API key variable {settings.key_env} ([tool.planrun] api_key_env) is not set",
                stop=STOP_REFUSED,
            )
        deadline = time.monotonic() + context.timeout
        plan_id = _plan_id(context)
        path = settings.rootdir / ".planrun" / "transcripts" / plan_id / f"{task.id}.json"
        conv = self.conversations.get(task.id)
        if conv is None:
            system, _source = agentprompt.system_prompt(context.config)
            conv = _Conversation(
                [
                    {"role": "system", "content": self.redact(system)},
                    {"role": "user", "content": self.redact(agentprompt.task_prompt(task, context))},
                ]
            )
            self.conversations[task.id] = conv
        if context.attempt > 1 and context.feedback:
            feedback = agentprompt.feedback_prompt(context.feedback)
            conv.messages.append({"role": "user", "content": self.redact(feedback)})
        model = self._replay_model(task, path, context) if settings.replay else self._live_model()
        toolbox = agenttools.Toolbox(
            context.workdir, protected=_plan_files(context), timeout=min(60.0, context.timeout)
        )
        tools = list(agenttools.schemas())
        usage = _AttemptUsage()
        outcome = "error"
        try:
            result = self._attempt(task, context, conv, model, toolbox, tools, usage, deadline)
            outcome = result.status
            return result
        except ExecutorError as exc:
            if exc.result is None:
                exc.result = usage.result()
            outcome = f"error: {exc}"
            raise
        except StepTimeout as exc:
            outcome = f"timed out: {exc}"
            raise
        finally:
            conv.attempts.append({"attempt": context.attempt, "outcome": outcome})
            if not settings.replay:
                self._write_transcript(path, task, context, conv)

    def _attempt(
        self,
        task: Task,
        context: ExecutionContext,
        conv: _Conversation,
        model: _LiveModel | _ReplayModel,
        toolbox: Any,
        tools: list[dict[str, Any]],
        usage: _AttemptUsage,
        deadline: float,
    ) -> ExecutionResult:
        from planrun import agenttools  # type: ignore[attr-defined,unused-ignore]

        known = {t.get("function", {}).get("name") for t in tools}
        nudged = False
        last_failure: tuple[str, str] | None = None
        repeats = 0
        while True:
            self._check_budget(conv)
            if time.monotonic() >= deadline:
                raise StepTimeout(f"task {task.id!r} ran out of its {context.timeout:g}s")
            conv.turns += 1
            turn = conv.turns
            context.progress(turn=turn, tool=None, tokens_in=conv.tokens_in, tokens_out=conv.tokens_out)
            sent = len(conv.messages)
            reply = model.complete(conv.messages, tools, deadline)
            self._account(conv, usage, reply)
            assistant: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if reply.calls:
                assistant["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in reply.calls
                ]
            conv.messages.append(self.redact.deep(assistant))  # what is sent back never holds a secret
            conv.exchanges.append({"attempt": context.attempt, "turn": turn, "sent": sent, "response": reply.record()})
            if reply.finish_reason in ("length", "content_filter"):
                why = "cut off at the token limit" if reply.finish_reason == "length" else "stopped by a content filter"
                raise ExecutorError(f"the model's answer was {why} (finish_reason {reply.finish_reason})")
            if not reply.calls:
                if nudged:
                    raise ExecutorError(
                        "no progress: the model answered without calling a tool twice"
                        f" (last: {_one_line(self.redact(reply.content), 120)!r})"
                    )
                nudged = True
                conv.messages.append({"role": "user", "content": NUDGE})
                continue
            ended: ExecutionResult | None = None
            for call in reply.calls:
                context.progress(turn=turn, tool=call.name, tokens_in=conv.tokens_in, tokens_out=conv.tokens_out)
                failed = False
                if ended is not None:
                    content = f"error: not run: {'finish' if ended.status == 'done' else 'report_blocked'} came first"
                else:
                    args, problem = _arguments(call)
                    if problem:
                        content, failed = problem, True
                    elif call.name == "finish":
                        ended = usage.result(status="done", summary=str(args.get("summary", "")))
                        content = "finish recorded: planrun now checks the task's success criteria"
                    elif call.name == "report_blocked":
                        reason = str(args.get("reason", "")).strip() or "(no reason given)"
                        ended = usage.result(status="blocked", message=_one_line(reason, 500))
                        content = "report_blocked recorded"
                    elif call.name not in known:
                        names = ", ".join(sorted(n for n in known if n))
                        content, failed = f"error: unknown tool {call.name!r} (tools: {names})", True
                    else:
                        try:
                            content = str(toolbox.call(call.name, args))
                        except agenttools.ToolError as exc:
                            text = str(exc)
                            content, failed = (text if text.startswith("error") else f"error: {text}"), True
                content = self.redact(content)
                conv.messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
                if failed:
                    key = (call.name, call.arguments)
                    repeats = repeats + 1 if key == last_failure else 1
                    last_failure = key
                    if repeats >= SAME_FAILURES:
                        raise ExecutorError(
                            f"no progress: the same failing call {_one_line(call.name, 60)}"
                            f" {_one_line(self.redact(call.arguments), 100)} {SAME_FAILURES} times in a row"
                            f" ({_one_line(content, 120)})"
                        )
                elif ended is None:
                    last_failure, repeats = None, 0
            if ended is not None:
                return ended

    def _check_budget(self, conv: _Conversation) -> None:
        s = self.settings
        if conv.turns >= s.max_turns:
            raise ExecutorError(f"budget exceeded: {conv.turns} turns (max_turns {s.max_turns})")
        tokens = conv.tokens_in + conv.tokens_out
        if tokens >= s.max_tokens:
            raise ExecutorError(f"budget exceeded: {tokens} tokens (max_tokens {s.max_tokens})")
        if s.max_cost is not None and conv.cost is not None and conv.cost >= s.max_cost:
            raise ExecutorError(f"budget exceeded: cost {conv.cost:.4f} (max_cost {s.max_cost:g})")

    def _account(self, conv: _Conversation, usage: _AttemptUsage, reply: _Turn) -> None:
        conv.tokens_in += reply.tokens_in
        conv.tokens_out += reply.tokens_out
        usage.tokens_in += reply.tokens_in
        usage.tokens_out += reply.tokens_out
        price = self.settings.price
        if price is not None:
            cost = (reply.tokens_in * price[0] + reply.tokens_out * price[1]) / 1e6
            usage.cost = (usage.cost or 0.0) + cost
            conv.cost = (conv.cost or 0.0) + cost

    # -- the model: live or replayed ------------------------------------

    def _live_model(self) -> _LiveModel:
        """One client for the run (its connections are reused); closed when the session finishes."""
        if self._model is None:
            self._model = _LiveModel(self.settings, self.redact)
            self.config.stash.setdefault(_CLIENTS, []).append(self._model)
        return self._model

    def _replay_model(self, task: Task, path: Path, context: ExecutionContext) -> _ReplayModel:
        replay = self._replays.get(task.id)
        if replay is None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or data.get("format") != TRANSCRIPT_FORMAT:
                    raise ValueError(f"not a planrun transcript (format {TRANSCRIPT_FORMAT})")
            except FileNotFoundError:
                raise ExecutorError(f"--replay: no transcript recorded for task {task.id!r} ({path})") from None
            except (OSError, ValueError) as exc:
                raise ExecutorError(f"--replay: cannot read {path}: {_one_line(str(exc), 200)}") from None
            replay = _ReplayModel(path, data, lambda messages: self._normalize(messages, context))
            self._replays[task.id] = replay
        return replay

    # -- transcripts ----------------------------------------------------

    def _normalize(self, value: Any, context: ExecutionContext) -> Any:
        """Secrets redacted and the workdir's path replaced by a mark: what a transcript holds."""
        workdir = str(context.workdir)
        redacted = self.redact.deep(value)

        def mark(v: Any) -> Any:
            if isinstance(v, str):
                return v.replace(workdir, WORKDIR_MARK)
            if isinstance(v, list):
                return [mark(x) for x in v]
            if isinstance(v, dict):
                return {k: mark(x) for k, x in v.items()}
            return v

        return mark(redacted)

    def _write_transcript(self, path: Path, task: Task, context: ExecutionContext, conv: _Conversation) -> None:
        data = {
            "format": TRANSCRIPT_FORMAT,
            "plan": _plan_id(context),
            "task": task.id,
            "model": self.settings.model,
            "base_url": self.settings.base_url,
            "attempts": conv.attempts,
            "tokens_in": conv.tokens_in,
            "tokens_out": conv.tokens_out,
            "messages": conv.messages,
            "exchanges": conv.exchanges,
        }
        text = json.dumps(self._normalize(data, context), indent=1, ensure_ascii=False) + "\n"
        try:
            _ensure_state_dir(self.settings.rootdir / ".planrun")
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, text)
        except OSError as exc:
            self.config.warnings.append(f"cannot write the transcript {path}: {exc.strerror or exc}")


def _arguments(call: _Call) -> tuple[dict[str, Any], str]:
    """The call's arguments as a dict, or an error message for the model."""
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        return {}, f"error: the arguments of {call.name} are not valid JSON ({exc}); send a JSON object"
    if not isinstance(args, dict):
        return {}, f"error: the arguments of {call.name} must be a JSON object, got {type(args).__name__}"
    return args, ""


def _plan_id(context: ExecutionContext) -> str:
    plan = context.plan
    if plan.id:
        return plan.id
    source = getattr(plan, "_source", None)
    name = Path(getattr(source, "path", "") or "plan").name
    for suffix in (".plan.yaml", ".plan.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80].lstrip(".") or "plan"


def _plan_files(context: ExecutionContext) -> tuple[str, ...]:
    """The plan's own file, relative to the workdir, when it is inside it (the toolbox refuses it by name)."""
    source = getattr(context.plan, "_source", None)
    path = getattr(source, "path", None)
    if not path:
        return ()
    try:
        rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(context.workdir))
    except ValueError:
        return ()
    return (rel.as_posix(),)


def _ensure_state_dir(folder: Path) -> None:
    """``.planrun/`` with its own ``.gitignore`` (``*``), as ``.pytest_cache`` has, so ``git status`` stays clean."""
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        _atomic_write(ignore, "# Created by planrun automatically.\n*\n")
        os.chmod(ignore, 0o644)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_positive_int = whole_number(1)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("openai executor")
    group.add_argument("--model", metavar="NAME", default=None, help="the model (config: model)")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=None,
        help="an OpenAI-compatible endpoint (config: base_url; else OPENAI_BASE_URL; else OpenAI's)",
    )
    group.add_argument(
        "--max-turns",
        type=_positive_int,
        metavar="N",
        default=None,
        help=f"model turns per task (default {DEFAULT_MAX_TURNS})",
    )
    group.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        default=None,
        help=f"tokens per task, in and out (default {DEFAULT_MAX_TOKENS})",
    )
    group.add_argument(
        "--max-cost", type=_positive_float, metavar="AMOUNT", default=None, help="cost per task (needs a price)"
    )
    group.add_argument(
        "--request-timeout",
        type=_positive_float,
        metavar="SECONDS",
        default=None,
        help=f"timeout of one model request (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    group.add_argument(
        "--replay",
        action="store_true",
        default=False,
        help="answer from the transcripts in .planrun/transcripts/ instead of the network",
    )


@hookimpl
def planrun_collection_finish(session: Any) -> None:
    """Before anything runs: the settings of a run that will use this executor are sound (else exit 4)."""
    config = session.config
    if session.collection_errors or config.getoption("collectonly"):
        return
    if not any(session.executor_name_for(item) == OpenAIExecutor.name for item in session.items):
        return
    settings = _Settings(config)  # a malformed setting is a UsageError
    if not settings.model:
        raise UsageError("the openai executor needs a model: pass --model NAME or set [tool.planrun] model")
    if settings.key_configured and not settings.api_key:
        raise UsageError(f"the API key variable {settings.key_env} ([tool.planrun] api_key_env) is not set")
    from planrun import agentprompt

    agentprompt.system_prompt(config)  # a bad executor_prompt, now rather than in the first task


@hookimpl
def planrun_sessionfinish(session: Any) -> None:
    for model in session.config.stash.pop(_CLIENTS, []):
        model.close()


@hookimpl
def planrun_register_executors() -> list[ExecutorKind]:
    return [ExecutorKind("openai", OpenAIExecutor)]
