"""-k expressions: substrings, and/or/not, parentheses, errors."""

from __future__ import annotations

import pytest

from planrun import UsageError
from planrun.plugins.selection import compile_keyword


@pytest.mark.parametrize(
    ("expr", "keywords", "selected"),
    [
        ("auth", ["express-auth", "add-deps"], True),
        ("AUTH", ["express-auth"], True),
        ("deps", ["user-model"], False),
        ("a or b and not c", ["b", "c"], False),  # and binds tighter than or
        ("a or b and not c", ["a", "c"], True),
        ("(a or b) and not c", ["a", "c"], False),
        ("not not x", ["x"], True),
        ("edge_cases[0]", ["edge_cases[0]"], True),
        ("plans/auth.plan.yaml", ["plans/auth.plan.yaml"], True),
    ],
)
def test_keyword_expressions(expr: str, keywords: list[str], selected: bool) -> None:
    assert compile_keyword(expr)(keywords) is selected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "-k: empty expression"),
        ("a and", "-k 'a and': expected a word, got 'the end'"),
        ("(a", "-k '(a': missing ')'"),
        ("a b", "-k 'a b': unexpected 'b'"),
        ("a & b", "-k 'a & b': unexpected character '&' at column 3"),
    ],
)
def test_bad_keyword_expressions(expr: str, message: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        compile_keyword(expr)
    assert str(excinfo.value) == message
