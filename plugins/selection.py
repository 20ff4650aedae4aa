"""Selecting and stopping: ``-k EXPR``, ``-x`` and ``--maxfail``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from planrun import UsageError, hookimpl

if TYPE_CHECKING:
    from planrun import ItemReport
    from planrun.config import Config
    from planrun.session import Item, Session

_TOKENS = re.compile(r"\s*(?:(\()|(\))|([\w:+\-.\[\]\\/*]+))")
Matcher = Callable[[list[str]], bool]


def compile_keyword(expr: str) -> Matcher:
    """``-k`` expressions: words match as case-insensitive substrings; ``and``, ``or``, ``not``, parentheses."""
    tokens: list[str] = []
    pos = 0
    text = expr.strip()
    while pos < len(text):
        m = _TOKENS.match(text, pos)
        if m is None or m.end() == pos:
            raise UsageError(f"-k {expr!r}: unexpected character {text[pos:].strip()[:1]!r} at column {pos + 1}")
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not tokens:
        raise UsageError("-k: empty expression")
    index = 0

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> str:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def binary(word: str, operand: Callable[[], Matcher], both: Callable[[bool, bool], bool]) -> Callable[[], Matcher]:
        """A left-associative chain ``operand (word operand)*``."""

        def parse() -> Matcher:
            left = operand()
            while peek() == word:
                take()
                left = _combine(left, operand(), both)
            return left

        return parse

    def not_expr() -> Matcher:
        if peek() == "not":
            take()
            inner = not_expr()
            return lambda kw: not inner(kw)
        if peek() == "(":
            take()
            inner = or_expr()
            if peek() != ")":
                raise UsageError(f"-k {expr!r}: missing ')'")
            take()
            return inner
        word = peek()
        if word is None or word in (")", "and", "or"):
            raise UsageError(f"-k {expr!r}: expected a word, got {word or 'the end'!r}")
        take()
        needle = word.lower()
        return lambda kw: any(needle in k for k in kw)

    and_expr = binary("and", not_expr, lambda a, b: a and b)
    or_expr = binary("or", and_expr, lambda a, b: a or b)
    matcher = or_expr()
    if index != len(tokens):
        raise UsageError(f"-k {expr!r}: unexpected {tokens[index]!r}")
    return matcher


def _combine(a: Matcher, b: Matcher, both: Callable[[bool, bool], bool]) -> Matcher:
    return lambda kw: both(a(kw), b(kw))


class Stopper:
    """Counts failures and errors; asks the session to stop at ``--maxfail``."""

    def __init__(self, session: Session, maxfail: int) -> None:
        self.session = session
        self.maxfail = maxfail
        self.failures = 0

    @hookimpl
    def planrun_runtest_logreport(self, report: ItemReport) -> None:
        if report.outcome in ("failed", "error", "blocked"):
            self.failures += 1
            if self.failures >= self.maxfail:
                self.session.shouldstop = f"stopping after {self.failures} failures"


@hookimpl
def planrun_sessionstart(session: Session) -> None:
    maxfail = session.config.option.maxfail
    if maxfail:
        session.config.pluginmanager.register(Stopper(session, maxfail), "stopper")


@hookimpl
def planrun_collection_modifyitems(session: Session, config: Config, items: list[Item]) -> None:
    expr = config.option.keyword
    if not expr:
        return
    matches = compile_keyword(expr)
    selected = [item for item in items if matches(item.keywords)]
    # Prerequisites gate a plan's tasks: they stay while anything of their plan is selected.
    chosen = {id(item.cplan) for item in selected if item.kind != "prerequisites"}
    keep = [
        item for item in items if id(item.cplan) in chosen and (item.kind == "prerequisites" or matches(item.keywords))
    ]
    kept = {id(item) for item in keep}
    deselected = [item for item in items if id(item) not in kept]
    if deselected:
        session.deselect(deselected)
        items[:] = keep
