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
import time
from dataclasses import dataclass, field
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
    ignored_folder,
    llm,
    whole_number,
    write_atomic,
)

if TYPE_CHECKING:
    from planrun import Task
    from planrun.config import Config

DEFAULT_MAX_TURNS = 30
DEFAULT_MAX_TOKENS = 200_000
DEFAULT_REQUEST_TIMEOUT = llm.DEFAULT_REQUEST_TIMEOUT
#: The same failing call this many times in a row ends the task as "no progress".
SAME_FAILURES = 3
NUDGE = (
    "You answered without calling a tool. Call finish with a short summary when the task is done,"
    " or report_blocked with the reason if you cannot do it."
)
WORKDIR_MARK = "<workdir>"
TRANSCRIPT_FORMAT = 1
_CLIENTS = "openai_executor.clients"  # config.stash key: the live clients, closed at the session's end


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


class _Settings(llm.LLMSettings):
    """What the executor needs besides the model setup: budgets and ``--replay``."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        option, ini = config.option, config.inicfg
        self.max_turns = llm.setting_number(option.max_turns, ini, "max_turns", DEFAULT_MAX_TURNS, integer=True)
        self.max_tokens = llm.setting_number(option.max_tokens, ini, "max_tokens", DEFAULT_MAX_TOKENS, integer=True)
        cost = llm.setting_number(option.max_cost, ini, "max_cost", None)
        self.max_cost = None if cost is None else float(cost)
        self.replay = bool(option.replay)


class _ReplayModel:
    """Answers from a recorded transcript; a request that differs from the recorded one is an error."""

    def __init__(self, path: Path, data: dict[str, Any], normalize: Any) -> None:
        self.path = path
        self.messages: list[dict[str, Any]] = data.get("messages") or []
        self.exchanges: list[dict[str, Any]] = data.get("exchanges") or []
        self.normalize = normalize
        self.index = 0

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], deadline: float) -> llm.Turn:
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
                    f" recorded {llm.one_line(json.dumps(want.get('content')), 120)},"
                    f" now {llm.one_line(json.dumps(got.get('content')), 120)}"
                )
        if len(recorded) != len(sent):
            raise ExecutorError(
                f"replay: {where} diverges from {self.path}: {len(sent)} messages, the transcript has {len(recorded)}"
            )
        self.index += 1
        return llm.Turn.from_record(exchange["response"])


class OpenAIExecutor(Executor):
    """Chat Completions with tool calling; one conversation per task, continued on a retry."""

    name = "openai"
    max_attempts = 2

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = _Settings(config)
        self.redact = llm.Redactor.from_environ(self.settings.api_key)
        self.conversations: dict[str, _Conversation] = {}
        self._replays: dict[str, _ReplayModel] = {}
        self._model: llm.ChatModel | None = None

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
                stop=llm.STOP_REFUSED,
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
            context.workdir, protected=(*_plan_files(context), *context.beside), timeout=min(60.0, context.timeout)
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
        model: llm.ChatModel | _ReplayModel,
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
                        f" (last: {llm.one_line(self.redact(reply.content), 120)!r})"
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
                        ended = usage.result(status="blocked", message=llm.one_line(reason, 500))
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
                            f"no progress: the same failing call {llm.one_line(call.name, 60)}"
                            f" {llm.one_line(self.redact(call.arguments), 100)} {SAME_FAILURES} times in a row"
                            f" ({llm.one_line(content, 120)})"
                        )
                elif ended is None:
                    last_failure, repeats = None, 0
            if ended is not None:
                return ended

    def _check_budget(self, conv: _Conversation) -> None:
        s = self.settings
        reached = llm.spent(
            conv.turns, conv.tokens_in + conv.tokens_out, conv.cost, s.max_turns, s.max_tokens, s.max_cost
        )
        if reached is not None:
            what, name, limit = reached
            raise ExecutorError(f"budget exceeded: {what} (max_{name} {limit})")

    def _account(self, conv: _Conversation, usage: _AttemptUsage, reply: llm.Turn) -> None:
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

    def _live_model(self) -> llm.ChatModel:
        """One client for the run (its connections are reused); closed when the session finishes."""
        if self._model is None:
            self._model = llm.ChatModel(self.settings, self.redact)
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
                raise ExecutorError(f"--replay: cannot read {path}: {llm.one_line(str(exc), 200)}") from None
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
            ignored_folder(self.settings.rootdir / ".planrun")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text, mode=0o600)  # as private as mkstemp made it
        except OSError as exc:
            self.config.warnings.append(f"cannot write the transcript {path}: {exc.strerror or exc}")


def _arguments(call: llm.Call) -> tuple[dict[str, Any], str]:
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
