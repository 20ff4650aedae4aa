"""The data types plugins exchange with the core: kinds, contexts and results."""

from __future__ import annotations

import abc
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict

from planrun.outcomes import fail

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.model import Plan, Task
    from planrun.process import ProcessResult


class Location(NamedTuple):
    """Where something is written: a file and a 1-based line and column."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.path
        return f"{self.path}:{self.line}:{self.col}" if self.col else f"{self.path}:{self.line}"


# Directory realpaths, cached: criteria ask for the same folders again and
# again. The runner forgets them whenever something may have changed the tree.
_REALDIRS: dict[str, str] = {}


def _realdir(path: str) -> str:
    try:
        return _REALDIRS[path]
    except KeyError:
        real = _REALDIRS[path] = os.path.realpath(path)
        return real


def forget_paths() -> None:
    """Drop cached realpaths (the tree may have changed)."""
    _REALDIRS.clear()


class ArgsModel(BaseModel):
    """Base for check argument models: unknown keys are errors, types strict."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _relative_path(value: str) -> str:
    if not value:
        raise ValueError("empty path")
    if "\x00" in value:
        raise ValueError("NUL byte in path")
    if os.path.isabs(value) or value.startswith("~"):
        raise ValueError(f"absolute path {value!r}: criterion paths are relative to the workdir")
    if ".." in Path(value).parts:
        raise ValueError(f"path {value!r} escapes the workdir with '..'")
    return value


#: A path relative to the workdir: absolute paths and ``..`` are compile errors.
RelPath = Annotated[str, AfterValidator(_relative_path)]

CheckFunction = Callable[[Any, "CheckContext"], None]


@dataclass(frozen=True)
class CheckKind:
    """A check kind a plugin registers.

    :param name: the key used in plans (``file_exists``).
    :param args: the pydantic model of its arguments. A ``mode="before"``
        model validator can accept shorthand forms (a bare string or list).
    :param function: ``function(args, ctx)``: returns ``None`` when the
        criterion holds, raises :func:`planrun.fail` when it does not.
    :param describe: one-line display text for a given ``args``.
    :param default_timeout: seconds, when the criterion sets no ``timeout``.
    """

    name: str
    args: type[BaseModel]
    function: CheckFunction
    describe: Callable[[Any], str] | None = None
    default_timeout: float = 60.0


class ExecutorKind(NamedTuple):
    """An executor a plugin registers: its name and a factory taking the config."""

    name: str
    factory: Callable[[Config], Executor]


class Executor(abc.ABC):
    """Base class of executors: perform one task in its workdir."""

    name: str = "executor"

    @abc.abstractmethod
    def execute(self, task: Task, context: ExecutionContext) -> ExecutionResult:
        """Perform ``task`` in ``context.workdir``; say done, failed (with why) or blocked."""


@dataclass
class ExecutionResult:
    """What an executor reports for one task.

    :param status: ``done`` (check the criteria), ``failed`` (the work itself
        failed, e.g. a shell step exited non-zero), or ``blocked`` (cannot
        proceed; ``message`` says why).
    """

    status: Literal["done", "failed", "blocked"] = "done"
    message: str = ""
    output: str = ""
    evidence: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 1


class StepTimeout(Exception):
    """A process or step ran past its timeout (an error, not a failure)."""


class _Context:
    workdir: Path
    timeout: float

    def run(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        watch_stdout: Sequence[str] = (),
        watch_stderr: Sequence[str] = (),
    ) -> ProcessResult:
        """Run a command in its own process group in the workdir (see :func:`planrun.process.run_process`).

        ``watch_stdout``/``watch_stderr``: strings to look for in the whole
        streams, past the output cap (the result's ``stdout_seen``/``stderr_seen``).
        Cached realpaths are forgotten afterwards: the command may have changed the tree.
        """
        from planrun.process import run_process

        try:
            return run_process(
                command,
                cwd=self.workdir if cwd is None else self.workdir / cwd,
                timeout=self.timeout if timeout is None else timeout,
                env=env,
                watch_stdout=watch_stdout,
                watch_stderr=watch_stderr,
            )
        finally:
            forget_paths()


@dataclass
class CheckContext(_Context):
    """What a check function gets besides its arguments."""

    workdir: Path
    timeout: float
    location: Location | None = None

    def path(self, rel: str) -> Path:
        """Resolve ``rel`` under the workdir; a symlink that leads outside fails the check."""
        root = _realdir(os.fspath(self.workdir))
        head, tail = os.path.split(rel)
        base = _realdir(os.path.join(root, head)) if head else root
        full = os.path.join(base, tail) if tail else base
        if tail and os.path.islink(full):
            full = os.path.realpath(full)
        if os.path.commonpath((root, full)) != root:  # compares components, not string prefixes
            fail(f"{rel} resolves outside the workdir (to {full})")
        return Path(full)

    def regular_file(self, rel: str) -> Path:
        """Resolve ``rel`` and fail unless it is an existing regular file (never open a FIFO)."""
        p = self.path(rel)
        try:
            st = p.stat()
        except FileNotFoundError:
            fail(f"{rel} does not exist")
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            fail(f"{rel} is not a regular file")
        return p

    def search(self, pattern: re.Pattern[str], text: str, pos: int = 0) -> re.Match[str] | None:
        """``pattern.search(text)`` under this check's time limit."""
        with time_limit(self.timeout, f"regex {pattern.pattern!r}"):
            return pattern.search(text, pos)


class _TimeLimitExceeded(Exception):
    def __init__(self, owner: time_limit) -> None:
        super().__init__()
        self.owner = owner


class time_limit:  # noqa: N801 - used like a function: ``with time_limit(5, "what"):``
    """Raise :class:`StepTimeout` if the block runs past ``seconds`` (main thread only).

    CPython's regex engine checks for signals while it backtracks, so a
    SIGALRM interrupts a catastrophic pattern. Limits nest: an inner, shorter
    limit fires first, and the outer one is re-armed with what is left of it.
    Outside the main thread this is a no-op.
    """

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self._armed = False
        self._outer_left = 0.0

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self.seconds <= 0:
            return
        outer_left = signal.getitimer(signal.ITIMER_REAL)[0]
        if outer_left and outer_left <= self.seconds:
            return  # an enclosing limit fires first
        self._outer_left = outer_left
        self._started = time.monotonic()
        self._old = signal.signal(signal.SIGALRM, self._expired)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self._armed = True

    def _expired(self, signum: int, frame: object) -> None:
        raise _TimeLimitExceeded(self)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
            if self._outer_left:
                left = self._outer_left - (time.monotonic() - self._started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
        if isinstance(exc, _TimeLimitExceeded) and exc.owner is self:
            raise StepTimeout(f"{self.what} ran longer than {self.seconds:g}s") from None


@dataclass
class ExecutionContext(_Context):
    """What an executor gets besides the task."""

    workdir: Path
    timeout: float
    plan: Plan
    config: Config
    feedback: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
