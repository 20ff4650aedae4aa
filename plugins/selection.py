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


_PRECEDENCE = {"or": 1, "and": 2, "not": 3}


def compile_keyword(expr: str) -> Matcher:
    """``-k`` expressions: words match as case-insensitive substrings; ``and``, ``or``, ``not``, parentheses.

    Parsed and evaluated without recursion (a shunting-yard to postfix), so
    deep nesting and long chains cost memory in proportion, never the stack.
    """
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
    postfix: list[str] = []  # words as "=word", operators by name
    ops: list[str] = []
    want_operand = True
    for token in tokens:
        if want_operand:
            if token in ("not", "("):
                ops.append(token)
            elif token in (")", "and", "or"):
                raise UsageError(f"-k {expr!r}: expected a word, got {token!r}")
            else:
                postfix.append("=" + token.lower())
                want_operand = False
        elif token in ("and", "or"):
            while ops and ops[-1] != "(" and _PRECEDENCE[ops[-1]] >= _PRECEDENCE[token]:
                postfix.append(ops.pop())
            ops.append(token)
            want_operand = True
        elif token == ")":
            while ops and ops[-1] != "(":
                postfix.append(ops.pop())
            if not ops:
                raise UsageError(f"-k {expr!r}: unexpected ')'")
            ops.pop()
        else:
            raise UsageError(f"-k {expr!r}: unexpected {token!r}")
    if want_operand:
        raise UsageError(f"-k {expr!r}: expected a word, got 'the end'")
    while ops:
        op = ops.pop()
        if op == "(":
            raise UsageError(f"-k {expr!r}: missing ')'")
        postfix.append(op)
    return _Postfix(postfix)


class _Postfix:
    """A compiled ``-k`` expression: evaluated with a value stack."""

    def __init__(self, program: list[str]) -> None:
        self.program = program

    def __call__(self, keywords: list[str]) -> bool:
        stack: list[bool] = []
        for op in self.program:
            if op[0] == "=":
                needle = op[1:]
                stack.append(any(needle in k for k in keywords))
            elif op == "not":
                stack[-1] = not stack[-1]
            else:
                right = stack.pop()
                stack[-1] = (stack[-1] and right) if op == "and" else (stack[-1] or right)
        return stack[0]


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
    """``-k`` and node-id arguments select; the dependencies of what they select come along (SPEC section 4)."""
    expr = config.option.keyword
    matches = compile_keyword(expr) if expr else None
    if matches is None and all(item.cplan.selected_ids is None for item in items):
        return

    def wanted(item: Item) -> bool:
        ids = item.cplan.selected_ids
        if ids is not None and item.item_id not in ids:
            return False
        return matches is None or matches(item.keywords)

    session.select(items, {id(item) for item in items if wanted(item)})
