"""The process ends with ``os._exit`` once exit handlers ran and output is flushed (``planrun.cli.script``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planrun.testing import Planrunner

PASSING = "plan: P{n}\ntasks:\n  - {{id: t, name: T, criteria: [{{file_exists: a.txt}}]}}\n"
FAILING = "plan: F\ntasks:\n  - {id: t, name: T, criteria: [{file_exists: missing.txt}]}\n"


def commands() -> list[list[str]]:
    """``python -m planrun`` and the installed console script (both end through ``script``)."""
    found = [[sys.executable, "-m", "planrun"]]
    console = shutil.which("planrun", path=os.path.dirname(sys.executable))
    if console:
        found.append([console])
    return found


@pytest.fixture(params=range(len(commands())), ids=lambda i: ["module", "console-script"][i])
def command(request: pytest.FixtureRequest) -> list[str]:
    return commands()[request.param]


def run(command: list[str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(planrunner: Planrunner) -> Planrunner:
    planrunner.makefile("pyproject.toml", "[tool.planrun]\n")
    planrunner.makefile("a.txt", "hi\n")
    return planrunner


@pytest.mark.parametrize(
    ("files", "args", "code"),
    [
        ({"p.plan.yaml": PASSING.format(n=0)}, ["--verify-only"], 0),
        ({"p.plan.yaml": FAILING}, ["--verify-only"], 1),
        ({"p.plan.yaml": "plan: [unclosed\n"}, ["--verify-only"], 2),
        ({}, ["--no-such-option"], 4),
        ({"notes.txt": "nothing to collect\n"}, ["--verify-only", "."], 5),
    ],
    ids=["passed", "failed", "collection-error", "usage", "no-plans"],
)
def test_the_exit_code_is_main_s(
    project: Planrunner, command: list[str], files: dict[str, str], args: list[str], code: int
) -> None:
    for name, text in files.items():
        project.makefile(name, text)
    proc = run(command, project.path, *args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_all_output_reaches_a_pipe_and_a_file(project: Planrunner, command: list[str]) -> None:
    for n in range(200):
        project.makeplan(f"p{n:03d}", PASSING.format(n=n))
    proc = run(command, project.path, "--verify-only", "-v")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines if "::t PASSED" in line) == [
        f"p{n:03d}.plan.yaml::t" for n in range(200)
    ]
    assert "200 passed" in lines[-1]
    out = project.path / "out.txt"
    with out.open("w") as f:
        code = subprocess.run([*command, "--verify-only", "-v"], cwd=project.path, stdout=f, timeout=120).returncode
    assert code == 0
    assert out.read_text().splitlines()[:-1] == lines[:-1]  # the last line holds the duration
    assert "200 passed" in out.read_text().splitlines()[-1]


EXIT_HANDLERS = """\
import atexit, os, tempfile, weakref

scratch = tempfile.TemporaryDirectory(prefix="planrun-quick-exit-")  # cleaned by weakref.finalize at exit
with open(os.path.join(os.path.dirname(__file__), "scratch.txt"), "w") as f:
    f.write(scratch.name)


class Held:
    def __del__(self, _open=open, _path=os.path.join(os.path.dirname(__file__), "freed.txt")):
        with _open(_path, "w") as f:  # what it needs is bound now: module globals are gone at shutdown
            f.write("freed")


held = Held()


def planrun_sessionfinish(session, exitstatus):
    atexit.register(lambda: open(os.path.join(os.path.dirname(__file__), "atexit.txt"), "w").write(str(exitstatus)))
"""


def test_exit_handlers_run_and_the_heap_is_not_torn_down(project: Planrunner, command: list[str]) -> None:
    project.makeconftest(EXIT_HANDLERS)
    project.makeplan("p", PASSING.format(n=0))
    proc = run(command, project.path, "--verify-only")
    assert proc.returncode == 0, proc.stderr
    assert (project.path / "atexit.txt").read_text() == "0"  # an atexit handler ran, after the session
    assert not Path((project.path / "scratch.txt").read_text()).exists()  # weakref.finalize ran
    assert not (project.path / "freed.txt").exists()  # what the session held was never freed one by one


NON_DAEMON = """\
import os, threading, time


def planrun_sessionfinish(session, exitstatus):
    def late():
        time.sleep(0.3)
        with open(os.path.join(os.path.dirname(__file__), "late.txt"), "w") as f:
            f.write("written")

    threading.Thread(target=late).start()  # not a daemon: Python's shutdown waits for it
"""


@pytest.mark.parametrize("code", [0, 1])
def test_a_plugin_s_running_thread_gets_the_normal_shutdown(project: Planrunner, command: list[str], code: int) -> None:
    project.makeconftest(NON_DAEMON)
    project.makeplan("p", PASSING.format(n=0) if code == 0 else FAILING)
    proc = run(command, project.path, "--verify-only")
    assert proc.returncode == code, proc.stderr
    assert (project.path / "late.txt").read_text() == "written"


def test_a_reader_that_went_away_is_a_quiet_exit(project: Planrunner, command: list[str]) -> None:
    for n in range(300):
        project.makeplan(f"p{n:03d}", PASSING.format(n=n))
    proc = subprocess.Popen(
        [*command, "--verify-only", "-v"], cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stdout, proc.stderr:
        proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err
