"""docs/plugins.md: every example is real code, run the way a plugin author runs it.

The examples' own tests (which use ``planrun.testing``) run with pytest's
``pytester`` in a subprocess, as a third-party project would run them; the
distribution example is installed for real, as a ``*.dist-info`` (METADATA and
entry_points.txt) on ``PYTHONPATH``, which is what ``pip install`` leaves in
site-packages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planrun import ExitCode
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
    off = planrunner.run("-p", f"no:{conftest.resolve()}", "p.plan.yaml")
    assert off.ret == ExitCode.INTERRUPTED
    off.stdout.fnmatch_lines(["p.plan.yaml:3:33: unknown check kind 'word_count' (known: *)"])
