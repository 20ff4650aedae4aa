"""The plugin manager: built-ins, installed plugins, -p, config plugins and conftest.py files."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from planrun import hookspecs
from planrun.errors import PluginError, UsageError

ENTRY_POINT_GROUP = "planrun"
#: The core protocol modules: registered directly, cannot be disabled.
ESSENTIAL = ("planrun.session", "planrun.runner")


class PlanrunPluginManager(pluggy.PluginManager):
    """pluggy's manager with planrun's loading rules (see ``load_plugins``)."""

    def __init__(self) -> None:
        super().__init__("planrun")
        self.add_hookspecs(hookspecs)
        self.versions: dict[str, str] = {}  # plugin name -> "dist version" for the header
        self.builtin_names: list[str] = []
        self.loaded_names: list[str] = []  # what the header lists: entry points, -p modules, conftests
        self._conftests: dict[Path, ModuleType | None] = {}
        self._conftests_for: dict[tuple[Path, Path, int], list[Path]] = {}
        self._listed: set[str] = set()  # built-ins listed for --version, not imported

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        """``planrun_*`` functions are hooks, decorated or not (as pytest takes ``pytest_*`` ones)."""
        if not name.startswith("planrun_"):
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and inspect.isroutine(inspect.getattr_static(plugin, name, None)):
            return {}
        return opts

    # -- loading -----------------------------------------------------------

    def load_plugins(
        self,
        names: list[str],
        objects: list[object] | None = None,
        inicfg_plugins: list[str] | None = None,
        *,
        import_builtins: bool = True,
    ) -> None:
        """Load every plugin in order: pluggy calls the last registered first, so local beats built-in.

        :param names: the ``-p`` values, ``no:NAME`` included.
        :param objects: plugin objects handed to :func:`planrun.main`.
        :param inicfg_plugins: ``[tool.planrun] plugins``.
        :param import_builtins: False for ``--version``: the core and planrun's own entry points
            (modules of the ``planrun`` package) are listed, name and version, each module found on
            the path but neither imported nor registered; every other plugin loads as for a run.
        """
        blocked = {n[3:] for n in names if n.startswith("no:")}
        for name in blocked:
            if name in ESSENTIAL or name in ("session", "runner"):
                raise UsageError(f"plugin {name!r} is part of planrun's core and cannot be disabled")
            self.set_blocked(name)
        if import_builtins:
            for modname in ESSENTIAL:
                self.register(importlib.import_module(modname), modname)
        eps = entry_points()
        builtin = [ep for ep in eps if _dist_of(ep)[0] == "planrun"]
        if not builtin:
            raise UsageError("no built-in plugins found; install planrun (pip install -e .)")
        for ep in builtin:
            if import_builtins or ep.attr or not _in_planrun(ep.module):
                self._load_entry_point(ep)
            else:
                self._list_entry_point(ep)
            self.builtin_names.append(ep.name)
        if not os.environ.get("PLANRUN_DISABLE_PLUGIN_AUTOLOAD"):
            for ep in eps:
                if ep not in builtin:
                    self._load_entry_point(ep)
        requested = list(inicfg_plugins or [])
        requested += [n for n in os.environ.get("PLANRUN_PLUGINS", "").split(",") if n.strip()]
        requested += [n for n in names if not n.startswith("no:")]
        for name in requested:
            self.import_plugin(name.strip(), eps)
        for obj in objects or ():
            self.register(obj)

    def _taken(self, name: str) -> bool:
        """Blocked, registered, or listed without import: a later plugin of that name is not loaded."""
        return self.is_blocked(name) or self.get_plugin(name) is not None or name in self._listed

    def _list_entry_point(self, ep: importlib.metadata.EntryPoint) -> None:
        """Record a plugin as :meth:`_load_entry_point` would, its module found on the path but not imported."""
        if self._taken(ep.name):
            return
        try:
            found = importlib.util.find_spec(ep.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}) failed to load: ModuleNotFoundError: No module named {ep.module!r}"
            )
        self._listed.add(ep.name)
        self.loaded_names.append(ep.name)
        dist, version = _dist_of(ep)
        if dist is not None:
            self.versions[ep.name] = f"{dist}-{version}"

    def _load_entry_point(self, ep: importlib.metadata.EntryPoint) -> None:
        if self._taken(ep.name):
            return
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: loading a plugin must not end planrun
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from None
        self._register_checked(plugin, ep.name)
        self.loaded_names.append(ep.name)
        dist, version = _dist_of(ep)
        if dist is not None:
            self.versions[ep.name] = f"{dist}-{version}"

    def import_plugin(self, name: str, eps: list[importlib.metadata.EntryPoint] | None = None) -> None:
        """Load ``name``: an entry-point name first, a module path second."""
        if self._taken(name):
            return
        for ep in eps or ():
            if ep.name == name:
                self._load_entry_point(ep)
                return
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise UsageError(f"plugin {name!r} not found: {exc}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: importing a plugin must not end planrun
            raise PluginError(f"plugin {name!r} failed to import: {type(exc).__name__}: {exc}") from None
        self._register_checked(module, name)
        self.loaded_names.append(name)

    def _register_checked(self, plugin: object, name: str) -> None:
        try:
            self.register(plugin, name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r}: {exc}") from None
        self._refuse_unknown_hooks(plugin, f"plugin {name!r}")

    def _refuse_unknown_hooks(self, plugin: object, what: str) -> None:
        """A ``planrun_*`` function that is no hook is a misspelling: an error, with a did-you-mean."""
        for impl_name in sorted(self._unknown_hooks(plugin)):
            known = [n.removeprefix("planrun_") for n in self._hook_names()]
            close = difflib.get_close_matches(impl_name.removeprefix("planrun_"), known, n=1)
            hint = f" (did you mean 'planrun_{close[0]}'?)" if close else ""
            self.unregister(plugin)
            raise PluginError(f"{what} implements unknown hook {impl_name!r}{hint}")

    def _unknown_hooks(self, plugin: object) -> list[str]:
        unknown = []
        for impl in self._plugin_hookimpls(plugin):
            caller = getattr(self.hook, impl.function.__name__, None)
            if not impl.optionalhook and (caller is None or caller.spec is None):
                unknown.append(impl.function.__name__)
        return unknown

    def _plugin_hookimpls(self, plugin: object) -> list[Any]:
        impls: list[Any] = []
        for caller in self.get_hookcallers(plugin) or ():
            impls.extend(impl for impl in caller.get_hookimpls() if impl.plugin is plugin)
        return impls

    def _hook_names(self) -> list[str]:
        return sorted(n for n in dir(hookspecs) if n.startswith("planrun_"))

    # -- conftest.py ---------------------------------------------------------

    def consider_conftests(self, folder: Path, rootdir: Path) -> None:
        """Load the ``conftest.py`` files from ``rootdir`` down to ``folder`` (see :meth:`hooks_for`)."""
        folder = folder.resolve()
        chain = [folder, *folder.parents]
        if rootdir in chain:
            chain = chain[: chain.index(rootdir) + 1]
        else:
            chain = [folder]
        for d in reversed(chain):
            self._load_conftest(d / "conftest.py")

    def _load_conftest(self, path: Path) -> None:
        if path in self._conftests:
            return
        self._conftests[path] = None
        if not path.is_file():
            return
        if self.is_blocked(str(path)) or self.is_blocked(os.path.relpath(path)):
            return  # -p no:NAME, NAME as --version shows it (relative) or absolute: not even imported
        module = sys.modules.get(conftest_module_name(path))
        if module is None:
            module = _import_file(path)
        self._conftests[path] = module
        if not any(self.parse_hookimpl_opts(module, n) is not None for n in dir(module)):
            return  # no planrun hooks (a conftest for pytest only; planrun_* values are no hooks)
        try:
            self.register(module, str(path))
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{path}: {exc}") from None
        self._refuse_unknown_hooks(module, str(path))
        self.loaded_names.append(str(path))

    def hooks_for(self, folder: Path, rootdir: Path) -> tuple[tuple[int, ...], Any]:
        """The hooks that apply to plans in ``folder``, as pytest scopes conftests.

        A ``conftest.py`` serves the plans in its folder and below; the
        rootdir's serves every plan. Returns a key naming the conftests that
        apply (equal keys, equal hooks) and the hook relay to call.
        """
        folder = folder.resolve()
        applies: list[ModuleType] = []
        excluded: list[ModuleType] = []
        for path, module in self._conftests.items():
            if module is None or not self.is_registered(module):
                continue
            where = path.parent
            (applies if where == rootdir or where == folder or where in folder.parents else excluded).append(module)
        key = tuple(sorted(id(m) for m in applies))
        return key, (_SubsetHooks(self, excluded) if excluded else self.hook)

    def conftests_for(self, folder: Path, rootdir: Path) -> list[Path]:
        """The ``conftest.py`` files imported for plans in ``folder`` (with planrun hooks or not), rootdir first."""
        memo = (folder, rootdir, len(self._conftests))  # plans share folders; a conftest loaded since counts
        found = self._conftests_for.get(memo)
        if found is None:
            real = folder.resolve()
            found = self._conftests_for[memo] = [
                path
                for path, module in self._conftests.items()
                if module is not None and (path.parent == rootdir or path.parent == real or path.parent in real.parents)
            ]
        return list(found)

    def check_pending_plugins(self) -> None:
        """A misspelt ``planrun_`` hook in any plugin (objects handed to ``main`` too) is an error."""
        for plugin in self.get_plugins():
            if self._unknown_hooks(plugin):
                self._refuse_unknown_hooks(plugin, f"plugin {self.get_name(plugin)!r}")

    def plugin_names(self) -> list[str]:
        """The loaded plugins for the header and ``--version``, in load order."""
        return [os.path.relpath(n) if os.path.isabs(n) else n for n in self.loaded_names]


# (sys.path when read, the entry points, each one's distribution name and version): read once per process,
# again only when sys.path changes. Reading them walks every installed distribution's metadata.
_ENTRY_POINTS: tuple[tuple[str, ...], list[importlib.metadata.EntryPoint]] | None = None
_DISTS: dict[int, tuple[str | None, str | None]] = {}


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``planrun`` entry points of the installed distributions (read once per ``sys.path``)."""
    global _ENTRY_POINTS
    path = tuple(sys.path)
    if _ENTRY_POINTS is None or _ENTRY_POINTS[0] != path:
        eps = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        _DISTS.clear()
        by_place: dict[str, tuple[str | None, str | None]] = {}  # one metadata parse per distribution
        for ep in eps:
            _DISTS[id(ep)] = _name_version(ep.dist, by_place)
        _ENTRY_POINTS = (path, eps)
    return _ENTRY_POINTS[1]


def _name_version(
    dist: importlib.metadata.Distribution | None, seen: dict[str, tuple[str | None, str | None]]
) -> tuple[str | None, str | None]:
    """A distribution's name and version, read once however many entry points it has."""
    if dist is None:
        return None, None
    place = str(getattr(dist, "_path", "")) or f"id:{id(dist)}"
    if place not in seen:
        found = _header_fields(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
        if found[0] is None or found[1] is None:  # not plain core metadata: the full (email) parser decides
            metadata = dist.metadata
            found = (metadata["Name"], metadata["Version"])
        seen[place] = found
    return seen[place]


def _header_fields(text: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` of a core-metadata file: single-line fields of its header (up to the blank line)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        key = key.lower()
        if sep and key in ("name", "version") and key not in fields and not line[:1].isspace():
            fields[key] = value.strip()
    return fields.get("name"), fields.get("version")


def _in_planrun(module: str) -> bool:
    """Whether ``module`` is one of planrun's own (whose imports planrun's tests check), not code from elsewhere."""
    package = __package__ or "planrun"
    return module == package or module.startswith(package + ".")


def _dist_of(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    """``(distribution name, version)`` of an entry point from :func:`entry_points`."""
    found = _DISTS.get(id(ep))
    if found is None:
        dist = ep.dist
        found = (dist.name, dist.version) if dist is not None else (None, None)
    return found


class _SubsetHooks:
    """``pm.hook`` without some plugins (the conftests of other folders)."""

    def __init__(self, pm: PlanrunPluginManager, remove: list[ModuleType]) -> None:
        self._pm = pm
        self._remove = remove

    def __getattr__(self, name: str) -> Any:
        caller = self._pm.subset_hook_caller(name, remove_plugins=self._remove)
        setattr(self, name, caller)
        return caller


def conftest_module_name(path: Path) -> str:
    """The module name a conftest is imported under: derived from its path, the same in every process.

    (So what a conftest's classes pickle as, in the parsed-plan cache, names them in the next run too.)
    """
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:20]
    return f"planrun_conftest_{digest}"


#: The module attribute holding the SHA-256 of the source a conftest was imported from.
CONFTEST_DIGEST = "__planrun_sha256__"


def _import_file(path: Path) -> ModuleType:
    """Import a conftest under a path-derived name (never as ``conftest``)."""
    modname = conftest_module_name(path)
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise PluginError(f"{path}: conftest cannot be read: {exc.strerror or exc}") from None
    # The plan cache stamps a conftest by this digest: of the very bytes that ran, never of a later read.
    module.__dict__[CONFTEST_DIGEST] = hashlib.sha256(source).hexdigest()
    sys.modules[modname] = module
    try:
        exec(compile(source, os.fspath(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    except KeyboardInterrupt:
        del sys.modules[modname]
        raise
    except BaseException as exc:  # SystemExit too: a conftest must not end planrun
        del sys.modules[modname]
        raise PluginError(f"{path}: conftest failed to import: {type(exc).__name__}: {exc}") from None
    return module
