"""``planrun plan`` and ``planrun review``: a planning agent that can only read, and planrun's review of its plans.

The planner is a tool-calling loop over :class:`planrun.llm.ChatModel` whose
tool list is built in one place (:func:`planrun.planprompt.tool_list`): ``list_dir``,
``read_file`` and ``search`` from :mod:`planrun.agenttools` (a read-only
:class:`~planrun.agenttools.Toolbox` confined to ``--context``), ``note(phase,
text)`` that marks the phases, ``ask_user`` with ``--interactive`` only, and
``submit_plan`` (or ``report_findings`` for ``review``). No tool that writes,
edits or runs exists; a call to any other name gets an error result.

Every submitted plan goes through the same pipeline as a plan file
(:class:`planrun.planreview.PlanReview`: loaded, compiled, linted); each
problem is fed back with its path in the plan (``tasks[2].criteria[0]: ...``).
The file written at the end is byte for byte the text that was reviewed.

Phases: the model marks ``interview``, ``gap_analysis``, ``plan_creation`` and
``handoff`` with ``note(phase, text)``; planrun adds ``review`` (each
``submit_plan``) and ``handoff`` (the file written). Each change is one line
on the terminal and an entry in the transcript's ``phases``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import llm, planprompt
from planrun.atomic import ignored_folder, write_atomic
from planrun.config import ExitCode, ParserExit
from planrun.errors import PlanrunError, UsageError, one_file
from planrun.planprompt import FINDINGS_TOOL, READ_TOOLS, submit_tool, tool_list
from planrun.planreview import PlanReview, Problem, json_type, parse_dotted
from planrun.reports import human, money, printable
from planrun.types import ExecutorError, StepTimeout

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan

DEFAULT_MAX_ROUNDS = 3
DEFAULT_MAX_TURNS = 40
DEFAULT_MAX_TOKENS = 400_000
#: Characters of one ``ask_user`` answer sent to the model.
MAX_ANSWER = 4000
TRANSCRIPT_FORMAT = 1
NUDGE = "You answered without calling a tool. Continue with the tools; end by calling {end}."

PLAN_USAGE = """\
usage: planrun plan "REQUEST" -o plans/NAME.plan.yaml [--context DIR] [--interactive]
                    [--model M] [--base-url URL] [--force] [--max-rounds N] [--max-turns N] [planrun options]

A planning agent reads the repository (read-only: list_dir, read_file, search
in --context, default the rootdir), records its assumptions or, with
--interactive, asks you, and submits a plan. planrun validates, compiles and
lints it and feeds every problem back, up to --max-rounds (default 3) rounds.
The plan is written at the end: exit 0 clean, 1 with problems left (printed).
An existing OUT is only replaced with --force."""

REVIEW_USAGE = """\
usage: planrun review PLAN [--model M] [--fix -o OUT] [--force] [--max-rounds N] [planrun options]

Compile and lint PLAN (exit 0 clean, 1 findings, 2 it does not load). With a
model configured (--model or [tool.planrun] model), a read-only agent also
looks for gaps against the repository, printed as GAP findings. PLAN is never
changed: --fix -o OUT runs the planner's submit and review loop from PLAN and
writes the revised plan to OUT (an existing OUT only with --force)."""


# -- the agent loop -----------------------------------------------------------


class _Stop(Exception):
    """The planner's run ends with this one-line error (exit 1)."""


@dataclass
class _Budget:
    max_turns: int
    max_tokens: int
    max_cost: float | None


@dataclass
class Outcome:
    """What the loop ended with."""

    plan: Plan | None = None
    text: str | None = None
    problems: list[Problem] = field(default_factory=list)
    clean: bool = False
    findings: list[dict[str, str]] | None = None


class PlannerLoop:
    """One conversation with the planner: tools dispatched here, every line it shows through ``printable``."""

    def __init__(
        self,
        config: Config,
        settings: llm.LLMSettings,
        *,
        context: Path,
        interactive: bool,
        review: PlanReview | None,
        max_rounds: int,
        transcript: Path,
        command: str,
    ) -> None:
        from planrun import agenttools

        self.config = config
        self.settings = settings
        self.redact = llm.Redactor.from_environ(settings.api_key)
        self.toolbox = agenttools.Toolbox(context, readonly=True, sandbox="none")
        self.context = context
        self.interactive = interactive
        self.review = review
        self.max_rounds = max_rounds
        self.transcript = transcript
        self.command = command
        option = config.option
        cost = getattr(option, "max_cost", None)
        self.budget = _Budget(
            getattr(option, "max_turns", None) or DEFAULT_MAX_TURNS,
            getattr(option, "max_tokens", None) or DEFAULT_MAX_TOKENS,
            float(cost) if cost is not None else None,
        )
        end = FINDINGS_TOOL if review is None else submit_tool(self._checks())
        self.end = end["function"]["name"]
        self.tools = tool_list(interactive=interactive, end=end)
        self.names = [t["function"]["name"] for t in self.tools]
        self.messages: list[dict[str, Any]] = []
        self.exchanges: list[dict[str, Any]] = []
        self.phases: list[dict[str, Any]] = []
        self.rounds: list[dict[str, Any]] = []
        self.phase: str | None = None
        self.turns = self.tokens_in = self.tokens_out = 0
        self.cost: float | None = None
        self.outcome = Outcome()
        self.done = False

    def _checks(self) -> dict[str, dict[str, Any]]:
        from pydantic.json_schema import PydanticJsonSchemaWarning

        assert self.review is not None
        kinds = self.review.scope.registry.kinds
        with warnings.catch_warnings():  # a default such as MISSING is left out of the schema, as it should be
            warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
            return {name: kind.args.model_json_schema() for name, kind in kinds.items()}

    def show(self, line: str) -> None:
        print(printable(line), flush=True)

    def set_phase(self, phase: str, text: str = "") -> None:
        if phase != self.phase:
            self.phase = phase
            self.show(f"phase {phase.replace('_', ' ')}" + (f": {llm.one_line(text, 160)}" if text else ""))
        elif text:
            self.show(f"  note: {llm.one_line(text, 160)}")
        self.phases.append({"phase": phase, "text": self.redact(text), "turn": self.turns})

    # -- the conversation --

    def run(self, system: str, user: str) -> Outcome:
        self.messages = [
            {"role": "system", "content": self.redact(system)},
            {"role": "user", "content": self.redact(user)},
        ]
        status = "error"
        model = llm.ChatModel(self.settings, self.redact)
        try:
            self._loop(model)
            status = "clean" if self.outcome.clean else "done"
            return self.outcome
        except (_Stop, ExecutorError, StepTimeout) as exc:
            status = f"error: {exc}"
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            model.close()
            self.toolbox.close()
            self._write_transcript(status)

    def _loop(self, model: llm.ChatModel) -> None:
        deadline = time.monotonic() + float(self.config.option.timeout)
        nudged = False
        while not self.done:
            self._check_budget()
            if time.monotonic() >= deadline:
                raise _Stop(f"timed out after {self.config.option.timeout:g}s (--timeout)")
            self.turns += 1
            sent = len(self.messages)
            reply = model.complete(self.messages, self.tools, deadline)
            self._account(reply)
            assistant: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if reply.calls:
                assistant["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in reply.calls
                ]
            self.messages.append(self.redact.deep(assistant))
            self.exchanges.append({"turn": self.turns, "sent": sent, "response": self.redact.deep(reply.record())})
            if reply.finish_reason in ("length", "content_filter"):
                why = "cut off at the token limit" if reply.finish_reason == "length" else "stopped by a content filter"
                raise _Stop(f"the model's answer was {why} (finish_reason {reply.finish_reason})")
            if not reply.calls:
                if nudged:
                    raise _Stop(
                        f"no progress: the model answered without calling a tool twice (it must call {self.end})"
                    )
                nudged = True
                self.messages.append({"role": "user", "content": NUDGE.format(end=self.end)})
                continue
            for call in reply.calls:
                if self.done:
                    content = f"error: not run: {self.end} came first and ended the session"
                else:
                    content = self._dispatch(call)
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": self.redact(content)})

    def _check_budget(self) -> None:
        b = self.budget
        reached = llm.spent(
            self.turns, self.tokens_in + self.tokens_out, self.cost, b.max_turns, b.max_tokens, b.max_cost
        )
        if reached is not None:
            what, name, limit = reached
            raise _Stop(f"budget spent: {what} (--max-{name} {limit})")

    def _account(self, reply: llm.Turn) -> None:
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out
        cost = self.settings.cost(reply.tokens_in, reply.tokens_out)
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def usage_line(self) -> str:
        """``tokens 1.2k in / 300 out, 5 turns, $0.01``: the executor's final line, for the planner."""
        turns = f"{self.turns} turn{'' if self.turns == 1 else 's'}"
        text = f"tokens {human(self.tokens_in)} in / {human(self.tokens_out)} out, {turns}"
        if self.cost is not None:
            text += f", {money(self.cost)}"
        elif self.tokens_in or self.tokens_out:
            text += ", cost unknown"
        return text

    # -- the tools --

    def _dispatch(self, call: llm.Call) -> str:
        name = call.name
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError as exc:
            self.show(f"  {llm.one_line(name, 40)}: malformed arguments")
            return f"error: the arguments of {llm.one_line(name, 60)} are not valid JSON ({exc}); send a JSON object"
        except RecursionError:
            self.show(f"  {llm.one_line(name, 40)}: malformed arguments")
            return f"error: the arguments of {llm.one_line(name, 60)} nest too deeply"
        if not isinstance(args, dict):
            return f"error: the arguments of {name} must be a JSON object, got {json_type(args)}"
        if name not in self.names:
            self.show(f"  refused {llm.one_line(name, 40)}: not a planner tool")
            return (
                f"error: unknown tool {llm.one_line(name, 60)!r}: the planner can only read"
                f" (it cannot write, edit or run anything); its tools are: {', '.join(self.names)}"
            )
        if name in READ_TOOLS:
            return self._read(name, args)
        if name == "note":
            phase, text = args.get("phase"), args.get("text")
            if not isinstance(phase, str) or phase not in planprompt.PHASES or not isinstance(text, str):
                return f"error: note takes phase (one of {', '.join(planprompt.PHASES)}) and text (a string)"
            self.set_phase(phase, text)
            return f"noted ({phase})"
        if name == "ask_user":
            return self._ask(args)
        if name == "submit_plan":
            return self._submit(args)
        return self._findings(args)

    def _read(self, name: str, args: dict[str, Any]) -> str:
        from planrun import agenttools

        shown = " ".join(f"{v}" for v in args.values() if isinstance(v, (str, int)))
        self.show(f"  {name} {llm.one_line(shown, 100)}".rstrip())
        try:
            return str(self.toolbox.call(name, args))
        except agenttools.ToolError as exc:
            text = str(exc)
            return text if text.startswith("error") else f"error: {text}"

    def _ask(self, args: dict[str, Any]) -> str:
        question = args.get("question")
        if not isinstance(question, str) or not question.strip():
            return "error: ask_user takes question (a non-empty string)"
        if self.phase is None:
            self.set_phase("interview")
        self.show(f"planner asks: {llm.one_line(question, 500)}")
        print("answer> ", end="", flush=True)
        raw = read_answer(sys.stdin)
        line = raw.decode("utf-8", "replace")  # whatever the terminal sends: never a crash
        if not line:
            print()
            return "the person gave no answer (input ended): decide yourself and record it under assumptions"
        answer = line.rstrip("\r\n")[:MAX_ANSWER]
        return f"the person answered: {answer}" if answer.strip() else "the person gave an empty answer"

    def _submit(self, args: dict[str, Any]) -> str:
        assert self.review is not None
        raw: Any = args.get("plan")
        if not isinstance(raw, dict) and "tasks" in args:
            raw = args  # the plan itself as the arguments: accepted
        n = len(self.rounds) + 1
        self.set_phase("review")
        plan, text, problems = self.review.review(raw)
        self.rounds.append({"round": n, "problems": [self.redact(p.for_model()) for p in problems]})
        if plan is not None:
            self.outcome = Outcome(plan, text, problems, clean=not problems)
        if not problems:
            self.show(f"  round {n}: clean (validates, compiles, lints clean)")
            self.done = True
            return "planrun accepted the plan: it validates, every criterion compiles and it lints clean. Done."
        self.show(f"  round {n} of {self.max_rounds}: {len(problems)} problem{'' if len(problems) == 1 else 's'}")
        if n >= self.max_rounds:
            self.done = True
            return f"round limit ({self.max_rounds}) reached: the last plan that loads is written with its problems."
        return planprompt.review_feedback(n, self.max_rounds, [p.for_model() for p in problems])

    def _findings(self, args: dict[str, Any]) -> str:
        items = args.get("findings")
        ok = isinstance(items, list) and all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("message"), str) for f in items
        )
        if not ok:
            return "error: report_findings takes findings: a list of {path: string, message: string}"
        assert isinstance(items, list)
        self.outcome = Outcome(findings=[{"path": f["path"], "message": f["message"]} for f in items])
        self.show(f"  report_findings: {len(items)} finding{'' if len(items) == 1 else 's'}")
        self.done = True
        return "findings recorded"

    # -- the record --

    def save(self, status: str) -> None:
        """Write the transcript (again: the handoff comes after the conversation)."""
        self._write_transcript(status)

    def _write_transcript(self, status: str) -> None:
        data = {
            "format": TRANSCRIPT_FORMAT,
            "command": self.command,
            "model": self.settings.model,
            "base_url": self.settings.base_url,
            "context": str(self.context),
            "outcome": status,
            "phases": self.phases,
            "rounds": self.rounds,
            "turns": self.turns,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "messages": self.messages,
            "exchanges": self.exchanges,
        }
        text = json.dumps(self.redact.deep(data), indent=1, ensure_ascii=False) + "\n"
        try:
            _state_dir(self.config)
            write_atomic(self.transcript, text.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            print(f"WARNING: cannot write the transcript {self.transcript}: {exc.strerror or exc}", file=sys.stderr)


def _state_dir(config: Config) -> None:
    """``.planrun/`` with its own ``.gitignore`` (``*``), as ``.pytest_cache`` has."""
    ignored_folder(config.planrun_dir)


def _transcript_path(config: Config, out: Path, prefix: str = "") -> Path:
    name = out.name
    for suffix in (".plan.yaml", ".plan.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80].lstrip(".") or "plan"
    return config.planrun_dir / "transcripts" / "planner" / f"{prefix}{name}.json"


# -- the command line ---------------------------------------------------------


@dataclass
class _Args:
    out: str | None = None
    context: str | None = None
    interactive: bool = False
    force: bool = False
    fix: bool = False
    max_rounds: int = DEFAULT_MAX_ROUNDS
    rest: list[str] = field(default_factory=list)


def _parse(args: list[str], flags: set[str]) -> _Args:
    """The subcommand's own options (``flags``); everything else is planrun's, for :func:`build_config`."""
    parsed = _Args()
    valued = {"-o", "--output", "--context", "--max-rounds"} & flags
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in valued:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"{name} needs a value")
                value = args[i + 1]
                i += 1
            if name in ("-o", "--output"):
                parsed.out = value
            elif name == "--context":
                parsed.context = value
            else:
                try:
                    parsed.max_rounds = int(value)
                except ValueError:
                    raise UsageError(f"--max-rounds: not a whole number: {value!r}") from None
                if parsed.max_rounds < 1:
                    raise UsageError(f"--max-rounds must be at least 1, got {value!r}")
        elif arg in flags and not eq:
            setattr(parsed, arg.lstrip("-"), True)
        else:
            parsed.rest.append(arg)
        i += 1
    return parsed


def _read_plan_text(path: Path, limit: int) -> str:
    """The plan file's text for the model: opened, then checked to be a regular file, at most ``limit`` bytes."""
    from planrun.atomic import opened, read_upto

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    f, st = opened(fd)
    if f is None:
        raise UsageError(f"{path}: not a regular file")
    with f:
        data = read_upto(f.read, limit, st.st_size)
    if len(data) > limit:
        raise UsageError(f"{path}: over {limit} bytes (--max-plan-bytes)")
    return data.decode("utf-8", "replace")


def _internal_error() -> int:
    import traceback

    traceback.print_exc()
    print("INTERNAL ERROR: planrun crashed; please report this with the traceback above.", file=sys.stderr)
    return ExitCode.INTERNAL_ERROR


def _error(message: str, code: int = ExitCode.USAGE_ERROR) -> int:
    print(f"ERROR: {printable(message)}", file=sys.stderr)
    return code


def _settings(config: Config, what: str) -> llm.LLMSettings:
    settings = llm.LLMSettings(config)
    if not settings.model:
        raise UsageError(f"{what} needs a model: pass --model NAME or set [tool.planrun] model")
    if settings.key_configured and not settings.api_key:
        raise UsageError(f"the API key variable {settings.key_env} ([tool.planrun] api_key_env) is not set")
    return settings


def _check_out(out: str | None, force: bool) -> Path:
    """OUT, checked before anything is sent: absent (or ``--force``), and a folder for it can exist."""
    if not out or out == "-":
        raise UsageError("-o OUT is required: the plan file to write (plans/NAME.plan.yaml)")
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"{out}: is a directory")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(f"{out}: exists; pass --force to overwrite it")
    folder = Path(os.path.abspath(path)).parent
    existing = next(f for f in (folder, *folder.parents) if f.exists())
    if not existing.is_dir():
        raise UsageError(f"{out}: {existing} is not a folder")
    return path


def _context(config: Config, given: str | None) -> Path:
    if given is None:
        return Path(config.rootdir)
    path = Path(given)
    if not path.is_dir():
        raise UsageError(f"--context {given}: not a directory")
    return Path(os.path.realpath(path))


def _write_plan(out: Path, text: str, force: bool) -> str | None:
    """Write the plan (atomically; without ``--force`` never over a file that appeared meanwhile); an error or None."""
    from planrun.importcmd import _write

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot write {out}: {out.parent}: {exc.strerror or exc}"
    try:
        _write(out, text, force)
    except FileExistsError:
        return f"{out}: appeared meanwhile; pass --force to overwrite it"
    except OSError as exc:
        return f"cannot write {out}: {exc.strerror or exc}"
    return None


def _finish(loop: PlannerLoop, outcome: Outcome, out: Path, force: bool, config: Config) -> int:
    """Write the plan (clean, or the last that loads at the round limit), print what is left; the exit code."""
    display = printable(config.display_path(out))
    if outcome.text is None:
        print(f"ERROR: no plan that loads after {len(loop.rounds)} rounds; nothing written", file=sys.stderr)
        for problem in outcome.problems or _last_problems(loop):
            print(f"  {llm.one_line(problem, 1000)}", file=sys.stderr)
        loop.show(f"planner: {loop.usage_line()}")
        return ExitCode.TESTS_FAILED
    failed = _write_plan(out, outcome.text, force)
    if failed:
        loop.save(f"not written: {failed}")
        return _error(f"{failed}; the submitted plan is in {loop.transcript}", ExitCode.TESTS_FAILED)
    tasks = len(outcome.plan.tasks) if outcome.plan is not None else 0
    loop.set_phase("handoff", f"wrote {display} ({tasks} task{'' if tasks == 1 else 's'})")
    n = len(outcome.problems)
    loop.save("written, clean" if outcome.clean else f"written with {n} problem{'' if n == 1 else 's'}")
    for p in outcome.problems:
        where = f"{display}:{p.line}:{p.col}" if p.line else display
        loop.show(f"{where}: {llm.one_line(p.for_model(), 1000)}")
    if outcome.problems:
        n = len(outcome.problems)
        loop.show(f"{n} problem{'' if n == 1 else 's'} left after {len(loop.rounds)} rounds (--max-rounds)")
    loop.show(f"planner: {loop.usage_line()}")
    return ExitCode.OK if outcome.clean else ExitCode.TESTS_FAILED


def _last_problems(loop: PlannerLoop) -> list[str]:
    return list(loop.rounds[-1]["problems"]) if loop.rounds else []


def _run_loop(loop: PlannerLoop, system: str, user: str) -> Outcome | int:
    try:
        return loop.run(system, user)
    except (_Stop, ExecutorError, StepTimeout) as exc:
        code = _error(f"planner: {exc}; nothing written", ExitCode.TESTS_FAILED)
        loop.show(f"planner: {loop.usage_line()}")
        return code
    except KeyboardInterrupt:
        return _error("interrupted: nothing written", ExitCode.INTERRUPTED)


def _command(
    args: list[str],
    plugins: list[object] | None,
    usage: str,
    flags: set[str],
    body: Callable[[_Args, Config, Callable[[PlanReview], PlanReview]], int],
) -> int:
    """The frame of ``planrun plan`` and ``planrun review``: ``--help``, the options, the config, then ``body``.

    ``body(opts, config, keep)`` returns the exit code; a review it passes to
    ``keep`` is closed at the end, however it ends. A planrun error is one
    line; anything else is an internal error with its traceback.
    """
    from planrun.cli import build_config

    if "-h" in args or "--help" in args:
        print(usage)
        return ExitCode.OK
    opened: list[PlanReview] = []

    def keep(review: PlanReview) -> PlanReview:
        opened.append(review)
        return review

    try:
        opts = _parse(args, flags)
        try:
            config = build_config(opts.rest, plugins)
        except ParserExit as exc:
            return exc.status
        return body(opts, config, keep)
    except PlanrunError as exc:
        return _error(str(exc))
    except Exception:  # a bug in planrun or a plugin: the one case with a traceback
        return _internal_error()
    finally:
        for review in opened:
            review.close()


def plan_main(args: list[str], plugins: list[object] | None = None) -> int:
    """``planrun plan "REQUEST" -o OUT ...``: the exit code."""
    flags = {"-o", "--output", "--context", "--max-rounds", "--interactive", "--force"}
    return _command(args, plugins, PLAN_USAGE, flags, _plan)


def _plan(opts: _Args, config: Config, keep: Callable[[PlanReview], PlanReview]) -> int:
    from planrun.session import Session

    requests = list(config.option.paths)
    if len(requests) != 1 or not requests[0].strip():
        raise UsageError('planrun plan takes one "REQUEST" (quote it)' + (f", got {len(requests)}" if requests else ""))
    out = _check_out(opts.out, opts.force)  # before anything is sent
    context = _context(config, opts.context)
    settings = _settings(config, "planrun plan")
    system, _source = planprompt.planner_prompt(config)
    if opts.interactive and not sys.stdin.isatty():
        raise UsageError("--interactive needs a terminal: stdin is not one")
    scope = Session(config).scope_for(Path(os.path.abspath(out)).parent)
    review = keep(PlanReview(config, scope, out, require_assumptions=not opts.interactive))
    loop = PlannerLoop(
        config,
        settings,
        context=context,
        interactive=opts.interactive,
        review=review,
        max_rounds=opts.max_rounds,
        transcript=_transcript_path(config, out),
        command="plan",
    )
    kinds = sorted(scope.registry.kinds)
    forms = [form for form, _, _ in scope.compiler._sentence_forms()]
    user = planprompt.request_prompt(requests[0], str(context), opts.interactive, kinds, forms)
    loop.show(
        loop.redact(
            f"planrun plan: model {settings.model} at {settings.base_url or 'https://api.openai.com/v1'},"
            f" context {context} (read-only)"
        )
    )
    if not opts.interactive:
        loop.set_phase("interview", "not interactive: the planner records its assumptions")
    result = _run_loop(loop, system, user)
    if isinstance(result, int):
        return result
    return _finish(loop, result, out, opts.force, config)


def review_main(args: list[str], plugins: list[object] | None = None) -> int:
    """``planrun review PLAN [--fix -o OUT]``: the exit code."""
    return _command(args, plugins, REVIEW_USAGE, {"-o", "--output", "--max-rounds", "--force", "--fix"}, _review)


def _review(opts: _Args, config: Config, keep: Callable[[PlanReview], PlanReview]) -> int:
    from planrun.lint import _from_error, _report, _suppress, lint_plan
    from planrun.session import Session

    review: PlanReview | None = None
    paths = list(config.option.paths)
    if len(paths) != 1:
        raise UsageError("planrun review takes one PLAN file" + (f", got {len(paths)}" if paths else ""))
    plan_path = one_file(paths[0])
    if opts.out is not None and not opts.fix:
        raise UsageError("-o OUT goes with --fix (review never changes a file otherwise)")
    out = _check_out(opts.out, opts.force) if opts.fix else None
    settings = llm.LLMSettings(config)
    if opts.fix or settings.model:
        settings = _settings(config, "planrun review --fix" if opts.fix else "planrun review")
    session = Session(config)
    session.collect()
    findings = [_from_error(err) for err in session.collection_errors]
    for cplan in session.plans:
        findings.extend(_suppress(cplan, list(lint_plan(cplan))))
    findings.sort(key=lambda f: (f.path, f.line, f.col, f.code))
    if not settings.model:
        _report("text", findings, len(session.plans), len({e.path for e in session.collection_errors}))
        if session.collection_errors:
            return ExitCode.INTERRUPTED
        return ExitCode.TESTS_FAILED if findings else ExitCode.OK
    text = _read_plan_text(plan_path, config.option.max_plan_bytes)
    display = config.display_path(plan_path)
    static = [f"{f.code} {f.message} (line {f.line})" for f in findings]
    system, _source = planprompt.planner_prompt(config)
    folder = Path(os.path.abspath(out if out is not None else plan_path)).parent
    scope = Session(config).scope_for(folder)
    if out is not None:
        review = keep(PlanReview(config, scope, out, require_assumptions=False))
    loop = PlannerLoop(
        config,
        settings,
        context=Path(config.rootdir),
        interactive=False,
        review=review,
        max_rounds=opts.max_rounds,
        transcript=_transcript_path(config, plan_path, "review-"),
        command="review --fix" if opts.fix else "review",
    )
    user = planprompt.plan_prompt(
        planprompt.FIX_PROMPT if opts.fix else planprompt.REVIEW_PROMPT, display, text, static
    )
    loop.show(f"planrun review: {printable(display)}, model {settings.model} (read-only)")
    result = _run_loop(loop, system, user)
    if isinstance(result, int):
        return result
    if out is not None:
        return _finish(loop, result, out, opts.force, config)
    cplan = session.plans[0] if session.plans else None
    for item in result.findings or []:
        loc = parse_dotted(item["path"])
        where = cplan.source.locate(loc) if cplan is not None else None
        at = f"{display}:{where.line}:{where.col}" if where is not None and where.line else display
        loop.show(f"{at}: GAP {llm.one_line(item['path'], 100)}: {llm.one_line(item['message'], 500)}")
    _report("text", findings, len(session.plans), len({e.path for e in session.collection_errors}))
    gaps = len(result.findings or [])
    loop.show(f"{gaps} gap finding{'' if gaps == 1 else 's'}; planner: {loop.usage_line()}")
    if session.collection_errors:
        return ExitCode.INTERRUPTED
    return ExitCode.TESTS_FAILED if findings or gaps else ExitCode.OK


def read_answer(stream: Any) -> bytes:
    """One line typed on the terminal ``stream``; Ctrl-C interrupts it, however the signal falls.

    A plain blocking read is not interrupted by a signal that arrives just
    before it starts: the signal's C handler has run, Python's (which raises
    KeyboardInterrupt) waits until the read returns, that is until Enter.
    Waiting in ``select`` on the terminal and on a wakeup pipe closes that
    window: the signal always makes the pipe readable, and Python's handler
    runs as soon as ``select`` returns. Not a file, or not the main thread:
    a plain read.
    """
    import signal
    import threading

    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0 or threading.current_thread() is not threading.main_thread():
        return stream.buffer.readline() if hasattr(stream, "buffer") else stream.readline().encode()  # type: ignore[no-any-return]
    import select

    wake_r, wake_w = os.pipe()
    try:
        os.set_blocking(wake_w, False)
        old = signal.set_wakeup_fd(wake_w)
        try:
            while True:
                ready, _, _ = select.select([fd, wake_r], [], [])
                if fd in ready:
                    return os.read(fd, 1 << 16)  # a terminal in canonical mode gives one line; b"" is Ctrl-D
                os.read(wake_r, 512)  # a signal came: Ctrl-C has raised by now; one absorbed waits on
        finally:
            signal.set_wakeup_fd(old)
    finally:
        os.close(wake_r)
        os.close(wake_w)
