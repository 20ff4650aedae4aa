"""``planrun --version``: planrun's built-ins from their entry points, every other plugin loaded as a run loads it.

The fast path never imports a built-in (tests/test_startup.py counts the
modules); these tests pin that what it prints, and every error it reports, is
what the full path (every plugin imported, the whole command line parsed)
prints. ``--lf`` is the state plugin's option: with it on the command line
only every plugin's parser can read the line, so planrun takes the full path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import planrun
from planrun import ExitCode
from planrun.testing import Planrunner, RunResult

#: A plugin's option: the command line needs every plugin, so ``--version`` imports them all.
FULL = "--lf"

HOOK = "def planrun_register_checks(config):\n    return []\n"


def install(site: Path, dist: str, version: str, entries: dict[str, str], modules: dict[str, str]) -> Path:
    """A distribution ``dist`` (a ``*.dist-info`` as pip leaves it) with ``planrun`` entry points and modules."""
    site.mkdir(parents=True, exist_ok=True)
    for name, code in modules.items():
        (site / f"{name}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    # The body (after the blank line) is free text: a "Version:" there is not the version.
    body = "A description.\nVersion: 0.0.body\nName: not-the-name\n"
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: s\n\n{body}")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[console_scripts]\nx = y:z\n\n[planrun]\n{lines}")
    return info


@pytest.fixture
def site(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``PYTHONPATH`` (ahead of site-packages) for the distributions a test installs."""
    path = tmp_path_factory.mktemp("site")
    monkeypatch.setenv("PYTHONPATH", str(path))
    monkeypatch.delenv("PLANRUN_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return path


def both(planrunner: Planrunner, *args: str) -> tuple[RunResult, RunResult]:
    """``planrun --version ARGS`` by the fast path and by the full one (subprocesses: the installed dists count)."""
    return planrunner.runsubprocess("--version", *args), planrunner.runsubprocess("--version", FULL, *args)


def listed(result: RunResult) -> list[str]:
    return [line.strip() for line in result.outstr.splitlines()[1:]]


def builtins() -> list[str]:
    """The built-ins by their entry points in pyproject.toml (the meta-tests keep it equal to plugins/)."""
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    return sorted(tomllib.loads(pyproject.read_text())["project"]["entry-points"]["planrun"])


# -- what is listed -------------------------------------------------------


def test_every_builtin_is_listed_with_its_version_as_the_full_path_lists_it(planrunner: Planrunner) -> None:
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert fast.outstr.splitlines()[0] == f"planrun {planrun.__version__}"
    assert listed(fast) == [f"{name} (planrun-{planrun.__version__})" for name in builtins()]


@pytest.mark.parametrize(
    ("args", "gone"),
    [
        (["-p", "no:data"], ["data"]),
        (["-p", "no:data", "-p", "no:shell", "-pno:terminal"], ["data", "shell", "terminal"]),
        (["-p", "no:nonesuch"], []),
    ],
    ids=["one", "three", "unknown-name"],
)
def test_p_no_hides_a_builtin_as_the_full_path_does(planrunner: Planrunner, args: list[str], gone: list[str]) -> None:
    fast, full = both(planrunner, *args)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    names = [line.split()[0] for line in listed(fast)]
    assert names == [name for name in builtins() if name not in gone]


def test_p_no_in_addopts_and_the_environment_hides_a_builtin(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    planrunner.makefile("pyproject.toml", '[tool.planrun]\naddopts = "-p no:data"\n')
    monkeypatch.setenv("PLANRUN_ADDOPTS", "-p no:shell")
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    names = [line.split()[0] for line in listed(fast)]
    assert "data" not in names and "shell" not in names and "files" in names


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        (HOOK, True),
        ("from planrun import hookimpl\n\n@hookimpl\ndef planrun_configure(config):\n    pass\n", True),
        ("import pytest\n\nplanrun_note = 'a value, no hook'\n", False),  # for pytest only: not a plugin
    ],
    ids=["hook", "decorated-hook", "no-planrun-hooks"],
)
def test_a_rootdir_conftest_is_listed_when_it_has_planrun_hooks(planrunner: Planrunner, code: str, shown: bool) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makeconftest(code)
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert ("conftest.py" in listed(fast)) is shown
    assert listed(fast)[-1 if shown else len(builtins()) - 1] == ("conftest.py" if shown else "workers (planrun-0.1.0)")
    off, off_full = both(planrunner, "-p", "no:conftest.py")
    assert off.outstr == off_full.outstr
    assert "conftest.py" not in listed(off)


def test_an_installed_plugin_is_listed_after_the_builtins_and_p_no_hides_it(planrunner: Planrunner, site: Path) -> None:
    install(site, "planrun-wordcount", "1.2.0", {"wordcount": "pr_wordcount"}, {"pr_wordcount": HOOK})
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert listed(fast)[-1] == "wordcount (planrun-wordcount-1.2.0)"
    off, off_full = both(planrunner, "-p", "no:wordcount")
    assert off.ret == ExitCode.OK
    assert off.outstr == off_full.outstr
    assert "wordcount" not in off.outstr


def test_one_distribution_with_two_entry_points_lists_both_with_its_version(planrunner: Planrunner, site: Path) -> None:
    install(site, "Planrun.Pair", "3.0", {"left": "pr_left", "right": "pr_right"}, {"pr_left": HOOK, "pr_right": HOOK})
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert listed(fast)[-2:] == ["left (Planrun.Pair-3.0)", "right (Planrun.Pair-3.0)"]  # the name as METADATA has it


def test_autoload_off_lists_only_builtins_and_what_is_asked_for(
    planrunner: Planrunner, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(site, "planrun-wordcount", "1.2.0", {"wordcount": "pr_wordcount"}, {"pr_wordcount": HOOK})
    monkeypatch.setenv("PLANRUN_DISABLE_PLUGIN_AUTOLOAD", "1")
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert "wordcount" not in fast.outstr
    asked, asked_full = both(planrunner, "-p", "wordcount")
    assert asked.outstr == asked_full.outstr
    assert listed(asked)[-1] == "wordcount (planrun-wordcount-1.2.0)"


@pytest.mark.parametrize("where", ["ini", "env", "-p"])
def test_a_module_plugin_named_in_config_env_or_p_is_imported_and_listed(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    planrunner.makefile("localplug.py", HOOK)
    args: list[str] = []
    if where == "ini":
        planrunner.makefile("pyproject.toml", '[tool.planrun]\nplugins = ["localplug"]\n')
    elif where == "env":
        monkeypatch.setenv("PLANRUN_PLUGINS", "localplug")
    else:
        args = ["-p", "localplug"]
    fast, full = both(planrunner, *args)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert listed(fast)[-1] == "localplug"


def test_a_shadowing_planrun_distribution_lists_what_it_declares(planrunner: Planrunner, site: Path) -> None:
    """Built-ins are planrun's entry points, whichever planrun distribution is first on the path."""
    entries = {"files": "planrun.plugins.files", "state": "planrun.plugins.state", "data": "planrun.plugins.data"}
    install(site, "planrun", "9.9", entries, {})
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    assert listed(fast) == ["files (planrun-9.9)", "state (planrun-9.9)", "data (planrun-9.9)"]  # in their order


# -- what fails to load fails here too -----------------------------------------


@pytest.mark.parametrize(
    ("entries", "modules", "message"),
    [
        (
            {"boom": "pr_boom"},
            {"pr_boom": "raise RuntimeError('no database')\n"},
            "ERROR: plugin 'boom' (pr_boom) failed to load: RuntimeError: no database",
        ),
        (
            {"typo": "pr_typo"},
            {"pr_typo": "def planrun_register_check():\n    return []\n"},
            "ERROR: plugin 'typo' implements unknown hook 'planrun_register_check'"
            " (did you mean 'planrun_register_checks'?)",
        ),
        (
            {"gone": "pr_gone"},
            {},
            "ERROR: plugin 'gone' (pr_gone) failed to load: ModuleNotFoundError: No module named 'pr_gone'",
        ),
        (
            {"exits": "pr_exits"},
            {"pr_exits": "raise SystemExit(3)\n"},
            "ERROR: plugin 'exits' (pr_exits) failed to load: SystemExit: 3",
        ),
    ],
    ids=["raises", "misspelt-hook", "module-missing", "system-exit"],
)
def test_an_installed_plugin_that_would_not_load_fails_version_too(
    planrunner: Planrunner, site: Path, entries: dict[str, str], modules: dict[str, str], message: str
) -> None:
    install(site, "planrun-bad", "0.1", entries, modules)
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.USAGE_ERROR, (fast, full)
    assert fast.errstr == full.errstr == message + "\n"
    assert fast.outstr == full.outstr == ""


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            {"state": "planrun.plugins.state", "ghost": "planrun.plugins.ghost"},
            "ERROR: plugin 'ghost' (planrun.plugins.ghost) failed to load:"
            " ModuleNotFoundError: No module named 'planrun.plugins.ghost'",
        ),
        (
            {"state": "planrun.plugins.state", "elsewhere": "pr_elsewhere"},
            "ERROR: plugin 'elsewhere' (pr_elsewhere) failed to load: RuntimeError: not planrun's",
        ),
        (
            {"state": "planrun.plugins.state", "nopkg": "planrun_nopkg.sub"},
            "ERROR: plugin 'nopkg' (planrun_nopkg.sub) failed to load:"
            " ModuleNotFoundError: No module named 'planrun_nopkg'",
        ),
    ],
    ids=["planrun-module-missing", "module-outside-planrun-raises", "package-missing"],
)
def test_a_builtin_entry_point_that_would_not_load_fails_version_too(
    planrunner: Planrunner, site: Path, entries: dict[str, str], message: str
) -> None:
    """A planrun module is found without being imported; a module from elsewhere is imported."""
    install(site, "planrun", "9.9", entries, {"pr_elsewhere": 'raise RuntimeError("not planrun\'s")\n'})
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.USAGE_ERROR, (fast, full)
    assert fast.errstr == full.errstr == message + "\n"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("raise ValueError('bad conftest')\n", "conftest failed to import: ValueError: bad conftest"),
        ("def planrun_sesionfinish(session):\n    pass\n", "implements unknown hook 'planrun_sesionfinish'"),
        ("import sys\nsys.exit(7)\n", "conftest failed to import: SystemExit: 7"),
    ],
    ids=["raises", "misspelt-hook", "exits"],
)
def test_a_conftest_that_would_not_load_fails_version_too(planrunner: Planrunner, code: str, message: str) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    path = planrunner.makeconftest(code).resolve()
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.USAGE_ERROR, (fast, full)
    assert fast.errstr == full.errstr
    assert fast.errstr.startswith(f"ERROR: {path}") and message in fast.errstr, fast.errstr
    assert len(fast.errstr.splitlines()) == 1


@pytest.mark.parametrize(
    ("code", "ret", "message"),
    [
        (
            "def planrun_addoption(parser):\n    parser.add_argument('-k', dest='mine')\n",
            ExitCode.USAGE_ERROR,
            "ERROR: a plugin's planrun_addoption failed: argument -k: conflicting option string: -k",
        ),
        (
            "def planrun_addoption(parser):\n    raise RuntimeError('addoption broke')\n",
            ExitCode.INTERNAL_ERROR,
            "RuntimeError: addoption broke",
        ),
    ],
    ids=["clashes-with-a-core-option", "raises"],
)
def test_a_conftest_whose_addoption_fails_fails_version_too(
    planrunner: Planrunner, code: str, ret: int, message: str
) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makeconftest(code)
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ret, (fast, full)
    assert message in fast.errstr and message in full.errstr, fast.errstr
    assert fast.outstr == full.outstr == ""


def test_an_installed_plugins_own_option_is_added_and_listed(planrunner: Planrunner, site: Path) -> None:
    code = "def planrun_addoption(parser):\n    parser.add_argument('--wordcount-max', type=int)\n"
    install(site, "planrun-wordcount", "1.2.0", {"wordcount": "pr_wordcount"}, {"pr_wordcount": code})
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.OK, (fast, full)
    assert fast.outstr == full.outstr
    with_option = planrunner.runsubprocess("--version", "--wordcount-max", "3")  # its option: the full path
    assert with_option.ret == ExitCode.OK, with_option
    assert with_option.outstr == fast.outstr


# -- the command line: the fast path only when the core alone can read it --------------


@pytest.mark.parametrize(
    "args",
    [
        ["--version", "-n", "2"],  # a plugin's option with its value
        ["--vers"],  # an abbreviation: only the full parser knows whether it is ambiguous
        ["--version", "--junitxml=out.xml", "-v"],
        ["-q", "--version", "-p", "no:data", "plans/"],
    ],
    ids=["plugin-option", "abbreviation", "plugin-option-with-equals", "core-options-and-a-path"],
)
def test_version_with_other_options_still_prints_the_listing(planrunner: Planrunner, args: list[str]) -> None:
    result = planrunner.runsubprocess(*args)
    assert result.ret == ExitCode.OK, result
    assert result.outstr.splitlines()[0] == f"planrun {planrun.__version__}"
    assert ("data (planrun-0.1.0)" in listed(result)) is ("no:data" not in args)
    assert not (planrunner.path / "out.xml").exists()  # --version runs nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "--bogus"], "ERROR: planrun: unrecognized arguments: --bogus"),
        (["--version", "--timeout", "abc"], "ERROR: planrun: argument --timeout: not a number: 'abc'"),
        (["--version", "-n", "zero"], "ERROR: planrun: argument -n/--numprocesses: *'zero'"),
        (["--version", "-p", "no:session"], "ERROR: plugin 'session' is part of planrun's core and cannot be disabled"),
    ],
    ids=["unknown-option", "bad-core-value", "bad-plugin-value", "core-plugin-disabled"],
)
def test_version_with_a_bad_command_line_is_the_usage_error_it_always_was(
    planrunner: Planrunner, args: list[str], message: str
) -> None:
    result = planrunner.runsubprocess(*args)
    assert result.ret == ExitCode.USAGE_ERROR, result
    result.stderr.fnmatch_lines([message])
    assert len(result.errstr.splitlines()) == 1, result.errstr
    assert result.outstr == ""


def test_a_bad_config_file_is_an_error_for_version_too(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\ntimeout = -1\n")
    fast, full = both(planrunner)
    assert fast.ret == full.ret == ExitCode.USAGE_ERROR
    assert fast.errstr == full.errstr == "ERROR: [tool.planrun] timeout must be a positive number of seconds, got -1\n"


def test_version_in_process_twice_lists_the_same(planrunner: Planrunner) -> None:
    first, second = planrunner.run("--version"), planrunner.run("--version", "-p", "no:files")
    assert first.ret == second.ret == ExitCode.OK
    assert "files (planrun-0.1.0)" in listed(first)
    assert "files" not in second.outstr
    assert listed(planrunner.run("--version")) == listed(first)  # no state left behind by the second


def test_version_into_a_closed_pipe_exits_quietly(planrunner: Planrunner) -> None:
    """``planrun --version | head -0``: the reader went away before planrun wrote."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "planrun", "--version"],
            cwd=planrunner.path,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "INTERNAL ERROR" not in proc.stderr


# -- metadata read once per process ------------------------------------------------

#: Counts the opens of distribution metadata (an audit hook: what the process really opened), then runs planrun.
COUNTER = """\
import atexit, collections, json, runpy, sys
opened = collections.Counter()
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].endswith(("/METADATA", "/entry_points.txt")):
        opened[args[0]] += 1
sys.addaudithook(hook)
out, sys.argv = sys.argv[1], ["planrun", *sys.argv[2:]]
def write():
    with open(out + ".tmp", "w") as f:
        json.dump(opened, f)
atexit.register(write)
runpy.run_module("planrun", run_name="__main__")
"""


def opens(planrunner: Planrunner, *args: str) -> dict[str, int]:
    import json

    out = planrunner.path / "opened.json"
    proc = subprocess.run(
        [sys.executable, "-c", COUNTER, str(out), *args], cwd=planrunner.path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(Path(str(out) + ".tmp").read_text()))


def test_version_reads_each_distributions_metadata_once(planrunner: Planrunner, site: Path) -> None:
    install(site, "Planrun.Pair", "3.0", {"left": "pr_left", "right": "pr_right"}, {"pr_left": HOOK, "pr_right": HOOK})
    opened = opens(planrunner, "--version")
    pair = [path for path in opened if "Planrun.Pair-3.0.dist-info" in path]
    assert sorted(Path(p).name for p in pair) == ["METADATA", "entry_points.txt"]
    assert any(path.endswith("/METADATA") and "/planrun-" in path for path in opened)
    assert set(opened.values()) == {1}, opened


def test_a_run_reads_each_planrun_distributions_metadata_once(planrunner: Planrunner, site: Path) -> None:
    install(site, "Planrun.Pair", "3.0", {"left": "pr_left", "right": "pr_right"}, {"pr_left": HOOK, "pr_right": HOOK})
    planrunner.makefile("a.txt", "hi\n")
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: a.txt}]}\n")
    opened = opens(planrunner, "--verify-only", "p.plan.yaml")
    metadata = {path: n for path, n in opened.items() if path.endswith("/METADATA")}
    assert any("Planrun.Pair-3.0.dist-info" in path for path in metadata), opened
    assert any("/planrun-" in path for path in metadata), opened
    assert set(metadata.values()) == {1}, metadata


# -- planrun/__init__.py: public names imported on first use ------------------------------


def test_every_public_name_is_its_modules_object() -> None:
    import importlib

    own = {"__version__", "copy_workdir", "main"}  # defined in planrun/__init__.py itself
    assert set(planrun.__all__) == set(planrun._MODULE_OF) | own
    for name in planrun.__all__:
        if name not in own:
            assert getattr(planrun, name) is getattr(importlib.import_module(planrun._MODULE_OF[name]), name), name
    assert set(planrun.__all__) <= set(dir(planrun))


def test_the_lazy_exports_are_the_type_checking_imports() -> None:
    """mypy reads the ``TYPE_CHECKING`` imports, Python the ``_EXPORTS`` table: they must say the same."""
    import ast

    tree = ast.parse(Path(planrun.__file__).read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    typed = {(a.name, n.module) for n in guarded.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert typed == {(name, module) for name, module in planrun._MODULE_OF.items()}


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import() -> None:
    with pytest.raises(AttributeError, match="module 'planrun' has no attribute 'nonesuch'"):
        planrun.nonesuch  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'nonesuch' from 'planrun'"):
        exec("from planrun import nonesuch")
    from planrun import graph

    assert graph.mermaid is planrun.mermaid
