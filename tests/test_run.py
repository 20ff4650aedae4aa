"""Running plans: order, dependencies, red before green, selection, stopping, exit codes."""

from __future__ import annotations

from pathlib import Path

from planrun import ExitCode
from planrun.testing import Planrunner

CHAIN = """
plan: chain
workspace: temp
tasks:
  - id: one
    name: First
    run: echo 1 > one.txt
    criteria: [{file_exists: one.txt}]
  - id: two
    name: Second
    depends_on: [one]
    run: {two_run}
    criteria: [{file_exists: two.txt}]
  - id: three
    name: Third
    depends_on: [two]
    run: touch three.txt
    criteria: [{file_exists: three.txt}]
  - id: side
    name: Independent
    run: touch side.txt
    criteria: [{file_exists: side.txt}]
"""


def test_all_pass_exit_0_and_report_shape(planrunner: Planrunner) -> None:
    planrunner.makeplan("chain", CHAIN.replace("{two_run}", "touch two.txt"))
    result = planrunner.run("chain.plan.yaml")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*= plan session starts =*",
            "platform * -- Python *, planrun-*, pluggy-*",
            f"rootdir: {planrunner.path}",
            "collected 4 items (1 plan, 4 tasks, 4 criteria)",
            "",
            "chain.plan.yaml ....*100%]",
            "",
            "*= 4 passed in *s =*",
        ]
    )
    assert len(result.stdout.lines[0]) == 80


def test_failed_task_skips_its_dependents_with_the_reason(planrunner: Planrunner) -> None:
    planrunner.makeplan("chain", CHAIN.replace("{two_run}", "echo nope"))
    result = planrunner.run("-rfs", "chain.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "chain.plan.yaml .Fs.*100%]",
            "*= FAILURES =*",
            "*_ chain.plan.yaml::two _*",
            "criterion 1/1  file_exists two.txt",
            "  not found: two.txt",
            "  chain.plan.yaml:12:16",
            "*= short plan summary info =*",
            "FAILED chain.plan.yaml::two - file_exists two.txt - not found: two.txt",
            "SKIPPED chain.plan.yaml::three - dependency two failed",
            "*= 1 failed, 2 passed, 1 skipped in *",
        ]
    )


def test_failing_step_fails_the_task_with_its_output(planrunner: Planrunner) -> None:
    planrunner.makeplan("chain", CHAIN.replace("{two_run}", "'echo compiling; echo error: bad >&2; exit 2'"))
    result = planrunner.run("chain.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*_ chain.plan.yaml::two _*",
            "step 1/1 exited with 2: `echo compiling; echo error: bad >&2; exit 2`",
            "  step:",
            "  echo compiling; echo error: bad >&2; exit 2",
            "  output tail:",
            "  compiling",
            "  error: bad",
            "  chain.plan.yaml:8:5",
        ]
    )


def test_task_without_criteria_is_an_error_and_does_not_run(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["ERROR p.plan.yaml::t - no success criteria: a task without criteria can never pass"])
    assert not Path("ran.txt").exists()


def test_failed_prerequisites_skip_the_plan_and_count_as_an_error(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\nprerequisites: [{file_exists: package.json}]\ntasks:\n  - id: t\n    name: T\n    run: touch ran.txt\n    criteria: [{file_exists: ran.txt}]\n",
    )
    result = planrunner.run("-rEs", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "ERROR p.plan.yaml::prerequisites - prerequisites not met: plan skipped",
            "SKIPPED p.plan.yaml::t - prerequisites not met",
        ]
    )
    assert not Path("ran.txt").exists()


def test_vacuous_criterion_is_a_warning_and_a_failure_under_strict(planrunner: Planrunner) -> None:
    planrunner.makefile("already.txt", "x")
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    run: touch new.txt\n    criteria: [{file_exists: already.txt}, {file_exists: new.txt}]\n",
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "p.plan.yaml:6:16: vacuous criterion 'file_exists already.txt': it held before task 't' ran",
        ]
    )
    result = planrunner.run("--strict", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  vacuous: it held before the task ran (--strict)"])


def test_verify_only_has_no_baseline_so_nothing_is_vacuous(planrunner: Planrunner) -> None:
    planrunner.makefile("already.txt", "x")
    planrunner.makeplan(
        "p",
        "plan: p\ntasks:\n  - id: t\n    name: T\n    run: touch new.txt\n    criteria: [{file_exists: already.txt}]\n",
    )
    result = planrunner.run("--verify-only", "p.plan.yaml")
    assert result.ret == ExitCode.OK
    result.assert_outcomes(passed=1, warnings=None)
    assert "vacuous" not in result.outstr
    assert not Path("new.txt").exists(), "--verify-only executed a step"


def test_verify_only_asserts_against_the_tree_as_it_is(planrunner: Planrunner) -> None:
    planrunner.makeplan("chain", CHAIN.replace("workspace: temp\n", "").replace("{two_run}", "touch two.txt"))
    planrunner.makefile("one.txt", "")
    result = planrunner.run("--verify-only", "chain.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["chain.plan.yaml .FsF*"])
    assert sorted(p.name for p in planrunner.path.iterdir() if p.name != ".planrun") == ["chain.plan.yaml", "one.txt"]


def test_regression_is_reported_against_the_task_that_broke_it(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        workspace: temp
        tasks:
          - id: write-config
            name: Write config
            run: echo 'debug = false' > app.cfg
            criteria: [{file_contains: {path: app.cfg, text: 'debug = false'}}]
          - id: enable-logs
            name: Enable logs
            run: echo 'debug = true' > app.cfg && touch logs.txt
            criteria: [{file_exists: logs.txt}]
        """,
    )
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml .F*",
            "*_ p.plan.yaml::enable-logs _*",
            "criterion 2/2  regression: criterion 1 of task write-config (file_contains app.cfg 'debug = false')",
            "  'debug = false' not found in app.cfg",
            "*",
            "  p.plan.yaml:7:16",
            "FAILED p.plan.yaml::enable-logs - regression: criterion 1 of task write-config*",
        ]
    )


def test_edge_cases_and_verification_are_items(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        """
        plan: p
        workspace: temp
        tasks:
          - {id: t, name: T, run: touch a.txt, criteria: [{file_exists: a.txt}]}
        edge_cases:
          - case: No b
            handling: fine
            criteria: [{file_absent: b.txt}]
          - case: Has c
            criteria: [{file_exists: c.txt}]
        verification:
          - "`test -f a.txt` passes"
        """,
    )
    result = planrunner.run("-v", "p.plan.yaml")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "p.plan.yaml::t PASSED*",
            "p.plan.yaml::edge_cases?0? PASSED*",
            "p.plan.yaml::edge_cases?1? FAILED*",
            "p.plan.yaml::verification PASSED*",
            "FAILED p.plan.yaml::edge_cases?1? - file_exists c.txt - not found: c.txt",
            "*= 1 failed, 3 passed in *",
        ]
    )


def test_workspace_temp_and_copy_leave_the_source_untouched(planrunner: Planrunner) -> None:
    planrunner.makefile("app/main.txt", "v1\n")
    planrunner.makeplan(
        "copy",
        """
        plan: copy
        workdir: app
        workspace: copy
        tasks:
          - {id: t, name: T, run: "echo v2 > main.txt", criteria: [{file_contains: {path: main.txt, text: v2}}]}
        """,
    )
    planrunner.makeplan(
        "temp",
        "plan: temp\nworkspace: temp\ntasks:\n  - {id: t, name: T, run: 'test ! -e copy.plan.yaml && touch x', criteria: [{file_exists: x}]}\n",
    )
    result = planrunner.run(".")
    assert result.ret == ExitCode.OK, result
    assert Path("app/main.txt").read_text() == "v1\n"
    assert sorted(p.name for p in planrunner.path.iterdir() if p.name != ".planrun") == [
        "app",
        "copy.plan.yaml",
        "temp.plan.yaml",
    ]


def test_workdir_is_relative_to_the_plan_file(planrunner: Planrunner) -> None:
    planrunner.makefile("proj/src/x.py", "")
    planrunner.makeplan(
        "plans/p", "plan: p\nworkdir: ../proj\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: src/x.py}]}\n"
    )
    # Without a config file the rootdir is plans/ (the common ancestor), and ../proj is outside it.
    result = planrunner.run("plans")
    assert result.ret == ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["p.plan.yaml:2:10: workdir '../proj' resolves outside the rootdir *"])
    planrunner.makefile("planrun.toml", "")  # the project's root: now proj/ is inside it
    assert planrunner.run("plans").ret == ExitCode.OK


def test_collection_recurses_and_skips_hidden_and_vendor_folders(planrunner: Planrunner) -> None:
    ok = "plan: {0}\ntasks:\n  - {{id: t, name: T, criteria: [{{file_absent: nope}}]}}\n"
    planrunner.makeplan("a/b/deep", ok.format("deep"))
    planrunner.makefile("a/other.plan.yml", ok.format("other"))
    planrunner.makefile("a/not-a-plan.yaml", "x: [")
    planrunner.makeplan(".hidden/h", "broken: [")
    planrunner.makeplan("node_modules/n", "broken: [")
    planrunner.makeplan(".venv/v", "broken: [")
    result = planrunner.run("-q", "--co", ".")
    assert result.ret == ExitCode.OK, result
    assert result.stdout.lines[:2] == ["a/other.plan.yml::t", "a/b/deep.plan.yaml::t"] or result.stdout.lines[:2] == [
        "a/b/deep.plan.yaml::t",
        "a/other.plan.yml::t",
    ]
    # A file named explicitly is collected whatever its name.
    planrunner.makefile("custom.yaml", ok.format("custom"))
    assert planrunner.run("-q", "--co", "custom.yaml").stdout.lines[0] == "custom.yaml::t"


def test_keyword_selection(planrunner: Planrunner) -> None:
    planrunner.makeplan("chain", CHAIN.replace("{two_run}", "touch two.txt"))
    # two's dependency one comes along (a temp workspace: nothing of it can hold yet).
    result = planrunner.run("--verify-only", "-k", "side or (Second and not third)", "chain.plan.yaml")
    result.assert_outcomes(failed=2, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["collected 4 items / 1 deselected / 3 selected (1 plan, 3 tasks, 3 criteria)"])
    result = planrunner.run("-k", "nothing-matches", "chain.plan.yaml")
    assert result.ret == ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*= 4 deselected in *"])
    result = planrunner.run("-k", "one and (", "chain.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: -k 'one and (': expected a word, got 'the end'"])


def test_exitfirst_and_maxfail(planrunner: Planrunner) -> None:
    tasks = "".join(f"  - {{id: t{i}, name: T{i}, criteria: [{{file_exists: nope{i}}}]}}\n" for i in range(4))
    planrunner.makeplan("f1", "plan: f1\ntasks:\n" + tasks)
    planrunner.makeplan("f2", "plan: f2\ntasks:\n" + tasks)
    result = planrunner.run("-x", ".")
    assert result.ret == ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*! stopping after 1 failures !*", "*= 1 failed in *"])
    result = planrunner.run("--maxfail", "3", ".")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*! stopping after 3 failures !*"])
    planrunner.run("--maxfail", "0", ".").assert_outcomes(failed=8)  # 0: no limit, as in pytest
    result = planrunner.run("--maxfail", "-1", ".")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: planrun: argument --maxfail: must be 0 (no limit) or more, got '-1'"])


def test_exit_code_5_when_nothing_is_collected(planrunner: Planrunner) -> None:
    Path("empty").mkdir()
    result = planrunner.run("empty")
    assert result.ret == ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["collected 0 items", "", "*= no plans ran in *"])


def test_exit_code_4_for_usage_errors(planrunner: Planrunner) -> None:
    result = planrunner.run("missing-dir")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: file or directory not found: missing-dir"])
    result = planrunner.run("--no-such-option")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: planrun: unrecognized arguments: --no-such-option"])
    result = planrunner.run("--timeout", "-1", ".")
    assert result.ret == ExitCode.USAGE_ERROR
    result = planrunner.run("-p", "no_such_plugin_module", ".")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: plugin 'no_such_plugin_module' not found*"])
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    result = planrunner.run("--executor", "nosuch", "p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: unknown executor 'nosuch' (known: *shell*)"])
    assert result.no_traceback()


def test_exit_code_3_and_a_traceback_for_internal_errors(planrunner: Planrunner) -> None:
    class Broken:
        from planrun import hookimpl

        @hookimpl
        def planrun_collection_finish(self, session: object) -> None:
            raise RuntimeError("bug in a plugin")

    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    result = planrunner.run("p.plan.yaml", plugins=[Broken()])
    assert result.ret == ExitCode.INTERNAL_ERROR
    result.stderr.fnmatch_lines(
        ["Traceback (most recent call last):", "*RuntimeError: bug in a plugin", "INTERNAL ERROR: *"]
    )


def test_tb_styles(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "hello\n")
    planrunner.makeplan(
        "p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_contains: {path: a.txt, text: bye}}]}\n"
    )
    long = planrunner.run("p.plan.yaml")
    long.stdout.fnmatch_lines(["  nearest lines:"])
    short = planrunner.run("--tb=short", "p.plan.yaml")
    short.stdout.fnmatch_lines(
        ["criterion 1/1  file_contains a.txt 'bye'", "  'bye' not found in a.txt", "  p.plan.yaml:3:*"]
    )
    assert "nearest lines" not in short.outstr
    line = planrunner.run("--tb=line", "p.plan.yaml")
    line.stdout.fnmatch_lines(["p.plan.yaml:3:*: file_contains a.txt 'bye' - 'bye' not found in a.txt"])
    assert "criterion 1/1" not in line.outstr
    no = planrunner.run("--tb=no", "p.plan.yaml")
    assert "FAILURES" not in no.outstr
    no.stdout.fnmatch_lines(["FAILED p.plan.yaml::t - *"])


def test_quiet_and_config_from_pyproject(planrunner: Planrunner) -> None:
    planrunner.makefile("pyproject.toml", '[tool.planrun]\npaths = ["plans"]\naddopts = "-q"\n')
    planrunner.makeplan("plans/p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: pyproject.toml}]}\n")
    planrunner.makeplan("elsewhere/x", "plan: x\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: nope}]}\n")
    result = planrunner.run()
    assert result.ret == ExitCode.OK, result
    assert "plan session starts" not in result.outstr
    result.stdout.fnmatch_lines(["1 passed in *s"])


def test_colors_follow_tty_no_color_and_color_option(planrunner: Planrunner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_absent: x}]}\n")
    assert "\x1b[" not in planrunner.run("p.plan.yaml").outstr  # not a TTY
    assert "\x1b[" in planrunner.run("--color=yes", "p.plan.yaml").outstr
    monkeypatch.setenv("FORCE_COLOR", "1")  # as if on a TTY
    assert "\x1b[" in planrunner.run("p.plan.yaml").outstr
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in planrunner.run("p.plan.yaml").outstr
    assert "\x1b[" not in planrunner.run("--color=no", "p.plan.yaml").outstr


def test_bad_config_is_a_usage_error(planrunner: Planrunner) -> None:
    planrunner.makeplan("p", "plan: p\ntasks:\n  - {id: t, name: T, run: touch ran, criteria: [{file_exists: ran}]}\n")
    planrunner.makefile("pyproject.toml", '[tool.planrun]\ntimeout = "soon"\n')
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: [[]tool.planrun[]] timeout must be a positive number of seconds, got 'soon'"])
    planrunner.makefile("pyproject.toml", "[tool.planrun\n")
    result = planrunner.run("p.plan.yaml")
    assert result.ret == ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: */pyproject.toml: *"])
    assert result.no_traceback()
    assert not Path("ran").exists()


def test_planrun_toml_and_env_addopts(planrunner: Planrunner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    planrunner.makefile("planrun.toml", 'paths = ["checks"]\ntimeout = 5\n')
    planrunner.makeplan("checks/p", "plan: p\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: planrun.toml}]}\n")
    monkeypatch.setenv("PLANRUN_ADDOPTS", "-v")
    result = planrunner.run()
    assert result.ret == ExitCode.OK, result
    result.stdout.fnmatch_lines(["checks/p.plan.yaml::t PASSED*"])


def test_quiet_progress_runs_on_across_plans_and_wraps(planrunner: Planrunner) -> None:
    tasks = "".join(f"  - {{id: t{i}, name: T{i}, criteria: [{{file_absent: x}}]}}\n" for i in range(50))
    planrunner.makeplan("a", "plan: a\ntasks:\n" + tasks)
    planrunner.makeplan("b", "plan: b\ntasks:\n" + tasks)
    result = planrunner.run("-q", ".")
    assert result.ret == ExitCode.OK
    progress = [line for line in result.stdout.lines if line.startswith(".")]
    assert [len(line) for line in progress] == [80, 80]  # 73 letters, then the "[ NN%]" column
    assert progress[0].endswith(" [ 73%]") and progress[-1].endswith(" [100%]")
    assert "".join(line.split(" ")[0] for line in progress) == "." * 100


def test_progress_percentage_per_plan_line(planrunner: Planrunner) -> None:
    two = "tasks:\n  - {id: a, name: A, criteria: [{file_absent: x}]}\n  - {id: b, name: B, criteria: [{file_absent: x}]}\n"
    planrunner.makeplan("p1", "plan: p1\n" + two)
    planrunner.makeplan("p2", "plan: p2\n" + two)
    result = planrunner.run(".")
    result.stdout.re_match_lines([r"p1\.plan\.yaml \.\. +\[ 50%\]$", r"p2\.plan\.yaml \.\. +\[100%\]$"])
