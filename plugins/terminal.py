"""The terminal reporter: pytest's report shape, rendered with rich."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from planrun import CriterionResult, ItemReport, __version__, hookimpl

if TYPE_CHECKING:
    from rich.console import Console

    from planrun.config import Config
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else _PLURALS.get(word, word + 's')}"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


class TerminalReporter:
    """Writes the header, progress, failures and summary of a run."""

    def __init__(self, config: Config, file: Any = None) -> None:
        from rich.console import Console

        self.config = config
        option = config.option
        self.verbosity: int = option.verbose - option.quiet
        self.tb: str = option.tb
        color = getattr(option, "color", "auto")
        plain = color == "no" or (color == "auto" and bool(os.environ.get("NO_COLOR")))
        self.console: Console = Console(
            file=file or sys.stdout,
            force_terminal=True if color == "yes" else None,
            color_system=None if plain else "auto",
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
        )
        self.colored = self.console.color_system is not None
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

    # -- writing ----------------------------------------------------------

    def write(self, text: str, style: str | None = None) -> None:
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

    def write_sep(self, char: str, title: str | None = None, style: str | None = None) -> None:
        if title:
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
        plugins = ", ".join(self.config.pluginmanager.plugin_names())
        py = platform.python_version()
        self.write_line(f"planrun {__version__}, python {py}, rootdir: {self.config.rootdir}, plugins: {plugins}")

    @hookimpl
    def planrun_collection_finish(self, session: Session) -> None:
        self.total = len(session.items)
        if self.verbosity >= 0:
            tasks = sum(1 for i in session.items if i.kind == "task")
            criteria = sum(len(i.checks) for i in session.items)
            plans = len({id(i.cplan) for i in session.items})
            line = f"collected {_plural(plans, 'plan')}, {_plural(tasks, 'task')}, {_plural(criteria, 'criterion')}"
            if session.deselected:
                line += f" / {len(session.deselected)} deselected"
            if session.collection_errors:
                line += f" / {_plural(len(session.collection_errors), 'error')}"
            self.write_line(line, "bold")
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
            for check in item.checks:
                compiled = json.dumps(check.source, default=str, ensure_ascii=False)
                prefix = f"{check.text!r} -> " if check.text is not None else ""
                self.write_line(f"    {prefix}{compiled}  [{check.location}]")

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        self.reports.append(report)
        self.done += 1
        if report.outcome in ("failed", "error", "blocked", "interrupted"):
            self.any_failed = True
        if self.verbosity > 0:
            word = report.outcome.upper()
            if self.column:
                self.write("\n")
            self.write(f"{report.nodeid} ")
            self.write(word, _STYLE[report.outcome])
            self._write_progress()
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
        self.write(_LETTER[report.outcome], _STYLE[report.outcome])

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
        if self.current_plan is not None and self.verbosity <= 0:
            self._write_progress()
        if self.config.option.collectonly:
            self._collect_only_summary(session)
            return result
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
        self.config.hook.planrun_terminal_summary(terminalreporter=self, exitstatus=exitstatus, config=self.config)
        self._short_summary(session)
        if session.collection_errors:
            self.write_sep(
                "!", f"Interrupted: {_plural(len(session.collection_errors), 'error')} during collection", "red"
            )
        elif session.shouldstop:
            self.write_sep("!", session.shouldstop, "red")
        self._tokens_line()
        self._final_line(session)

    def _detail(self, report: ItemReport) -> None:
        where = str(report.location)
        if self.tb == "line":
            if report.message:
                self.write_line(f"{where}: {report.message}")
            for _, c in report.failed_criteria:
                self.write_line(f"{c.location}: {c.name} - {c.message}")
            return
        header = f"{'ERROR at ' if report.outcome == 'error' else ''}{report.nodeid}"
        self.write_sep("_", header, "red bold")
        if report.message:
            self.write_line(report.message, "red")
            if report.evidence and self.tb == "long":
                self.write_line(_indent(report.evidence))
            self.write_line(f"  {where}")
        total = len(report.criteria)
        for n, c in report.failed_criteria:
            self._criterion(n, total, c)

    def _criterion(self, n: int, total: int, c: CriterionResult) -> None:
        self.write_line(f"criterion {n}/{total}  {c.name}", "bold")
        if c.message:
            self.write_line(_indent(c.message), "red")
        if c.evidence and self.tb == "long":
            self.write_line(_indent(c.evidence))
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
                self.write_line(str(err), "red")
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

    def _warnings(self) -> list[str]:
        return [w for r in self.reports for w in r.warnings]

    def _warnings_section(self) -> None:
        warnings = self._warnings()
        if not warnings:
            return
        self.write_sep("=", "warnings summary", "yellow")
        for w in warnings:
            self.write_line(w)

    def _short_summary(self, session: Session) -> None:
        lines: list[tuple[str, str]] = []
        for err in session.collection_errors:
            lines.append(("error", f"ERROR {err.path} - {err.message}"))
        for r in self.reports:
            if r.outcome in ("passed",):
                continue
            reason = r.short_reason
            lines.append((r.outcome, f"{r.outcome.upper()} {r.nodeid}" + (f" - {reason}" if reason else "")))
        if not lines:
            return
        self.write_sep("=", "short plan summary info", "bold")
        for outcome, line in lines:
            self.write_line(line, _STYLE[outcome])

    def _tokens_line(self) -> None:
        agent = [r for r in self.reports if r.tokens_in or r.tokens_out]
        if agent:
            t_in = sum(r.tokens_in for r in agent)
            t_out = sum(r.tokens_out for r in agent)
            attempts = sum(r.attempts for r in agent)
            self.write_line(f"agent executors: {t_in} tokens in, {t_out} tokens out, {_plural(attempts, 'attempt')}")

    def counts(self, session: Session) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.reports:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        if session.deselected:
            counts["deselected"] = len(session.deselected)
        if session.collection_errors:
            counts["error"] = counts.get("error", 0) + len(session.collection_errors)
        warnings = len(self._warnings())
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


@hookimpl(trylast=True)
def planrun_configure(config: Config) -> None:
    config.pluginmanager.register(TerminalReporter(config), "terminalreporter")
