"""The terminal reporter: pytest's report shape, rendered with rich."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from planrun import (
    CriterionResult,
    ItemReport,
    __version__,
    hookimpl,
    human,
    lines_of,
    money,
    outcome_counts,
    printable,
    whole_number,
)

if TYPE_CHECKING:
    from rich.console import Console

    from planrun import ExecutionContext, ExecutionResult, Executor, Task
    from planrun.config import Config
    from planrun.pluginmanager import PlanrunPluginManager
    from planrun.session import Session

_LETTER = {"passed": ".", "failed": "F", "error": "E", "blocked": "B", "skipped": "s", "interrupted": "!"}
_STYLE = {
    "passed": "green",
    "failed": "red",
    "error": "red",
    "blocked": "red",
    "skipped": "yellow",
    "interrupted": "red",
    "deselected": "yellow",
    "warnings": "yellow",
}
_SUMMARY_ORDER = ("failed", "passed", "skipped", "deselected", "blocked", "interrupted", "warnings", "error")


_PLURALS = {"criterion": "criteria"}

#: What the ``-r`` characters select for the short summary, as pytest's (f includes blocked: both fail the run).
_REPORT_CHARS = {
    "f": ("failed", "blocked"),
    "E": ("error", "interrupted"),
    "s": ("skipped",),
    "B": ("blocked",),
    "p": ("passed",),
    "P": (),  # the PASSES section
}
_REPORT_ALIASES = {"a": "sBEf", "A": "PpsBEf"}
#: A line of a message or a summary is never printed longer than this (evidence: the terminal width).
LONG_LINE = 500
#: ``--durations`` hides items faster than this unless ``-vv``, as pytest does.
DURATIONS_MIN = 0.005


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else _PLURALS.get(word, word + 's')}"


def _reportchars(text: str) -> str:
    """``-r CHARS``: the letters in order, with ``a``/``A`` expanded and ``N`` clearing what came before."""
    chars = ""
    for char in text:
        if char == "N":
            chars = ""
        elif char in _REPORT_ALIASES or char in _REPORT_CHARS:
            chars += "".join(c for c in _REPORT_ALIASES.get(char, char) if c not in chars)
        else:
            known = "".join([*_REPORT_CHARS, *_REPORT_ALIASES, "N"])
            raise argparse.ArgumentTypeError(f"unknown character {char!r} in {text!r} (known: {known})")
    return chars


_durations = whole_number(0, "all")


def cut(line: str, width: int) -> str:
    """``line`` made printable and at most ``width`` characters, ending with how much was cut."""
    shown = printable(line[: width + 1])
    if len(line) <= width and len(shown) <= width:
        return shown
    # Reserve room for the marker, then keep the longest prefix whose escaped form fits.
    room = max(width - len(f"... [{len(line)} more characters]"), 1)
    lo, hi = 0, min(room, len(line))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(printable(line[:mid])) <= room:
            lo = mid
        else:
            hi = mid - 1
    return f"{printable(line[:lo])}... [{len(line) - lo} more characters]"


def is_agent(executor: str | None) -> bool:
    """Whether ``executor`` is an agent's: anything that performs a task other than a shell step."""
    return executor is not None and executor != "shell"


def usage(reports: Iterable[ItemReport], attempts: str | None = None) -> str:
    """``tokens 12.3k in / 1.1k out, 3 attempts, $0.04`` for the agent tasks among ``reports``.

    ``attempts`` replaces the summed count (``attempt 2/2`` for one task).
    The cost is "cost unknown" when a task used tokens and no price was known for them.
    """
    reports = [r for r in reports if is_agent(r.executor)]
    text = f"tokens {human(sum(r.tokens_in for r in reports))} in / {human(sum(r.tokens_out for r in reports))} out"
    text += f", {attempts or _plural(sum(r.attempts for r in reports), 'attempt')}"
    if any(r.cost is None and (r.tokens_in or r.tokens_out) for r in reports):
        text += ", cost unknown"
    elif any(r.cost is not None for r in reports):
        text += f", {money(sum(r.cost or 0.0 for r in reports))}"
    return text


def sandbox_name() -> str:
    """What confines the agents' ``run_command``: ``planrun.agenttools.sandbox_name()``, or "none" without it."""
    from importlib import import_module

    try:
        agenttools = import_module("planrun.agenttools")
    except ImportError:
        return "none"
    return str(agenttools.sandbox_name())


def want_color(choice: str, file: Any) -> bool:
    """Colour or not, as pytest decides: ``--color``, then PY_COLORS, NO_COLOR, FORCE_COLOR, then a TTY."""
    if choice in ("yes", "no"):
        return choice == "yes"
    env = os.environ
    if env.get("PY_COLORS") in ("0", "1"):
        return env["PY_COLORS"] == "1"
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty()) and env.get("TERM") != "dumb"


def is_tty(file: Any) -> bool:
    """Whether ``file`` is a terminal that understands cursor movement."""
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
    except ValueError:  # a closed file
        return False


class StatusLine:
    """The transient line under the progress that says what an executor is doing now (a TTY only).

    ``⠋ plans/x.plan.yaml::two  attempt 1/2  turn 3  write_file  1.2k in / 300 out  12s``

    It is redrawn at most every :attr:`INTERVAL` seconds, by a timer thread
    too, so the spinner and the elapsed seconds move while a model thinks or
    a command runs. Every other write to the terminal goes through
    :meth:`TerminalReporter.write`, which clears the line first, under the
    same lock: the line never mixes with the progress dots. When the
    progress line is partly written (column > 0), the status goes on the
    line below it and clearing it moves the cursor back to where the
    progress stopped.
    """

    #: Seconds between redraws.
    INTERVAL = 0.1
    #: An executor that never reports progress gets the line after this many seconds.
    QUIET_DELAY = 1.0

    def __init__(self, reporter: TerminalReporter) -> None:
        self.tr = reporter
        self.lock = threading.RLock()
        encoding = (getattr(reporter.file, "encoding", None) or "").lower().replace("-", "")
        utf = encoding.startswith("utf")
        self.frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if utf else "-\\|/"
        self.ellipsis = "…" if utf else "..."
        self.frame = 0
        self.nodeid = ""
        self.attempt = 0
        self.limit: int | None = None  # the attempts the task has, when known
        self.status: dict[str, Any] = {}
        self.phase = ""  # what the runner does after the executor: "checking the criteria"
        self.task_start = 0.0
        self.attempt_start = 0.0
        self.active = False
        self.shown = False
        self.below = False  # drawn on a new line under a partly written progress line
        self.drawn_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, nodeid: str, attempt: int, limit: int | None = None) -> None:
        """An executor starts attempt ``attempt`` (of ``limit``) at ``nodeid``."""
        now = time.monotonic()
        with self.lock:
            if nodeid != self.nodeid:
                self.nodeid, self.task_start = nodeid, now
            self.attempt, self.limit, self.attempt_start, self.status = attempt, limit, now, {}
            self.phase, self.active = "", True
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="planrun-status", daemon=True)
            self._thread.start()

    def update(self, nodeid: str, attempt: int, status: dict[str, Any]) -> None:
        """What the executor reported: merged into what it said before in this attempt."""
        with self.lock:
            if nodeid != self.nodeid or attempt != self.attempt or not self.active:
                self.begin(nodeid, attempt, self.limit if nodeid == self.nodeid else None)
            self.status.update(status)
            if not self.shown or time.monotonic() - self.drawn_at >= self.INTERVAL:
                self.draw()

    def checking(self) -> None:
        """The executor is done, the criteria are being checked: the line goes, and comes back if that takes long."""
        with self.lock:
            self.clear()
            self.status, self.phase, self.attempt_start = {}, "checking the criteria", time.monotonic()

    def end(self) -> None:
        """The attempt is over: the line goes."""
        with self.lock:
            self.active = False
            self.clear()

    def close(self) -> None:
        """The run is over: the line goes and the timer stops."""
        self.end()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _tick(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            with self.lock:
                now = time.monotonic()
                if self.active and (self.shown or self.status or now - self.attempt_start >= self.QUIET_DELAY):
                    try:
                        self.draw()
                    except (OSError, ValueError):  # the terminal went away: the run will notice
                        self.active = False

    def text(self) -> str:
        status = self.status
        parts = [self.frames[self.frame % len(self.frames)], self.nodeid]
        if self.limit is None:
            parts.append(f"attempt {self.attempt}")
        elif self.limit > 1:
            parts.append(f"attempt {self.attempt}/{self.limit}")
        if self.phase:
            parts.append(self.phase)
        if isinstance(status.get("turn"), int):
            parts.append(f"turn {status['turn']}")
        if status.get("tool"):
            parts.append(str(status["tool"]))
        t_in, t_out = status.get("tokens_in"), status.get("tokens_out")
        if isinstance(t_in, int) or isinstance(t_out, int):
            parts.append(
                f"{human(t_in if isinstance(t_in, int) else 0)} in / "
                f"{human(t_out if isinstance(t_out, int) else 0)} out"
            )
        elapsed = int(time.monotonic() - self.task_start)
        parts.append(f"{elapsed}s" if elapsed < 60 else f"{elapsed // 60}m{elapsed % 60:02d}s")
        text = f"{parts[0]} " + "  ".join(parts[1:])
        return printable(text).replace("\n", "\\n").replace("\t", " ")

    def draw(self) -> None:
        """Draw the line, cut to the width (a wrapped line could not be cleared)."""
        from rich.cells import cell_len, set_cell_size

        text = self.text()
        self.frame += 1
        room = max(self.tr.width - 1, 10)
        if cell_len(text) > room:
            text = set_cell_size(text, room - len(self.ellipsis)) + self.ellipsis
        if self.shown:
            out = "\r"
        elif self.tr.column:
            out, self.below = "\n", True
        else:
            out, self.below = "\r", False
        self.tr.file.write(f"{out}{text}\x1b[K")
        self.tr.file.flush()
        self.shown, self.drawn_at = True, time.monotonic()

    def clear(self) -> None:
        """Erase the line and put the cursor back where the reporter left it."""
        if not self.shown:
            return
        out = "\r\x1b[2K"
        if self.below:
            out += "\x1b[1A" + (f"\x1b[{self.tr.column}C" if self.tr.column else "")
        self.shown = self.below = False
        self.tr.file.write(out)
        self.tr.file.flush()


class TerminalReporter:
    """Writes the header, progress, failures and summary of a run."""

    def __init__(self, config: Config, file: Any = None) -> None:
        from rich.console import Console

        self.config = config
        option = config.option
        self.verbosity: int = option.verbose - option.quiet
        self.tb: str = option.tb
        self.reportchars: str = getattr(option, "reportchars", "fE")
        file = file or sys.stdout
        self.colored = want_color(getattr(option, "color", "auto"), file)
        # Colour is decided above, not by rich's own reading of the environment.
        self.console: Console = Console(
            file=file,
            force_terminal=self.colored,
            no_color=not self.colored,
            color_system="standard" if self.colored else None,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
        )
        self.width = self.console.width
        self.file = self.console.file
        self.session: Session | None = None
        self.reports: list[ItemReport] = []
        self.current_plan: str | None = None
        self.column = 0
        self.done = 0
        self.total = 0
        self.any_failed = False
        self.start = time.time()
        # The live status line: a terminal only, and not with -qq (nothing but the final line).
        self.live: StatusLine | None = StatusLine(self) if is_tty(file) and self.verbosity >= -1 else None
        self._prompt: str | None = None
        #: Progress letters not written yet, with their style: off a terminal they go out a line at a time.
        self._pending: list[tuple[str, str | None]] = []

    # -- writing ----------------------------------------------------------

    def write(self, text: str, style: str | None = None) -> None:
        """The one way out to the terminal: every control character in ``text`` is shown escaped."""
        if self._pending:
            self._flush_pending()
        live = self.live
        if live is None:
            self._write(text, style)
            return
        with live.lock:
            live.clear()
            self._write(text, style)

    def _progress_letter(self, letter: str, style: str | None) -> None:
        """One item's letter: written at once on a terminal, else with the rest of its line (one write per line)."""
        if self.live is not None:
            self.write(letter, style)
            return
        pending = self._pending
        if pending and pending[-1][1] == style:
            pending[-1] = (pending[-1][0] + letter, style)
        else:
            pending.append((letter, style))
        self.column += len(letter)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        column = self.column
        for text, style in pending:
            self._write(text, style)
        self.column = column  # counted when the letters were queued

    def _write(self, text: str, style: str | None) -> None:
        text = printable(text)
        if self.colored and style:
            from rich.text import Text

            self.console.print(Text(text, style=style), end="")
        else:
            self.file.write(text)
        nl = text.rfind("\n")
        self.column = len(text) - nl - 1 if nl >= 0 else self.column + len(text)

    def write_line(self, text: str = "", style: str | None = None) -> None:
        if self.column:
            self.write("\n")
        self.write(text + "\n", style)

    def write_block(self, text: str, style: str | None = None, indent: str = "  ", *, evidence: bool = False) -> None:
        """Write the lines of ``text`` indented, each cut to fit: evidence to the width, messages to LONG_LINE."""
        limit = LONG_LINE if not evidence or self.verbosity >= 2 else self.width
        limit = max(limit - len(indent), 20)
        lines = [indent + cut(line, limit) for line in lines_of(text)]
        if lines:
            self.write_line("\n".join(lines), style)

    def write_sep(self, char: str, title: str | None = None, style: str | None = None) -> None:
        if title:
            title = printable(title)  # measured as it is shown (an escape is wider than its character)
            n = max((self.width - len(title) - 2) // (2 * len(char)), 1)
            line = f"{char * n} {title} {char * n}"
            if len(line) < self.width:
                line += char * (self.width - len(line))
        else:
            line = char * self.width
        self.write_line(line, style)

    # -- hooks --------------------------------------------------------------

    @hookimpl
    def planrun_sessionstart(self, session: Session) -> None:
        self.session = session
        self.start = session.start_time
        if self.verbosity < 0:
            return
        self.write_sep("=", "plan session starts", "bold")
        for line in self.header_lines():
            self.write_line(line)

    def header_lines(self) -> list[str]:
        """``platform``, ``rootdir``, ``configfile`` and third-party ``plugins`` lines, as pytest's header."""
        import pluggy

        config = self.config
        lines = [
            f"platform {sys.platform} -- Python {platform.python_version()}, "
            f"planrun-{__version__}, pluggy-{pluggy.__version__}",
            f"rootdir: {config.rootdir}",
        ]
        if config.inipath is not None:
            inipath = config.inipath
            try:
                lines.append(f"configfile: {inipath.relative_to(config.rootdir)}")
            except ValueError:
                lines.append(f"configfile: {inipath}")
        plugins = third_party_plugins(config.pluginmanager)
        if plugins:
            lines.append(f"plugins: {', '.join(plugins)}")
        return lines

    @hookimpl
    def planrun_collection_finish(self, session: Session) -> None:
        self.total = len(session.items)
        if self.verbosity >= 0:
            if any(is_agent(session.executor_name_for(item)) for item in session.items):
                # The last header line: only now is it known whether an agent will run.
                self.write_line(f"sandbox: {sandbox_name()}")
            self.write_line(collected_line(session), "bold")
            results = self.config.hook.planrun_report_collectionfinish(config=self.config, items=session.items)
            for result in reversed(results):  # pluggy returns the last registered first
                for line in [result] if isinstance(result, str) else result:
                    self.write_line(printable(line))
            self.write_line()
        if self.config.option.collectonly:
            self._list_items(session)

    def _list_items(self, session: Session) -> None:
        if self.verbosity < 0:
            for item in session.items:
                self.write_line(item.nodeid)
            return
        current = None
        for item in session.items:
            if item.cplan is not current:
                current = item.cplan
                self.write_line(f"<Plan {current.display} id={current.plan.id}>")
            executor = session.executor_name_for(item)
            label = {
                "task": "Task",
                "prerequisites": "Prerequisites",
                "edge_case": "EdgeCase",
                "verification": "Verification",
            }[item.kind]
            extra = f" executor={executor}" if executor else ""
            self.write_line(f"  <{label} {item.item_id}{extra}>")
            if self.verbosity > 0 and is_agent(executor):
                self.write_line(f"    prompt: {self.prompt_source()}")
            for check in item.checks:
                compiled = json.dumps(check.source, default=str, ensure_ascii=False)
                prefix = f"{check.text!r} -> " if check.text is not None else ""
                if check.text is not None and check.kind == "llm_judge":
                    prefix = f"llm_judge {check.text!r} (from --judge) -> "
                self.write_line(f"    {prefix}{compiled}  [{check.location}]")

    def prompt_source(self) -> str:
        """Which system prompt agents get: "default" or the file's path (read once per run)."""
        if self._prompt is None:
            import planrun.agentprompt

            self._prompt = planrun.agentprompt.system_prompt(self.config)[1]
        return self._prompt

    # -- live status --------------------------------------------------------

    @hookimpl(wrapper=True)
    def planrun_task_execute(
        self, task: Task, executor: Executor, context: ExecutionContext
    ) -> Generator[None, ExecutionResult | None, ExecutionResult | None]:
        """The status line lives while an attempt runs, and goes however it ends."""
        live = self.live
        if live is None:
            return (yield)
        live.begin(context.nodeid, context.attempt, attempt_limit(self.config, executor))
        try:
            result = yield
        except BaseException:
            live.end()
            raise
        live.checking()  # until the item's report (or the next attempt)
        return result

    @hookimpl
    def planrun_task_progress(self, nodeid: str, attempt: int, status: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.update(nodeid, attempt, status)

    # -- reports ------------------------------------------------------------

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        if self.live is not None:
            self.live.end()
        self.reports.append(report)
        self.done += 1
        # An item made during the run (``PLANFILE::regressions``) was not collected: grow the total.
        self.total = max(self.total, self.done)
        if report.outcome in ("failed", "error", "blocked", "interrupted"):
            self.any_failed = True
        if self.verbosity > 0:
            word = report.outcome.upper()
            if self.column:
                self.write("\n")
            if report.plan != self.current_plan:
                self.current_plan = report.plan
                self._workdir_line(report.plan)
            self.write(f"{report.nodeid} ")
            self.write(word, _STYLE[report.outcome])
            self._write_progress()
            if is_agent(report.executor):
                self.write_line(f"    {usage([report], self._attempts(report))}")
            for c in report.criteria:
                mark = " (vacuous)" if c.vacuous else ""
                self.write(f"    {c.name} ")
                self.write(c.outcome.upper() + mark + "\n", _STYLE[c.outcome])
            return
        if report.plan != self.current_plan and self.verbosity == 0:
            if self.current_plan is not None:
                self._write_progress(self.done - 1)
            self.write(f"{report.plan} ")
        elif self.column >= self.width - 7:  # wrap before the "[ NN%]" column, as pytest does
            self._write_progress(self.done - 1)
        self.current_plan = report.plan
        self._progress_letter(_LETTER[report.outcome], _STYLE[report.outcome])

    def _workdir_line(self, plan: str) -> None:
        """``-v``: where the plan's tasks run and its criteria look."""
        session = self.session
        for cplan in session.plans if session is not None else ():
            if cplan.display == plan and cplan.workdir is not None:
                self.write_line(f"{plan}: workdir {cplan.workdir}")
                return

    def _write_progress(self, done: int | None = None) -> None:
        """End the progress line with the share of items reported so far (``done``)."""
        if not self.total:
            return
        done = self.done if done is None else done
        text = f"[{done * 100 // self.total:3d}%]"
        pad = max(self.width - self.column - len(text), 1)
        self.write(" " * pad + text + "\n", "red" if self.any_failed else "green")

    @hookimpl(wrapper=True, tryfirst=True)
    def planrun_sessionfinish(self, session: Session, exitstatus: int) -> Generator[None, None, None]:
        result = yield
        if self._pending:
            self._flush_pending()
        if self.live is not None:
            self.live.close()
        if self.current_plan is not None and self.verbosity <= 0:
            self._write_progress()
        if self.config.option.collectonly:
            self._collect_only_summary(session)
            return result
        if self.reports and self.verbosity >= 0:
            self.write_line()  # pytest's blank line between the progress and what follows
        self.summary(session, session.exitstatus)
        return result

    # -- summary ------------------------------------------------------------

    def summary(self, session: Session, exitstatus: int) -> None:
        if session.interrupted:
            reason = session.interrupt_reason
            self.write_sep(
                "!", f"KeyboardInterrupt ({reason})" if reason not in ("", "SIGINT") else "KeyboardInterrupt", "red"
            )
        self._errors_section(session)
        self._failures_section()
        self._warnings_section()
        self._passes_section()
        self.config.hook.planrun_terminal_summary(terminalreporter=self, exitstatus=exitstatus, config=self.config)
        self._short_summary(session)
        if session.collection_errors:
            self.write_sep(
                "!", f"Interrupted: {_plural(len(session.collection_errors), 'error')} during collection", "red"
            )
        elif session.shouldstop:
            self.write_sep("!", session.shouldstop, "red")
        self._final_line(session)

    def _detail(self, report: ItemReport) -> None:
        where = str(report.location)
        if self.tb == "line":
            if report.message:
                self.write_block(f"{where}: {report.message.splitlines()[0]}", indent="")
            for _, c in report.failed_criteria:
                first = c.message.splitlines()[0] if c.message else c.outcome
                self.write_block(f"{c.location}: {c.name} - {first}", indent="")
            return
        header = f"{'ERROR at ' if report.outcome == 'error' else ''}{report.nodeid}"
        self.write_sep("_", header, "red bold")
        if report.message:
            self.write_block(report.message, "red", indent="")
            if report.evidence and self.tb == "long":
                self.write_block(report.evidence, evidence=True)
            self.write_line(f"  {where}")
        total = len(report.criteria)
        for n, c in report.failed_criteria:
            self._criterion(n, total, c)

    def _criterion(self, n: int, total: int, c: CriterionResult) -> None:
        self.write_block(f"criterion {n}/{total}  {c.name}", "bold", indent="")
        if c.message:
            self.write_block(c.message, "red")
        if c.evidence and self.tb == "long":
            self.write_block(c.evidence, evidence=True)
        self.write_line(f"  {c.location}")

    def _errors_section(self, session: Session) -> None:
        errors = [r for r in self.reports if r.outcome == "error"]
        if not session.collection_errors and not (errors and self.tb != "no"):
            return
        self.write_sep("=", "ERRORS", "red")
        by_file: dict[str, list[Any]] = {}
        for err in session.collection_errors:
            by_file.setdefault(err.path or "?", []).append(err)
        for path, errs in by_file.items():
            self.write_sep("_", f"ERROR collecting {path}", "red bold")
            for err in errs:
                self.write_block(str(err), "red", indent="")
        if self.tb != "no":
            for report in errors:
                self._detail(report)

    def _failures_section(self) -> None:
        failures = [r for r in self.reports if r.outcome in ("failed", "blocked")]
        if not failures or self.tb == "no":
            return
        self.write_sep("=", "FAILURES", "red")
        for report in failures:
            self._detail(report)

    def _passes_section(self) -> None:
        """``-rP``: the output of the items that passed, as pytest's PASSES section."""
        passes = [r for r in self.reports if r.outcome == "passed" and r.output] if "P" in self.reportchars else []
        if not passes:
            return
        self.write_sep("=", "PASSES", "green")
        for report in passes:
            self.write_sep("_", report.nodeid, "green")
            self.write_sep("-", f"output of {report.executor or 'the executor'}")
            self.write_block(report.output, indent="", evidence=True)

    def warnings(self) -> list[str]:
        """Config warnings first, then the items' (vacuous criteria): what the final line counts."""
        return [*getattr(self.config, "warnings", []), *(w for r in self.reports for w in r.warnings)]

    def _warnings_section(self) -> None:
        warnings = self.warnings()
        if not warnings:
            return
        self.write_sep("=", "warnings summary", "yellow")
        for w in warnings:
            self.write_block(w, indent="")

    def _short_summary(self, session: Session) -> None:
        lines: list[tuple[str, str]] = []
        for char in self.reportchars:
            outcomes = _REPORT_CHARS[char]
            if "error" in outcomes:
                lines.extend(("error", f"ERROR {err.path} - {err.message}") for err in session.collection_errors)
            for r in self.reports:
                if r.outcome not in outcomes or (char == "f" and "B" in self.reportchars and r.outcome == "blocked"):
                    continue
                reason = r.short_reason
                lines.append((r.outcome, f"{r.outcome.upper()} {r.nodeid}" + (f" - {reason}" if reason else "")))
        if not lines:
            return
        self.write_sep("=", "short plan summary info", "bold")
        for outcome, line in lines:
            self.write_line(cut(line, LONG_LINE), _STYLE[outcome])

    def _attempts(self, report: ItemReport) -> str:
        """``attempt 2/2``: how many attempts the task took of how many it had (``2 attempts`` if unknown)."""
        limit = None
        for cplan in self.session.plans if self.session is not None else ():
            if cplan.display == report.plan and report.executor is not None:
                try:
                    limit = attempt_limit(self.config, cplan.scope.executor(report.executor))
                except Exception:  # an executor that cannot be made is not the reporter's to report
                    limit = None
                break
        return f"attempt {report.attempts}/{limit}" if limit else _plural(report.attempts, "attempt")

    def counts(self, session: Session) -> dict[str, int]:
        counts = outcome_counts(session)  # session.reports: every report this reporter was given
        warnings = len(self.warnings())
        if warnings:
            counts["warnings"] = warnings
        return counts

    def _final_line(self, session: Session) -> None:
        counts = self.counts(session)
        words = {"warnings": "warning", "error": "error"}
        parts = [
            _plural(counts[k], words[k]) if k in words else f"{counts[k]} {k}" for k in _SUMMARY_ORDER if counts.get(k)
        ]
        text = ", ".join(parts) if parts else "no plans ran"
        text += f" in {session.duration:.2f}s"
        if any(is_agent(r.executor) for r in self.reports):
            text += f" ({usage(self.reports)})"
        if any(counts.get(k) for k in ("failed", "error", "blocked", "interrupted")):
            style = "red bold"
        elif counts.get("passed") and not any(counts.get(k) for k in ("skipped", "warnings", "deselected")):
            style = "green bold"
        else:
            style = "yellow bold"
        if self.verbosity < 0:
            self.write_line(text, style)
        else:
            self.write_sep("=", text, style)

    def _collect_only_summary(self, session: Session) -> None:
        if session.items and self.verbosity >= 0:
            self.write_line()
        if session.collection_errors:
            self._errors_section(session)
            self._short_summary(session)
            self.write_sep(
                "!", f"Interrupted: {_plural(len(session.collection_errors), 'error')} during collection", "red"
            )
        n = len(session.items)
        text = f"{n} item{'s' if n != 1 else ''} collected in {session.duration:.2f}s"
        if session.deselected:
            total = n + len(session.deselected)
            text = f"{n}/{total} items collected ({len(session.deselected)} deselected) in {session.duration:.2f}s"
        if self.verbosity < 0:
            self.write_line(text)
        else:
            self.write_sep("=", text, "yellow" if not n else "green")
        self.file.flush()


def attempt_limit(config: Config, executor: Executor) -> int:
    """The attempts a task of ``executor`` gets: as the runner decides (``--max-attempts``, config, the executor's)."""
    if executor.max_attempts <= 1:
        return 1
    configured = config.option.max_attempts or config.inicfg.get("max_attempts")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured >= 1:
        return configured
    return executor.max_attempts


def collected_line(session: Session) -> str:
    """``collected 15 items (3 plans, 10 tasks, 35 criteria)``, with pytest's ``/ N ...`` suffixes.

    The items are what the final line counts; the parenthesis says what the
    selected ones are made of.
    """
    selected = session.items
    total = len(selected) + len(session.deselected)
    line = f"collected {_plural(total, 'item')}"
    if session.collection_errors:
        line += f" / {_plural(len(session.collection_errors), 'error')}"
    if session.deselected:
        line += f" / {len(session.deselected)} deselected / {len(selected)} selected"
    if selected:
        tasks = sum(1 for i in selected if i.kind == "task")
        criteria = sum(len(i.kinds) for i in selected)
        plans = len({id(i.cplan) for i in selected})
        line += f" ({_plural(plans, 'plan')}, {_plural(tasks, 'task')}, {_plural(criteria, 'criterion')})"
    return line


def third_party_plugins(pm: PlanrunPluginManager) -> list[str]:
    """Loaded plugins that are not planrun's built-ins: ``dist-version``, or a conftest's path (as ``--version``)."""
    shown: list[str] = []
    for name in pm.loaded_names:
        if name in pm.builtin_names:
            continue
        label = os.path.relpath(name) if os.path.isabs(name) else pm.versions.get(name, name).removeprefix("planrun-")
        if label not in shown:
            shown.append(label)
    return shown


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("terminal reporting")
    group.add_argument(
        "-r",
        dest="reportchars",
        metavar="CHARS",
        type=_reportchars,
        default="fE",
        help="short summary of: (f)ailed and blocked, (E)rror, (s)kipped, (B)locked, (p)assed, (P)assed with "
        "output, (a)ll except passed, (A)ll, (N)one (default fE)",
    )
    group.add_argument(
        "--durations",
        type=_durations,
        metavar="N",
        default=None,
        help="show the N slowest items (0 for all)",
    )


@hookimpl
def planrun_terminal_summary(terminalreporter: TerminalReporter, config: Config) -> None:
    """``--durations N``: the slowest items, as pytest's "slowest durations" section."""
    n = config.getoption("durations")
    if n is None:
        return
    tr = terminalreporter
    reports = sorted(tr.reports, key=lambda r: r.duration, reverse=True)
    if n:
        reports = reports[:n]
    tr.write_sep("=", "slowest durations" if not n else f"slowest {n} durations")
    shown = [r for r in reports if tr.verbosity >= 2 or r.duration >= DURATIONS_MIN]
    for r in shown:
        tr.write_line(f"{r.duration:.2f}s {r.nodeid}")
    hidden = len(reports) - len(shown)
    if hidden:
        tr.write_line()
        tr.write_line(f"({hidden} durations < {DURATIONS_MIN:g}s hidden.  Use -vv to show these durations.)")


@hookimpl(trylast=True)
def planrun_configure(config: Config) -> None:
    config.pluginmanager.register(TerminalReporter(config), "terminalreporter")
