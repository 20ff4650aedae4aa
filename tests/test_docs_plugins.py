"""docs/plugins.md: every example is real code, run the way a plugin author runs it.

The examples' own tests (which use ``planrun.testing``) run with pytest's
``pytester`` in a subprocess, as a third-party project would run them; the
distribution example is installed for real, as a ``*.dist-info`` (METADATA and
entry_points.txt) on ``PYTHONPATH``, which is what ``pip install`` leaves in
site-packages.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from planrun import ExecutorKind, ExitCode, hookimpl
from planrun.testing import Planrunner

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def blocks() -> dict[str, str]:
    """The doc's code blocks, keyed by the file name in their first line (``# conftest.py``)."""
    found = {}
    for m in re.finditer(r"```(?:python|toml)\n# (\S+)\n(.*?)```", DOC.read_text(), re.S):
        assert m.group(1) not in found, f"two examples named {m.group(1)}"
        found[m.group(1)] = m.group(2)
    return found


def install_wordcount(site: Path) -> None:
    """Install the doc's distribution into ``site`` as pip would: the module plus a dist-info."""
    b = blocks()
    project = re.search(r'name = "([^"]+)"\nversion = "([^"]+)"', b["pyproject.toml"])
    entry = re.search(r"\[project\.entry-points\.planrun\]\n(\w+) = \"(\w+)\"", b["pyproject.toml"])
    assert project and entry, "the pyproject.toml example lost its name, version or planrun entry point"
    name, version = project.groups()
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{entry.group(2)}.py").write_text(b[f"{entry.group(2)}.py"])
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[planrun]\n{entry.group(1)} = {entry.group(2)}\n")


def test_doc_has_every_example() -> None:
    assert set(blocks()) == {
        "conftest.py",
        "test_word_count.py",
        "pyproject.toml",
        "planrun_wordcount.py",
        "test_installed.py",
        "planrun_scribe.py",
        "test_scribe.py",
        "planrun_tally.py",
        "test_tally.py",
    }


@pytest.mark.parametrize(
    ("files", "passed"),
    [
        (["conftest.py", "test_word_count.py"], 1),
        (["planrun_scribe.py", "test_scribe.py"], 1),
        (["planrun_tally.py", "test_tally.py"], 1),
    ],
    ids=["conftest-check-kind", "executor", "reporter"],
)
def test_example_and_its_test_pass(pytester: pytest.Pytester, files: list[str], passed: int) -> None:
    b = blocks()
    for name in files:
        (pytester.path / name).write_text(b[name])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=passed)


def test_example_tests_fail_when_the_plugin_is_wrong(pytester: pytest.Pytester) -> None:
    """The examples' tests can fail: with the limit check inverted, the word-count test fails."""
    b = blocks()
    (pytester.path / "conftest.py").write_text(b["conftest.py"].replace("words > args.max", "words < args.max"))
    (pytester.path / "test_word_count.py").write_text(b["test_word_count.py"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)


def test_installed_distribution_runs_is_listed_and_can_be_disabled(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = tmp_path_factory.mktemp("site")
    install_wordcount(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    planrunner.makefile("notes.txt", "one two three\n")
    planrunner.makeplan(
        "p",
        """
        plan: p
        tasks:
          - {id: short, name: S, criteria: [word_count: {path: notes.txt, max: 5}]}
          - {id: long, name: L, criteria: [word_count: {path: notes.txt, max: 2}]}
        """,
    )
    version = planrunner.runsubprocess("--version")
    assert version.ret == ExitCode.OK
    version.stdout.fnmatch_lines(["  wordcount (planrun-wordcount-1.0.0)"])

    result = planrunner.runsubprocess("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED, result.outstr
    result.stdout.fnmatch_lines(["plugins: wordcount-1.0.0", "*notes.txt has 3 words, more than 2*"])
    result.assert_outcomes(passed=1, failed=1)

    off = planrunner.runsubprocess("-p", "no:wordcount", "p.plan.yaml")
    assert off.ret == ExitCode.INTERRUPTED
    off.stdout.fnmatch_lines(["p.plan.yaml:3:37: unknown check kind 'word_count' (known: *)"])
    assert "plugins:" not in off.outstr
    assert "wordcount" not in planrunner.runsubprocess("-p", "no:wordcount", "--version").outstr

    schema = planrunner.runsubprocess("schema")
    assert schema.ret == ExitCode.OK
    assert '"word_count"' in schema.outstr


def test_installed_distribution_own_test_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = tmp_path_factory.mktemp("site")
    install_wordcount(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    (pytester.path / "test_installed.py").write_text(blocks()["test_installed.py"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_conftest_check_kind_is_listed_and_can_be_disabled(planrunner: Planrunner) -> None:
    conftest = planrunner.makeconftest(blocks()["conftest.py"])
    planrunner.makefile("notes.txt", "one two three\n")
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [word_count: {path: notes.txt, max: 2}]}\n"
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*notes.txt has 3 words, more than 2*"])
    planrunner.run("--version").stdout.fnmatch_lines(["  conftest.py"])
    result.stdout.fnmatch_lines(["plugins: conftest.py"])  # and in the header
    for name in (str(conftest.resolve()), "conftest.py"):  # absolute, or as --version shows it
        off = planrunner.run("-p", f"no:{name}", "p.plan.yaml")
        assert off.ret == ExitCode.INTERRUPTED, off
        off.stdout.fnmatch_lines(["p.plan.yaml:3:33: unknown check kind 'word_count' (known: *)"])
        assert "conftest.py" not in planrunner.run("-p", f"no:{name}", "--version").outstr


def install_module(site: Path, dist: str, version: str, entry: str, module: str, code: str) -> None:
    """A distribution ``dist`` with one ``planrun`` entry point ``entry = module``, as pip leaves it."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[planrun]\n{entry} = {module}\n")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "def planrun_register_check():\n    return []\n",
            "ERROR: plugin 'typo' implements unknown hook 'planrun_register_check' (did you mean 'planrun_register_checks'?)",
        ),
        (
            "from planrun import hookimpl\n\n@hookimpl\ndef planrun_sesionfinish(session):\n    pass\n",
            "ERROR: plugin 'typo' implements unknown hook 'planrun_sesionfinish' (did you mean 'planrun_sessionfinish'?)",
        ),
        ("def planrun_made_up():\n    pass\n", "ERROR: plugin 'typo' implements unknown hook 'planrun_made_up'"),
    ],
    ids=["undecorated", "decorated", "no-near-name"],
)
def test_installed_plugin_with_a_misspelt_hook_is_an_error(
    planrunner: Planrunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    code: str,
    message: str,
) -> None:
    site = tmp_path_factory.mktemp("site")
    install_module(site, "planrun-typo", "0.3", "typo", "planrun_typo", code)
    monkeypatch.setenv("PYTHONPATH", str(site))
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{file_exists: ran}]}\n")
    result = planrunner.runsubprocess("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert len(result.errstr.splitlines()) == 1, result.errstr
    result.stderr.fnmatch_lines([message])
    assert not (planrunner.path / "ran").exists()


def test_installed_and_conftest_check_kinds_of_one_name_name_both(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = tmp_path_factory.mktemp("site")
    install_wordcount(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    planrunner.makeconftest(blocks()["conftest.py"])
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{file_exists: ran}]}\n")
    result = planrunner.runsubprocess("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines(
        ["ERROR: check kind 'word_count' is registered twice: by wordcount and by */conftest.py"]
    )
    assert not (planrunner.path / "ran").exists()


@pytest.mark.parametrize("name", ["shell", "scribe"])
def test_duplicate_executor_names_both_plugins(planrunner: Planrunner, name: str) -> None:
    class One:
        @hookimpl
        def planrun_register_executors(self) -> list[ExecutorKind]:
            return [ExecutorKind(name, lambda config: None)]  # type: ignore[arg-type,return-value]

    class Two(One):
        pass

    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{file_exists: ran}]}\n")
    plugins: list[object] = [One()] if name == "shell" else [One(), Two()]
    result = planrunner.run("p.plan.yaml", plugins=plugins)
    assert result.ret == ExitCode.USAGE_ERROR, result
    first = "shell" if name == "shell" else "tests.test_docs_plugins.*One"
    result.stderr.fnmatch_lines(
        [f"ERROR: executor '{name}' is registered twice: by {first} and by tests.test_docs_plugins.*"]
    )
    assert not (planrunner.path / "ran").exists()


AUTHOR_SUITE = '''
from planrun.testing import tool_turn


def test_check_kind(planrunner):
    planrunner.makeconftest(
        """
        from planrun import ArgsModel, CheckKind, fail, hookimpl

        class Args(ArgsModel):
            n: int

        def even(args, ctx):
            if args.n % 2:
                fail(f"{args.n} is odd")

        @hookimpl
        def planrun_register_checks():
            return [CheckKind("even", Args, even)]
        """
    )
    planrunner.makeplan("p", "plan: p\\ntasks:\\n  - {id: t, name: T, criteria: [{even: {n: 3}}]}\\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*3 is odd*"])


def test_agent_against_the_scripted_server(planrunner, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    planrunner.makefile(
        "pyproject.toml",
        f'[tool.planrun]\\nexecutor = "openai"\\nmodel = "m"\\nbase_url = "{openai_server.url}"\\n',
    )
    openai_server.add(
        tool_turn(("write_file", {"path": "a.txt", "content": "hello\\n"})),
        tool_turn(("finish", {"summary": "wrote a.txt"})),
    )
    planrunner.makeplan("p", "plan: p\\ntasks:\\n  - {id: t, name: T, file: a.txt, criteria: [a.txt contains `hello`]}\\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == 0, result
    assert len(openai_server.requests) == 2
'''


@pytest.mark.parametrize("how", ["-p", "pytest_plugins"])
def test_planrun_testing_is_a_pytest_plugin_for_outside_projects(pytester: pytest.Pytester, how: str) -> None:
    """A plugin author's own suite gets ``planrunner`` and ``openai_server`` by opting in."""
    if how == "-p":
        (pytester.path / "test_author.py").write_text(AUTHOR_SUITE)
        result = pytester.runpytest_subprocess("-p", "planrun.testing", "-p", "no:cacheprovider")
    else:
        (pytester.path / "conftest.py").write_text('pytest_plugins = ["planrun.testing"]\n')
        (pytester.path / "test_author.py").write_text(AUTHOR_SUITE)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_planrun_testing_fixtures_report_failures_of_the_authors_tests(pytester: pytest.Pytester) -> None:
    """The fixtures do not hide a failing assertion: an author's wrong expectation fails their test."""
    (pytester.path / "test_author.py").write_text(
        AUTHOR_SUITE.replace("assert result.ret == 1", "assert result.ret == 0")
    )
    result = pytester.runpytest_subprocess("-ra", "-p", "planrun.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_author.py::test_check_kind - AssertionError: assert 1 == 0"])
