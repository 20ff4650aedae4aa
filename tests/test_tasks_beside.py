"""``-n`` with one plan: its independent tasks are performed side by side, and reported as a serial run reports them."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from planrun import ExitCode
from planrun.taskgroup import overlap, prefix
from planrun.testing import Planrunner

from .test_orphans import assert_gone
from .test_workers import Recorder, _normalised_json, _normalised_junit, _same, _state, _wait_for


def _task(tid: str, files: list[str] | None, *, run: str = "", criteria: str = "", deps: str = "") -> str:
    """A shell task that writes ``<tid>.ppid`` (which process ran its step) and ``<tid>.txt``."""
    lines = [f"  - id: {tid}", f"    name: Task {tid}"]
    if deps:
        lines.append(f"    depends_on: [{deps}]")
    if files is not None:
        lines.append(f"    files: [{', '.join(files)}]")
    step = run or f"echo $PPID > {tid}.ppid; echo {tid} > {tid}.txt"
    lines.append(f"    run: {json.dumps(step)}")
    lines.append(f"    criteria: [{criteria or f'{{file_exists: {tid}.txt}}'}]")
    return "\n".join(lines)


def _plan(planrunner: Planrunner, *tasks: str, name: str = "p") -> None:
    planrunner.makeplan(f"plans/{name}", "plan: Beside\ntasks:\n" + "\n".join(tasks) + "\n")


def _clean(planrunner: Planrunner) -> None:
    """Remove what a run made beside the plans (its files, state, caches), wherever its workdir was."""
    for folder in (planrunner.path, planrunner.path / "plans"):
        for made in folder.iterdir():
            if made.is_dir() and made.name not in ("plans", "reports"):
                shutil.rmtree(made)
            elif made.is_file() and not made.name.endswith(".plan.yaml"):
                made.unlink()


def _ppid(planrunner: Planrunner, tid: str) -> str:
    return (planrunner.path / "plans" / f"{tid}.ppid").read_text().strip()


def test_independent_tasks_are_performed_at_the_same_time(planrunner: Planrunner) -> None:
    """Each task waits for the other's mark: only the two performed at once can both pass."""
    wait = "touch {me}.mark; for i in $(seq 60); do [ -e {other}.mark ] && break; sleep 0.05; done; "
    step = wait + "[ -e {other}.mark ] && echo {me} > {me}.txt"
    _plan(
        planrunner,
        _task("a", ["a.txt", "a.mark"], run=step.format(me="a", other="b")),
        _task("b", ["b.txt", "b.mark"], run=step.format(me="b", other="a")),
        _task("c", ["c.txt"], run="cat a.txt b.txt > c.txt", deps="a, b", criteria="{file_exists: c.txt}"),
    )
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.OK, result
    result.assert_outcomes(passed=3, warnings=0)  # neither is warned of the other's files
    assert (planrunner.path / "plans" / "c.txt").read_text() == "a\nb\n"

    _clean(planrunner)
    serial = planrunner.run("plans")  # one after the other, the first waits in vain
    assert serial.ret == ExitCode.TESTS_FAILED
    serial.assert_outcomes(passed=1, failed=1, skipped=1, warnings=0)


def test_tasks_that_could_see_each_others_work_are_performed_one_after_the_other(planrunner: Planrunner) -> None:
    _plan(
        planrunner,
        _task("a", ["a.txt", "a.ppid"]),
        _task("b", ["b.txt", "b.ppid"]),  # beside a
        _task("c", ["c.txt", "c.ppid", "src/"]),  # after b: c's folder holds d's file
        _task(
            "d",
            ["src/d.txt", "d.ppid"],
            run="echo $PPID > d.ppid; mkdir -p src; echo d > src/d.txt",
            criteria="{file_exists: src/d.txt}",
        ),
        _task("e", ["e.txt", "e.ppid"], criteria="{file_exists: d.ppid}"),  # reads d's file
        _task("g", ["g.txt", "g.ppid"]),  # beside e
        _task("h", ["h.txt", "h.ppid"], deps="g"),  # depends on g
        _task("f", None),  # declares no files
        _task("i", ["i.txt", "i.ppid"]),
        _task(
            "j", ["a.txt", "j.ppid"], run="echo $PPID > j.ppid; echo j > j.txt", criteria="{file_exists: j.txt}"
        ),  # writes what a's criterion reads
    )
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.OK, result
    ppid = {t: _ppid(planrunner, t) for t in "abcdefghij"}
    main = str(os.getpid())
    assert len({main, ppid["a"], ppid["b"], ppid["e"], ppid["g"]}) == 5, ppid  # each in a process of its own
    # c's folder holds d's file, e reads d's, h depends on g, f declares no files, j writes what a's criterion reads
    assert {ppid[t] for t in "cdhfij"} == {main}, ppid

    result = planrunner.run("-n", "1", "plans")
    assert {_ppid(planrunner, t) for t in "abcdefghij"} == {main}


#: Tasks performed side by side among others: failures, a skip, a dependent, a regression, verification.
MIXED = [
    _task("a", ["a.txt", "a.ppid"]),
    _task("b", ["b.txt", "b.ppid"], run="echo $PPID > b.ppid; echo broken; exit 3"),
    _task("c", ["c.txt", "c.ppid"], criteria="{file_contains: {path: c.txt, text: nope}}"),
    _task("d", ["d.txt", "d.ppid"], deps="b"),
    _task("e", ["e.txt", "e.ppid"], criteria="{file_exists: e.txt, skip: not today}"),
    _task("f", ["f.txt", "f.ppid"]),
    _task("g", ["g.txt", "g.ppid"], criteria="{command: 'test -f g.txt'}"),
    _task(
        "h",
        ["h.txt", "h.ppid", "a.txt"],
        run="echo $PPID > h.ppid; echo h > h.txt; rm a.txt",
        criteria="{file_exists: h.txt}",
    ),
]


def _mixed(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "plans/mixed",
        "plan: Mixed\ntasks:\n" + "\n".join(MIXED) + "\nverification:\n  - file_exists: a.txt\n",
    )
    planrunner.makefile("plans/a.txt", "")  # a's criterion holds before: vacuous


@pytest.mark.parametrize("extra", [[], ["-x"], ["--strict"]])
def test_the_report_events_junit_json_and_state_are_those_of_a_serial_run(
    planrunner: Planrunner, tmp_path: Path, extra: list[str]
) -> None:
    runs = {}
    for n in ("1", "2", "auto"):
        _mixed(planrunner)
        events = Recorder()
        reports = ["--junitxml", tmp_path / "reports" / "r.xml", "--json", tmp_path / "reports" / "r.json"]
        result = planrunner.run("-n", n, *extra, *reports, "plans", plugins=[events])
        runs[n] = (
            result.ret,
            _same(result.outstr),
            events.events,
            _normalised_junit(tmp_path / "reports" / "r.xml"),
            _normalised_json(tmp_path / "reports" / "r.json"),
            _state(planrunner.path / "plans"),
        )
        ppids = {p.name: p.read_text() for p in planrunner.path.rglob("*.ppid")}
        if n != "1":
            assert len(set(ppids.values())) > 1, ppids  # some were performed side by side
        _clean(planrunner)
    for n in ("2", "auto"):
        for got, want in zip(runs[n], runs["1"]):
            assert got == want
    assert runs["auto"] == runs["1"]
    assert runs["1"][0] == ExitCode.TESTS_FAILED


def test_a_change_outside_the_tasks_files_is_warned_of_on_each_task_beside_it(planrunner: Planrunner) -> None:
    """Side by side, planrun cannot tell which of them made it: each of them is told."""
    _plan(
        planrunner,
        _task("a", ["a.txt"], run="until [ -e b.txt ]; do sleep 0.02; done; echo a > a.txt; touch stray.txt"),
        _task("b", ["b.txt"], run="echo b > b.txt; sleep 0.5"),  # b looks before and after a's stray
    )
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*p.plan.yaml::a: scope: changed files outside the task's files: stray.txt",
            "*p.plan.yaml::b: scope: changed files outside the task's files: stray.txt",
        ]
    )


@pytest.mark.parametrize("signame", ["KILL", "USR1"])
def test_a_task_whose_process_dies_is_an_error_and_the_others_are_reported(
    planrunner: Planrunner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, signame: str
) -> None:
    import tempfile

    temp = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where step scripts go, in the tasks' processes too
    _plan(
        planrunner,
        _task("a", ["a.txt"], run=f"kill -{signame} $PPID"),
        _task("b", ["b.txt"]),
        _task("c", ["c.txt"], deps="a"),
    )
    result = planrunner.run("-n", "2", "plans")
    assert result.ret == ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [f"ERROR *p.plan.yaml::a - the process performing it beside other tasks ended (killed by SIG{signame})*"]
    )
    result.assert_outcomes(passed=1, errors=1, skipped=1)
    assert result.no_traceback()
    assert list(temp.iterdir()) == []  # the killed process's step script went with its temp folder


@pytest.mark.parametrize("how", ["SIGINT to the group", "SIGTERM to planrun"])
def test_an_interrupt_ends_every_task_beside_and_leaves_no_process(
    planrunner: Planrunner, tmp_path: Path, how: str
) -> None:
    hang = "sleep 300 & echo $! > {pid}; wait"
    _plan(
        planrunner,
        _task("a", ["a.txt"], run="echo a > a.txt", criteria="{file_exists: a.txt}"),
        _task("b", ["b.txt"], run=hang.format(pid=tmp_path / "sleep1.pid"), deps="a"),
        _task("c", ["c.txt"], run=hang.format(pid=tmp_path / "sleep2.pid"), deps="a"),
        # it ignores SIGTERM and leaves its session: killed all the same
        _task(
            "d",
            ["d.txt"],
            run="setsid sh -c 'trap \"\" TERM; sleep 300' & echo $! > " + str(tmp_path / "d.pid") + "; wait",
            deps="a",
        ),
    )
    proc = planrunner.popen("-n", "3", "plans", start_new_session=True)
    try:
        pids = [_wait_for(tmp_path / name) for name in ("sleep1.pid", "sleep2.pid", "d.pid")]
        if how.startswith("SIGINT"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    assert "Traceback" not in out + err
    assert "p.plan.yaml .!" in out, out
    assert "1 passed, 1 interrupted" in out, out
    for pid in pids:
        assert_gone(pid)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("a.txt", "b.txt", False),
        ("src/a.py", "src/b.py", False),
        ("src/", "src/b.py", True),
        ("src", "src/sub/b.py", True),
        ("src/*.py", "src/b.py", True),
        ("src/*.py", "docs/x.md", False),
        ("**/*.py", "docs/x.md", True),
        ("*.txt", "a.txt", True),
        ("./a/./b", "a/b/c", True),
        ("../a", "b", True),
        ("/abs/a", "b", True),
        ("a[1].txt", "a1.txt", True),
    ],
)
def test_two_paths_overlap_unless_a_literal_component_tells_them_apart(a: str, b: str, expected: bool) -> None:
    assert overlap([prefix(a)], [prefix(b)]) is expected
    assert overlap([prefix(b)], [prefix(a)]) is expected
