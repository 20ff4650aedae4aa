"""The per-item protocol: baseline, execute, assert the criteria, re-check earlier tasks."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun.compiler import Check
from planrun.errors import PlanrunError
from planrun.hookspecs import hookimpl
from planrun.outcomes import CheckFailed, Skipped
from planrun.reports import CriterionResult, ItemReport, Outcome, lines_of
from planrun.types import (
    CheckContext,
    ExecutionContext,
    ExecutionResult,
    Executor,
    ExecutorError,
    StepTimeout,
    _TimeLimitExceeded,
    finish_record,
    forget_paths,
    is_recording,
    limit_each,
    new_record,
    time_limit,
)

if TYPE_CHECKING:
    from planrun.model import Task
    from planrun.session import CollectedPlan, Item, Session
    from planrun.taskgroup import Job

# The process behind a check has its own timeout; the alarm around the whole
# check is the backstop for checks that have none, so it fires a little later.
_BACKSTOP = 5.0
# A check that runs in planrun's process has no other limit: its own timeout is its limit. The grace
# lets a limit of its own (``ctx.search``'s, armed as it starts) fire first, with the message it has.
_GRACE = 0.25


def _limit(check: Check) -> float:
    """How long ``check`` may run before its alarm (it is said to have run longer than its timeout)."""
    return check.timeout + (_GRACE if check.inprocess else _BACKSTOP)


def evaluate(check: Check, workdir: Path, *, retry: bool = True, strict: bool = False) -> CriterionResult:
    """Run one check, applying its common keys (``skip``, ``timeout``, ``retry_for``).

    A check that is not in-process (it runs a process or reaches the network)
    may change the tree, so what was cached of it is forgotten after it ran;
    so it is before each retry of a ``retry_for`` check (it waits for a change).
    """
    result = CriterionResult(check.name, check.kind, "passed", check.location)
    if check.skip is not None:
        result.outcome, result.message = "skipped", check.skip
        return result
    ctx = CheckContext(workdir, check.timeout, check.location)
    start = time.monotonic()
    limit = _limit(check)
    if check.inprocess and not (retry and check.retry_for) and not is_recording():
        # The common case, kept lean: one attempt of a reading check, nothing recorded, nothing to forget.
        try:
            with time_limit(limit, f"check {check.name!r}", said=check.timeout):
                check.function(check.args, ctx)
        except BaseException as exc:  # sys.exit() in a check, GeneratorExit: the check's crash; Ctrl-C goes on
            if not _a_crash(exc):
                raise
            _failed(result, exc, strict)
        result.duration = time.monotonic() - start
        return result
    deadline = start + (check.retry_for if retry else 0.0)
    delay = 0.1
    while True:
        ctx.record = new_record()  # --evidence: what this attempt reads and runs (None when off)
        try:
            with time_limit(limit, f"check {check.name!r}", said=check.timeout):
                check.function(check.args, ctx)
            result.outcome, result.message, result.evidence = "passed", "", ""
        except BaseException as exc:
            if not _a_crash(exc):
                raise
            _failed(result, exc, strict)
        finally:
            if not check.inprocess:
                forget_paths()
        if result.outcome in ("passed", "skipped") or time.monotonic() + delay > deadline:
            break
        time.sleep(delay)
        forget_paths()  # what the retry waits for is a change: read the tree afresh
        delay = min(delay * 2, 1.0)
    result.duration = time.monotonic() - start
    if ctx.record is not None:
        result.record = finish_record(ctx.record)
    return result


def evaluate_all(checks: list[Check], workdir: Path, *, strict: bool = False) -> list[CriterionResult]:
    """:func:`evaluate` each of ``checks`` in order; the reading ones share one time limit, aimed anew at each.

    What this saves is per check: a time limit made, entered and left, and
    its label formatted. Outcomes, messages and durations are evaluate's.
    """
    limiter = limit_each() if checks and not is_recording() else None
    if limiter is None:
        return [evaluate(c, workdir, strict=strict) for c in checks]
    results = []
    for check in checks:
        if check.skip is not None or not check.inprocess or check.retry_for:
            results.append(evaluate(check, workdir, strict=strict))
            continue
        result = CriterionResult(check.name, check.kind, "passed", check.location)
        start = 0.0
        try:
            start = limiter.aim(_limit(check), check.name, check.timeout)
            check.function(check.args, CheckContext(workdir, check.timeout, check.location))
            limiter.disarm()
        except BaseException as exc:
            limiter.disarm()
            timeout = limiter.timed_out(exc)
            if timeout is not None:
                exc = timeout
            elif not _a_crash(exc):
                raise
            _failed(result, exc, strict)
        result.duration = time.monotonic() - start
        results.append(result)
    return results


def _a_crash(exc: BaseException) -> bool:
    """What a check raised is its own failure or crash (any Exception, ``sys.exit()``, ``GeneratorExit``, a
    plugin's own BaseException), not Ctrl-C or SIGTERM (:class:`KeyboardInterrupt`) nor an enclosing time
    limit, which stop the run."""
    return not isinstance(exc, KeyboardInterrupt) and not isinstance(exc, _TimeLimitExceeded)


def _failed(result: CriterionResult, exc: BaseException, strict: bool) -> None:
    """The outcome, message and evidence of an attempt that raised ``exc`` (called in its ``except``)."""
    if isinstance(exc, CheckFailed):
        result.outcome, result.message, result.evidence = "failed", exc.message, exc.evidence
    elif isinstance(exc, AssertionError):
        result.outcome, result.message = "failed", str(exc) or "assertion failed"
    elif isinstance(exc, Skipped):
        if exc.manual and strict:
            result.outcome, result.message = "error", f"manual criterion under --strict: {exc.reason}"
        else:
            result.outcome, result.message = "skipped", exc.reason
    elif isinstance(exc, StepTimeout):
        result.outcome, result.message = "error", f"timed out: {exc}"
    elif isinstance(exc, PlanrunError):  # a check's own one-line error (a judge that gave no usable verdict)
        result.outcome, result.message = "error", str(exc)
    else:
        result.outcome, result.message = "error", f"check crashed: {type(exc).__name__}: {exc}"
        result.evidence = traceback.format_exc(limit=-3)


def outcome_of(results: list[CriterionResult]) -> Outcome:
    """An item's outcome from its criteria: any error, then any failure; all skipped is skipped."""
    outcomes = {r.outcome for r in results}
    if "error" in outcomes:
        return "error"
    if "failed" in outcomes:
        return "failed"
    if outcomes == {"skipped"}:
        return "skipped"
    return "passed"


class PlanRunner:
    """Runs the selected items of one plan in a workdir, keeping task states."""

    def __init__(self, session: Session, cplan: CollectedPlan, workdir: Path) -> None:
        self.session = session
        self.config = session.config
        self.cplan = cplan
        self.workdir = workdir
        self.states: dict[str, str] = {}
        self.passed: list[Item] = []  # tasks that passed, for regression checks
        # (task id, criterion number) of regressions reported and not yet healed:
        # a broken criterion is blamed once, on the task after which it first failed.
        self.broken: set[tuple[str, int]] = set()
        # passed task id -> the first task an executor performed after it: the
        # earliest that could have broken a criterion only re-checked at the end.
        self.next_performed: dict[str, str] = {}
        self.prerequisites_failed = False
        self.strict = bool(self.config.option.strict)
        self.summaries: dict[str, str] = {}  # passed task id -> its executor's summary, for dependents
        self.beside = max(1, getattr(session, "tasks_beside", 1))  # tasks performed side by side (-n)

    def run(self, items: list[Item], prerequisites: Item | None = None) -> None:
        """Run ``items`` in order; ``prerequisites``, not among them, are evaluated first and not reported.

        The second is for a part of a plan run beside its other parts (``-n``):
        the part that holds the prerequisites reports them, every other part
        evaluates them again (a plan is split only when they just read
        files) so that it skips what a serial run skips.
        """
        if prerequisites is not None:
            results = evaluate_all(prerequisites.checks, self.workdir, strict=self.strict)
            self.prerequisites_failed = outcome_of(results) in ("failed", "error")
        last_task = max((i for i, item in enumerate(items) if item.kind == "task"), default=-1)
        changed = True  # what cached realpaths and documents may no longer hold
        index = 0
        while index < len(items):
            if self.session.shouldstop:
                return
            group = self._group(items, index) if self.beside > 1 else []
            if len(group) > 1:
                self._run_group(group)
                index += len(group)
                changed = True
                if index > last_task >= index - len(group) and not self.session.shouldstop:
                    self._end_of_plan_regressions()
                continue
            item = items[index]
            start = time.monotonic()
            if changed:
                forget_paths()
            # An executor changes the tree (and forgets after it ran); a check that runs a process or
            # reaches the network may change it too. Reading checks change nothing: the next item can
            # keep what this one resolved and parsed.
            changed = self.session.executor_name_for(item) is not None or any(not c.inprocess for c in item.checks)
            self.session.log_start(item)
            try:
                report = self.run_item(item)
            except KeyboardInterrupt:
                report = self._report(item, "interrupted", message="interrupted")
                report.duration = time.monotonic() - start
                self._log(report)
                raise
            report.duration = time.monotonic() - start
            self._done(item, report)
            if index == last_task and not self.session.shouldstop:
                self._end_of_plan_regressions()
            index += 1

    def _done(self, item: Item, report: ItemReport) -> None:
        if item.kind == "task":
            self.states[item.item_id] = report.outcome
            if report.outcome == "passed":
                self.passed.append(item)
        self._log(report)

    # -- tasks side by side (-n) -------------------------------------------------

    def _group(self, items: list[Item], start: int) -> list[Item]:
        """The tasks from ``items[start]`` on that may be performed side by side (:mod:`planrun.taskgroup`)."""
        from planrun.taskgroup import overlap

        group: list[Item] = []
        sides: list[tuple[list[tuple[str, ...] | None], list[tuple[str, ...] | None]]] = []  # (files, reads) each
        earlier: list[tuple[str, ...] | None] | None = None
        in_run = {item.item_id for item in items if item.kind == "task"}
        for item in items[start : start + self.beside]:
            if not self._may_join(item, in_run):
                break
            files, reads = self._sides(item)
            if any(overlap(files, f + r) or overlap(reads, f) for f, r in sides):
                break
            if group:  # it must not break what an earlier task's criteria read: that is blamed on the first
                if earlier is None:
                    earlier = [p for e in items[:start] if e.kind == "task" for p in self._sides(e)[1]]
                if overlap(files, earlier):
                    break
            group.append(item)
            sides.append((files, reads))
        return group

    def _may_join(self, item: Item, in_run: set[str]) -> bool:
        """A task an executor performs now (not skipped, not verified first), that declares its files."""
        if item.kind != "task" or item.task is None or not item.task.files or not item.checks:
            return False
        if self.prerequisites_failed or item.verify_first or self.session.executor_name_for(item) is None:
            return False
        return all(self.states.get(dep) == "passed" or dep not in in_run for dep in item.depends_on)

    def _sides(self, item: Item) -> tuple[list[tuple[str, ...] | None], list[tuple[str, ...] | None]]:
        """What ``item`` writes (its files) and what its criteria read, as :func:`planrun.taskgroup.prefix` gives."""
        from planrun.reads import criteria_reads
        from planrun.taskgroup import prefix

        files = [prefix(f) for f in item.task.files] if item.task is not None else []
        patterns, named = criteria_reads(item.checks, self.workdir)
        return files, [prefix(p) for p in (*patterns, *named)]

    def _run_group(self, group: list[Item]) -> None:
        """Perform ``group`` side by side, then complete and report each task in plan order."""
        from planrun.taskgroup import perform_beside

        forget_paths()
        baselines = [self._baseline(item) for item in group]
        files = [[p for p in self._sides(item)[0] if p] for item in group]
        jobs = [
            self._job(item, baseline, ["/".join(p) for k, theirs in enumerate(files) if k != n for p in theirs if p])
            for n, (item, baseline) in enumerate(zip(group, baselines))
        ]
        start = time.monotonic()
        try:
            answers = perform_beside(jobs)
        except KeyboardInterrupt:
            forget_paths()
            self.session.log_start(group[0])
            report = self._report(group[0], "interrupted", message="interrupted")
            report.duration = time.monotonic() - start
            self._log(report)
            raise
        forget_paths()
        for n, (item, answer) in enumerate(zip(group, answers)):
            if n and self.session.shouldstop:
                return
            self.session.log_start(item)
            if isinstance(answer, str):
                report = self._report(item, "error", message=answer.splitlines()[0], evidence=answer)
                report.criteria.extend(self._regressions())
                report.duration = time.monotonic() - start
            else:
                for attempt, status in answer.executed:
                    self.session.log_executed(item, attempt, status)
                self._performing(item)
                report = self._finish(item, answer)
                report.duration = answer.duration
            self._done(item, report)

    def _job(self, item: Item, baseline: list[bool], beside: list[str]) -> Job:
        from planrun.taskgroup import Job

        assert item.task is not None
        task, name = item.task, self.session.executor_name_for(item)
        assert name is not None

        def perform() -> Performed:  # in the forked process
            self.config.hook.planrun_task_progress = _quiet  # the live status is the main process's
            start = time.monotonic()
            executed: list[tuple[int, str]] = []
            done = self._perform(item, task, name, baseline, lambda _, n, status: executed.append((n, status)), beside)
            done.executed = executed
            done.duration = time.monotonic() - start
            return done

        return Job(item.nodeid, perform)

    def _log(self, report: ItemReport) -> None:
        """Complete ``report`` where the item ran (``planrun_runtest_makereport``), then log it."""
        self.config.hook.planrun_runtest_makereport(report=report)
        self.session.log(report)

    def _report(self, item: Item, outcome: Outcome, **kw: object) -> ItemReport:
        return ItemReport(
            nodeid=item.nodeid,
            plan=self.cplan.display,
            item_id=item.item_id,
            name=item.name,
            kind=item.kind,  # type: ignore[arg-type]
            outcome=outcome,
            location=item.location,
            **kw,  # type: ignore[arg-type]
        )

    def run_item(self, item: Item) -> ItemReport:
        if self.prerequisites_failed:
            return self._report(item, "skipped", message="prerequisites not met")
        if item.kind == "prerequisites":
            results = evaluate_all(item.checks, self.workdir, strict=self.strict)
            outcome = outcome_of(results)
            if outcome in ("failed", "error"):
                self.prerequisites_failed = True
                return self._report(item, "error", criteria=results, message="prerequisites not met: plan skipped")
            return self._report(item, outcome, criteria=results)
        if item.kind == "task":
            for dep in item.depends_on:
                state = self.states.get(dep)
                if state is not None and state != "passed":
                    return self._report(item, "skipped", message=f"dependency {dep} {state}")
        if not item.checks:
            return self._report(item, "error", message="no success criteria: a task without criteria can never pass")
        executor_name = self.session.executor_name_for(item)
        if executor_name is None or item.task is None:
            results = evaluate_all(item.checks, self.workdir, strict=self.strict)
            message = (item.verify_note or "dependency verified, not run") if item.verify_only else ""
            return self._report(item, outcome_of(results), criteria=results, message=message)
        if item.verify_first:  # --resume: it was executed before the run stopped; perform it again only if needed
            results = evaluate_all(item.checks, self.workdir, strict=self.strict)
            if outcome_of(results) == "passed":
                return self._report(item, "passed", criteria=results, message=item.verify_note)
        return self._run_task(item, item.task, executor_name)

    def _max_attempts(self, executor: Executor) -> int:
        """``--max-attempts``, else config ``max_attempts``, else the executor's own; never more for shell-like ones."""
        if executor.max_attempts <= 1:
            return 1
        configured = self.config.option.max_attempts or self.config.inicfg.get("max_attempts")
        if isinstance(configured, int) and not isinstance(configured, bool) and configured >= 1:
            return configured
        return executor.max_attempts

    def _run_task(self, item: Item, task: Task, executor_name: str) -> ItemReport:
        baseline = self._baseline(item)
        self._performing(item)
        done = self._perform(item, task, executor_name, baseline, self.session.log_executed)
        return self._finish(item, done)

    def _baseline(self, item: Item) -> list[bool]:
        """Red before green: which criteria already hold (what already holds proves nothing about the task)."""
        return [evaluate(c, self.workdir, retry=False).outcome == "passed" for c in item.checks]

    def _performing(self, item: Item) -> None:
        """``item`` is the next task an executor performs: the first after every task passed so far."""
        for earlier in self.passed:
            self.next_performed.setdefault(earlier.item_id, item.item_id)

    def _perform(
        self,
        item: Item,
        task: Task,
        executor_name: str,
        baseline: list[bool],
        executed: Callable[[Item, int, str], None],
        beside: list[str] | None = None,
    ) -> Performed:
        """Execute ``task`` and assert its criteria, attempt after attempt; what only the plan's state decides
        (regressions of earlier tasks, a stop, a dependent's summary) is left to :meth:`_finish`.

        It changes nothing of the runner's, so it can run in another process beside other tasks
        (:mod:`planrun.taskgroup`); ``executed`` is told of each attempt the executor finished.
        """
        executor = self.cplan.scope.executor(executor_name)
        context = ExecutionContext(
            workdir=self.workdir,
            timeout=float(self.config.option.timeout),
            plan=self.cplan.plan,
            config=self.config,
            criteria=[c.name for c in item.checks],
            checks=list(item.checks),
            dependencies={dep: self.summaries.get(dep, "") for dep in task.depends_on},
            nodeid=item.nodeid,
            beside=beside or [],
        )
        max_attempts = self._max_attempts(executor)
        usage = _Usage()
        results: list[CriterionResult] = []
        for attempt in range(1, max_attempts + 1):
            context.attempt = attempt
            try:
                result: ExecutionResult = self.cplan.scope.hook.planrun_task_execute(
                    task=task, executor=executor, context=context
                )
            except StepTimeout as exc:
                forget_paths()  # the executor changed the tree
                fields = usage.fields(executor_name, attempt)
                return Performed(self._report(item, "error", message=f"timed out: {exc}", **fields))
            except ExecutorError as exc:
                forget_paths()
                if exc.result is not None:
                    usage.add(exc.result)
                fields = usage.fields(executor_name, attempt)
                return Performed(self._report(item, "error", message=str(exc), **fields), stop=exc.stop)
            except Exception as exc:
                evidence = traceback.format_exc(limit=-5)
                forget_paths()
                return Performed(
                    self._report(
                        item,
                        "error",
                        message=f"executor {executor_name} crashed: {type(exc).__name__}: {exc}",
                        evidence=evidence,
                        **usage.fields(executor_name, attempt),
                    )
                )
            except BaseException:
                forget_paths()
                raise
            forget_paths()
            executed(item, attempt, result.status)
            usage.add(result)
            common = usage.fields(executor_name, attempt)
            # A step that failed, or an executor that gave up, may still have
            # changed the tree: what it broke is blamed on it, not on the next task.
            if result.status == "blocked":
                return Performed(self._report(item, "blocked", message=f"blocked: {result.message}", **common))
            if result.status == "failed":
                if result.retryable and attempt < max_attempts:
                    context.feedback = f"Attempt {attempt} of {max_attempts} was not accepted: {result.message}" + (
                        f"\n{result.evidence}" if result.evidence else ""
                    )
                    continue
                return Performed(
                    self._report(item, "failed", message=result.message, evidence=result.evidence, **common)
                )
            results = evaluate_all(item.checks, self.workdir, strict=self.strict)
            if outcome_of(results) == "passed" or attempt == max_attempts:
                break
            # Another attempt, in the same conversation: the executor is told what did not hold.
            context.feedback = failure_feedback(results, attempt, max_attempts)
        for r, held_before in zip(results, baseline):
            r.vacuous = held_before and r.outcome == "passed"
            if r.vacuous and self.config.option.strict:
                r.outcome, r.message = "failed", "vacuous: it held before the task ran (--strict)"
        outcome = outcome_of(results)
        report = self._report(item, outcome, criteria=results, **usage.fields(executor_name, attempt))
        return Performed(report, judged=True, summary=usage.summary if outcome == "passed" else None)

    def _finish(self, item: Item, done: Performed) -> ItemReport:
        """The report of a performed task, completed with what the plan's state decides: the regressions of
        earlier tasks it caused, the stop its executor asked for, its summary for its dependents."""
        if done.stop:
            self.session.shouldstop = done.stop
        if done.summary is not None and item.task is not None:
            self.summaries[item.task.id] = done.summary
        report = done.report
        report.criteria.extend(self._regressions())
        if done.judged:
            report.outcome = outcome_of(report.criteria)
        return report

    def _regressions(self) -> list[CriterionResult]:
        """In-process criteria of earlier passed tasks that the task just performed broke.

        A criterion is blamed once, on the task after which it first failed;
        once it holds again, breaking it again is blamed anew.
        """
        broken = []
        for earlier in self.passed:
            for n, check in enumerate(earlier.checks, 1):
                if not check.inprocess:
                    continue  # re-checked once, at the end of the plan
                key = (earlier.item_id, n)
                r = evaluate(check, self.workdir, retry=False)
                if r.outcome not in ("failed", "error"):
                    self.broken.discard(key)
                elif key not in self.broken:
                    self.broken.add(key)
                    r.name = f"regression: criterion {n} of task {earlier.item_id} ({check.name})"
                    r.outcome = "failed"
                    r.regression_of = earlier.item_id
                    broken.append(r)
        return broken

    def _end_of_plan_regressions(self) -> None:
        """Re-check, once, the criteria that run processes or reach the network.

        Re-running them after every task would cost O(tasks²) commands. Only
        criteria of passed tasks that some later task could have broken are
        re-checked; one that fails is reported on an extra item,
        ``PLANFILE::regressions``, blaming the first task performed after its
        own.
        """
        forget_paths()
        results = []
        for earlier in self.passed:
            since = self.next_performed.get(earlier.item_id)
            if since is None:
                continue  # nothing ran after it
            for n, check in enumerate(earlier.checks, 1):
                if check.inprocess:
                    continue
                r = evaluate(check, self.workdir)
                if r.outcome in ("failed", "error"):
                    r.name = (
                        f"regression (checked at the end of the plan): criterion {n} of task {earlier.item_id}"
                        f" ({check.name}) no longer holds; it could have broken from task {since} on"
                    )
                    r.outcome = "failed"
                    r.regression_of = earlier.item_id
                    results.append(r)
        if not results:
            return
        report = ItemReport(
            nodeid=f"{self.cplan.display}::regressions",
            plan=self.cplan.display,
            item_id="regressions",
            name="regressions checked at the end of the plan",
            kind="verification",
            outcome="failed",
            location=self.cplan.source.locate(("tasks",), key=True),
            criteria=results,
        )
        report.duration = sum(r.duration for r in results)
        self._log(report)


@dataclass
class Performed:
    """What performing a task gave (:meth:`PlanRunner._perform`), before :meth:`PlanRunner._finish` completes it."""

    report: ItemReport
    judged: bool = False  # its criteria were asserted: its outcome is theirs, regressions included
    stop: str | None = None  # the executor asked to stop the run
    summary: str | None = None  # it passed: its executor's summary, for its dependents
    executed: list[tuple[int, str]] = field(default_factory=list)  # (attempt, status), when run beside others
    duration: float = 0.0


def _quiet(**_: Any) -> None:
    """``planrun_task_progress`` in a task's own process: nothing to show there."""


class _Usage:
    """Tokens, cost and output summed over a task's attempts."""

    def __init__(self) -> None:
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost: float | None = None
        self.output: list[str] = []
        self.summary = ""
        self.notes: list[str] = []  # the executor's warnings, for the report

    def add(self, result: ExecutionResult) -> None:
        self.notes.extend(result.warnings)
        self.tokens_in += result.tokens_in
        self.tokens_out += result.tokens_out
        if result.cost is not None:
            self.cost = (self.cost or 0.0) + result.cost
        if result.output:
            self.output.append(result.output)
        self.summary = result.summary or self.summary

    def fields(self, executor: str, attempts: int) -> dict[str, Any]:
        return dict(
            executor=executor,
            output="\n".join(self.output),
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            attempts=attempts,
            cost=self.cost,
            summary=self.summary,
            notes=list(dict.fromkeys(self.notes)),
        )


def failure_feedback(results: list[CriterionResult], attempt: int, max_attempts: int) -> str:
    """What an executor is told when its attempt did not meet the criteria: each unmet one, with its evidence."""
    failed = [(n, r) for n, r in enumerate(results, 1) if r.outcome in ("failed", "error")]
    lines = [
        f"Attempt {attempt} of {max_attempts} did not meet the task's success criteria "
        f"({len(failed)} of {len(results)} not met). Fix exactly these, then call finish again:"
    ]
    for n, r in failed:
        lines.append(f"- criterion {n}: {r.name}: {r.outcome}: {r.message}")
        if r.evidence:
            tail = r.evidence if len(r.evidence) <= 2000 else "..." + r.evidence[-2000:]
            lines.extend("    " + line for line in lines_of(tail))
    return "\n".join(lines)


@hookimpl(trylast=True)
def planrun_task_execute(task: Task, executor: Executor, context: ExecutionContext) -> ExecutionResult:
    return executor.execute(task, context)
