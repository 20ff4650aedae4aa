"""The session: collection, selection, the run loop and the only exit-code mapping."""

from __future__ import annotations

import difflib
import errno
import gc
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from planrun.atomic import opened
from planrun.compiler import Check, Compiler
from planrun.config import ExitCode, ini_args
from planrun.errors import PlanError, PlanrunError, UsageError
from planrun.hookspecs import hookimpl
from planrun.interrupts import Interrupts as _Interrupts
from planrun.loader import file_kind
from planrun.planfile import PlanSource, dependency_order, read_plan
from planrun.registry import CheckRegistry, ExecutorRegistry
from planrun.reports import ItemReport, printable
from planrun.types import Executor, Location, alarm_handler, set_max_file_bytes, set_passenv

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan, Task
    from planrun.plancache import Body

PLAN_SUFFIXES = (".plan.yaml", ".plan.yml")
SKIP_DIRS = frozenset({"node_modules", "venv", "__pycache__", "site-packages", "build", "dist"})


class ItemHead(NamedTuple):
    """What an item is, without its plan: enough to select, order and report it (kept for every item)."""

    kind: str
    item_id: str
    name: str
    location: Location
    owner: tuple[Any, ...]  # its key in CollectedPlan.checks
    task: int  # its index in plan.tasks; -1: not a task
    runs: bool  # a task with ``run:`` steps (the shell executor's)
    kinds: tuple[str, ...]  # the check kind of each criterion
    depends_on: tuple[str, ...]


class Item:
    """One runnable unit: a task, the prerequisites, an edge case or the verification.

    Its plan's models and compiled checks (:attr:`task`, :attr:`checks`) live
    in its :class:`CollectedPlan`, which may hold them packed until the plan
    runs: reading them is always right; on a packed plan it unpacks it.
    """

    __slots__ = (
        "cplan",
        "kind",
        "item_id",
        "name",
        "location",
        "nodeid",
        "kinds",
        "depends_on",
        "runs",
        "_owner",
        "_task",
        "verify_only",
        "verify_first",
        "verify_note",
    )

    def __init__(self, cplan: CollectedPlan, head: ItemHead) -> None:
        self.cplan = cplan
        self.kind = head.kind
        self.item_id = head.item_id
        self.name = head.name
        self.location = head.location
        #: The check kind of each criterion, in order (no need to unpack the plan to count or filter them).
        self.kinds = head.kinds
        #: The ids of the tasks this one depends on (a task); ``()`` otherwise.
        self.depends_on = head.depends_on
        #: A task the shell executor performs (it has ``run:`` steps).
        self.runs = head.runs
        self._owner = head.owner
        self._task = head.task
        self.nodeid = f"{cplan.display}::{head.item_id}"
        #: A deselected dependency kept to be verified, not performed (``-k``/node ids in an inplace workspace).
        self.verify_only = False
        #: ``--resume``: a task executed before the run stopped: its criteria are asserted first, and it is
        #: performed again only if they do not hold.
        self.verify_first = False
        #: Why the item is verified rather than performed, for its report (``--resume``); default: a dependency.
        self.verify_note = ""

    @property
    def checks(self) -> list[Check]:
        """The compiled criteria."""
        return self.cplan.checks[self._owner]

    @property
    def task(self) -> Task | None:
        """The task model (``None`` for prerequisites, edge cases and the verification)."""
        return None if self._task < 0 else self.cplan.plan.tasks[self._task]

    @property
    def keywords(self) -> list[str]:
        """What ``-k`` matches against (case-insensitive substrings)."""
        names = [self.item_id, self.name, self.cplan.head.id or "", Path(self.cplan.display).name]
        return [n.lower() for n in names]

    def __repr__(self) -> str:
        return f"<Item {self.nodeid}>"


class Scope:
    """What serves the plans of one folder: its hooks, check kinds and executors.

    Plugins serve every plan; a ``conftest.py`` only the plans in its folder
    and below (the rootdir's serves all), as in pytest.
    """

    def __init__(self, config: Config, hook: Any) -> None:
        self.config = config
        self.hook = hook
        self._registry: CheckRegistry | None = None
        self._executors: ExecutorRegistry | None = None
        self._compiler: Compiler | None = None
        self._instances: dict[str, Executor] = {}
        # (plan folder, the plans' workdir) -> its real path, when first resolved (plans share folders)
        self.workdirs: dict[tuple[str, str], Path] = {}

    @property
    def registry(self) -> CheckRegistry:
        if self._registry is None:
            self._registry = CheckRegistry(self.config, self.hook)
        return self._registry

    @property
    def compiler(self) -> Compiler:
        if self._compiler is None:
            self._compiler = Compiler(self.config, self.registry, self.hook)
        return self._compiler

    @property
    def executors(self) -> ExecutorRegistry:
        if self._executors is None:
            self._executors = ExecutorRegistry(self.config, self.hook)
        return self._executors

    def executor(self, name: str) -> Executor:
        """The one instance of executor ``name`` for this scope."""
        if name not in self._instances:
            self._instances[name] = self.executors.kinds[name].factory(self.config)
        return self._instances[name]


class PlanHead(NamedTuple):
    """The plan-level settings a session needs before the plan runs (kept for every plan)."""

    id: str | None
    title: str
    workdir: str | None
    workspace: str
    executor: str | None


class CollectedPlan:
    """A loaded and compiled plan file.

    Its models and checks (:attr:`plan`, :attr:`checks`) may be held packed
    (the parsed-plan cache's bytes) while other plans run, so what a session
    holds grows by a few kilobytes per plan, not by its object graph: the
    first read unpacks them, and they stay until the plan has run
    (:meth:`release`), so what a plugin changes in them before the run holds
    for the run. What the session needs of every plan is in :attr:`head` and
    in each item.
    """

    def __init__(
        self,
        path: Path,
        display: str,
        plan: Plan | None,
        checks: dict[tuple[Any, ...], list[Check]] | None,
        scope: Scope,
    ) -> None:
        self.path = path
        self.display = display
        self._plan = plan
        self._checks = checks
        self._body: Body | None = None  # the packed plan and checks, when they can be released
        self._base: Path | None = None
        self.scope = scope
        self.head = plan_head(plan) if plan is not None else PlanHead(None, "", None, "inplace", None)
        self.items: list[Item] = []
        #: The item ids named by node-id arguments (``x.plan.yaml::task``); ``None``: the whole plan.
        self.selected_ids: set[str] | None = None
        #: Where this plan's items ran (set by :meth:`Session.workspace`, for reporters).
        self.workdir: Path | None = None
        #: The file the plan was read from: ``path``, or its copy at a git ref (``--plans-from-ref``, see
        #: :attr:`Session.mirror`; ``path`` may then not exist). Removed at the end of the session.
        self.source_file: Path = path
        #: The SHA-256 of the plan file's bytes this plan was loaded from (from the loader, or the cache key an
        #: entry was found by); ``None`` when the collector does not say.
        self.sha256: str | None = None

    @classmethod
    def packed(
        cls, path: Path, display: str, scope: Scope, head: PlanHead, items: list[ItemHead], body: Body
    ) -> CollectedPlan:
        """A plan from the parsed-plan cache: its head and items now, its models when first read."""
        cplan = cls(path, display, None, None, scope)
        cplan.head, cplan._body = head, body
        cplan.items = [Item(cplan, item) for item in items]
        return cplan

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._unpack(plan=True)
        assert self._plan is not None
        return self._plan

    @property
    def checks(self) -> dict[tuple[Any, ...], list[Check]]:
        if self._checks is None:
            self._unpack(plan=False)
        assert self._checks is not None
        return self._checks

    @property
    def unpacked(self) -> bool:
        """Whether the models or checks are in memory now (else :attr:`plan` and :attr:`checks` unpack them)."""
        return self._plan is not None or self._checks is not None

    def _unpack(self, *, plan: bool) -> None:
        """Unpack the models (``plan``) or the checks: a run that only verifies never needs the models."""
        from planrun import plancache

        assert self._body is not None
        try:
            if plan:
                self._plan = plancache.unpack_plan(self._body)
            else:
                self._checks = plancache.unpack_checks(self._body, self.scope.registry)
        except Exception:  # it names what this process no longer has (a plugin changed meanwhile): read it again
            found = self.scope.hook.planrun_collect_file(file_path=str(self.source_file), config=self.scope.config)
            if found is None:
                raise RuntimeError(f"{self.display}: the plan can no longer be read") from None
            self._plan, self._checks, self._body = found, self.scope.compiler.compile_plan(found), None

    def pack(self, body: Body) -> None:
        """Hold the plan as ``body`` (what :func:`planrun.plancache.pack_body` made of it) until it is read again."""
        self._body = body
        self.release()

    def release(self) -> None:
        """Let the models and checks go, if they can be unpacked again (the plan has run, or was just collected)."""
        if self._body is not None:
            self._plan = self._checks = None

    def item_heads(self) -> list[ItemHead]:
        return [
            ItemHead(
                item.kind,
                item.item_id,
                item.name,
                item.location,
                item._owner,
                item._task,
                item.runs,
                item.kinds,
                item.depends_on,
            )
            for item in self.items
        ]

    @property
    def source(self) -> PlanSource:
        return self.plan._source or PlanSource(self.display)

    def build_items(self) -> None:
        plan, source, checks = self.plan, self.source, self.checks

        def head(kind: str, item_id: str, name: str, owner: tuple[Any, ...], where: Location, task: int = -1) -> None:
            t = plan.tasks[task] if task >= 0 else None
            kinds = tuple(c.kind for c in checks[owner])
            runs = t is not None and t.run is not None
            deps = tuple(t.depends_on) if t is not None else ()
            self.items.append(Item(self, ItemHead(kind, item_id, name, where, owner, task, runs, kinds, deps)))

        if plan.prerequisites:
            owner = ("prerequisites",)
            head("prerequisites", "prerequisites", "prerequisites", owner, source.locate(owner, key=True))
        for i in dependency_order(plan):
            task = plan.tasks[i]
            head("task", task.id, task.name, ("tasks", i), source.locate(("tasks", i)), i)
        for i, case in enumerate(plan.edge_cases):
            head("edge_case", f"edge_cases[{i}]", case.case, ("edge_cases", i), source.locate(("edge_cases", i)))
        if plan.verification:
            owner = ("verification",)
            head("verification", "verification", "verification", owner, source.locate(owner, key=True))

    def base_workdir(self, rootdir: Path, override: Path | None = None) -> Path:
        """The tree the plan runs against: ``--workdir``, else its ``workdir`` (real path), else the rootdir."""
        if override is not None:
            return override
        if self.head.workdir is None:
            return rootdir
        if self._base is None:  # resolved once: where the plan runs is decided at collection
            key = (os.fspath(self.path.parent), self.head.workdir)
            base = self.scope.workdirs.get(key)
            if base is None:  # never raises on a loop
                base = self.scope.workdirs[key] = Path(os.path.realpath(os.path.join(*key)))
            self._base = base
        return self._base


def plan_head(plan: Plan) -> PlanHead:
    return PlanHead(plan.id, plan.plan, plan.workdir, plan.workspace, plan.executor)


class Session:
    """One run of planrun: collects plans, selects items, runs them, keeps the counts."""

    def __init__(self, config: Config) -> None:
        self.config = config
        set_passenv(getattr(config, "passenv", ()))  # what this session's steps and commands see besides the allowlist
        self.plans: list[CollectedPlan] = []
        self.items: list[Item] = []
        self.deselected: list[Item] = []
        self.collection_errors: list[PlanError] = []
        self.reports: list[ItemReport] = []
        self.shouldstop: str | None = None
        self.tasks_beside = 1  # tasks of one plan performed side by side (-n sets it; see planrun.taskgroup)
        self.interrupted = False
        self.interrupt_reason = ""
        self.exitstatus: int = ExitCode.OK
        self.start_time = time.time()
        self.duration = 0.0
        self._scopes: dict[tuple[int, ...], Scope] = {}
        self._rootdir_real: Path | None = None
        self._workdirs_seen: dict[Path, tuple[bool, bool]] = {}  # real workdir -> (inside the rootdir, a folder)
        self._scope_of_folder: dict[str, Scope] = {}
        #: The parsed-plan cache of this session (:class:`planrun.plancache.PlanCache`), set by :meth:`collect`.
        self.plancache: Any = None
        self._yaml_only: set[str] = set()  # scanned folders with .yaml files but no plan files
        #: What to collect instead of the PATHS arguments (set before collection, by ``--plans-from-ref``).
        self.collect_paths: list[str] | None = None
        #: ``(copy, real, conftest root)``: plan files under ``copy`` stand for those under ``real``
        #: (``--plans-from-ref``'s mirror of the repository at a ref): they are shown and run as the real
        #: ones, and their conftests chain up to ``conftest root`` (the copy of the rootdir), not the rootdir.
        self.mirror: tuple[Path, Path, Path] | None = None

    def scope_for(self, folder: Path) -> Scope:
        """The :class:`Scope` of plans in ``folder`` (loading its conftest.py files first)."""
        known = self._scope_of_folder.get(str(folder))
        if known is not None:
            return known  # its conftests are loaded: plan files share folders
        pm = self.config.pluginmanager
        root = self.config.rootdir
        if self.mirror is not None and Path(os.path.realpath(folder)).is_relative_to(self.mirror[0]):
            root = self.mirror[2]
        pm.consider_conftests(folder, root)
        key, hook = pm.hooks_for(folder, root)
        if key not in self._scopes:
            self._scopes[key] = Scope(self.config, hook)
        scope = self._scope_of_folder[str(folder)] = self._scopes[key]
        return scope

    def real_path(self, path: Path) -> Path:
        """The file a collected ``path`` stands for: itself, or the working tree's for a file in the mirror."""
        if self.mirror is not None:
            copy, real = self.mirror[0], self.mirror[1]
            absolute = Path(os.path.abspath(path))
            if absolute.is_relative_to(copy):
                return real / absolute.relative_to(copy)
        return path

    def executor_name_for(self, item: Item) -> str | None:
        """Which executor performs ``item`` (SPEC section 4), or ``None`` for verify-only."""
        opt = self.config.option
        if item.kind != "task" or opt.verify_only or item.verify_only:
            return None
        if item.runs:
            return "shell"
        return opt.executor or item.cplan.head.executor or self.config.default_executor

    # -- collection ------------------------------------------------------

    def collect(self) -> None:
        from planrun.plancache import PlanCache, clear

        config = self.config
        if config.option.cache_clear:
            clear(config)
        cache = self.plancache = PlanCache(config)
        files = list(self._plan_files())
        for path, ids in files:
            real = self.real_path(path)
            display = config.display_path(real)
            try:
                scope = self.scope_for(path.parent)
                key = cache.key_of(path, display, scope.hook)
                cached = cache.load(key.digest, key.text) if key is not None else None
                if cached is not None:
                    cache.hits += 1
                    cplan = CollectedPlan.packed(real, display, scope, *cached)
                    cplan.sha256 = key.content if key is not None else None  # an entry is made from these bytes
                else:
                    cache.misses += 1
                    plan = scope.hook.planrun_collect_file(file_path=str(path), config=config)
                    if plan is None:
                        continue
                    checks = scope.compiler.compile_plan(plan)
                    cplan = CollectedPlan(real, display, plan, checks, scope)
                    cplan.build_items()
                    cplan.sha256 = getattr(getattr(plan._source, "_doc", None), "sha256", None)  # what was parsed
                cplan.source_file = path
                self._check_plan(cplan)
                if cached is None:
                    source = plan._source
                    if isinstance(source, PlanSource) and source.text is not None:
                        source.release()  # the marks are rebuilt from the text if an error needs them
                        body = cache.store(key, cplan, path, cplan.sha256) if key is not None else None
                        if body is not None:
                            cplan.pack(body)  # held packed until it runs
            except PlanError as exc:
                self.collection_errors.extend(getattr(exc, "errors", None) or [exc])
                continue
            finally:
                _settle(unless_few=True)
            if ids is not None:
                _check_node_ids(cplan, ids)
                cplan.selected_ids = ids
            self.plans.append(cplan)
            self.items.extend(cplan.items)
        cache.save()
        cache.release()
        _settle()  # what collection kept, all of it, before anything runs
        if not self.plans and not self.collection_errors and self._yaml_only:
            folders = ", ".join(sorted(self._yaml_only))
            config.warnings.append(
                f"no plan files collected: {folders} holds .yaml files, but plan files are named *.plan.yaml"
            )

    def _check_plan(self, cplan: CollectedPlan) -> None:
        """What can only be checked against this run: the workdir and the executors."""
        option = self.config.option
        set_max_file_bytes(option.max_file_bytes)  # the run's read bound reaches every CheckContext
        head = cplan.head
        if option.workdir is None and head.workdir is not None:
            # A plan names a tree inside the rootdir; another tree is the caller's choice (--workdir).
            root = self._real_rootdir()
            base = cplan.base_workdir(root)
            found = self._workdirs_seen.get(base)
            if found is None:  # plans share workdirs: each is judged once
                found = self._workdirs_seen[base] = (base.is_relative_to(root), base.is_dir())  # by components
            inside, is_dir = found
            if not inside:
                raise cplan.source.error(
                    ("workdir",),
                    f"workdir {head.workdir!r} resolves outside the rootdir {root}"
                    " (to run against another tree pass --workdir PATH)",
                )
            if head.workspace != "temp" and not is_dir:
                raise cplan.source.error(("workdir",), f"workdir {head.workdir!r} is not a directory")
        names = {self.executor_name_for(item) for item in cplan.items} - {None}
        executors = cplan.scope.executors
        for name in sorted(names):  # type: ignore[type-var]
            if name in executors:
                continue
            known = ", ".join(sorted(executors.kinds)) or "none"
            if name == head.executor and name != self.config.option.executor:
                raise cplan.source.error(("executor",), f"unknown executor {name!r} (known: {known})")
            raise UsageError(f"unknown executor {name!r} (known: {known})")

    def _real_rootdir(self) -> Path:
        if self._rootdir_real is None:
            self._rootdir_real = self.config.rootdir.resolve()
        return self._rootdir_real

    def path_arguments(self) -> list[str]:
        """The PATHS to collect: the arguments, else ``[tool.planrun] paths``, else ``.``."""
        config = self.config
        inipaths = ini_args(config.inicfg, "paths", f"{config.inipath} [tool.planrun]")
        return list(config.option.paths or [str(config.rootdir / p) for p in inipaths] or ["."])

    def _plan_files(self) -> list[tuple[Path, set[str] | None]]:
        """The plan files to collect, each with the item ids its node-id arguments name (``None``: all)."""
        args = self.collect_paths if self.collect_paths is not None else self.path_arguments()
        found: dict[str, tuple[Path, set[str] | None]] = {}
        for arg in args:
            name, sep, item_id = arg.partition("::")
            path = Path(name)
            try:
                st = os.stat(path)
            except OSError as exc:
                raise UsageError(_missing(name, exc)) from None
            if sep and stat.S_ISDIR(st.st_mode):
                raise UsageError(f"{arg}: a node id names a plan file, and {name} is a directory")
            if stat.S_ISDIR(st.st_mode):
                files = _walk(path, self._yaml_only)
            else:
                files = [path]  # whatever it is: the loader refuses what is not a regular file
            for f in files:
                key = os.path.realpath(f)
                ids: set[str] | None = {item_id} if sep else None
                if key in found:
                    before = found[key][1]
                    ids = None if before is None or ids is None else before | ids
                found[key] = (found[key][0] if key in found else f, ids)
        return list(found.values())

    def deselect(self, items: list[Item]) -> None:
        """Record items a plugin removed from ``session.items``."""
        self.deselected.extend(items)

    def select(self, items: list[Item], selected: set[int]) -> int:
        """Keep in ``items`` (in place) those whose ``id()`` is in ``selected``, with what they need; deselect the rest.

        A selected task's dependencies come along: in a fresh (``temp``,
        ``copy``) workspace nothing of them can hold yet, so they run; in place
        they are verified instead of performed (``verify_only``). A plan's
        prerequisites stay while anything of the plan is selected. Returns how
        many plans keep an item. Used by ``-k``, node ids and ``--lf``.
        """
        selected = set(selected)
        by_task = {(id(item.cplan), item.item_id): item for item in items if item.kind == "task"}
        pending = [item for item in items if id(item) in selected and item.kind == "task"]
        while pending:
            item = pending.pop()
            for dep in item.depends_on:
                needed = by_task.get((id(item.cplan), dep))
                if needed is None or id(needed) in selected:
                    continue
                selected.add(id(needed))
                needed.verify_only = needed.verify_only or item.cplan.head.workspace == "inplace"
                pending.append(needed)
        chosen = {id(item.cplan) for item in items if id(item) in selected}
        keep = [i for i in items if id(i) in selected or (i.kind == "prerequisites" and id(i.cplan) in chosen)]
        if len(keep) != len(items):
            kept = {id(item) for item in keep}
            self.deselect([item for item in items if id(item) not in kept])
            items[:] = keep
        return len(chosen)

    # -- running ---------------------------------------------------------

    def run(self) -> None:
        """The run phase: :func:`planrun_runtestloop` (serial here, or ``-n`` workers)."""
        self.config.hook.planrun_runtestloop(session=self)

    def plan_items(self) -> list[tuple[CollectedPlan, list[Item]]]:
        """The plans that have selected items, in run order, each with its items."""
        by_plan: dict[int, list[Item]] = {}
        for item in self.items:
            by_plan.setdefault(id(item.cplan), []).append(item)
        return [(cplan, by_plan[id(cplan)]) for cplan in self.plans if id(cplan) in by_plan]

    def run_plan(self, cplan: CollectedPlan, items: list[Item], prerequisites: Item | None = None) -> None:
        """Run one plan's items in its workspace (``prerequisites``: see :meth:`PlanRunner.run`)."""
        from planrun.runner import PlanRunner

        with self.workspace(cplan) as workdir:
            PlanRunner(self, cplan, workdir).run(items, prerequisites)
        cplan.release()  # packed again: what the session keeps of a plan that ran is its reports
        _settle(unless_few=True)  # its reports stay to the end: the collector need not scan them again

    @contextmanager
    def workspace(self, cplan: CollectedPlan) -> Iterator[Path]:
        mode = cplan.head.workspace
        base = cplan.base_workdir(self.config.rootdir, self.config.option.workdir)
        made = cplan.scope.hook.planrun_make_workspace(cplan=cplan, base=base, config=self.config)
        if made is not None:  # a plugin's workspace (--sandbox)
            with made as workdir:
                cplan.workdir = workdir
                yield workdir
            return
        if mode == "inplace":
            cplan.workdir = base
            yield base
            return
        # The plan id can be as long as a file name: the folder name must stay short and plain.
        label = re.sub(r"[^A-Za-z0-9_.-]", "_", cplan.head.id or "plan")[:40]
        tmp = Path(tempfile.mkdtemp(prefix=f"planrun-{label}-"))
        try:
            if mode == "copy":
                workdir = tmp / (base.name or "workdir")
                skipped = copy_workdir(base, workdir, avoid=tmp)
                if skipped:
                    shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
                    self.config.warnings.append(
                        f"{cplan.display}: workspace copy skipped {len(skipped)} "
                        f"{'entry' if len(skipped) == 1 else 'entries'} (only files, folders and links are copied):"
                        f" {shown}"
                    )
            else:
                workdir = tmp
            cplan.workdir = workdir
            yield workdir
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # Everything the runner tells the outside world goes through these three
    # methods, so a worker process can forward them to the main process.

    def log_start(self, item: Item) -> None:
        self.config.hook.planrun_runtest_logstart(nodeid=item.nodeid, location=item.location)

    def log_executed(self, item: Item, attempt: int, status: str) -> None:
        self.config.hook.planrun_task_executed(nodeid=item.nodeid, attempt=attempt, status=status)

    def log(self, report: ItemReport) -> None:
        self.reports.append(report)
        self.config.hook.planrun_runtest_logreport(report=report)


#: What ``workspace: copy`` leaves out of the copy.
COPY_IGNORED = frozenset({".git", ".planrun", ".venv", "node_modules", "__pycache__"})


def copy_workdir(src: Path, dst: Path, *, avoid: Path) -> list[str]:
    """Copy ``src`` to ``dst``: folders, regular files and symlinks (as links, never followed).

    Anything else (FIFOs, sockets, devices, unreadable entries) is skipped;
    the folder ``avoid`` (the destination's parent) is never copied into itself.

    :return: the skipped entries, relative to ``src``, with the reason.
    """
    skipped: list[str] = []
    ast = os.stat(avoid)
    avoid_key = (ast.st_dev, ast.st_ino)
    os.mkdir(dst, 0o700)
    folders: list[tuple[Path, int]] = [(dst, stat.S_IMODE(os.stat(src).st_mode))]
    pending: list[tuple[Path, Path, str]] = [(src, dst, "")]
    while pending:
        source, target, rel = pending.pop()
        try:
            with os.scandir(source) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(f"{printable(rel or '.')} ({exc.strerror or 'unreadable'})")
            continue
        for entry in entries:
            if entry.name in COPY_IGNORED:
                continue
            name = rel + entry.name
            to = target / entry.name
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(entry.path), to)
                elif stat.S_ISDIR(st.st_mode):
                    if (st.st_dev, st.st_ino) == avoid_key:
                        continue  # the workspace itself (TMPDIR inside the workdir)
                    os.mkdir(to, 0o700)
                    folders.append((to, stat.S_IMODE(st.st_mode)))
                    pending.append((Path(entry.path), to, name + "/"))
                elif stat.S_ISREG(st.st_mode):
                    _copy_file(entry.path, to)
                else:
                    skipped.append(f"{printable(name)} ({file_kind(st.st_mode)})")
            except OSError as exc:
                skipped.append(f"{printable(name)} ({exc.strerror or type(exc).__name__})")
    for folder, mode in reversed(folders):
        os.chmod(folder, mode | stat.S_IRWXU)  # stays removable
    return sorted(skipped)


def _copy_data(src: int, dst: int, size: int) -> None:
    """Copy the first ``size`` bytes of ``src`` to ``dst``, keeping holes holes.

    Only the data segments are written (``SEEK_DATA``/``SEEK_HOLE``), so a
    sparse file of a terabyte costs what it holds, not a terabyte of zeros.
    """
    pos = 0
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    while pos < size:
        start, end = pos, size
        if seek_data is not None and seek_hole is not None:
            try:
                start = os.lseek(src, pos, seek_data)
                end = min(os.lseek(src, start, seek_hole), size)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos: the rest is a hole
                    break
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                start, end, seek_data = pos, size, None  # the file system cannot say: copy everything
        os.lseek(src, start, os.SEEK_SET)
        os.lseek(dst, start, os.SEEK_SET)
        while start < end:
            chunk = memoryview(os.read(src, min(end - start, 1 << 20)))
            if not chunk:
                return  # the file shrank meanwhile: what was read is the copy
            while chunk:
                chunk = chunk[os.write(dst, chunk) :]
                start = os.lseek(dst, 0, os.SEEK_CUR)
        pos = max(end, pos + 1)
    os.ftruncate(dst, size)


def _copy_file(source: str, target: Path) -> None:
    """Copy one regular file, checking what was opened (it may have been swapped for a FIFO or a link)."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    f, st = opened(fd)
    if f is None:
        raise OSError(0, file_kind(st.st_mode))
    with f:  # closes fd
        with open(target, "xb") as out:
            _copy_data(fd, out.fileno(), st.st_size)
        os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _missing(arg: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"symlink loop: {arg}"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        broken = " (a broken symlink)" if os.path.islink(arg) else ""
        return f"file or directory not found: {arg}{broken}"
    return f"cannot use {arg}: {exc.strerror or exc}"


def _walk(root: Path, yaml_only: set[str] | None = None) -> list[Path]:
    """The plan files under ``root``; a folder named like a plan file is reported as one (the loader refuses it)."""
    found: list[Path] = []
    plain_yaml: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        found.extend(Path(dirpath, d) for d in sorted(dirnames) if d.endswith(PLAN_SUFFIXES))
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(PLAN_SUFFIXES)
        )
        found.extend(Path(dirpath, f) for f in sorted(filenames) if f.endswith(PLAN_SUFFIXES))
        if any(f.endswith((".yaml", ".yml")) for f in filenames):
            plain_yaml.append(dirpath)
    if not found and plain_yaml and yaml_only is not None:
        yaml_only.add(str(root))
    return found


def _settle(*, unless_few: bool = False) -> None:
    """Collect the young generations, then freeze what survived (a plan just collected or run).

    What collection and the reports keep lives to the end of the session: frozen,
    the collector's full passes no longer rescan it (they would, again and again,
    as the session grows). The young collection first frees the cycles just made,
    so nothing collectable is frozen. :func:`wrap_session` unfreezes at the end.

    ``unless_few``: not yet if what is young is fewer than :data:`_FEW` objects
    that no collection has seen (a plan read from the cache, a small plan's
    reports): they wait for the next plan's, at a pass for many plans, not one each.
    """
    global _SETTLED
    if unless_few:
        young, passes, _ = gc.get_count()
        if young < _FEW and not passes:
            return
    gc.collect(1)
    gc.freeze()
    _SETTLED += 1


#: Young objects below which :func:`_settle` may wait (the collector's own first threshold, 700 by default,
#: starts a pass of its own before that: its survivors always settle at the next plan).
_FEW = 2000
# How often :func:`_settle` froze (a count of our own: ``gc.get_freeze_count`` walks every frozen object).
_SETTLED = 0


def _check_node_ids(cplan: CollectedPlan, ids: set[str]) -> None:
    known = [item.item_id for item in cplan.items]
    for item_id in sorted(ids - set(known)):
        close = difflib.get_close_matches(item_id, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"{cplan.display}::{item_id}: no such item{hint}; the plan has: {', '.join(known) or 'nothing'}"
        )


def _exit_status(session: Session) -> int:
    if session.collection_errors or session.interrupted:
        return ExitCode.INTERRUPTED
    if any(r.outcome in ("failed", "error", "blocked") for r in session.reports):
        return ExitCode.TESTS_FAILED
    if not session.items:
        return ExitCode.NO_TESTS_COLLECTED
    return ExitCode.OK


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM behaves as Ctrl-C: the current task's processes are killed and the run ends.

    Only the first signal interrupts; later ones are absorbed until the block
    ends, where the previous handlers come back. When :func:`planrun.interrupts.install_interrupts`
    already put a handler in place (the console script), it is used and kept.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, _Interrupts) and signal.getsignal(signal.SIGINT) is current:
        yield
        return
    handler = _Interrupts()
    old_term = signal.signal(signal.SIGTERM, handler)
    old_int = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def wrap_session(config: Config) -> int:
    """Run a session; map every way it can end to an exit code. The only such mapping."""
    from planrun.process import child_pids, make_subreaper, reap_new_children

    session = Session(config)
    started = False
    settled = _SETTLED
    with _signals_interrupt(), alarm_handler():
        make_subreaper()  # escaped descendants re-parent to us, so they can be killed
        children = child_pids()
        try:
            config.hook.planrun_sessionstart(session=session)
            started = True
            session.collect()
            config.hook.planrun_collection_modifyitems(session=session, config=config, items=session.items)
            config.hook.planrun_collection_finish(session=session)
            if not session.collection_errors and not config.option.collectonly:
                session.run()
            session.exitstatus = _exit_status(session)
        except PlanrunError as exc:
            _print_error(exc)
            session.exitstatus = ExitCode.USAGE_ERROR
        except BrokenPipeError:
            reap_new_children(children)
            raise  # the reader went away (`planrun | head`): nothing left to report to
        except KeyboardInterrupt as exc:
            session.interrupted = True
            session.interrupt_reason = str(exc) or "SIGINT"
            session.exitstatus = ExitCode.INTERRUPTED
        except BaseException:
            traceback.print_exc()
            print("INTERNAL ERROR: planrun crashed; please report this with the traceback above.", file=sys.stderr)
            session.exitstatus = ExitCode.INTERNAL_ERROR
        session.duration = time.time() - session.start_time
        if started:
            try:
                config.hook.planrun_sessionfinish(session=session, exitstatus=session.exitstatus)
            except KeyboardInterrupt:
                sys.stdout.flush()
                print("ERROR: interrupted while reporting: the report above is incomplete", file=sys.stderr)
                session.exitstatus = ExitCode.INTERRUPTED
            except BrokenPipeError:
                reap_new_children(children)
                raise
            except PlanrunError as exc:
                _print_error(exc)
                session.exitstatus = ExitCode.USAGE_ERROR
            except BaseException:
                traceback.print_exc()
                session.exitstatus = ExitCode.INTERNAL_ERROR
        if _SETTLED > settled:
            gc.unfreeze()  # what the session kept is the collector's again
        try:
            reap_new_children(children)  # whatever the session started and left: nothing outlives it
        except KeyboardInterrupt:
            reap_new_children(children)
            session.exitstatus = ExitCode.INTERRUPTED
    return int(session.exitstatus)


def _print_error(exc: BaseException) -> None:
    print(f"ERROR: {printable(str(exc))}", file=sys.stderr)


# -- the core's default hook implementations ------------------------------


@hookimpl(trylast=True)
def planrun_runtestloop(session: Session) -> bool:
    for cplan, items in session.plan_items():
        if session.shouldstop:
            break
        session.run_plan(cplan, items)
    return True


@hookimpl(trylast=True)
def planrun_collect_file(file_path: str, config: Config) -> Plan:
    path = Path(file_path)
    display = config.display_path(path)
    return read_plan(path, display, max_bytes=config.option.max_plan_bytes)
