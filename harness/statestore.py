"""The state store under ``.planrun/``: per plan, per item, what happened last, and the run lock.

One JSON file per plan in ``.planrun/state/`` (named after the plan's path
relative to the rootdir), written while its tasks are performed, plus one
file, ``verified.json``, for the outcomes of items that were only verified
(one write per run, however many plans a gate verifies); the two are merged
per item on reading, the newer entry winning. Every file is replaced whole
through :func:`planrun.write_atomic`, so a reader (``planrun status``, a
killed run's successor) sees one complete version or the previous one. A file that does not
parse or has the wrong shape is moved aside (``NAME.corrupt-<time>``) with a
warning and treated as absent: state is never trusted blindly, and it never
makes anything pass by itself (it only decides what is re-verified instead of
re-executed).

Per item the *status* (how far it got: ``pending``, ``in_progress``,
``executed``, ``verified``) is kept apart from the *outcome* (``passed``,
``failed``, ...), so a run killed between executing a task and asserting its
criteria is resumed by verifying, not by performing the task again.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planrun.atomic import TEMP_SUFFIX, ignored_folder, opened, remove_stale_temps, write_atomic
from planrun.errors import UsageError

if TYPE_CHECKING:
    from planrun.model import Plan, Task
    from planrun.reports import ItemReport

#: The version of the state file format; a file of another version is set aside.
STATE_FORMAT = 1
STATUSES = ("pending", "in_progress", "executed", "verified")
OUTCOMES = ("passed", "failed", "error", "blocked", "skipped", "interrupted")
#: Outcomes ``--lf`` reruns (an item with no outcome but begun counts as interrupted).
FAILED_OUTCOMES = frozenset({"failed", "error", "blocked", "interrupted"})
_MAX_STATE_BYTES = 16 << 20
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_PLAN_FILE = re.compile(r"-[0-9a-f]{16}\.json$")
#: The one file holding the records of plans a run only verified (see :meth:`StateStore.save_batch`):
#: JSON lines, a header ``{"format": BATCH_FORMAT}`` then one plan per line, ``{"key": KEY, ...}``.
BATCH_FILE = "verified.jsonl"
BATCH_FORMAT = 2
_KEY_PREFIX = re.compile(r'\{\s*"key"\s*:\s*')
_DECODER = json.JSONDecoder()


def plan_key(path: os.PathLike[str] | str, rootdir: os.PathLike[str] | str) -> str:
    """The key of a plan in the store: its path relative to the rootdir (POSIX), else absolute."""
    absolute = os.path.abspath(path)
    found = relative_below(absolute, os.path.abspath(rootdir))
    return found if found is not None else Path(absolute).as_posix()


def relative_below(absolute: str, root: str) -> str | None:
    """``absolute`` relative to ``root`` (POSIX, ``.`` for ``root`` itself) when it is ``root`` or below it.

    What ``PurePath(absolute).relative_to(root)`` gives, compared by
    components, for an ``absolute`` that :func:`os.path.abspath` made
    (normalized); else ``None``.
    """
    root = os.fspath(Path(root)) if root.endswith(os.sep) or "//" in root else root  # as a Path spells it
    if absolute == root:
        return "."
    prefix = root if root.endswith(os.sep) else root + os.sep  # "/" is its own prefix
    if not absolute.startswith(prefix):
        return None
    rest = absolute[len(prefix) :]
    return rest if os.sep == "/" else rest.replace(os.sep, "/")


def state_file_name(key: str) -> str:
    """A plain, bounded file name for ``key`` (the readable part may collide; the hash does not)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{_SAFE.sub('_', key)[-80:]}-{digest}.json"


def file_hash(path: os.PathLike[str] | str) -> str | None:
    """SHA-256 of a file's bytes, or ``None`` when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def task_hashes(plan: Plan) -> dict[str, str]:
    """Task id -> hash of its normalised model dump plus the plan keys that change how any task runs."""
    common = {k: getattr(plan, k, None) for k in ("workdir", "workspace", "executor", "shell")}
    out = {}
    for task in plan.tasks:
        out[task.id] = _task_hash(task, common)
    return out


def _task_hash(task: Task, common: dict[str, Any]) -> str:
    dump = {"task": task.model_dump(mode="json"), "plan": common}
    text = json.dumps(dump, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def new_record(key: str) -> dict[str, Any]:
    """An empty plan record."""
    return {"format": STATE_FORMAT, "plan": key, "plan_hash": None, "run_id": None, "updated": 0.0, "items": {}}


def new_item(kind: str) -> dict[str, Any]:
    """An empty item record: never run."""
    return {
        "kind": kind,
        "status": "pending",
        "outcome": None,
        "exec_status": None,
        "task_hash": None,
        "attempts": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost": None,
        "started": None,
        "finished": None,
        "duration": None,
        "run_id": None,
        "criteria": [],
    }


# -- validation: everything read back is checked before it is used ----------


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _opt(check: Any) -> Any:
    return lambda v: v is None or check(v)


def _is_str(v: object) -> bool:
    return isinstance(v, str)


_ITEM_FIELDS: dict[str, Any] = {
    "kind": _is_str,
    "status": lambda v: v in STATUSES,
    "outcome": lambda v: v is None or v in OUTCOMES,
    "exec_status": _opt(_is_str),
    "task_hash": _opt(_is_str),
    "attempts": _is_int,
    "tokens_in": _is_int,
    "tokens_out": _is_int,
    "cost": _opt(_is_num),
    "started": _opt(_is_num),
    "finished": _opt(_is_num),
    "duration": _opt(_is_num),
    "run_id": _opt(_is_str),
    "criteria": lambda v: (
        isinstance(v, list)
        and all(isinstance(c, dict) and _is_str(c.get("name")) and _is_str(c.get("outcome")) for c in v)
    ),
}


def shape_error(data: object, key: str | None = None) -> str | None:
    """Why ``data`` is not a plan record of this format (``None``: it is one)."""
    if not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}"
    if data.get("format") != STATE_FORMAT:
        return f"format {data.get('format')!r}, this planrun reads format {STATE_FORMAT}"
    if not _is_str(data.get("plan")):
        return "no plan path"
    if key is not None and data["plan"] != key:
        return f"records another plan ({data['plan']!r})"
    if not (data.get("plan_hash") is None or _is_str(data.get("plan_hash"))):
        return "plan_hash is not a string"
    if not (data.get("run_id") is None or _is_str(data.get("run_id"))):
        return "run_id is not a string"
    if not _is_num(data.get("updated")):
        return "updated is not a number"
    items = data.get("items")
    if not isinstance(items, dict):
        return "items is not an object"
    for item_id, item in items.items():
        if not isinstance(item, dict):
            return f"item {item_id!r} is not an object"
        for field, ok in _ITEM_FIELDS.items():
            if field not in item or not ok(item[field]):
                return f"item {item_id!r}: bad or missing {field!r}"
    return None


#: A verify-only item in the batch file: ``[kind, status, outcome, started, duration, run_id, criteria]``,
#: ``criteria`` one letter per criterion (``p`` passed, ``f`` failed, ``e`` error, ``s`` skipped).
BATCH_ITEM_FIELDS = ("kind", "status", "outcome", "started", "duration", "run_id", "criteria")
LETTERS = {"passed": "p", "failed": "f", "error": "e", "skipped": "s"}
_FROM_LETTER = {v: k for k, v in LETTERS.items()}
#: What a verify-only item does not know: kept from the plan's own file when the two are merged.
_PERFORMED_FIELDS = ("exec_status", "task_hash", "attempts", "tokens_in", "tokens_out", "cost")


def batch_lines(text: str) -> list[tuple[str, str]] | str:
    """``(plan key, line)`` of each plan in a batch file's text (its lines not parsed), or why it is corrupt.

    Each plan line is checked when it is read (:func:`batch_record`).
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    try:
        head = json.loads(lines[0]) if lines else None
    except ValueError:
        return "not JSON lines: the first line does not parse"
    if not isinstance(head, dict) or head.get("format") != BATCH_FORMAT:
        found = head.get("format") if isinstance(head, dict) else head
        return f"format {found!r}, this planrun reads format {BATCH_FORMAT}"
    out: list[tuple[str, str]] = []
    for n, line in enumerate(lines[1:], 2):
        prefix = _KEY_PREFIX.match(line)
        try:
            if prefix is None:
                raise ValueError
            key, _ = _DECODER.raw_decode(line, prefix.end())
        except ValueError:
            return f"line {n} is not a plan's line"
        if not isinstance(key, str):
            return f"line {n}: the key is not a string"
        out.append((key, line))
    return out


# What json.dumps(..., separators=(",", ":"), ensure_ascii=False) builds for each call, built once.
_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def batch_line(key: str, raw: dict[str, Any]) -> str:
    """One plan's line of the batch file."""
    return _LINE_ENCODER.encode({"key": key, **raw})


def batch_record(key: str, raw: dict[str, Any]) -> dict[str, Any] | str:
    """A plan record from its batch entry, or why the entry is malformed."""
    if not (raw.get("plan_hash") is None or _is_str(raw.get("plan_hash"))):
        return "plan_hash is not a string"
    if not _is_str(raw.get("run_id")) or not _is_num(raw.get("updated")) or not isinstance(raw.get("items"), dict):
        return "bad run_id, updated or items"
    items = {}
    for item_id, row in raw["items"].items():
        if not isinstance(row, list) or len(row) != len(BATCH_ITEM_FIELDS):
            return f"item {item_id!r} is not a list of {len(BATCH_ITEM_FIELDS)}"
        kind, status, outcome, started, duration, run_id, letters = row
        if not (
            _is_str(kind)
            and status in STATUSES
            and (outcome is None or outcome in OUTCOMES)
            and _is_num(started)
            and _is_num(duration)
            and _is_str(run_id)
            and _is_str(letters)
            and all(ch in _FROM_LETTER for ch in letters)
        ):
            return f"item {item_id!r}: bad values"
        entry = new_item(kind)
        entry.update(
            status=status,
            outcome=outcome,
            started=started,
            finished=started + duration,
            duration=duration,
            run_id=run_id,
            criteria=[
                {"name": f"criterion {n}", "outcome": _FROM_LETTER[ch], "message": ""}
                for n, ch in enumerate(letters, 1)
            ],
        )
        for field in _PERFORMED_FIELDS:
            entry[field] = None  # unknown here: see merge()
        items[item_id] = entry
    record = new_record(key)
    record.update(plan_hash=raw["plan_hash"], run_id=raw["run_id"], updated=raw["updated"], items=items)
    return record


def batch_row(report: ItemReport, run_id: str) -> list[Any]:
    """The batch file's row for the report of an item that was only verified (see :data:`BATCH_ITEM_FIELDS`)."""
    status = "verified" if any(c.regression_of is None for c in report.criteria) else "pending"
    letters = "".join(LETTERS.get(c.outcome, "e") for c in report.criteria)
    duration = round(report.duration, 6)
    return [report.kind, status, report.outcome, time.time() - duration, duration, run_id, letters]


def _when(entry: dict[str, Any]) -> float:
    return float(entry["finished"] or entry["started"] or 0.0)


def _complete(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["attempts"] is None:
        entry = {**entry, "attempts": 0, "tokens_in": 0, "tokens_out": 0}
    return entry


def merge(own: dict[str, Any] | None, batched: dict[str, Any] | None) -> dict[str, Any] | None:
    """One plan's record from its own file and its batch entry.

    Per item the newer entry wins; a newer verify-only entry keeps what only
    the performing run knew (attempts, tokens, the task's hash).
    """
    if batched is None:
        return own
    if own is None:
        return {**batched, "items": {k: _complete(v) for k, v in batched["items"].items()}}
    items = dict(own["items"])
    for item_id, entry in batched["items"].items():
        older = items.get(item_id)
        if older is None:
            items[item_id] = _complete(entry)
        elif _when(entry) > _when(older):
            items[item_id] = {**entry, **{f: older[f] for f in _PERFORMED_FIELDS}}
    header = own if own["updated"] >= batched["updated"] else batched
    return {**header, "items": items}


class StateStore:
    """The per-plan state files in ``PLANRUN_DIR/state``.

    :param planrun_dir: ``config.planrun_dir``.
    :param warnings: where corrupt files are reported (``config.warnings``).
    :param quarantine: move corrupt files aside (only a run holding the
        lock does; readers such as ``planrun status`` only warn).
    """

    def __init__(self, planrun_dir: Path, warnings: list[str] | None = None, *, quarantine: bool = True) -> None:
        self.dir = Path(planrun_dir) / "state"
        self.warnings = warnings if warnings is not None else []
        self.quarantine = quarantine
        self._batch: dict[str, dict[str, Any]] | None = None

    def path_for(self, key: str) -> Path:
        return self.dir / state_file_name(key)

    @property
    def batch_path(self) -> Path:
        return self.dir / BATCH_FILE

    def clean(self) -> list[str]:
        """Remove the temp files of killed writers (call with the lock held)."""
        return remove_stale_temps(self.dir)

    def batch(self) -> dict[str, Any]:
        """The raw batch file's plans (verify-only records, one file for all), read once."""
        if self._batch is None:
            plans: dict[str, Any] = {}
            for key, line in self._batch_lines():
                try:
                    raw = json.loads(line)
                except (ValueError, RecursionError):
                    raw = None
                plans[key] = raw if isinstance(raw, dict) else {"items": None}  # ignored with a warning when read
            self._batch = plans
        return self._batch

    def _batch_lines(self) -> list[tuple[str, str]]:
        """The batch file's plan lines, unparsed; a corrupt file is moved aside (and holds nothing)."""
        data = self._read_bytes(self.batch_path)
        if data is None:
            return []
        content, identity = data
        try:
            found = batch_lines(content.decode("utf-8"))
        except UnicodeDecodeError:
            found = "not UTF-8"
        if isinstance(found, str):
            self._corrupt(self.batch_path, found, identity)
            return []
        return found

    def _batched(self, key: str) -> dict[str, Any] | None:
        raw = self.batch().get(key)
        if raw is None:
            return None
        record = batch_record(key, raw)
        if isinstance(record, str):
            self.warnings.append(f"state file .planrun/state/{BATCH_FILE}: plan {key!r} is corrupt ({record}): ignored")
            return None
        return record

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of plan ``key``, or ``None`` (never recorded, or corrupt: then warned and set aside).

        A plan's own file (written while tasks are performed) and the batch
        file (verify-only outcomes) are merged, see :func:`merge`.
        """
        own = self._read(self.path_for(key), lambda data: shape_error(data, key))
        return merge(own, self._batched(key))

    def records(self) -> list[dict[str, Any]]:
        """Every valid plan record, sorted by plan key."""
        try:
            names = sorted(e.name for e in os.scandir(self.dir) if _PLAN_FILE.search(e.name))
        except OSError:
            return []
        found: dict[str, dict[str, Any]] = {}
        for name in names:
            record = self._read(self.dir / name, shape_error)
            if record is not None and state_file_name(record["plan"]) == name:
                found[record["plan"]] = record
        for key in set(found) | set(self.batch()):
            merged = merge(found.get(key), self._batched(key))
            if merged is not None:
                found[key] = merged
        return [found[key] for key in sorted(found)]

    def save(self, record: dict[str, Any]) -> None:
        """Write one plan's own file (fsynced: for tasks being performed)."""
        record["updated"] = time.time()
        write_atomic(self.path_for(record["plan"]), json.dumps(record, separators=(",", ":"), ensure_ascii=False))

    def save_batch(
        self,
        updates: dict[str, tuple[str | None, dict[str, list[Any]]]],
        run_id: str,
        written: Iterable[str] = (),
        complete: Iterable[str] = (),
    ) -> None:
        """Record verify-only outcomes of many plans in one write (one fsync for a whole verify-only run).

        The file is rewritten line by line: a plan this run did not touch keeps
        its line as it was, unparsed; so does memory, whatever the file's size.

        :param updates: plan key -> (the plan file's hash, item id -> a row of :data:`BATCH_ITEM_FIELDS`).
        :param run_id: this run's id.
        :param written: plans whose own file this run wrote: they leave the batch (their file holds everything).
        :param complete: plans of ``updates`` whose rows cover every item of the plan: their old line
            is not read (its rows are all replaced; those of items the plan no longer has go).
        """
        gone, whole = set(written), set(complete)
        if self._batch is not None:
            old = [(key, batch_line(key, raw)) for key, raw in self._batch.items()]
        else:
            old = self._batch_lines()
        lines = [json.dumps({"format": BATCH_FORMAT})]
        merge_from: dict[str, str] = {}
        for key, line in old:
            if key in updates:
                if key not in whole:
                    merge_from[key] = line
            elif key not in gone:
                lines.append(line)
        old.clear()
        now = time.time()
        for key, (plan_hash, rows) in updates.items():
            items: Any = None
            if key in merge_from:
                try:
                    items = json.loads(merge_from.pop(key)).get("items")
                except (ValueError, RecursionError, AttributeError):
                    items = None
            merged = {**items, **rows} if isinstance(items, dict) else rows
            lines.append(batch_line(key, {"plan_hash": plan_hash, "run_id": run_id, "updated": now, "items": merged}))
        self._batch = None  # read again from the file, if anything asks
        write_atomic(self.batch_path, "\n".join(lines) + "\n")

    def _read_bytes(self, path: Path) -> tuple[bytes, tuple[int, int]] | None:
        """A state file's bytes and identity; ``None`` when missing, or not a readable regular file (moved aside)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            reason = "a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            self._corrupt(path, reason, None)
            return None
        f, st = opened(fd)
        if f is None:
            reason = "not a regular file"
        else:
            with f:
                if st.st_size > _MAX_STATE_BYTES:
                    reason = f"larger than {_MAX_STATE_BYTES} bytes"
                else:
                    return f.read(_MAX_STATE_BYTES + 1), (st.st_dev, st.st_ino)
        self._corrupt(path, reason, (st.st_dev, st.st_ino))
        return None

    def _read(self, path: Path, validate: Callable[[Any], str | None]) -> dict[str, Any] | None:
        found = self._read_bytes(path)
        if found is None:
            return None
        raw, identity = found
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            reason = f"not JSON ({str(exc).splitlines()[0][:100]})"
        except RecursionError:
            reason = "nested too deeply"
        else:
            problem = validate(data)
            if problem is None:
                return data  # type: ignore[no-any-return]
            reason = problem
        self._corrupt(path, reason, identity)
        return None

    def _corrupt(self, path: Path, reason: str, identity: tuple[int, int] | None) -> None:
        shown = path.name
        if not self.quarantine:
            self.warnings.append(f"state file .planrun/state/{shown} is corrupt ({reason}): ignored")
            return
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}")
        try:
            st = os.lstat(path)
            if identity is not None and (st.st_dev, st.st_ino) != identity:
                raise OSError("replaced meanwhile")  # not the file that was read: leave it
            os.rename(path, aside)
        except OSError as exc:
            self.warnings.append(f"state file .planrun/state/{shown} is corrupt ({reason}) and was not moved: {exc}")
            return
        self.warnings.append(f"state file .planrun/state/{shown} is corrupt ({reason}): moved aside to {aside.name}")


class RunLock:
    """One run at a time per rootdir: ``flock`` on ``.planrun/lock``, free the moment its holder dies."""

    def __init__(self, planrun_dir: Path) -> None:
        self.path = Path(planrun_dir) / "lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`planrun.UsageError` naming the holder's pid and start time."""
        try:
            ignored_folder(self.path.parent)  # as .pytest_cache: never in git status or git add -A
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            reason = "a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            raise UsageError(f"cannot open the run lock {self.path}: {reason}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError(f"{self.path} is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"another planrun run holds {self.path} ({self._holder(fd)})") from None
        except BaseException:
            os.close(fd)
            raise
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {started}\n".encode(), 0)
        self.fd = fd

    @staticmethod
    def _holder(fd: int) -> str:
        # The holder writes its pid just after it locked: give it a moment.
        for _ in range(20):
            text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            pid, _, started = text.partition(" ")
            if pid.isdigit() and started:
                return f"pid {pid}, started {started}"
            time.sleep(0.02)
        return "pid unknown"

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing releases the flock

    def __del__(self) -> None:
        self.release()


def new_run_id() -> str:
    """A run id: start time and a random suffix."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def counts_as_failed(item: dict[str, Any]) -> bool:
    """Failed, errored, blocked, interrupted, or begun and never finished (a killed run)."""
    if item["outcome"] in FAILED_OUTCOMES:
        return True
    return item["outcome"] is None and item["status"] in ("in_progress", "executed")


__all__ = [
    "BATCH_FILE",
    "BATCH_FORMAT",
    "batch_line",
    "batch_lines",
    "BATCH_ITEM_FIELDS",
    "LETTERS",
    "OUTCOMES",
    "STATE_FORMAT",
    "STATUSES",
    "TEMP_SUFFIX",
    "RunLock",
    "StateStore",
    "counts_as_failed",
    "batch_record",
    "batch_row",
    "file_hash",
    "merge",
    "new_item",
    "new_record",
    "new_run_id",
    "plan_key",
    "state_file_name",
    "task_hashes",
]
