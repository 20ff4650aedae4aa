"""Registries built from the ``planrun_register_*`` hooks: names must be unique."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from planrun.errors import PluginError
from planrun.types import CheckKind, ExecutorKind

if TYPE_CHECKING:
    from pluggy import HookCaller

    from planrun.config import Config

K = TypeVar("K", CheckKind, ExecutorKind)


class Registry(Generic[K]):
    """``name -> kind`` from one register hook, with the plugin that gave each name."""

    what = "kind"
    kind_type: type[Any]

    def __init__(self, hook: HookCaller, config: Config) -> None:
        self.kinds: dict[str, K] = {}
        self.owners: dict[str, str] = {}
        given = {"config": config}
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            result: Any = impl.function(**{name: given[name] for name in impl.argnames})
            plugin = _plugin_label(impl.plugin_name, impl.plugin)
            if result is not None and not isinstance(result, (list, tuple)):
                raise PluginError(
                    f"plugin {plugin}: {hook.name} returned {result!r}, not a list of planrun.{self.kind_type.__name__}"
                )
            for kind in result or ():
                self._add(kind, plugin)

    def _add(self, kind: Any, plugin: str) -> None:
        if not isinstance(kind, self.kind_type):
            raise PluginError(f"plugin {plugin} registered {kind!r}, not a planrun.{self.kind_type.__name__}")
        if kind.name in self.kinds:
            raise PluginError(
                f"{self.what} {kind.name!r} is registered twice: by {self.owners[kind.name]} and by {plugin}"
            )
        self.kinds[kind.name] = kind
        self.owners[kind.name] = plugin

    def __contains__(self, name: str) -> bool:
        return name in self.kinds


class CheckRegistry(Registry[CheckKind]):
    """Check kinds from ``planrun_register_checks`` (of ``hook``, default the run's)."""

    what = "check kind"
    kind_type = CheckKind

    def __init__(self, config: Config, hook: Any = None) -> None:
        super().__init__((hook or config.hook).planrun_register_checks, config)


class ExecutorRegistry(Registry[ExecutorKind]):
    """Executors from ``planrun_register_executors`` (of ``hook``, default the run's)."""

    what = "executor"
    kind_type = ExecutorKind

    def __init__(self, config: Config, hook: Any = None) -> None:
        super().__init__((hook or config.hook).planrun_register_executors, config)


def _plugin_label(name: str, plugin: object) -> str:
    """A plugin's name as people know it (pluggy names unnamed objects by ``id``)."""
    if not name.isdigit():
        return name
    cls = type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"
