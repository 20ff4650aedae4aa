"""The reading checks of an item share one time limit, aimed anew at each (``runner.evaluate_all``).

Each check still gets its own deadline (its timeout plus the backstop), its own
message when it overruns, and its own duration; a check that overruns does not
shorten or end the next one's; a check that is not in-process, or that retries,
gets its own limit as before; Ctrl-C inside a check still interrupts the run.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from planrun import ArgsModel, CheckContext, CheckKind, ExitCode, hookimpl
from planrun import runner as runner_module
from planrun.compiler import Check
from planrun.runner import evaluate, evaluate_all
from planrun.testing import Planrunner
from planrun.types import alarm_handler, forget_paths


class _Seconds(ArgsModel):
    seconds: float = 0.0


class _Naps:
    """In-process checks: ``nap`` sleeps (interruptibly), ``spin`` loops in Python, ``stop`` is Ctrl-C."""

    @hookimpl
    def planrun_register_checks(self) -> list[CheckKind]:
        def nap(args: _Seconds, ctx: CheckContext) -> None:
            time.sleep(args.seconds)

        def spin(args: _Seconds, ctx: CheckContext) -> None:
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                pass

        def stop(args: _Seconds, ctx: CheckContext) -> None:
            raise KeyboardInterrupt

        return [
            CheckKind("nap", _Seconds, nap, inprocess=True, default_timeout=0.3),
            CheckKind("spin", _Seconds, spin, inprocess=True, default_timeout=0.3),
            CheckKind("stop", _Seconds, stop, inprocess=True),
        ]


@pytest.fixture
def no_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check's limit is its timeout (not timeout + 5 s), so an overrun shows in a fraction of a second."""
    monkeypatch.setattr(runner_module, "_BACKSTOP", 0.0)
    monkeypatch.setattr(runner_module, "_GRACE", 0.0)


def _plan(*criteria: str) -> str:
    lines = ["plan: p", "tasks:", "  - id: t", "    name: T", "    criteria:"]
    return "\n".join([*lines, *(f"      - {c}" for c in criteria)]) + "\n"


def _criteria(planrunner: Planrunner) -> list[dict[str, object]]:
    report = json.loads((planrunner.path / "r.json").read_text())
    return report["plans"][0]["items"][0]["criteria"]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("no_backstop")
@pytest.mark.parametrize("kind", ["nap", "spin"])
def test_each_overrun_is_its_own_criterion_and_the_next_check_gets_its_whole_time(
    planrunner: Planrunner, kind: str
) -> None:
    planrunner.makefile("a.txt", "a\n")
    planrunner.makeplan(
        "p",
        _plan(
            "file_exists: a.txt",
            f"{kind}: {{seconds: 5}}",  # overruns its 0.3 s
            f"{kind}: {{seconds: 0.2}}",  # within its own 0.3 s, though it starts after an overrun
            f"{kind}: {{seconds: 5}}",  # overruns again: the limit is aimed anew after firing
            "command: 'true'",  # not in-process: its own limit
            f"{{{kind}: {{seconds: 0.2}}, timeout: 1}}",
            "file_contains: {path: a.txt, text: a}",
        ),
    )
    start = time.monotonic()
    result = planrunner.run("--verify-only", "--json", "r.json", "p.plan.yaml", plugins=[_Naps()])
    elapsed = time.monotonic() - start
    assert result.ret == ExitCode.TESTS_FAILED, result
    criteria = _criteria(planrunner)
    assert [c["outcome"] for c in criteria] == ["passed", "error", "passed", "error", "passed", "passed", "passed"]
    messages = [c["message"] for c in criteria]
    name = f"{kind} {{'seconds': 5}}"
    assert messages[1] == messages[3] == f"timed out: check {name!r} ran longer than 0.3s", messages
    durations = [float(c["duration"]) for c in criteria]  # type: ignore[arg-type]
    assert 0.25 < durations[1] < 2.5 and 0.25 < durations[3] < 2.5, durations
    assert 0.15 < durations[2] < 2.5 and 0.15 < durations[5] < 2.5, durations
    assert elapsed < 8, elapsed  # neither 5 s check ran to its end
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing left armed after the session
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


@pytest.mark.usefixtures("no_backstop")
def test_an_overrun_in_the_prerequisites_skips_the_plan_as_a_failure_does(planrunner: Planrunner) -> None:
    planrunner.makeplan(
        "p",
        "plan: p\nprerequisites:\n  - {nap: {seconds: 5}}\n  - {nap: {seconds: 5}}\n"
        "tasks:\n  - id: t\n    name: T\n    criteria: [{nap: {seconds: 0}}]\n",
    )
    result = planrunner.run("--verify-only", "-v", "p.plan.yaml", plugins=[_Naps()])
    assert result.ret == ExitCode.TESTS_FAILED, result
    assert "timed out: check \"nap {'seconds': 5}\" ran longer than 0.3s" in result.outstr, result
    assert "p.plan.yaml::t SKIPPED" in result.outstr, result


def test_ctrl_c_inside_a_check_interrupts_the_run(planrunner: Planrunner) -> None:
    planrunner.makefile("a.txt", "a\n")
    planrunner.makeplan("p", _plan("file_exists: a.txt", "stop: {}", "file_exists: a.txt"))
    planrunner.makeplan("q", _plan("file_exists: a.txt"))
    result = planrunner.run("--verify-only", "p.plan.yaml", "q.plan.yaml", plugins=[_Naps()])
    assert result.ret == ExitCode.INTERRUPTED, result
    assert "q.plan.yaml" not in result.outstr.split("Interrupted")[0].split("collected")[-1], result
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def _check(kind: str, function: object, **kw: object) -> Check:
    return Check(kind, _Seconds(), function, kind, None, 10.0, **kw)  # type: ignore[arg-type]


def _fails(args: object, ctx: CheckContext) -> None:
    raise AssertionError("no")


def _crashes(args: object, ctx: CheckContext) -> None:
    raise ValueError("boom")


def _passes(args: object, ctx: CheckContext) -> None:
    pass


@pytest.mark.parametrize("session", [True, False], ids=["in a session", "outside"])
def test_outcomes_and_messages_are_evaluates(tmp_path: object, session: bool) -> None:
    """The shared limit (in a session) and the plain path (outside) report what evaluate does, check by check."""
    forget_paths()
    checks = [
        _check("a", _passes),
        _check("b", _fails),
        _check("c", _crashes),
        _check("d", _passes, skip="not today"),
        _check("e", _passes, inprocess=True),
        _check("f", _fails, inprocess=True),
        _check("g", _crashes, inprocess=True),
        _check("h", _passes, inprocess=True, skip="later"),
    ]
    with alarm_handler() if session else _nothing():
        together = evaluate_all(checks, tmp_path)  # type: ignore[arg-type]
        alone = [evaluate(c, tmp_path) for c in checks]  # type: ignore[arg-type]
    seen = [(r.name, r.outcome, r.message, r.evidence.splitlines()[-1:]) for r in together]
    assert seen == [(r.name, r.outcome, r.message, r.evidence.splitlines()[-1:]) for r in alone]
    assert [r.outcome for r in together] == ["passed", "failed", "error", "skipped"] * 2
    assert together[6].message == "check crashed: ValueError: boom"
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


class _nothing:  # noqa: N801 - a stand-in for a context manager
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
