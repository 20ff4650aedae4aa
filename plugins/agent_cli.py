"""The ``agent-cli`` executor: an external coding agent performs each task, non-interactively.

Choose it with ``--executor agent-cli`` and either a preset (``--agent claude``,
config ``agent``) or a command template (``--agent-cmd 'TEMPLATE'``, config
``agent_cmd``). Each task runs the agent once per attempt, in the workdir, in
its own process group, with the task's timeout; whatever it leaves running
is killed with it. The prompt is the same as every agent executor's: the
role (:func:`planrun.agentprompt.system_prompt`), a note on how to report
from a CLI (:data:`CLI_NOTE`), the task's context
(:func:`planrun.agentprompt.task_prompt`) and, on a retry, the failure
report of the previous attempt (:func:`planrun.agentprompt.feedback_prompt`).

The agent runs with the user's rights and the user's environment (agent CLIs
read their own credentials from it); planrun has no secret of its own to hide
from it. What it may change is not enforced here: the scope guard compares
the workdir before and after and fails the task for changes outside its files.

**Templates.** A template is split like a shell command line (``shlex``), then
each word is expanded on its own, never through a shell: ``{prompt}`` (the
whole prompt as one argument), ``{prompt_file}`` (the path of a file holding
it, outside the workdir, removed afterwards), ``{workdir}``, ``{model}``
(``--model`` or config ``model``; a template that uses it needs one) and
``{{``/``}}`` for literal braces. A word that is exactly ``{files}`` becomes one
argument per file of the task. A word that is exactly ``{model_args}`` (the
presets use it) becomes the preset's model options when a model is set, and
nothing otherwise.

**What a command may print** (the contract for ``--agent-cmd``): the last line
of stdout that is a JSON object (or the whole of stdout, when it is one) may
carry ``usage`` (``input_tokens``/``output_tokens`` or
``prompt_tokens``/``completion_tokens``), ``total_cost_usd`` or ``cost``,
``result`` (the final message: the summary dependents see), ``is_error``
(true: the task failed) and ``blocked`` (a reason: the task is blocked).
Without one, the summary is the last lines of stdout. In any final message, a
line starting with ``BLOCKED:`` ends the task as blocked with the rest of the
line as its reason. A non-zero exit status fails the task with the output's
tail.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import json
import math
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun import (
    ExecutionContext,
    ExecutionResult,
    Executor,
    ExecutorKind,
    StepTimeout,
    UsageError,
    hookimpl,
)

if TYPE_CHECKING:
    from planrun import Task
    from planrun.config import Config
    from planrun.session import Session

NAME = "agent-cli"


@dataclass(frozen=True)
class Preset:
    """A known agent CLI: its argv template and how to read what it prints.

    :param argv: the template, one word per argument (see the module doc).
    :param model: the words ``{model_args}`` stands for when a model is set.
    :param output: the parser of its stdout: ``claude``, ``codex``,
        ``gemini``, ``opencode``, ``aider`` or ``generic``.
    """

    argv: tuple[str, ...]
    model: tuple[str, ...]
    output: str


#: The presets. Each one runs its CLI without questions, allowed to edit files
#: in the workdir (and no more than its own defaults allow otherwise), with
#: machine-readable output where the CLI has one.
PRESETS: Mapping[str, Preset] = {
    # Claude Code: print mode, one JSON result object; edits accepted, other tools as configured.
    "claude": Preset(
        ("claude", "-p", "{prompt}", "--output-format", "json", "--permission-mode", "acceptEdits", "{model_args}"),
        ("--model", "{model}"),
        "claude",
    ),
    # Codex: JSONL events; writes confined to the workdir by its own sandbox; no git repository needed.
    "codex": Preset(
        (
            "codex",
            "exec",
            "--json",
            "--color",
            "never",
            "--skip-git-repo-check",
            "--sandbox",
            "workspace-write",
            "-C",
            "{workdir}",
            "{model_args}",
            "{prompt}",
        ),
        ("-m", "{model}"),
        "codex",
    ),
    # Gemini CLI: one JSON object; edits approved automatically.
    "gemini": Preset(
        ("gemini", "-p", "{prompt}", "--output-format", "json", "--approval-mode", "auto_edit", "{model_args}"),
        ("-m", "{model}"),
        "gemini",
    ),
    # opencode: raw JSON events.
    "opencode": Preset(
        ("opencode", "run", "--format", "json", "--dir", "{workdir}", "{model_args}", "{prompt}"),
        ("-m", "{model}"),
        "opencode",
    ),
    # aider: no JSON output; the task's files are added to the chat; no commits, no git, no questions.
    "aider": Preset(
        (
            "aider",
            "--message-file",
            "{prompt_file}",
            "--yes-always",
            "--no-pretty",
            "--no-stream",
            "--no-auto-commits",
            "--no-git",
            "--no-check-update",
            "--no-show-model-warnings",
            "--analytics-disable",
            "{model_args}",
            "--",
            "{files}",
        ),
        ("--model", "{model}"),
        "aider",
    ),
}

#: Appended to the role prompt: an agent CLI has no ``report_blocked`` or ``finish`` tool.
CLI_NOTE = """\
You run as a command-line agent: there are no report_blocked or finish tools.
If you are blocked, end with a line that starts with "BLOCKED:" followed by
the reason, and change nothing. Otherwise end with a short summary (one to
three sentences) of what you changed.
"""

_PLACEHOLDERS = ("prompt", "prompt_file", "workdir", "model")
_WORD = re.compile(r"\{\{|\}\}|\{([A-Za-z_]*)\}")
_SUMMARY_CHARS = 2000
_SUMMARY_LINES = 20
_REASON_CHARS = 500
#: The longest single argument Linux passes to a program (``MAX_ARG_STRLEN``, NUL included).
_MAX_ARG = 131072


@dataclass(frozen=True)
class AgentSpec:
    """The agent a run uses: resolved from the options and config, checked before anything runs."""

    label: str  # the preset's name, or "custom" for a template
    source: str  # where it was chosen: "--agent", "--agent-cmd", "[tool.planrun] agent", ...
    words: tuple[str, ...]
    model_words: tuple[str, ...]
    output: str
    model: str | None
    #: The template as written (a preset's words joined), for messages.
    shown: str = ""

    def argv(self, *, prompt: str, prompt_file: str, workdir: str, files: Sequence[str] = ()) -> list[str]:
        """The argument vector for one attempt."""
        values = {"prompt": prompt, "prompt_file": prompt_file, "workdir": workdir, "model": self.model or ""}
        values = {k: v.replace("\x00", "\ufffd") for k, v in values.items()}  # no argument can hold a NUL
        argv: list[str] = []
        for word in self.words:
            if word == "{files}":
                argv.extend(files)
            elif word == "{model_args}":
                if self.model:
                    argv.extend(_expand(w, values) for w in self.model_words)
            else:
                argv.append(_expand(word, values))
        return argv

    def describe(self) -> str:
        """The template as one line, for messages (placeholders unexpanded)."""
        return self.shown or " ".join(self.words)


def _expand(word: str, values: Mapping[str, str]) -> str:
    """One word with its placeholders replaced, in one pass (a value is never expanded again)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        return values[m.group(1)]

    return _WORD.sub(sub, word)


def _placeholders(word: str) -> list[str]:
    return [m.group(1) for m in _WORD.finditer(word) if m.group(1) is not None]


def preset_argv(
    name: str,
    *,
    prompt: str,
    prompt_file: str,
    workdir: str,
    model: str | None = None,
    files: Sequence[str] = (),
) -> list[str]:
    """The exact argument vector preset ``name`` runs (for documentation and tests)."""
    p = PRESETS[name]
    spec = AgentSpec(name, "--agent", p.argv, p.model, p.output, model)
    return spec.argv(prompt=prompt, prompt_file=prompt_file, workdir=workdir, files=files)


def _string(value: Any, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{source} must be a non-empty string, got {value!r}")
    return value


def _model(config: Config) -> str | None:
    model = config.getoption("model")
    if model is None:
        model = _string(config.inicfg.get("model"), "[tool.planrun] model")
    return model or None


def agent_spec(config: Config) -> AgentSpec:
    """The agent chosen by ``--agent``/``--agent-cmd``, else config ``agent``/``agent_cmd``.

    :raises UsageError: none chosen, both chosen in the same place, an unknown
        preset, a template that does not split, uses an unknown placeholder,
        passes no prompt, or uses ``{model}`` with no model set.
    """
    agent = _string(config.getoption("agent"), "--agent")
    cmd = _string(config.getoption("agent_cmd"), "--agent-cmd")
    where, base = ("--agent", "--agent-cmd"), config.invocation_dir
    if agent is None and cmd is None:
        agent = _string(config.inicfg.get("agent"), "[tool.planrun] agent")
        cmd = _string(config.inicfg.get("agent_cmd"), "[tool.planrun] agent_cmd")
        where, base = ("[tool.planrun] agent", "[tool.planrun] agent_cmd"), config.rootdir
    if agent is not None and cmd is not None:
        raise UsageError(f"{where[0]} and {where[1]} both choose the agent: give one of them")
    presets = ", ".join(sorted(PRESETS))
    if agent is None and cmd is None:
        raise UsageError(
            f"the {NAME} executor needs an agent: --agent NAME ({presets}) or --agent-cmd 'TEMPLATE'"
            " (or [tool.planrun] agent / agent_cmd)"
        )
    model = _model(config)
    if agent is not None:
        if agent not in PRESETS:
            close = difflib.get_close_matches(agent, list(PRESETS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{where[0]}: unknown agent preset {agent!r}{hint}; the presets are: {presets}")
        p = PRESETS[agent]
        return AgentSpec(agent, where[0], p.argv, p.model, p.output, model)
    assert cmd is not None
    try:
        words = shlex.split(cmd)
    except ValueError as exc:
        raise UsageError(f"{where[1]}: cannot split {cmd!r}: {str(exc).lower()}") from None
    if not words:
        raise UsageError(f"{where[1]} is empty")
    if "\x00" in cmd:
        raise UsageError(f"{where[1]}: a NUL byte cannot be part of a command line")
    used: set[str] = set()
    for word in words:
        if word == "{files}":
            continue
        for name in _placeholders(word):
            if name == "files":
                raise UsageError(f"{where[1]}: {{files}} must be a word of its own (it becomes one argument per file)")
            if name not in _PLACEHOLDERS:
                known = ", ".join("{" + n + "}" for n in (*_PLACEHOLDERS, "files"))
                raise UsageError(f"{where[1]}: unknown placeholder {{{name}}} in {cmd!r} (known: {known})")
            used.add(name)
    if not used & {"prompt", "prompt_file"}:
        raise UsageError(f"{where[1]}: the template passes no task: use {{prompt}} or {{prompt_file}} in {cmd!r}")
    if "model" in used and not model:
        raise UsageError(f"{where[1]} uses {{model}}, but no model is set (--model or [tool.planrun] model)")
    if "{" in words[0]:
        raise UsageError(f"{where[1]}: the program itself cannot be a placeholder: {words[0]!r}")
    if "/" in words[0] and not os.path.isabs(words[0]):
        words[0] = os.path.join(base, words[0])  # relative to where it was written, not to the workdir
    return AgentSpec("custom", where[1], tuple(words), (), "generic", model, cmd.strip())


def check_binary(spec: AgentSpec) -> None:
    """Raise :class:`UsageError` unless the agent's program can be run."""
    program = spec.words[0]
    if shutil.which(program) is not None:
        return
    what = f"preset {spec.label!r}" if spec.label != "custom" else f"{spec.source} {spec.describe()!r}"
    where = "is not an executable file" if "/" in program else "is not on PATH"
    raise UsageError(f"{NAME}: agent program {program!r} {where} ({what})")


# -- what the agent printed -------------------------------------------------


@dataclass
class AgentOutput:
    """What planrun reads from an agent's stdout."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    message: str | None = None  # its final message, when its output carries one
    error: str = ""  # an error the agent itself reported
    blocked: str | None = None  # a reason, when it said it is blocked
    notes: list[str] = field(default_factory=list)  # error events worth showing on a failure


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _objects(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects in ``stdout``: the whole of it when it is one, else each line that is one."""
    whole = _load(stdout.strip())
    if whole is not None:
        return [whole]
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            obj = _load(line)
            if obj is not None:
                found.append(obj)
    return found


def _load(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _usage(obj: dict[str, Any]) -> tuple[int, int]:
    """Tokens in and out of a ``usage`` object, in Anthropic's or OpenAI's names.

    Anthropic counts cache reads and writes apart from ``input_tokens``: they
    are added. OpenAI's ``cached_input_tokens`` are part of ``input_tokens``.
    """
    usage = _dict(obj.get("usage"))
    t_in = _int(usage.get("input_tokens")) or _int(usage.get("prompt_tokens"))
    t_in += _int(usage.get("cache_creation_input_tokens")) + _int(usage.get("cache_read_input_tokens"))
    t_out = _int(usage.get("output_tokens")) or _int(usage.get("completion_tokens"))
    return t_in, t_out


def _parse_claude(objects: list[dict[str, Any]], out: AgentOutput) -> None:
    results = [o for o in objects if o.get("type") == "result"]
    if not results:
        return
    r = results[-1]
    out.tokens_in, out.tokens_out = _usage(r)
    out.cost = _float(r.get("total_cost_usd"))
    out.message = _text(r.get("result"))
    subtype = _text(r.get("subtype")) or ""
    if r.get("is_error") is True or subtype not in ("", "success"):
        out.error = f"{subtype or 'error'}: {out.message or '(no message)'}"


def _parse_codex(objects: list[dict[str, Any]], out: AgentOutput) -> None:
    for event in objects:
        kind = event.get("type")
        if kind == "turn.completed":
            t_in, t_out = _usage(event)
            out.tokens_in += t_in
            out.tokens_out += t_out
        elif kind == "item.completed":
            item = _dict(event.get("item"))
            if item.get("type") == "agent_message" and _text(item.get("text")) is not None:
                out.message = item["text"]
        elif kind == "turn.failed":
            out.error = _text(_dict(event.get("error")).get("message")) or "turn failed"
        elif kind == "error":
            out.notes.append(_text(event.get("message")) or "error")


def _parse_gemini(objects: list[dict[str, Any]], out: AgentOutput) -> None:
    if not objects:
        return
    r = objects[-1]
    out.message = _text(r.get("response"))
    for model in _dict(_dict(r.get("stats")).get("models")).values():
        tokens = _dict(_dict(model).get("tokens"))
        out.tokens_in += _int(tokens.get("prompt"))
        out.tokens_out += _int(tokens.get("candidates"))
    error = r.get("error")
    if error:
        out.error = _text(_dict(error).get("message")) or _text(error) or "error"


def _parse_opencode(objects: list[dict[str, Any]], out: AgentOutput) -> None:
    for event in objects:
        kind, part = event.get("type"), _dict(event.get("part"))
        if kind == "step_finish":
            tokens = _dict(part.get("tokens"))
            out.tokens_in += _int(tokens.get("input"))
            out.tokens_out += _int(tokens.get("output"))
            cost = _float(part.get("cost"))
            if cost is not None:
                out.cost = (out.cost or 0.0) + cost
        elif kind == "text" and _text(part.get("text")):
            out.message = part["text"]
        elif kind == "error":
            error = _dict(event.get("error"))
            out.error = _text(_dict(error.get("data")).get("message")) or _text(error.get("name")) or "error"


_AIDER_TOKENS = re.compile(
    r"^Tokens: ([\d.]+)([kM]?) sent(?:, [\d.]+[kM]? cache (?:write|hit))*, ([\d.]+)([kM]?) received\."
    r"(?: Cost: \$([\d.]+) message)?",
    re.M,
)
_SCALE = {"": 1, "k": 1000, "M": 1_000_000}


def _parse_aider(stdout: str, out: AgentOutput) -> None:
    """aider prints no JSON: read its ``Tokens: 2.1k sent, 120 received. Cost: $0.01 message, ...`` lines."""
    for m in _AIDER_TOKENS.finditer(stdout):
        try:
            out.tokens_in += round(float(m[1]) * _SCALE[m[2]])
            out.tokens_out += round(float(m[3]) * _SCALE[m[4]])
            if m[5]:
                out.cost = (out.cost or 0.0) + float(m[5])
        except ValueError:
            continue


_GENERIC_KEYS = frozenset({"usage", "total_cost_usd", "cost", "result", "is_error", "blocked"})


def _parse_generic(objects: list[dict[str, Any]], out: AgentOutput) -> None:
    reports = [o for o in objects if _GENERIC_KEYS & o.keys()]
    if not reports:
        return
    r = reports[-1]
    out.tokens_in, out.tokens_out = _usage(r)
    out.cost = _float(r.get("total_cost_usd"))
    if out.cost is None:
        out.cost = _float(r.get("cost"))
    out.message = _text(r.get("result"))
    blocked = r.get("blocked")
    if isinstance(blocked, str) and blocked.strip():
        out.blocked = blocked.strip()
    if r.get("is_error") is True:
        out.error = out.message or "the agent reported an error"


def parse_output(output: str, stdout: str) -> AgentOutput:
    """Read tokens, cost, the final message and any reported error or block from an agent's stdout.

    :param output: the parser: a preset's ``output`` or ``generic``.
    """
    out = AgentOutput()
    if output == "aider":
        _parse_aider(stdout, out)
    else:
        parser = {
            "claude": _parse_claude,
            "codex": _parse_codex,
            "gemini": _parse_gemini,
            "opencode": _parse_opencode,
        }.get(output, _parse_generic)
        parser(_objects(stdout), out)
    if out.blocked is None:
        out.blocked = _blocked_line(out.message if out.message is not None else _last_lines(stdout))
    return out


def _blocked_line(text: str) -> str | None:
    """The reason of the last line of ``text`` that starts with ``BLOCKED:``, if any."""
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped[:8].upper() == "BLOCKED:":
            return stripped[8:].strip()[:_REASON_CHARS] or "(no reason given)"
    return None


def _last_lines(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][-_SUMMARY_LINES:]
    return _cap("\n".join(lines))


def _cap(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _SUMMARY_CHARS else "..." + text[-_SUMMARY_CHARS:]


# -- the executor -----------------------------------------------------------


def _inside(path: str, root: str) -> bool:
    return path == root or os.path.commonpath((path, root)) == root


@contextmanager
def prompt_file(text: str, workdir: Path) -> Iterator[str]:
    """``text`` in a private temporary file that is never inside ``workdir`` (the scope guard never sees it)."""
    root = os.path.realpath(workdir)
    candidates = [tempfile.gettempdir(), "/tmp", "/var/tmp", os.path.expanduser("~")]
    folder = next((c for c in candidates if os.path.isdir(c) and not _inside(os.path.realpath(c), root)), None)
    if folder is None:
        raise UsageError(f"{NAME}: no temporary folder outside the workdir {workdir} for the prompt file")
    fd, path = tempfile.mkstemp(prefix="planrun-prompt-", suffix=".md", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        yield path
    finally:
        os.unlink(path)


def _safe_files(files: Sequence[str]) -> list[str]:
    """The task's files that are plain relative paths inside the workdir (others are not handed to the agent)."""
    return [f for f in files if f and "\x00" not in f and not os.path.isabs(f) and ".." not in Path(f).parts]


class AgentCliExecutor(Executor):
    """Runs an external coding agent once per attempt; see the module documentation."""

    name = NAME
    max_attempts = 2

    def __init__(self, spec: AgentSpec, system_prompt: str) -> None:
        self.spec = spec
        self.system_prompt = system_prompt

    def prompt(self, task: Task, context: ExecutionContext) -> str:
        """The whole prompt of this attempt: role, CLI note, the task's context, the last failure report."""
        from planrun import agentprompt  # the prompts: only when an agent CLI runs

        parts = [self.system_prompt.rstrip(), CLI_NOTE.rstrip(), agentprompt.task_prompt(task, context).rstrip()]
        if context.attempt > 1 and context.feedback:
            parts.append(
                f"# Attempt {context.attempt}: the previous attempt did not pass\n"
                + agentprompt.feedback_prompt(context.feedback)
            )
        # Text a file or an argument can hold: lone surrogates (from a plan's escapes) become "?".
        return ("\n\n".join(parts) + "\n").encode("utf-8", "replace").decode("utf-8")

    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        spec = self.spec
        prompt = self.prompt(task, context)
        label = f"agent {spec.label}" if spec.label != "custom" else f"agent {Path(spec.words[0]).name}"
        with prompt_file(prompt, context.workdir) as path:
            argv = spec.argv(
                prompt=prompt, prompt_file=path, workdir=str(context.workdir), files=_safe_files(task.files)
            )
            too_long = [a for a in argv if len(a.encode("utf-8", "surrogateescape")) >= _MAX_ARG]
            if too_long:
                return ExecutionResult(
                    status="failed",
                    message=f"{label}: the prompt is {len(too_long[0].encode())} bytes, over the"
                    f" {_MAX_ARG - 1}-byte limit of one command-line argument (use a template with {{prompt_file}})",
                )
            context.progress(tool=label)
            try:
                # The agent CLI reads its own API key from planrun's environment: it gets all of it.
                proc = context.run(argv, timeout=context.timeout, env=dict(os.environ))
            except OSError as exc:
                hint = " (the argument list is too long: use {prompt_file})" if exc.errno == errno.E2BIG else ""
                return ExecutionResult(
                    status="failed",
                    message=f"{label}: cannot start {spec.words[0]!r}: {exc.strerror or exc}{hint}",
                    evidence=f"command: {spec.describe()}",
                )
        if proc.timed_out:
            raise StepTimeout(f"{label} killed after {context.timeout:g}s (the task's timeout)")
        parsed = parse_output(spec.output, proc.stdout)
        tail = proc.output_tail() or "(no output)"
        output = f"$ {spec.describe()}\n{tail}"
        summary = _cap(parsed.message) if parsed.message else _last_lines(proc.stdout)
        common: dict[str, Any] = dict(
            tokens_in=parsed.tokens_in, tokens_out=parsed.tokens_out, cost=parsed.cost, output=output
        )
        if parsed.blocked is not None:
            return ExecutionResult(status="blocked", message=f"{label}: {parsed.blocked}", **common)
        evidence = f"command: {spec.describe()}\noutput tail:\n{tail}"
        if proc.returncode != 0:
            code = proc.returncode or 0
            how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
            said = parsed.error or (parsed.notes[-1] if parsed.notes else "")
            return ExecutionResult(
                status="failed",
                message=f"{label} {how}" + (f": {said.splitlines()[0]}" if said.strip() else ""),
                evidence=evidence,
                **common,
            )
        if parsed.error:
            return ExecutionResult(
                status="failed",
                message=f"{label} reported an error: {parsed.error.strip().splitlines()[0]}",
                evidence=evidence,
                **common,
            )
        return ExecutionResult(status="done", summary=summary, **common)


def _executor(config: Config) -> AgentCliExecutor:
    from planrun import agentprompt  # the prompts: only when an agent CLI runs

    spec = agent_spec(config)
    return AgentCliExecutor(spec, agentprompt.system_prompt(config)[0])


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("agent-cli executor")
    group.add_argument(
        "--agent",
        metavar="NAME",
        default=None,
        help=f"the agent CLI --executor {NAME} runs: a preset ({', '.join(sorted(PRESETS))})",
    )
    group.add_argument(
        "--agent-cmd",
        dest="agent_cmd",
        metavar="TEMPLATE",
        default=None,
        help=f"the agent command --executor {NAME} runs, with {{prompt}}, {{prompt_file}}, {{workdir}}, {{model}}",
    )


@hookimpl
def planrun_configure(config: Config) -> None:
    """``--agent``/``--agent-cmd`` without ``--executor`` (and no configured one) mean ``--executor agent-cli``."""
    chosen = config.getoption("agent") is not None or config.getoption("agent_cmd") is not None
    if chosen and config.getoption("executor") is None and config.default_executor is None:
        config.default_executor = NAME


@hookimpl
def planrun_register_executors() -> list[ExecutorKind]:
    return [ExecutorKind(NAME, _executor)]


@hookimpl
def planrun_collection_finish(session: Session) -> None:
    """Before anything runs: the agent is chosen, its template sound, its program installed."""
    config = session.config
    if session.collection_errors or config.getoption("collectonly"):
        return
    if not any(session.executor_name_for(item) == NAME for item in session.items):
        return
    spec = agent_spec(config)
    check_binary(spec)
    from planrun import agentprompt  # the prompts: only when an agent CLI runs

    agentprompt.system_prompt(config)  # a bad executor_prompt is a usage error now, not in the first task
