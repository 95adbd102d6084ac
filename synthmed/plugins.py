"""Plugin manager: built-ins first, then installed entry points, one at a time.

A plugin that fails to import is recorded in `failed_plugins()` and skipped, so
it breaks only the commands that name something it would have registered.
`SYNTHMED_PLUGINS` (comma list; empty = none) restricts which installed plugins
load; built-ins always load. The manager counts registrations (`state`), so the registry
refills its tables only after a plugin is registered or unregistered.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

import pluggy

from synthmed import hookspecs

ENTRY_POINT_GROUP = "synthmed"

# Built-in plugins, registered exactly as third-party ones are.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "synthmed.default_plugins.augmentations",
    "synthmed.default_plugins.readers",
    "synthmed.default_plugins.classifiers",
    "synthmed.default_plugins.autoencoders",
    "synthmed.default_plugins.generators",
    "synthmed.default_plugins.codecs",
)


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    origin: str  # "builtin" or "entry point"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus `state`: a number that changes whenever a plugin comes or goes."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.state = 0

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        self.state += 1
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> object | None:
        removed = super().unregister(plugin, name)
        self.state += 1
        return removed


_pm: PluginManager | None = None
_info: dict[str, PluginInfo] = {}
_failed: dict[str, str] = {}


def _synthmed_version() -> str:
    from synthmed import __version__

    return __version__


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created and loaded on first use."""
    global _pm
    if _pm is None:
        pm = PluginManager("synthmed")
        pm.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            pm.register(module, name=module_name)
            _info[module_name] = PluginInfo(module_name, _synthmed_version(), "builtin")
        _load_entry_points(pm)
        _pm = pm
    return _pm


def _allowed_plugins() -> set[str] | None:
    raw = os.environ.get("SYNTHMED_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed_plugins()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        version = ep.dist.version if ep.dist is not None else "unknown"
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - any import failure must not break other plugins
            _failed[ep.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            continue
        _info[ep.name] = PluginInfo(ep.name, version, "entry point")


def plugin_info(name: str) -> PluginInfo:
    """Name, version and origin of a registered plugin (inline test plugins get 'inline')."""
    return _info.get(name, PluginInfo(name, "0+inline", "inline"))


def failed_plugins() -> dict[str, str]:
    """Installed plugins that failed to load: name -> one-line reason."""
    get_plugin_manager()
    return dict(_failed)


def reset_plugin_manager() -> None:
    """Forget loaded plugins so the next use reloads them (tests change the environment)."""
    global _pm
    _pm = None
    _info.clear()
    _failed.clear()
