"""Name -> factory tables, filled through the `register_*` hooks.

Like timm's model registry, every component is a named factory; unlike a
module-level dict, the tables are rebuilt from the plugin manager on each
query, so a plugin registered (or unregistered) at run time is seen at once.
Registering only stores callables: it imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from synthmed.errors import UnknownNameError
from synthmed.plugins import failed_plugins, get_plugin_manager, plugin_info

# kind -> hook that fills it
KINDS: dict[str, str] = {
    "generator": "register_generators",
    "classifier": "register_classifiers",
    "augmentation": "register_augmentations",
    "autoencoder": "register_autoencoders",
    "codec": "register_codecs",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    version: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """`name@version`, the value of the `generator` column for rows this entry makes."""
        return f"{self.name}@{self.version}"


def list_entries(kind: str) -> dict[str, Entry]:
    """All entries of one kind, by name, in registration order."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {sorted(KINDS)}")
    pm = get_plugin_manager()
    entries: dict[str, Entry] = {}
    hook = getattr(pm.hook, KINDS[kind])
    # Call each implementation with its own `register`, so entries know their plugin.
    for impl in reversed(hook.get_hookimpls()):  # pluggy lists last-registered first
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        info = plugin_info(plugin_name)

        def register(name: str, factory: Callable[..., Any], _p=plugin_name, _v=info.version, **meta: Any) -> None:
            if name in entries:
                raise ValueError(f"{kind} {name!r} registered twice (by {entries[name].plugin} and {_p})")
            entries[name] = Entry(kind, name, factory, _p, _v, meta)

        impl.function(register=register)
    return entries


def get_entry(kind: str, name: str) -> Entry:
    """One entry; an unknown name is a usage error listing what exists."""
    entries = list_entries(kind)
    if name in entries:
        return entries[name]
    available = ", ".join(entries) or "none"
    message = f"unknown {kind} {name!r}; available: {available}"
    broken = failed_plugins()
    if broken:
        message += "; plugins that failed to load: " + ", ".join(broken) + " (see `synthmed plugins`)"
    raise UnknownNameError(message)


def _lister(kind: str) -> Callable[[], list[str]]:
    def names() -> list[str]:
        return list(list_entries(kind))

    names.__name__ = f"list_{kind}s"
    names.__doc__ = f"Names of the registered {kind}s."
    return names


def _creator(kind: str) -> Callable[..., Any]:
    def create(name: str, **kwargs: Any) -> Any:
        return get_entry(kind, name).factory(**kwargs)

    create.__name__ = f"create_{kind}"
    create.__doc__ = f"Build the {kind} registered as `name` with the factory's keyword arguments."
    return create


list_generators = _lister("generator")
list_classifiers = _lister("classifier")
list_augmentations = _lister("augmentation")
list_autoencoders = _lister("autoencoder")
list_codecs = _lister("codec")
create_generator = _creator("generator")
create_classifier = _creator("classifier")
create_autoencoder = _creator("autoencoder")
create_codec = _creator("codec")
