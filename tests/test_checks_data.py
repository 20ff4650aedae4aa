"""The data check kind over JSON, YAML and TOML, with dotted paths and [n] indexes."""

from __future__ import annotations

import json

import pytest

from planrun import ExitCode

from .conftest import CheckRun

FILES = {
    "package.json": '{"name": "app", "version": "1.2.0", "dependencies": {"jsonwebtoken": "^9"}, "files": ["dist", "lib"], "private": true, "count": 3}',
    "conf.yaml": "server:\n  port: 8080\n  hosts: [a.example, b.example]\nempty: null\n",
    "conf.yml": "name: yml\n",
    "pyproject.toml": '[project]\nname = "x"\n[tool.setuptools.package-dir]\n"a.b" = "src"\n',
}


@pytest.mark.parametrize(
    "criterion",
    [
        "data: {file: package.json, path: dependencies.jsonwebtoken, exists: true}",
        "data: {file: package.json, path: dependencies.express, exists: false}",
        "data: {file: package.json, path: version, equals: 1.2.0}",
        "data: {file: package.json, path: 'files[1]', equals: lib}",
        "data: {file: package.json, path: 'files[-1]', equals: lib}",
        "data: {file: package.json, path: version, matches: '^1\\.'}",
        "data: {file: package.json, path: files, contains: dist}",
        "data: {file: package.json, path: dependencies, contains: jsonwebtoken}",
        "data: {file: package.json, path: private, type: boolean}",
        "data: {file: package.json, path: count, type: integer}",
        "data: {file: conf.yaml, path: 'server.hosts[0]', equals: a.example}",
        "data: {file: conf.yaml, path: server.port, equals: 8080}",
        "data: {file: conf.yaml, path: empty, type: 'null'}",
        "data: {file: conf.yml, path: name, equals: yml}",
        "data: {file: pyproject.toml, path: project.name, equals: x}",
        """data: {file: pyproject.toml, path: 'tool.setuptools.package-dir["a.b"]', equals: src}""",
        "data: {file: package.json, path: '', type: object}",
    ],
)
def test_data_passes(check: CheckRun, criterion: str) -> None:
    result = check(criterion, FILES)
    assert result.ret == ExitCode.OK, result


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        (
            "data: {file: package.json, path: dependencies.express, exists: true}",
            "package.json:dependencies.express is missing",
        ),
        ("data: {file: package.json, path: name, exists: false}", "package.json:name exists but should not"),
        (
            "data: {file: package.json, path: version, equals: 2.0.0}",
            'package.json:version: expected "2.0.0", got "1.2.0"',
        ),
        ("data: {file: package.json, path: 'files[5]', equals: x}", "package.json:files[5] is missing"),
        (
            "data: {file: package.json, path: version, matches: '^2'}",
            'package.json:version: "1.2.0" does not match /^2/',
        ),
        (
            "data: {file: package.json, path: files, contains: src}",
            'package.json:files: ["dist", "lib"] does not contain "src"',
        ),
        (
            "data: {file: package.json, path: private, type: integer}",
            "package.json:private: expected integer, got bool true",
        ),
        (
            "data: {file: conf.yaml, path: server.port, equals: '8080'}",
            'conf.yaml:server.port: expected "8080", got 8080',
        ),
        ("data: {file: missing.json, path: a, exists: true}", "missing.json does not exist"),
        ("data: {file: broken.json, path: a, exists: true}", "broken.json does not parse: *"),
    ],
)
def test_data_fails_with_expected_and_actual(check: CheckRun, criterion: str, message: str) -> None:
    result = check(criterion, {**FILES, "broken.json": "{not json"})
    assert result.ret == ExitCode.TESTS_FAILED, result
    result.stdout.fnmatch_lines([f"  {message}"])


def test_data_rejects_unknown_file_types_at_compile_time(check: CheckRun) -> None:
    result = check("data: {file: notes.txt, path: a, exists: true}")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["c.plan.yaml:6:15: data: file 'notes.txt': data files are .json, .yaml, .yml or .toml"]
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        10**40,
        "",
        "plain",
        "é ü",
        "tab\there",
        "\x00nul",
        "\u2028",
        "\ud800",
        'q"uote',
        "a" * 150,
    ],
)
def test_a_scalar_is_shown_as_inside_a_list(value: object) -> None:
    """Scalars take a short path through _show; shown inside a list they take the general one: the same text."""
    from planrun.plugins.data import _quote, _show

    assert _show(value) == _show([value])[1:-1]
    if isinstance(value, str):
        assert _quote(value) == (
            json.dumps(value, ensure_ascii=False)
            if json.dumps(value, ensure_ascii=False).isprintable()
            else json.dumps(value)
        )


@pytest.mark.parametrize("value", ["a" * 199, "a" * 198, "a" * 300, "é" * 300, 10**250])
def test_a_long_scalar_is_cut_as_a_long_list_is(value: object) -> None:
    from planrun.plugins.data import _WIDTH, _show

    shown = _show(value)
    assert len(shown) <= _WIDTH
    text = str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)
    assert shown == (text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "...")
