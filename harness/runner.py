"""The per-item protocol: baseline, execute, assert the criteria, re-check earlier tasks."""

from __future__ import annotations

import time
import traceback
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
        for index, item in enumerate(items):
            if self.session.shouldstop:
                return
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
            if item.kind == "task":
                self.states[item.item_id] = report.outcome
                if report.outcome == "passed":
                    self.passed.append(item)
            self._log(report)
            if index == last_task and not self.session.shouldstop:
                self._end_of_plan_regressions()

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
        # Red before green: what already holds proves nothing about this task.
        baseline = [evaluate(c, self.workdir, retry=False).outcome == "passed" for c in item.checks]
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
        )
        for earlier in self.passed:
            self.next_performed.setdefault(earlier.item_id, item.item_id)
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
                return self._report(
                    item,
                    "error",
                    message=f"timed out: {exc}",
                    criteria=self._regressions(),
                    **usage.fields(executor_name, attempt),
                )
            except ExecutorError as exc:
                forget_paths()
                if exc.result is not None:
                    usage.add(exc.result)
                if exc.stop:
                    self.session.shouldstop = exc.stop
                fields = usage.fields(executor_name, attempt)
                return self._report(item, "error", message=str(exc), criteria=self._regressions(), **fields)
            except Exception as exc:
                evidence = traceback.format_exc(limit=-5)
                forget_paths()
                return self._report(
                    item,
                    "error",
                    message=f"executor {executor_name} crashed: {type(exc).__name__}: {exc}",
                    evidence=evidence,
                    criteria=self._regressions(),
                    **usage.fields(executor_name, attempt),
                )
            except BaseException:
                forget_paths()
                raise
            forget_paths()
            self.session.log_executed(item, attempt, result.status)
            usage.add(result)
            common = usage.fields(executor_name, attempt)
            # A step that failed, or an executor that gave up, may still have
            # changed the tree: what it broke is blamed on it, not on the next task.
            if result.status == "blocked":
                return self._report(
                    item, "blocked", message=f"blocked: {result.message}", criteria=self._regressions(), **common
                )
            if result.status == "failed":
                if result.retryable and attempt < max_attempts:
                    context.feedback = f"Attempt {attempt} of {max_attempts} was not accepted: {result.message}" + (
                        f"\n{result.evidence}" if result.evidence else ""
                    )
                    continue
                return self._report(
                    item,
                    "failed",
                    message=result.message,
                    evidence=result.evidence,
                    criteria=self._regressions(),
                    **common,
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
        if outcome == "passed":
            self.summaries[task.id] = usage.summary
        results.extend(self._regressions())
        return self._report(item, outcome_of(results), criteria=results, **usage.fields(executor_name, attempt))

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
