"""The parsed-plan cache: an unchanged plan is not parsed, validated or compiled again.

Entries live in one pack file, ``.planrun/cache/plans/plans.pack``, read once
and written once per session (one fsync, not one per plan). Each is found by
a hash of everything that decides what collecting the plan gives:

- the plan file's bytes (SHA-256), its path and the path reports show,
- planrun's version, Python's, pydantic's and PyYAML's,
- every plugin that serves the plan (the scope's conftest files included): its
  name, its distribution version and the size, mtime and, for conftest files,
  the content of its source file, so editing a plugin in place rebuilds,
- the options that change compilation (``--max-plan-bytes``, ``--judge``).

An entry is a pickle of the collected plan with each check's function left
out (it is bound again by kind name), behind an HMAC-SHA256 under a key kept
outside the rootdir (``$XDG_CACHE_HOME/planrun/cache-key``, made on first use,
mode 0600). Pickle is code: only bytes whose HMAC verifies are unpickled, so a
planted or edited entry is never run (the pack's own framing is parsed with
:mod:`struct`, never unpickled). Whatever does not verify, load or look like a
collected plan is ignored and rebuilt. The pack is written with
:func:`planrun.write_atomic`.
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import hmac
import io
import os
import pickle
import secrets
import stat
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel

from planrun.atomic import read_upto
from planrun.compiler import Check
from planrun.model import Plan
from planrun.planfile import PlanSource
from planrun.pluginmanager import CONFTEST_DIGEST
from planrun.session import ItemHead, PlanHead

if TYPE_CHECKING:
    from planrun.config import Config
    from planrun.session import CollectedPlan

#: A collected plan packed: one zlib'd stream of its models' pickle (after its length) and its checks' pickle,
#: unpacked apart (see :func:`pack_body`).
Body = bytes
_LENGTH = struct.Struct("!I")

#: The first bytes of the pack file: its format.
MAGIC = b"planrun-planpack-3\n"
_DIGEST = 32
#: A pack bigger than this is not read (it is rebuilt).
MAX_ENTRY_BYTES = 1 << 30
#: Options that change what compiling a plan gives (plugins may add theirs: compile-time only).
COMPILE_OPTIONS = ["max_plan_bytes", "judge"]
#: The hooks that decide what a plan compiles to: their plugins are part of the key.
_COLLECT_HOOKS = ("planrun_collect_file", "planrun_compile_criterion", "planrun_register_checks")


def key_path() -> Path:
    """Where the per-machine HMAC key lives: ``$XDG_CACHE_HOME/planrun/cache-key`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "planrun", "cache-key")


def _machine_key() -> bytes | None:
    """The HMAC key, made on first use; ``None`` when it cannot be read or made (then nothing is cached)."""
    path = key_path()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue  # another process made it meanwhile: read theirs
            except OSError:
                return None
            try:
                key = secrets.token_bytes(32)
                os.write(fd, key)
                os.fsync(fd)
                return key
            except OSError:
                return None
            finally:
                os.close(fd)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            # Ours, not readable by others, a regular file: else it is nobody's key.
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
                return None
            key = os.read(fd, 64)
        except OSError:
            return None
        finally:
            os.close(fd)
        return key if len(key) == 32 else None
    return None


def _file_stamp(path: str | None, *, content: bool = False) -> str:
    if not path:
        return "-"
    try:
        if content:
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _imported_stamp(module: Any, path: str | os.PathLike[str] | None) -> str:
    """A conftest's content stamp: the digest of the source it was imported from, else of the file now."""
    digest = getattr(module, CONFTEST_DIGEST, None)
    if isinstance(digest, str):
        return digest
    return _file_stamp(os.fspath(path) if path is not None else None, content=True)


def _versions() -> str:
    import pydantic
    import yaml

    import planrun

    return (
        f"planrun {planrun.__version__} python {sys.version} pydantic {pydantic.VERSION} pyyaml {yaml.__version__}"
        f" core {_core_stamp(os.path.dirname(planrun.__file__ or '.'))}"
    )


def _core_stamp(folder: str) -> str:
    """Size and mtime of planrun's own modules: an edited checkout (pip install -e) rebuilds its entries."""
    try:
        with os.scandir(folder) as it:
            stamps = sorted(f"{e.name}:{_file_stamp(e.path)}" for e in it if e.name.endswith(".py"))
    except OSError:
        return "?"
    return hashlib.sha256(" ".join(stamps).encode()).hexdigest()


class Key(NamedTuple):
    """What a plan file's entry is found by (see :meth:`PlanCache.key_of`)."""

    digest: str  # the entry's name in the pack
    text: str  # what the digest and the entry's HMAC cover
    content: str  # the SHA-256 of the plan file's bytes as read for the key


class PlanCache:
    """Looks up and stores collected plans for one session (see the module's documentation)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.folder = config.planrun_dir / "cache" / "plans"
        self.hits = 0
        self.misses = 0
        self.stores = 0
        self._key: bytes | None | bool = False  # False: not read yet
        self._fingerprints: dict[tuple[int, tuple[Path, ...]], str | None] = {}
        self._base: str | None = None
        self.pack_path = self.folder / "plans.pack"
        self._entries: dict[bytes, tuple[str, bytes, bytes | memoryview]] | None = None
        self._keep: dict[bytes, tuple[str, bytes, bytes | memoryview]] = {}  # what the next pack holds

    @property
    def key(self) -> bytes | None:
        if self._key is False:
            self._key = _machine_key()
        return self._key  # type: ignore[return-value]

    def _base_key(self) -> str:
        if self._base is None:
            option = self.config.option
            options = {name: repr(getattr(option, name, None)) for name in COMPILE_OPTIONS}
            self._base = f"{_versions()}\n{sorted(options.items())}\nrootdir {self.config.rootdir}"
        return self._base

    def fingerprint(self, hook: Any, folder: Path) -> str | None:
        """What identifies the plugins and conftests serving plans in ``folder``; ``None``: not identifiable."""
        pm = self.config.pluginmanager
        conftests = tuple(pm.conftests_for(folder, self.config.rootdir))
        memo = (id(hook), conftests)
        cached = self._fingerprints.get(memo, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        parts: list[str] = [f"conftest {path} {_imported_stamp(pm._conftests.get(path), path)}" for path in conftests]
        result: str | None = None
        try:
            seen: set[int] = set()
            for name in _COLLECT_HOOKS:
                for impl in getattr(hook, name).get_hookimpls():
                    if id(impl.plugin) in seen:
                        continue
                    seen.add(id(impl.plugin))
                    parts.append(self._plugin_stamp(impl.plugin, impl.plugin_name, pm))
            result = "\n".join(parts)
        except _Unidentifiable:
            result = None
        self._fingerprints[memo] = result
        return result

    def _plugin_stamp(self, plugin: Any, name: str, pm: Any) -> str:
        """A module plugin's name, version and source stamp; an object's code and state cannot be stamped."""
        if not isinstance(plugin, type(sys)):
            raise _Unidentifiable
        file = getattr(plugin, "__file__", None)
        if plugin.__name__.startswith("planrun_conftest_"):  # in the tree: its content counts
            return f"{name} {pm.versions.get(name, '')} {file} {_imported_stamp(plugin, file)}"
        return f"{name} {pm.versions.get(name, '')} {file} {_file_stamp(file)}"

    def key_of(self, path: Path, display: str, hook: Any) -> Key | None:
        """The :class:`Key` of the plan file ``path``, or ``None`` when it cannot be cached."""
        if self.key is None:
            return None
        plugins = self.fingerprint(hook, path.parent)
        if plugins is None:
            return None
        content = _read_plan_bytes(path, self.config.option.max_plan_bytes)
        if content is None:
            return None
        sha256 = hashlib.sha256(content).hexdigest()
        text = f"{self._base_key()}\nfile {os.path.abspath(path)}\ndisplay {display}\nsha256 {sha256}\n{plugins}"
        return Key(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), text, sha256)

    def _mac(self, key_text: str, payload: bytes | memoryview) -> bytes:
        assert isinstance(self.key, bytes)
        mac = hmac.new(self.key, key_text.encode("utf-8", "surrogatepass"), hashlib.sha256)
        mac.update(b"\0")
        mac.update(payload)
        return mac.digest()

    # -- the pack: every entry in one file, read once and written once per session --

    def _pack(self) -> dict[bytes, tuple[str, bytes, bytes | memoryview]]:
        """``{digest: (plan file, mac, payload)}`` as last written (nothing unpickled here)."""
        if self._entries is None:
            self._entries = _parse_pack(_read_entry(self.pack_path))
        return self._entries

    def load(self, digest: str, key_text: str) -> tuple[PlanHead, list[ItemHead], Body] | None:
        """The cached ``(head, item heads, body)`` of a plan; ``None`` when missing or unusable.

        The body (the plan's models and checks, see :func:`unpack_body`) is
        unpacked only when the plan is first read, usually when it runs.
        """
        raw = bytes.fromhex(digest)
        found = self._pack().get(raw)
        if found is None:
            return None
        file, mac, payload = found
        if not hmac.compare_digest(mac, self._mac(key_text, payload)):
            return None  # corrupt, truncated, tampered, or made under another key: never unpickled
        try:
            head, items, body = pickle.loads(payload)  # noqa: S301 - authenticated above (with the key text)
        except Exception:
            return None
        if not isinstance(head, PlanHead) or not isinstance(body, bytes):
            return None
        if not isinstance(items, list) or not all(isinstance(item, ItemHead) for item in items):
            return None
        self._keep[raw] = found
        return head, items, body

    def store(self, key: Key, cplan: CollectedPlan, file: Path, loaded: str | None = None) -> Body | None:
        """Add the entry of a plan that collected without errors; returns its body (``None``: not stored).

        ``loaded``: the SHA-256 of the bytes the plan was loaded from, when
        the loader tells (:attr:`planrun.loader.YamlDoc.sha256`). If the file
        changed between the read for the key and the loader's own, what was
        compiled is not what the key names: it is not stored.
        """
        if loaded is not None and loaded != key.content:
            return None
        digest, key_text = key.digest, key.text
        try:
            body = pack_body(cplan.plan, cplan.checks)
            payload = pickle.dumps((cplan.head, cplan.item_heads(), body), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
        self._keep[bytes.fromhex(digest)] = (os.path.abspath(file), self._mac(key_text, payload), payload)
        self.stores += 1
        return body

    def release(self) -> None:
        """Forget the pack read and the entries kept (collection is over: the run does not need them)."""
        self._keep, self._entries = {}, {}

    def save(self) -> None:
        """Write the pack if this session added entries: what it used or made, and the other plans' entries."""
        if not self.stores:
            return
        from planrun.atomic import ignored_folder, write_atomic

        files = {file for file, _, _ in self._keep.values()}
        kept = dict(self._keep)
        for digest, entry in self._pack().items():  # plans not collected this time keep their entry
            if digest not in kept and entry[0] not in files:
                kept[digest] = entry

        def records() -> Iterator[bytes | memoryview]:
            yield MAGIC
            for digest, (file, mac, payload) in kept.items():
                name = file.encode("utf-8", "surrogateescape")
                yield _HEAD.pack(len(name), len(payload)) + digest + mac + name
                yield payload

        try:
            ignored_folder(self.folder.parent)  # the cache ignores itself, as .pytest_cache does
            write_atomic(self.pack_path, records(), mode=0o600)  # record by record: never joined in memory
        except OSError:
            return  # a read-only tree: run without a cache
        finally:
            self._keep, self._entries = {}, {}  # the run does not need them: let them go before it starts
            kept.clear()


def pack_body(plan: Plan, checks: dict[tuple[Any, ...], list[Check]]) -> Body:
    """A collected plan's models, and its checks, as bytes (each check's function left out: bound again by kind).

    The two are packed apart because a run that only verifies reads the
    checks alone: the models (:func:`unpack_plan`) are unpacked only when
    something reads them (an executor, a plugin).

    A check whose arguments are a pydantic model goes in as a flat tuple (its
    fields, its argument model's class and state) rather than as objects:
    half the cost to pack, a third less to unpack, a quarter smaller. Any
    other check is pickled as it is.
    """
    encoded: dict[tuple[Any, ...], list[Any]] = {}
    kept: list[tuple[Check, Any]] = []  # checks pickled as objects: their function is put back after
    for owner, owned in checks.items():
        row: list[Any] = []
        for check in owned:
            args = check.args
            if type(check) is Check and isinstance(args, BaseModel):
                row.append(
                    (
                        check.kind,
                        type(args),
                        args.__dict__,
                        args.__pydantic_fields_set__,
                        args.__pydantic_extra__,
                        args.__pydantic_private__,
                        check.name,
                        check.location,
                        check.timeout,
                        check.retry_for,
                        check.skip,
                        check.inprocess,
                        check.text,
                        check.source,
                    )
                )
            else:
                kept.append((check, check.function))
                row.append(check)
        encoded[owner] = row
    try:
        for check, _ in kept:
            check.function = None  # type: ignore[assignment]
        out = io.BytesIO()
        out.write(_LENGTH.pack(0))
        pickler = _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dump(plan)
        models = out.tell() - _LENGTH.size
        pickler.clear_memo()  # two pickles, each whole on its own
        pickler.dump(encoded)
        data = out.getbuffer()
        _LENGTH.pack_into(data, 0, models)
        return zlib.compress(data, 1)  # a fifth of the size: less to write, read and hold
    finally:
        for check, function in kept:
            check.function = function


_FLAT = 14  # fields of a check packed flat (see pack_body)
_setattr = object.__setattr__


def _parts(body: Body) -> tuple[memoryview, memoryview]:
    data = memoryview(zlib.decompress(body))  # cheap: it is unpickling that costs
    (models,) = _LENGTH.unpack_from(data)
    end = _LENGTH.size + models
    if end > len(data):
        raise RuntimeError("a packed plan is cut short")
    return data[_LENGTH.size : end], data[end:]


def unpack_plan(body: Body) -> Plan:
    """The models :func:`pack_body` packed (only bytes this process made or whose HMAC it verified come here)."""
    plan = pickle.loads(_parts(body)[0])  # noqa: S301 - made here or authenticated
    if not isinstance(plan, Plan) or not isinstance(plan._source, PlanSource):
        raise RuntimeError("a packed plan does not hold a plan")
    return plan


def unpack_checks(body: Body, registry: Any) -> dict[tuple[Any, ...], list[Check]]:
    """The checks :func:`pack_body` packed, each check's function bound from ``registry``.

    Only bytes this process made or whose HMAC it verified come here.
    """
    encoded = pickle.loads(_parts(body)[1])  # noqa: S301 - made here or authenticated
    if not isinstance(encoded, dict):
        raise RuntimeError("a packed plan does not hold checks")
    kinds = registry.kinds
    new = object.__new__
    checks: dict[tuple[Any, ...], list[Check]] = {}
    for owner, row in encoded.items():
        owned: list[Check] = []
        for packed in row:
            if type(packed) is tuple and len(packed) == _FLAT:
                (
                    kind,
                    cls,
                    fields,
                    given,
                    extra,
                    private,
                    name,
                    location,
                    timeout,
                    retry_for,
                    skip,
                    inprocess,
                    text,
                    source,
                ) = packed
                if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
                    raise RuntimeError("a packed check does not hold an argument model")
                args = new(cls)
                _setattr(args, "__dict__", fields)  # as pydantic's own __setstate__ restores a model
                _setattr(args, "__pydantic_fields_set__", given)
                _setattr(args, "__pydantic_extra__", extra)
                _setattr(args, "__pydantic_private__", private)
                check = Check(
                    kind, args, kinds[kind].function, name, location, timeout, retry_for, skip, inprocess, text, source
                )
            elif isinstance(packed, Check):
                check = packed
                check.function = kinds[check.kind].function
            else:
                raise RuntimeError("a packed plan holds something that is no check")
            owned.append(check)
        checks[owner] = owned
    return checks


def _by_name(obj: Any) -> str:
    """Pickle a module-level sentinel as a reference to its name: it comes back as itself (``is`` holds)."""
    return "MISSING"


class _Pickler(pickle.Pickler):
    """The C pickler, with sentinels (compared by identity) written as global references."""

    def __init__(self, file: Any, protocol: int) -> None:
        super().__init__(file, protocol)
        from planrun.datapath import MISSING

        self.dispatch_table = {**copyreg.dispatch_table, type(MISSING): _by_name}


_HEAD = struct.Struct(">IQ")  # the plan file's length, the payload's; then the digest, the mac, the file, the payload


def _parse_pack(data: bytes | None) -> dict[bytes, tuple[str, bytes, bytes | memoryview]]:
    """The records of a pack; a record that does not parse ends it (a truncated pack keeps its whole records)."""
    entries: dict[bytes, tuple[str, bytes, bytes | memoryview]] = {}
    if data is None or not data.startswith(MAGIC):
        return entries
    view = memoryview(data)
    pos, end = len(MAGIC), len(data)
    step = _HEAD.size + 2 * _DIGEST
    while pos + step <= end:
        name_len, size = _HEAD.unpack_from(view, pos)
        start = pos + step
        if start + name_len + size > end:
            break
        digest = bytes(view[pos + _HEAD.size : pos + _HEAD.size + _DIGEST])
        mac = bytes(view[pos + _HEAD.size + _DIGEST : start])
        name = bytes(view[start : start + name_len]).decode("utf-8", "surrogateescape")
        entries[digest] = (name, mac, view[start + name_len : start + name_len + size])  # no copy of the pack
        pos = start + name_len + size
    return entries


class _Unidentifiable(Exception):
    """A plugin whose code cannot be stamped (an object handed to :func:`planrun.main`)."""


def _read_plan_bytes(path: Path, limit: int) -> bytes | None:
    """The plan file's bytes, when it is a regular file within ``limit`` (else the loader reports it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        data = read_upto(functools.partial(os.read, fd), limit, st.st_size)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_entry(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def clear(config: Config) -> None:
    """``--cache-clear``: empty ``.planrun/cache/`` (the state store beside it is kept)."""
    import shutil

    folder = config.planrun_dir / "cache"
    try:
        st = os.lstat(folder)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        os.unlink(folder)  # never follow it: remove the link itself
        return
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
