"""Plugins: built-ins by entry point, -p / -p no:, conftest.py hooks, registries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tomllib

import planrun
from planrun import ExitCode, hookimpl
from planrun.testing import Planrunner

ROOT = Path(__file__).resolve().parent.parent
PLAN = "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n"


def test_every_builtin_module_is_an_entry_point_and_back() -> None:
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["planrun"]
    modules = {p.stem for p in (ROOT / "plugins").glob("*.py") if p.stem != "__init__"}
    assert {v.rsplit(".", 1)[1] for v in eps.values()} == modules
    assert all(v == f"planrun.plugins.{k}" for k, v in eps.items())


def test_core_never_imports_a_builtin_by_name() -> None:
    for path in (ROOT / "harness").glob("*.py"):
        assert "planrun.plugins" not in path.read_text(), path


def test_builtins_use_only_the_public_api_at_runtime() -> None:
    """Built-ins import ``planrun`` itself; private modules only for type hints."""
    import ast

    for path in (ROOT / "plugins").glob("*.py"):
        tree = ast.parse(path.read_text())
        type_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and id(node) not in type_only
                and (node.module or "").startswith("planrun.")
            ):
                raise AssertionError(f"{path.name}:{node.lineno} imports {node.module} at runtime")


def test_version_lists_plugins(planrunner: Planrunner) -> None:
    result = planrunner.run("--version")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines([f"planrun {planrun.__version__}", "  files (planrun-*)", "  shell (planrun-*)"])


def test_p_no_disables_a_builtin(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{data: {file: a.json, path: a, exists: true}}]}\n"
    )
    result = planrunner.run("-p", "no:data", "p.plan.yaml")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["p.plan.yaml:3:34: unknown check kind 'data' (known: command, file_absent, *)"])
    assert "data" not in planrunner.run("-p", "no:data", "--version").outstr.split()


def test_p_no_shell_makes_run_steps_a_usage_error(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch x, criteria: [{file_exists: x}]}\n")
    result = planrunner.run("-p", "no:shell", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: unknown executor 'shell' (known: *)"])
    assert "shell" not in result.errstr.split("(known:", 1)[1]
    assert not Path("x").exists()


def test_core_modules_cannot_be_disabled(planrunner: Planrunner) -> None:
    result = planrunner.run("-p", "no:runner", ".")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: plugin 'runner' is part of planrun's core and cannot be disabled"])


def test_p_loads_a_module_plugin(planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch) -> None:
    planrunner.makefile(
        "myplug.py",
        """
        from planrun import CheckKind, ArgsModel, fail, hookimpl

        class Args(ArgsModel):
            word: str

        def shout(args, ctx):
            if args.word != args.word.upper():
                fail(f"{args.word!r} is not shouted")

        @hookimpl
        def planrun_register_checks():
            return [CheckKind("shout", Args, shout, lambda a: f"shout {a.word}")]
        """,
    )
    monkeypatch.syspath_prepend(str(planrunner.path))
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{shout: {word: HEY}}, {shout: {word: hey}}]}\n"
    )
    result = planrunner.run("-p", "myplug", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["criterion 2/2  shout hey", "  'hey' is not shouted"])
    sys.modules.pop("myplug", None)


def test_conftest_adds_a_check_kind_for_plans_below_it(planrunner: Planrunner) -> None:
    planrunner.makeconftest(
        """
        import planrun
        from planrun import ArgsModel, CheckKind

        class Args(ArgsModel):
            n: int

        def even(args, ctx):
            assert args.n % 2 == 0, f"{args.n} is odd"

        @planrun.hookimpl
        def planrun_register_checks():
            return [CheckKind("even", Args, even)]

        def pytest_configure(config):  # a pytest hook in the same file is ignored
            raise AssertionError("not for planrun")
        """,
        folder="plans",
    )
    planrunner.makeplan(
        "plans/p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{even: {n: 2}}, {even: {n: 3}}]}\n"
    )
    result = planrunner.run("plans")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["criterion 2/2  even {'n': 3}", "  3 is odd"])


def test_conftest_with_an_unknown_hook_is_an_error(planrunner: Planrunner) -> None:
    planrunner.makeconftest("import planrun\n\n@planrun.hookimpl\ndef planrun_made_up_hook():\n    pass\n")
    planrunner.makeplan("p", PLAN)
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: */conftest.py implements unknown hook 'planrun_made_up_hook'"])


def test_conftest_import_error_is_a_usage_error(planrunner: Planrunner) -> None:
    planrunner.makeconftest("raise ImportError('missing dependency foo')\n", folder="plans")
    planrunner.makeplan("plans/p", PLAN)
    result = planrunner.run("plans")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: */plans/conftest.py: conftest failed to import: ImportError: missing dependency foo"]
    )


def test_duplicate_check_kind_names_both_plugins(planrunner: Planrunner) -> None:
    class Dup:
        @hookimpl
        def planrun_register_checks(self) -> list[planrun.CheckKind]:
            return [planrun.CheckKind("file_exists", planrun.ArgsModel, lambda a, c: None)]

    planrunner.makeplan("p", PLAN)
    result = planrunner.run("p.plan.yaml", plugins=[Dup()])
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: check kind 'file_exists' is registered twice: by files and by tests.test_plugins.*Dup"]
    )


def test_plugin_with_a_misspelt_hook_is_an_error(planrunner: Planrunner) -> None:
    class Typo:
        @hookimpl
        def planrun_register_check(self) -> list[object]:
            return []

    result = planrunner.run(".", plugins=[Typo()])
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: plugin * implements unknown hook 'planrun_register_check' (did you mean 'planrun_register_checks'?)"]
    )


def test_plugin_executor_performs_tasks_without_run_steps(planrunner: Planrunner) -> None:
    class Writer(planrun.Executor):
        name = "writer"

        def execute(self, task: planrun.Task, context: planrun.ExecutionContext) -> planrun.ExecutionResult:
            for f in task.files:
                (context.workdir / f).write_text(task.description)
            if task.id == "stuck":
                return planrun.ExecutionResult(status="blocked", message="needs an API key")
            return planrun.ExecutionResult(status="done", output="wrote files")

    class Plugin:
        @hookimpl
        def planrun_register_executors(self) -> list[planrun.ExecutorKind]:
            return [planrun.ExecutorKind("writer", lambda config: Writer())]

    planrunner.makeplan(
        "p",
        """
        plan: p
        executor: writer
        workspace: temp
        tasks:
          - {id: write, name: W, file: a.txt, description: hello, criteria: [a.txt contains `hello`]}
          - {id: stuck, name: S, file: b.txt, criteria: [{file_exists: c.txt}]}
        """,
    )
    result = planrunner.run("p.plan.yaml", plugins=[Plugin()])
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, blocked=1)
    result.stdout.fnmatch_lines(["p.plan.yaml .B*", "BLOCKED p.plan.yaml::stuck - blocked: needs an API key"])


def test_task_execute_wrapper_sees_every_task(planrunner: Planrunner) -> None:
    seen: list[str] = []

    class Timer:
        @hookimpl(wrapper=True)
        def planrun_task_execute(self, task: planrun.Task):  # type: ignore[no-untyped-def]
            seen.append(task.id)
            return (yield)

    planrunner.makeplan(
        "p", "plan: p\nworkspace: temp\ntasks:\n  - {id: t, name: T, run: touch x, criteria: [{file_exists: x}]}\n"
    )
    assert planrunner.run("p.plan.yaml", plugins=[Timer()]).ret == ExitCode.OK
    assert seen == ["t"]


def test_logreport_and_terminal_summary_hooks(planrunner: Planrunner) -> None:
    reports: list[planrun.ItemReport] = []

    class Collector:
        @hookimpl
        def planrun_runtest_logreport(self, report: planrun.ItemReport) -> None:
            reports.append(report)

        @hookimpl
        def planrun_terminal_summary(self, terminalreporter, exitstatus):  # type: ignore[no-untyped-def]
            terminalreporter.write_sep("-", "my section")
            terminalreporter.write_line(f"exit status {exitstatus}")

        @hookimpl
        def planrun_sessionfinish(self, session, exitstatus):  # type: ignore[no-untyped-def]
            reports.append(exitstatus)

    planrunner.makeplan("p", PLAN)
    result = planrunner.run("p.plan.yaml", plugins=[Collector()])
    assert [r.nodeid for r in reports[:-1]] == ["p.plan.yaml::t"]
    assert reports[-1] == ExitCode.OK
    result.stdout.fnmatch_lines(["*- my section -*", "exit status 0", "*= 1 passed in *"])


def test_addoption_and_configure(planrunner: Planrunner) -> None:
    planrunner.makeconftest(
        """
        import planrun

        @planrun.hookimpl
        def planrun_addoption(parser):
            parser.add_argument("--greeting", default="hi")

        @planrun.hookimpl
        def planrun_configure(config):
            print("greeting:", config.getoption("greeting"))
        """
    )
    planrunner.makeplan("p", PLAN)
    result = planrunner.run("--greeting", "hello", "p.plan.yaml")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(["greeting: hello"])
    result = planrunner.run("--help")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(["usage: planrun [[]options[]] [[]PATHS ...[]]", "*--greeting GREETING*"])


def test_conftest_serves_only_the_plans_below_it(planrunner: Planrunner) -> None:
    """As in pytest: plans/a/conftest.py is not seen by plans in plans/b; the rootdir's serves all."""
    planrunner.makeconftest(
        """
        import planrun

        @planrun.hookimpl
        def planrun_compile_criterion(text):
            if text == "always":
                return {"file_absent": "nothing-here"}
        """,
        folder="plans/a",
    )
    planrunner.makeconftest(
        """
        import planrun
        from planrun import ArgsModel, CheckKind

        class Args(ArgsModel):
            pass

        @planrun.hookimpl
        def planrun_register_checks():
            return [CheckKind("everywhere", Args, lambda args, ctx: None)]
        """
    )
    planrunner.makeplan(
        "plans/a/first", "plan: a\ntasks:\n  - {id: t, name: T, criteria: [always, {everywhere: {}}]}\n"
    )
    planrunner.makeplan("plans/a/deeper/third", "plan: c\ntasks:\n  - {id: t, name: T, criteria: [always]}\n")
    planrunner.makeplan(
        "plans/b/second", "plan: b\ntasks:\n  - {id: t, name: T, criteria: [always, {everywhere: {}}]}\n"
    )
    planrunner.makefile("planrun.toml", "")  # the rootdir, so its conftest.py serves every plan
    result = planrunner.run("plans")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["plans/b/second.plan.yaml:3:33: criterion 'always' is not machine-checkable*"])
    assert "plans/a/" not in result.stdout.str().split("ERRORS")[1]
    result = planrunner.run("--co", "plans/a")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        ["<Plan plans/a/deeper/third.plan.yaml id=third>", """    'always' -> {"file_absent": "nothing-here"}*"""]
    )


def test_executor_precedence_cli_then_plan_then_config(planrunner: Planrunner) -> None:
    used: list[str] = []

    class Recorder(planrun.Executor):
        def __init__(self, name: str) -> None:
            self.name = name

        def execute(self, task: planrun.Task, context: planrun.ExecutionContext) -> planrun.ExecutionResult:
            used.append(f"{task.id}:{self.name}")
            (context.workdir / f"{task.id}.done").write_text("")
            return planrun.ExecutionResult()

    class Plugin:
        @hookimpl
        def planrun_register_executors(self) -> list[planrun.ExecutorKind]:
            return [planrun.ExecutorKind(n, lambda config, n=n: Recorder(n)) for n in ("cfg", "plan", "cli")]

    planrunner.makefile("pyproject.toml", '[tool.planrun]\nexecutor = "cfg"\n')
    task = "tasks:\n  - {{id: {0}, name: T, criteria: [{{file_exists: {0}.done}}]}}\n"
    planrunner.makeplan("a", "plan: a\nworkspace: temp\n" + task.format("a"))
    planrunner.makeplan("b", "plan: b\nworkspace: temp\nexecutor: plan\n" + task.format("b"))
    assert planrunner.run(".", plugins=[Plugin()]).ret == ExitCode.OK
    assert used == ["a:cfg", "b:plan"]
    used.clear()
    assert planrunner.run("--executor", "cli", ".", plugins=[Plugin()]).ret == ExitCode.OK
    assert used == ["a:cli", "b:cli"]
