"""One report per item, consumed by every reporter; the outcome -> display mapping lives here."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from planrun.types import Location

Outcome = Literal["passed", "failed", "error", "blocked", "skipped", "interrupted"]
CriterionOutcome = Literal["passed", "failed", "error", "skipped"]

# outcome -> (letter for the progress line, word for -v and the short summary)
_STATUS: dict[str, tuple[str, str]] = {
    "passed": (".", "PASSED"),
    "failed": ("F", "FAILED"),
    "error": ("E", "ERROR"),
    "blocked": ("B", "BLOCKED"),
    "skipped": ("s", "SKIPPED"),
    "interrupted": ("!", "INTERRUPTED"),
}


# Everything outside printable ASCII and printable Latin-1 is looked at one by one (see printable()).
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e\xa1-\xac\xae-\xff]")


@functools.lru_cache(maxsize=4096)
def _shown(char: str) -> str:
    if char.isprintable() or unicodedata.category(char) == "Zs":
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every control or format character shown escaped.

    Newlines and tabs stay. Every other character that Python does not call
    printable (C0 and C1 controls, DEL, bidi and other format characters such
    as U+202E, line and paragraph separators, lone surrogates, private-use and
    unassigned code points) becomes a Python-style escape: ESC is shown as
    ``\\x1b``, U+202E as ``\\u202e``. Spaces of any width stay. Everything
    planrun prints that comes from a plan or a workdir goes through this, so
    file contents and command output cannot move the cursor, retitle the
    window or reorder what the reader sees.
    """
    return _SUSPECT.sub(lambda m: _shown(m.group()), text)


def lines_of(text: str) -> list[str]:
    """The lines of ``text`` as a reader sees them once :func:`printable` is applied: split at ``\\n`` only.

    ``str.splitlines`` also breaks at ``\\r``, form feeds, ``\\x1c``-``\\x1e``, NEL
    and U+2028/U+2029: a line a file or a process wrote could then start a
    line of planrun's own report. Here they stay inside their line, for
    :func:`printable` to show escaped. A final newline ends the last line
    rather than starting an empty one, as with ``splitlines``.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def human(n: int) -> str:
    """A count as a person reads it: ``950``, ``12.3k``, ``123k``, ``1.2M``."""
    if n < 1000:
        return str(n)
    for scale, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
        value = n / scale
        if round(value, 1) < 100:
            return f"{value:.1f}{unit}"
        if round(value) < 1000 or unit == "G":
            return f"{value:.0f}{unit}"
    return f"{n / 1e9:.0f}G"  # not reached: "G" always returns above


def money(cost: float) -> str:
    """A cost in US dollars: cents, or four decimals below a cent."""
    if cost == 0 or cost >= 0.01:
        return f"${cost:,.2f}"
    if cost >= 0.0001:
        return f"${cost:.4f}"
    return "<$0.0001"


@dataclass(slots=True)
class CriterionResult:
    """The outcome of one criterion of an item."""

    name: str
    kind: str
    outcome: CriterionOutcome
    location: Location
    message: str = ""
    evidence: str = ""
    duration: float = 0.0
    vacuous: bool = False
    regression_of: str | None = None  # the id of the task whose criterion broke
    record: dict[str, Any] | None = None  # --evidence: files read and commands run (CheckContext.record)


@dataclass(slots=True)
class ItemReport:
    """What happened to one item: a task, the prerequisites, an edge case or the verification."""

    nodeid: str
    plan: str  # the plan file as displayed
    item_id: str
    name: str
    kind: Literal["task", "prerequisites", "edge_case", "verification"]
    outcome: Outcome
    location: Location
    criteria: list[CriterionResult] = field(default_factory=list)
    message: str = ""  # skip/blocked/error reason, or the executor's failure
    evidence: str = ""  # executor output tail for that message
    output: str = ""  # the executor's transcript
    executor: str | None = None
    duration: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 0
    cost: float | None = None  # summed over attempts; None when no price is known
    summary: str = ""  # the executor's account of what it did (an agent's finish summary)
    notes: list[str] = field(default_factory=list)  # the executor's warnings (ExecutionResult.warnings)

    @property
    def warnings(self) -> list[str]:
        return [
            f"{c.location}: vacuous criterion {c.name!r}: it held before task {self.item_id!r} ran"
            for c in self.criteria
            if c.vacuous
        ] + [f"{self.nodeid}: {note}" for note in self.notes]

    @property
    def failed_criteria(self) -> list[tuple[int, CriterionResult]]:
        return [(i, c) for i, c in enumerate(self.criteria, 1) if c.outcome in ("failed", "error")]

    @property
    def short_reason(self) -> str:
        """One line for the short summary."""
        if self.message:
            return self.message.splitlines()[0]
        for _, c in self.failed_criteria:
            first = c.message.splitlines()[0] if c.message else c.outcome
            return f"{c.name} - {first}"
        for c in self.criteria:
            if c.outcome == "skipped":
                return c.message.splitlines()[0] if c.message else "skipped"
        return ""


def outcome_counts(session: Any) -> dict[str, int]:
    """The run's reports by outcome, with its deselected items and its collection errors (counted as errors).

    The numbers of the final line, for every reporter that shows them.
    """
    counts: dict[str, int] = {}
    for r in session.reports:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    if session.deselected:
        counts["deselected"] = len(session.deselected)
    if session.collection_errors:
        counts["error"] = counts.get("error", 0) + len(session.collection_errors)
    return counts


def status(report: ItemReport) -> tuple[str, str]:
    """``(letter, WORD)`` for a report: the only place outcomes are turned into display."""
    return _STATUS[report.outcome]
