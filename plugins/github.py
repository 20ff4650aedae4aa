"""GitHub Actions: failure annotations, the job's step summary, and output that cannot inject workflow commands.

On when ``GITHUB_ACTIONS`` is exactly ``true`` (the runner sets it), or with
``--gha-annotations``; ``--no-gha-annotations`` turns the annotations and the
summary off.

How the runner reads a step's output, and so what a line must not hold, is
in :mod:`planrun.commandguard`. ``::stop-commands::TOKEN`` makes the runner
ignore every command until a line ``::TOKEN::``; the two streams are read
by separate threads and drained stderr first, so their lines interleave in no
fixed order.

So two guards, each enough for what it covers:

1. every byte planrun writes through ``sys.stdout`` and ``sys.stderr`` goes
   through :class:`CommandGuard`, which breaks both patterns wherever they
   start (a ``\\`` between the two leading colons, and between ``##`` and ``[``),
   so no line planrun prints can be a command, whoever prints it (the
   terminal's failure sections echo step output and file lines);
2. ``::stop-commands::`` with an unguessable token is printed before the
   header, and the token is spoken only at the very end, right before
   planrun's own annotations.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import stat
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from planrun import CommandGuard, ItemReport, Location, hookimpl, mermaid, outcome_counts, printable

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import Session

#: GitHub shows at most this many ``::error`` annotations per step (and drops the rest silently).
MAX_ANNOTATIONS = 10
#: The runner refuses a step summary of 1 MiB or more; planrun keeps the whole file under this.
SUMMARY_CAP = 1_000_000
#: An annotation's message is cut to this many characters.
MESSAGE_CHARS = 2000
#: An annotation shows at most this many lines of a criterion's evidence (its last).
ANNOTATION_LINES = 10
#: A failure's excerpt in the step summary: at most these many lines, each at most LINE_CHARS.
EXCERPT_LINES = 40
LINE_CHARS = 300
#: At most this many task graphs in the step summary.
MAX_GRAPHS = 10

_FAILING = ("failed", "error", "blocked", "interrupted")
_ORDER = ("failed", "passed", "skipped", "deselected", "blocked", "interrupted", "error")

# -- the guard (planrun.commandguard) and where it is installed -----------------


def _install_guards() -> CommandGuard:
    """``sys.stdout`` and ``sys.stderr`` behind a :class:`CommandGuard` each; returns stdout's."""
    if not isinstance(sys.stderr, CommandGuard):
        sys.stderr = CommandGuard(sys.stderr)  # type: ignore[assignment]
    if not isinstance(sys.stdout, CommandGuard):
        sys.stdout = CommandGuard(sys.stdout)  # type: ignore[assignment]
    return sys.stdout  # type: ignore[return-value]


def _remove_guards() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, CommandGuard):
            stream.flush()
            setattr(sys, name, stream.stream)


# -- escaping -------------------------------------------------------------------


def esc_data(text: str) -> str:
    """A workflow command's message, escaped as actions/toolkit does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def esc_prop(text: str) -> str:
    """A workflow command's property value, escaped as actions/toolkit does."""
    return esc_data(text).replace(":", "%3A").replace(",", "%2C")


# What Markdown (GFM: emphasis, links, autolinks, tables, math) could read as markup: shown with a backslash.
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:$@])")


def md_text(text: str) -> str:
    """Workdir text safe in a Markdown table cell or heading: one line, no markup, no HTML."""
    text = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCT.sub(r"\\\1", text)
    return text.replace("\r\n", "<br>").replace("\n", "<br>").replace("\t", " ")


def html_text(text: str) -> str:
    """Workdir text safe inside an HTML element of the summary (``<summary>``), on one line."""
    text = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return " ".join(text.split())


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a fenced code block that no line of it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}\n"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def excerpt(text: str) -> str:
    """The first :data:`EXCERPT_LINES` lines of ``text``, each cut, made printable."""
    lines = printable(text).splitlines()
    shown = [_cut(line, LINE_CHARS) for line in lines[:EXCERPT_LINES]]
    if len(lines) > EXCERPT_LINES:
        shown.append(f"... [{len(lines) - EXCERPT_LINES} more lines]")
    return "\n".join(shown)


# -- where things are -------------------------------------------------------------


class _Places:
    """Plan paths as shown (``Location.path``) turned into the path an annotation names."""

    def __init__(self, session: Session) -> None:
        config = session.config
        self.rootdir = Path(os.path.realpath(config.rootdir))
        self.invocation_dir = Path(config.invocation_dir)
        self.display_path = config.display_path
        self.known = {cplan.display: Path(os.path.abspath(cplan.path)) for cplan in session.plans}
        workspace = os.environ.get("GITHUB_WORKSPACE")
        self.workspace = Path(os.path.realpath(workspace)) if workspace else None

    def absolute(self, shown: str) -> Path:
        if shown in self.known:
            return self.known[shown]
        if os.path.isabs(shown):
            return Path(shown)
        inside = Path(os.path.abspath(self.rootdir / shown))
        if self.display_path(inside) == shown:
            return inside
        return Path(os.path.abspath(self.invocation_dir / shown))

    def relative(self, shown: str) -> tuple[str, bool]:
        """The path for ``file=``: relative to GITHUB_WORKSPACE when inside it, else to the rootdir; and which."""
        path = Path(os.path.realpath(self.absolute(shown)))
        if self.workspace is not None and path.is_relative_to(self.workspace):  # compares components
            return path.relative_to(self.workspace).as_posix(), True
        return Path(os.path.relpath(path, self.rootdir)).as_posix(), False


# -- annotations ------------------------------------------------------------------


def _command(kind: str, location: Location | None, title: str, message: str, places: _Places) -> tuple[Any, str]:
    props = []
    key: tuple[Any, ...] = ("", 0, 0)
    if location is not None and location.path:
        path, _ = places.relative(location.path)
        props.append(f"file={esc_prop(printable(path))}")
        if location.line:
            props.append(f"line={location.line}")
            if location.col:
                props.append(f"col={location.col}")
        key = (path, location.line, location.col)
    props.append(f"title={esc_prop(printable(title))}")
    return key, f"::{kind} {','.join(props)}::{esc_data(_cut(printable(message), MESSAGE_CHARS))}"


def annotation_lines(session: Session, places: _Places) -> list[str]:
    """The run's ``::error`` lines: at most :data:`MAX_ANNOTATIONS`, then a ``::warning`` saying how many more."""
    found: list[tuple[Any, str]] = []
    for err in session.collection_errors:
        where = None
        if err.path:
            where = Location(err.path, err.line or 0, err.col or 0)
        found.append(_command("error", where, "planrun: collection error", err.message, places))
    for report in session.reports:
        if report.outcome not in _FAILING:
            continue
        failing = report.failed_criteria
        total = len(report.criteria)
        for n, c in failing:
            title = f"planrun: {report.nodeid}"
            message = f"criterion {n}/{total} {c.name}: {c.message or c.outcome}"
            if c.evidence:
                message += "\n" + "\n".join(c.evidence.splitlines()[-ANNOTATION_LINES:])
            found.append(_command("error", c.location, title, message, places))
        if not failing or report.message:
            message = f"{report.outcome.upper()}: {report.message or report.short_reason or report.outcome}"
            found.append(_command("error", report.location, f"planrun: {report.nodeid}", message, places))
    found.sort(key=lambda pair: pair[0])
    lines = [line for _, line in found[:MAX_ANNOTATIONS]]
    more = len(found) - MAX_ANNOTATIONS
    if more > 0:
        # A warning, not an eleventh error: GitHub would drop that one.
        lines.append(
            f"::warning title=planrun::{more} more failure{'s' if more != 1 else ''} not annotated"
            " (GitHub shows 10 per step), see the job summary and the log"
        )
    return lines


# -- the step summary -----------------------------------------------------------------


def counts_text(session: Session) -> str:
    counts = outcome_counts(session)
    parts = []
    for key in _ORDER:
        n = counts.get(key, 0)
        if n:
            parts.append(f"{n} error{'s' if n != 1 else ''}" if key == "error" else f"{n} {key}")
    return (", ".join(parts) or "no plans ran") + f" in {session.duration:.2f}s"


def _blob_link(text: str, path: str, inside: bool, line: int) -> str:
    """``text`` linked to the file at the run's commit when the runner says where that is."""
    env = os.environ
    server, repo, sha = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_SHA")
    if not (inside and server and repo and sha and server.startswith(("https://", "http://"))):
        return text
    url = f"{server}/{quote(repo)}/blob/{quote(sha)}/{quote(path)}" + (f"#L{line}" if line else "")
    return f"[{text}]({quote(url, safe=':/#%')})"


class Summary:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``: totals, a failure table, details, task graphs."""

    def __init__(self, session: Session, places: _Places) -> None:
        self.heading = f"### planrun: {counts_text(session)}\n\n"
        self.rows: list[str] = []
        self.details: list[str] = []
        self.graphs: list[str] = []
        for err in session.collection_errors:
            where = f"{err.path}:{err.line}" if err.path and err.line else err.path or "?"
            path, inside = places.relative(err.path) if err.path else ("", False)
            cell = _blob_link(md_text(where), path, inside, err.line or 0)
            self.rows.append(f"| ❌ | collection error | {cell} | {md_text(_cut(err.message, LINE_CHARS))} |\n")
        failing_plans: list[str] = []
        for report in session.reports:
            if report.outcome not in _FAILING:
                continue
            if report.plan not in failing_plans:
                failing_plans.append(report.plan)
            self._add(report, places)
        plans = [p for p in session.plans if p.display in failing_plans] or list(session.plans)
        for cplan in plans[:MAX_GRAPHS]:
            outcomes = {r.item_id: r.outcome for r in session.reports if r.plan == cplan.display and r.kind == "task"}
            graph = mermaid(cplan.plan, outcomes)
            self.graphs.append(f"#### {md_text(cplan.display)}\n\n{fenced(graph.rstrip(chr(10)), 'mermaid')}\n")
        self.graphs_omitted = max(len(plans) - MAX_GRAPHS, 0)

    def _add(self, report: ItemReport, places: _Places) -> None:
        failing = report.failed_criteria
        first = failing[0][1] if failing else None
        where = first.location if first is not None else report.location
        path, inside = places.relative(where.path) if where.path else ("", False)
        place = _blob_link(
            md_text(f"{where.path}:{where.line}" if where.line else where.path), path, inside, where.line
        )
        if first is not None:
            reason = f"{first.name}: {first.message.splitlines()[0] if first.message else first.outcome}"
        else:
            reason = report.short_reason or report.outcome
        mark = "❌" if report.outcome in ("failed", "error") else "⛔"
        cells = [mark, md_text(report.nodeid), place, report.outcome, md_text(_cut(reason, LINE_CHARS))]
        self.rows.append(f"| {' | '.join(cells)} |\n")
        parts = []
        if report.message:
            parts.append(report.message + ("\n" + report.evidence if report.evidence else ""))
        total = len(report.criteria)
        for n, c in failing:
            parts.append(
                f"criterion {n}/{total} {c.name}  [{c.location}]\n{c.message}"
                + (f"\n{c.evidence}" if c.evidence else "")
            )
        if not parts and report.output:
            parts.append(report.output)
        summary = html_text(_cut(f"{report.nodeid} — {reason}", LINE_CHARS))
        body = excerpt("\n\n".join(parts) or reason)
        self.details.append(f"<details><summary>{summary}</summary>\n\n{fenced(body)}\n</details>\n\n")

    def render(self, budget: int) -> str | None:
        """The Markdown, at most ``budget`` bytes of UTF-8: details go first, then graphs, then rows."""
        heading = len(self.heading.encode())
        table_head = "| | item | plan | outcome | first failing criterion |\n|---|---|---|---|---|\n"
        rows = [len(r.encode()) for r in self.rows]
        details = [len(d.encode()) for d in self.details]
        graphs = [len(g.encode()) for g in self.graphs]
        notes = 300  # room for the "N more omitted" lines
        n_rows, n_details, n_graphs = len(rows), len(details), len(graphs)

        def total() -> int:
            t = heading + notes + sum(rows[:n_rows]) + sum(details[:n_details]) + sum(graphs[:n_graphs])
            return t + (len(table_head) + 1 if n_rows else 0)

        while total() > budget and n_details:
            n_details -= 1
        while total() > budget and n_graphs:
            n_graphs -= 1
        while total() > budget and n_rows:
            n_rows -= 1
        if total() > budget:
            return None
        out = [self.heading]
        if n_rows:
            out.append(table_head + "".join(self.rows[:n_rows]))
            if n_rows < len(rows):
                out.append(f"| | {len(rows) - n_rows} more omitted | | | |\n")
            out.append("\n")
        out.extend(self.details[:n_details])
        if n_details < len(details):
            out.append(f"{len(details) - n_details} more failure details omitted (the step summary is capped).\n\n")
        out.extend(self.graphs[:n_graphs])
        omitted = self.graphs_omitted + len(graphs) - n_graphs
        if omitted:
            out.append(f"{omitted} more task graphs omitted.\n\n")
        return "".join(out)


def append_summary(path: str, session: Session, places: _Places) -> str | None:
    """Append the summary to ``path`` in one write, keeping the file under :data:`SUMMARY_CAP`; a warning or None."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        return f"GITHUB_STEP_SUMMARY {path}: {exc.strerror or exc}; the step summary was not written"
    try:
        st = os.fstat(fd)  # what was opened, not what the path names now
        if not stat.S_ISREG(st.st_mode):
            return f"GITHUB_STEP_SUMMARY {path}: not a regular file; the step summary was not written"
        text = Summary(session, places).render(SUMMARY_CAP - 1 - st.st_size)
        if text is None:
            return (
                f"GITHUB_STEP_SUMMARY {path}: already {st.st_size} bytes, no room under the"
                f" {SUMMARY_CAP}-byte cap; the step summary was not written"
            )
        data = memoryview(text.encode())
        while data:
            written = os.write(fd, data)
            data = data[written:]
        return None
    except OSError as exc:
        return f"GITHUB_STEP_SUMMARY {path}: {exc.strerror or exc}; the step summary is incomplete"
    finally:
        os.close(fd)


# -- the plugin -----------------------------------------------------------------------


class GitHubReporter:
    """Registered at session start, after the terminal reporter: its sessionfinish wrapper is the outermost one."""

    def __init__(self, config: Config, guard: CommandGuard, token: str, annotate: bool) -> None:
        self.config = config
        self.guard = guard
        self.token = token
        self.annotate = annotate

    @hookimpl(wrapper=True, tryfirst=True)
    def planrun_sessionfinish(self, session: Session) -> Generator[None, None, None]:
        """The step summary first, so a failure to write it is one of the terminal's warnings; the annotations last."""
        crashed = True
        try:
            path = os.environ.get("GITHUB_STEP_SUMMARY")
            if self.annotate and path and not self.config.option.collectonly:
                warning = append_summary(path, session, _Places(session))
                if warning is not None:
                    self.config.warnings.append(warning)
            result = yield
            crashed = False
            return result
        finally:
            # After everything else planrun printed: commands back on, then planrun's own annotations.
            sys.stdout.flush()
            lines = [f"::{self.token}::"]
            if self.annotate:
                try:
                    lines += annotation_lines(session, _Places(session))
                except Exception:
                    if not crashed:
                        raise
            self.guard.raw_write("\n".join(lines) + "\n")
            if not crashed:  # a traceback still to come goes through the guards
                _remove_guards()


def _mode(config: Config) -> tuple[bool, bool]:
    """(guard the output, annotate and summarise)."""
    on_actions = os.environ.get("GITHUB_ACTIONS") == "true"
    forced = config.option.gha_annotations
    annotate = on_actions if forced is None else bool(forced)
    return on_actions or annotate, annotate


@hookimpl
def planrun_addoption(parser: argparse.ArgumentParser) -> None:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _install_guards()  # as early as a plugin can: an error about the command line is guarded too
    group = parser.add_argument_group("github actions")
    group.add_argument(
        "--gha-annotations",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="::error annotations at the failing criteria's plan lines and a $GITHUB_STEP_SUMMARY report "
        "(default: on when GITHUB_ACTIONS=true)",
    )


@hookimpl
def planrun_configure(config: Config) -> None:
    # Before the terminal reporter (trylast) takes sys.stdout for its console.
    if _mode(config)[0]:
        _install_guards()


@hookimpl(wrapper=True, tryfirst=True)
def planrun_sessionstart(session: Session) -> Generator[None, None, None]:
    config = session.config
    guard_on, annotate = _mode(config)
    stdout = sys.stdout
    if not guard_on or not isinstance(stdout, CommandGuard):
        return (yield)
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        # planrun inside pytest (``pytest plans/``): pytest owns the output and its own plugins annotate.
        _remove_guards()
        return (yield)
    token = secrets.token_hex(16)
    stdout.raw_write(f"::stop-commands::{token}\n")
    try:
        result = yield
    except BaseException:
        stdout.raw_write(f"::{token}::\n")  # no sessionfinish will come to resume the commands
        raise
    config.pluginmanager.register(GitHubReporter(config, stdout, token, annotate), "github-reporter")
    return result
