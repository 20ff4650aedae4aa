"""Configuration: the rootdir rule, config files, addopts, conftest and plugin loading errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import planrun
from planrun import ExitCode
from planrun.testing import Planrunner, RunResult

TOUCH = "plan: p\ntasks:\n  - {id: t, name: T, run: touch made.txt, criteria: [{file_exists: made.txt}]}\n"


class Seen:
    """What the configured run knew: its rootdir, config file and warnings."""

    rootdir: Path | None = None
    inipath: Path | None = None
    warnings: list[str]

    @planrun.hookimpl
    def planrun_configure(self, config: Any) -> None:
        self.rootdir, self.inipath = config.rootdir, config.inipath
        self.warnings = config.warnings


def refused(result: RunResult, message: str, *, made: str = "made.txt") -> None:
    """A usage error: exit 4, one line on stderr, no traceback, nothing ran."""
    __tracebackhide__ = True
    assert result.ret == ExitCode.USAGE_ERROR, result
    assert result.errstr.splitlines() == [result.errstr.strip()], result
    result.stderr.fnmatch_lines([message])
    assert result.no_traceback(), result
    assert not list(Path.cwd().rglob(made)), "a step ran"


# -- item 21: the rootdir rule ---------------------------------------------------------------


def test_steps_run_where_the_plan_is_not_where_planrun_was_started(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    planrunner.makeplan("a/x", TOUCH)
    Path("elsewhere").mkdir()
    monkeypatch.chdir("elsewhere")
    seen = Seen()
    result = planrunner.run("../a/x.plan.yaml", plugins=[seen])
    assert result.ret == ExitCode.OK, result
    assert Path("../a/made.txt").exists() and not Path("made.txt").exists()
    assert seen.rootdir == planrunner.path / "a" and seen.inipath is None
    result.stdout.fnmatch_lines(["rootdir: */a"])


def test_rootdir_is_the_common_ancestor_then_the_nearest_config_file(planrunner: Planrunner) -> None:
    planrunner.makeplan("proj/plans/a/x", TOUCH)
    planrunner.makeplan("proj/plans/b/y", TOUCH)
    seen = Seen()
    assert planrunner.run("proj/plans/a", "proj/plans/b/y.plan.yaml", plugins=[seen]).ret == ExitCode.OK
    assert seen.rootdir == planrunner.path / "proj/plans" and seen.inipath is None
    planrunner.makefile("proj/pyproject.toml", "[project]\nname = 'x'\n")  # counts without [tool.planrun]
    assert planrunner.run("proj/plans/a", "proj/plans/b/y.plan.yaml", plugins=[seen]).ret == ExitCode.OK
    assert seen.rootdir == planrunner.path / "proj"
    assert seen.inipath == planrunner.path / "proj/pyproject.toml"
    planrunner.makefile("proj/planrun.toml", "")  # planrun.toml first, in the same folder
    assert planrunner.run("proj/plans/a", plugins=[seen]).ret == ExitCode.OK
    assert seen.inipath == planrunner.path / "proj/planrun.toml"
    planrunner.makefile("proj/plans/a/pyproject.toml", "")  # the nearest wins
    assert planrunner.run("proj/plans/a/x.plan.yaml", plugins=[seen]).ret == ExitCode.OK
    assert seen.rootdir == planrunner.path / "proj/plans/a"


def test_rootdir_without_paths_searches_from_the_cwd(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\npaths = ['plans']\n")
    planrunner.makeplan("plans/x", TOUCH)
    Path("deep/er").mkdir(parents=True)
    monkeypatch.chdir("deep/er")
    seen = Seen()
    result = planrunner.run(plugins=[seen])
    assert result.ret == ExitCode.OK, result
    assert seen.rootdir == planrunner.path and seen.inipath == planrunner.path / "pyproject.toml"
    assert (planrunner.path / "plans" / "made.txt").exists() is False  # the rootdir is the workdir
    assert (planrunner.path / "made.txt").exists()


def test_rootdir_from_node_ids_and_missing_paths(planrunner: Planrunner) -> None:
    planrunner.makeplan("sub/x", TOUCH)
    planrunner.makefile("sub/planrun.toml", "")
    seen = Seen()
    result = planrunner.run("sub/x.plan.yaml::t", plugins=[seen])
    assert result.ret == ExitCode.OK, result
    assert seen.rootdir == planrunner.path / "sub"
    result = planrunner.run("sub/x.plan.yaml", "nowhere/y.plan.yaml", plugins=[seen])
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: file or directory not found: nowhere/y.plan.yaml"])
    assert seen.rootdir == planrunner.path / "sub"  # the missing path did not count


# -- item 14: only positional paths choose the rootdir -----------------------------------------


@pytest.mark.parametrize(
    "option",
    [["-k", "sub"], ["--executor", "sub"], ["--maxfail", "sub"], ["--timeout", "7"], ["-k=sub"], ["-ksub"]],
    ids=["-k", "--executor", "--maxfail-bad", "--timeout", "-k=", "-kWORD"],
)
def test_option_values_are_not_paths(planrunner: Planrunner, option: list[str]) -> None:
    for folder in ("sub", "7"):
        planrunner.makefile(f"{folder}/pyproject.toml", "[tool.planrun]\ntimeout = -1\n")
    planrunner.makeplan("plans/p", TOUCH.replace("T,", "sub,"))  # alone, its folder is the rootdir
    seen = Seen()
    result = planrunner.run(*option, "plans/p.plan.yaml", plugins=[seen])
    if option[0] == "--maxfail":
        refused(result, "ERROR: planrun: argument --maxfail: not a whole number: 'sub'")
        return
    assert result.ret == ExitCode.OK, result
    assert seen.rootdir == planrunner.path / "plans"


@pytest.mark.parametrize(
    "option",
    [
        ["--junitxml", "sub/x.xml"],
        ["--json", "sub/x.json"],
        ["--evidence", "sub/ev.json"],
        ["--model", "sub"],
        ["--base-url", "sub"],
        ["--judge-model", "sub"],
        ["--agent-cmd", "sub"],
        ["-n", "2"],
        ["--numprocesses", "2"],
        ["--shard", "1/1"],
    ],
    ids=lambda o: o[0],
)
def test_a_plugin_options_value_that_names_a_file_is_not_a_path(planrunner: Planrunner, option: list[str]) -> None:
    """planrun's plugins' options are known before the rootdir is chosen: ``--junitxml reports/x.xml`` with
    that file already there (the second run) must not move the rootdir, and with it where the steps run."""
    for made in ("sub/x.xml", "sub/x.json", "sub/ev.json", "2/keep", "1/1/keep"):
        planrunner.makefile(made, "")
    planrunner.makeplan("plans/p", TOUCH)
    seen = Seen()
    result = planrunner.run(*option, "plans/p.plan.yaml", plugins=[seen])
    assert seen.rootdir == planrunner.path / "plans", result
    assert result.ret == ExitCode.OK, result
    assert (planrunner.path / "plans" / "made.txt").exists() and not (planrunner.path / "made.txt").exists()


ROOT_OPTION = """
def planrun_addoption(parser):
    parser.add_argument("--where")
"""


def test_a_value_only_a_rootdir_plugin_knows_cannot_move_the_rootdir(planrunner: Planrunner) -> None:
    """An option a conftest of the rootdir adds is unknown when the rootdir is chosen: if its value, taken for
    a path, chose another rootdir than the paths alone, that is a usage error, never a run somewhere else."""
    planrunner.makeconftest(ROOT_OPTION)
    planrunner.makefile("sub/keep", "")
    planrunner.makeplan("plans/p", TOUCH)
    refused(
        planrunner.run("--where", "sub", "plans/p.plan.yaml"),
        "ERROR: 'sub' was read as a path to choose the rootdir, but it is the value of an option that a plugin"
        " of that rootdir adds: write the option and its value as one argument (--option=sub),"
        " or mark the rootdir with a planrun.toml or pyproject.toml",
    )
    assert not (planrunner.path / "plans" / "made.txt").exists()
    planrunner.makefile("planrun.toml", "")  # the rootdir marked: either way it is the same
    seen = Seen()
    result = planrunner.run("--where", "sub", "plans/p.plan.yaml", plugins=[seen])
    assert result.ret == ExitCode.OK, result
    assert seen.rootdir == planrunner.path


def test_paths_after_options_and_between_them(planrunner: Planrunner) -> None:
    planrunner.makeplan("a", TOUCH)
    planrunner.makeplan("b", TOUCH.replace("made", "other"))
    result = planrunner.run("a.plan.yaml", "-v", "b.plan.yaml", "-k", "t")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=2)


# -- item 13: config files and addopts ---------------------------------------------------------


def test_unterminated_quote_in_planrun_addopts(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    planrunner.makeplan("p", TOUCH)
    monkeypatch.setenv("PLANRUN_ADDOPTS", '"unterminated')
    refused(
        planrunner.run("p.plan.yaml"), """ERROR: PLANRUN_ADDOPTS: cannot split '"unterminated': no closing quotation"""
    )


@pytest.mark.parametrize("key", ["addopts", "plugins", "paths"])
def test_unterminated_quote_in_config_addopts(planrunner: Planrunner, key: str) -> None:
    planrunner.makeplan("p", TOUCH)
    planrunner.makefile("pyproject.toml", f"[tool.planrun]\n{key} = 'a \"b'\n")
    refused(
        planrunner.run(),  # paths are read only when none are given
        f"""ERROR: */pyproject.toml [[]tool.planrun[]] {key}: cannot split 'a "b': no closing quotation""",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tool = 1\n", "'tool' must be a table, got an integer"),
        ("tool.planrun = 1\n", "[[]tool.planrun[]] must be a table, got an integer"),
        ('[tool]\nplanrun = "x"\n', "[[]tool.planrun[]] must be a table, got a string"),
        ("[tool]\nplanrun = [1]\n", "[[]tool.planrun[]] must be a table, got an array"),
        ("[tool.planrun\n", "not valid TOML: *(at line 1, column 14)"),
        ("[tool.planrun]\naddopts = 3\n", "[[]tool.planrun[]] addopts must be a string or a list of strings"),
    ],
    ids=["tool-int", "planrun-int", "planrun-str", "planrun-array", "bad-toml", "addopts-int"],
)
def test_config_file_shapes(planrunner: Planrunner, text: str, message: str) -> None:
    planrunner.makeplan("p", TOUCH)
    planrunner.makefile("pyproject.toml", text)
    refused(planrunner.run("p.plan.yaml"), f"ERROR: */pyproject.toml*{message}")


def test_unknown_config_keys_warn_with_a_did_you_mean(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", TOUCH)
    planrunner.makefile("pyproject.toml", "[tool.planrun]\npath = ['.']\ntimout = 3\nwhatever = 1\n")
    seen = Seen()
    result = planrunner.run("p.plan.yaml", plugins=[seen])
    assert result.ret == ExitCode.OK, result
    root = planrunner.path / "pyproject.toml"
    assert seen.warnings == [
        f"{root}: unknown config option 'path' (did you mean 'paths'?)",
        f"{root}: unknown config option 'timout' (did you mean 'timeout'?)",
        f"{root}: unknown config option 'whatever'",
    ]


def test_a_plugin_option_is_a_known_config_key(planrunner: Planrunner) -> None:
    planrunner.makeconftest("def planrun_addoption(parser):\n    parser.add_argument('--my-flag')\n")
    planrunner.makefile("planrun.toml", "my_flag = 'x'\nmy_flg = 'y'\n")
    planrunner.makeplan("p", TOUCH)
    seen = Seen()
    assert planrunner.run("p.plan.yaml", plugins=[seen]).ret == ExitCode.OK
    assert seen.warnings == [
        f"{planrunner.path / 'planrun.toml'}: unknown config option 'my_flg' (did you mean 'my_flag'?)"
    ]


# -- item 13: conftest.py and plugins -----------------------------------------------------------


def test_conftest_importing_planrun_names_is_fine(planrunner: Planrunner) -> None:
    planrunner.makeconftest("from planrun import __version__ as planrun_version\nplanrun_level = 3\n")
    planrunner.makeplan("p", TOUCH)
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK, result
    assert Path("made.txt").exists()


def test_undecorated_hooks_in_a_conftest_are_hooks(planrunner: Planrunner) -> None:
    planrunner.makeconftest("def planrun_configure(config):\n    open('seen.txt', 'w').close()\n")
    planrunner.makeplan("p", TOUCH)
    assert planrunner.run("p.plan.yaml").ret == ExitCode.OK
    assert Path("seen.txt").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def planrun_bogus():\n    pass\n", "implements unknown hook 'planrun_bogus'"),
        (
            "import planrun\n\n@planrun.hookimpl\ndef planrun_configur(config):\n    pass\n",
            "implements unknown hook 'planrun_configur' (did you mean 'planrun_configure'?)",
        ),
        (
            "def planrun_sessionstrat(session):\n    pass\n",
            "implements unknown hook 'planrun_sessionstrat' (did you mean 'planrun_sessionstart'?)",
        ),
    ],
    ids=["bogus", "decorated-typo", "undecorated-typo"],
)
@pytest.mark.parametrize("folder", [".", "plans"])
def test_misspelt_hook_in_a_conftest_is_an_error(
    planrunner: Planrunner, source: str, message: str, folder: str
) -> None:
    planrunner.makefile("planrun.toml", "")  # the rootdir, whose conftest.py serves every plan
    planrunner.makeconftest(source, folder=folder)
    planrunner.makeplan("plans/p", TOUCH)
    refused(planrunner.run("plans"), f"ERROR: */{folder}/conftest.py {message}".replace("/./", "/"))


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("raise SystemExit(0)\n", "SystemExit: 0"),
        ("raise SystemExit('bye')\n", "SystemExit: bye"),
        ("class Stop(BaseException):\n    pass\n\nraise Stop('here')\n", "Stop: here"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ],
    ids=["exit-0", "exit-text", "base-exception", "sys-exit"],
)
@pytest.mark.parametrize("folder", [".", "plans"])
def test_conftest_that_exits_is_a_usage_error(planrunner: Planrunner, source: str, what: str, folder: str) -> None:
    planrunner.makefile("planrun.toml", "")
    planrunner.makeconftest(source, folder=folder)
    planrunner.makeplan("plans/p", TOUCH)
    refused(planrunner.run("plans"), f"ERROR: */conftest.py: conftest failed to import: {what}")


def test_hook_that_raises_systemexit_is_a_usage_error(planrunner: Planrunner) -> None:
    planrunner.makeconftest("def planrun_configure(config):\n    raise SystemExit(0)\n")
    planrunner.makeplan("p", TOUCH)
    refused(
        planrunner.run("p.plan.yaml"),
        "ERROR: a plugin or conftest.py raised SystemExit(0) while planrun started",
    )


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    folder = tmp_path / "mods"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("raise SystemExit(0)\n", "plugin '{name}' failed to import: SystemExit: 0"),
        ("class Stop(BaseException):\n    pass\n\nraise Stop('x')\n", "plugin '{name}' failed to import: Stop: x"),
        (
            "def planrun_register_check():\n    return []\n",
            "plugin '{name}' implements unknown hook 'planrun_register_check'"
            " (did you mean 'planrun_register_checks'?)",
        ),
    ],
    ids=["exit", "base-exception", "typo"],
)
def test_plugin_module_errors(
    planrunner: Planrunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, message: str
) -> None:
    name = _module(tmp_path, monkeypatch, f"plug_{abs(hash(source))}", source)
    planrunner.makeplan("p", TOUCH)
    refused(planrunner.run("-p", name, "p.plan.yaml"), "ERROR: " + message.format(name=name))


def test_non_callable_planrun_attributes_of_plugins_are_ignored(
    planrunner: Planrunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _module(tmp_path, monkeypatch, "plug_values", "planrun_version = '1.0'\nplanrun_flags = {'a': 1}\n")

    class Obj:
        planrun_level = 3

    planrunner.makeplan("p", TOUCH)
    result = planrunner.run("-p", name, "p.plan.yaml", plugins=[Obj()])
    assert result.ret == ExitCode.OK, result


def test_misspelt_hook_on_a_plugin_object(planrunner: Planrunner) -> None:
    class Typo:
        def planrun_colect_file(self, file_path: str, config: Any) -> None:
            return None

    planrunner.makeplan("p", TOUCH)
    refused(
        planrunner.run("p.plan.yaml", plugins=[Typo()]),
        "ERROR: plugin * implements unknown hook 'planrun_colect_file' (did you mean 'planrun_collect_file'?)",
    )


# -- item 26 ----------------------------------------------------------------------------------------


def test_schema_help(planrunner: Planrunner) -> None:
    for flag in ("--help", "-h"):
        result = planrunner.run("schema", flag)
        assert result.ret == ExitCode.OK
        result.stdout.fnmatch_lines(["usage: planrun schema"])
    result = planrunner.run("schema", "--bogus")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: planrun schema takes no arguments, got --bogus"])


@pytest.mark.parametrize(
    ("where", "opts", "message"),
    [
        ("env", "--bogus", "ERROR: PLANRUN_ADDOPTS: planrun: unrecognized arguments: --bogus"),
        ("env", "--maxfail x", "ERROR: PLANRUN_ADDOPTS: planrun: argument --maxfail: not a whole number: 'x'"),
        (
            "ini",
            "--maxfail",
            "ERROR: */pyproject.toml [[]tool.planrun[]] addopts: planrun: argument --maxfail: expected one argument",
        ),
        ("ini", "--tb=huge", "ERROR: */pyproject.toml [[]tool.planrun[]] addopts: planrun: argument --tb: invalid*"),
    ],
)
def test_bad_options_in_addopts_name_their_source(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, where: str, opts: str, message: str
) -> None:
    planrunner.makeplan("p", TOUCH)
    if where == "env":
        monkeypatch.setenv("PLANRUN_ADDOPTS", opts)
    else:
        planrunner.makefile("pyproject.toml", f"[tool.planrun]\naddopts = '{opts}'\n")
    refused(planrunner.run("p.plan.yaml"), message)


def test_bad_option_on_the_command_line_is_not_blamed_on_addopts(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANRUN_ADDOPTS", "-v")
    planrunner.makeplan("p", TOUCH)
    refused(planrunner.run("--bogus", "p.plan.yaml"), "ERROR: planrun: unrecognized arguments: --bogus")


def test_conftest_interrupted_while_importing(planrunner: Planrunner) -> None:
    planrunner.makeconftest("raise KeyboardInterrupt\n")
    planrunner.makeplan("p", TOUCH)
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    result.stderr.fnmatch_lines(["ERROR: interrupted while configuring"])
    assert result.no_traceback() and not Path("made.txt").exists()


def test_help_is_printed_once(planrunner: Planrunner) -> None:
    for args in (("--help",), ("-k", "x", "-h", "p.plan.yaml")):
        result = planrunner.run(*args)
        assert result.ret == ExitCode.OK
        assert result.outstr.count("usage: planrun") == 1, result
        assert result.errstr == ""
