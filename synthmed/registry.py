"""Name -> factory tables, filled through the `register_*` hooks.

Like timm's registry, every component is a named factory. What a plugin says about one
(`register(name, factory, input_size=224, head="fc")`) becomes a typed record, one dataclass
per kind below, so the code reads `entry.info.head`; a keyword the kind does not know is an
error naming the plugin. A kind's table is filled on its first lookup and kept until a plugin
is registered or unregistered (`synthmed.plugins.PluginManager.state`), so a lookup does not
re-run every plugin's hook. Registering stores callables only: it imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any, Callable, Generic, Literal, TypeVar, overload

from synthmed.errors import SynthmedError, UnknownNameError, UsageError
from synthmed.plugins import PluginManager, failed_plugins, get_plugin_manager, plugin_info


class RegistrationError(SynthmedError, ValueError):
    """A plugin registered something wrongly: an unknown keyword, a bad value, a name taken twice."""


def _whole(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what}={value!r} must be a whole number >= {low}")
    return value


def _channel_counts(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    counts = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return tuple(_whole(c, "channels", 1) for c in counts)


# --------------------------------------------------------------------------- what each kind records


@dataclass(frozen=True)
class ClassifierInfo:
    """`register_classifiers`: what `train` needs to know before building the model."""

    input_size: int | None = None  # the image side the model was designed for
    head: str | None = None  # submodule replaced by --weights and trained alone by --freeze-backbone
    min_size: int = 1  # smallest image side it accepts
    size_multiple: int = 1  # image sides must be multiples of this (ViT patches)
    channels: tuple[int, ...] | None = None  # channel counts it accepts; None: any

    def __post_init__(self) -> None:
        if self.input_size is not None:
            _whole(self.input_size, "input_size", 1)
        if self.head is not None and not isinstance(self.head, str):
            raise ValueError(f"head={self.head!r} must be a submodule name such as 'fc'")
        _whole(self.min_size, "min_size", 1)
        _whole(self.size_multiple, "size_multiple", 1)
        object.__setattr__(self, "channels", _channel_counts(self.channels))


@dataclass(frozen=True)
class GeneratorInfo:
    """`register_generators`: fitted per class ("class") or varying each source image ("image")."""

    conditioning: Literal["class", "image"]
    min_images: int = 4  # real train images a class needs before it is fitted on
    fit_epochs: int = 50  # the length of a fit when `--fit-epochs` is not given

    def __post_init__(self) -> None:
        if self.conditioning not in ("class", "image"):
            raise ValueError(f"conditioning={self.conditioning!r} must be 'class' or 'image'")
        _whole(self.min_images, "min_images", 1)
        _whole(self.fit_epochs, "fit_epochs", 1)


@dataclass(frozen=True)
class AugmentationInfo:
    """`register_augmentations`."""

    channels: tuple[int, ...] | None = None  # channel counts it works on (colour ops: (3,)); None: any

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _channel_counts(self.channels))


@dataclass(frozen=True)
class AutoencoderInfo:
    """`register_autoencoders`."""

    lr: float = 1e-3  # the Adam learning rate `interpolate` fits it with unless --lr is given

    def __post_init__(self) -> None:
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be a positive number")
        object.__setattr__(self, "lr", float(self.lr))


@dataclass(frozen=True)
class CodecInfo:
    """`register_codecs`."""

    learned: bool = False  # fitted on a train split and saved with the streams (a LearnedImageCodec)

    def __post_init__(self) -> None:
        if not isinstance(self.learned, bool):
            raise ValueError(f"learned={self.learned!r} must be True or False")


@dataclass(frozen=True)
class Kind:
    hook: str
    info: type


KINDS: dict[str, Kind] = {
    "generator": Kind("register_generators", GeneratorInfo),
    "classifier": Kind("register_classifiers", ClassifierInfo),
    "augmentation": Kind("register_augmentations", AugmentationInfo),
    "autoencoder": Kind("register_autoencoders", AutoencoderInfo),
    "codec": Kind("register_codecs", CodecInfo),
}

InfoT = TypeVar("InfoT")


@dataclass(frozen=True)
class Entry(Generic[InfoT]):
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    version: str
    info: InfoT
    aliases: tuple[str, ...] = ()  # old names that still find it, with a warning

    @property
    def tag(self) -> str:
        """`name@version`, the value of the `generator` column for rows this entry makes."""
        return f"{self.name}@{self.version}"


# --------------------------------------------------------------------------- the tables


@dataclass
class _Table:
    entries: dict[str, Entry[Any]]
    aliases: dict[str, str]  # old name -> name


_tables: dict[str, _Table] = {}
_filled_for: tuple[PluginManager, int] | None = None


def _record(kind: str, plugin: str, name: Any, keywords: dict[str, Any]) -> Any:
    """The kind's dataclass from a plugin's keywords; anything wrong is a RegistrationError naming the plugin."""
    info_class = KINDS[kind].info
    where = f"plugin {plugin!r} registers {kind} {name!r}"
    fields = [f.name for f in dataclasses.fields(info_class)]
    unknown = [key for key in keywords if key not in fields]
    if unknown:
        raise RegistrationError(f"{where} with unknown keyword {unknown[0]!r}; a {kind} takes "
                                f"{', '.join(fields) or 'no keywords'} (and aliases)")
    missing = [f.name for f in dataclasses.fields(info_class)
               if f.default is dataclasses.MISSING and f.name not in keywords]
    if missing:
        raise RegistrationError(f"{where} without {missing[0]}=")
    try:
        return info_class(**keywords)
    except ValueError as exc:
        raise RegistrationError(f"{where}: {exc}") from None


def _fill(kind: str, pm: PluginManager) -> _Table:
    table = _Table({}, {})
    # Call each implementation with its own `register`, so entries know their plugin.
    for impl in reversed(getattr(pm.hook, KINDS[kind].hook).get_hookimpls()):  # pluggy lists last-registered first
        plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
        version = plugin_info(plugin).version

        def register(name: str, factory: Callable[..., Any], *, aliases: tuple[str, ...] | list[str] = (),
                     _plugin: str = plugin, _version: str = version, **keywords: Any) -> None:
            if not isinstance(name, str) or not name:
                raise RegistrationError(f"plugin {_plugin!r} registers a {kind} named {name!r}; names are non-empty strings")
            if not callable(factory):
                raise RegistrationError(f"plugin {_plugin!r} registers {kind} {name!r} with a factory that is not callable")
            entry = Entry(kind, name, factory, _plugin, _version, _record(kind, _plugin, name, keywords), tuple(aliases))
            for taken in (name, *entry.aliases):
                holder = table.entries.get(taken) or table.entries.get(table.aliases.get(taken, ""))
                if holder is not None:
                    raise RegistrationError(f"{kind} {taken!r} registered twice (by {holder.plugin} and {_plugin})")
            table.entries[name] = entry
            table.aliases.update((alias, name) for alias in entry.aliases)

        impl.function(register=register)
    return table


def _table(kind: str) -> _Table:
    global _filled_for
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {sorted(KINDS)}")
    pm = get_plugin_manager()
    if _filled_for is None or _filled_for[0] is not pm or _filled_for[1] != pm.state:
        _tables.clear()
        _filled_for = (pm, pm.state)
    if kind not in _tables:
        _tables[kind] = _fill(kind, pm)
    return _tables[kind]


@overload
def get_entry(kind: Literal["classifier"], name: str, *, warn_alias: bool = ...) -> Entry[ClassifierInfo]: ...
@overload
def get_entry(kind: Literal["generator"], name: str, *, warn_alias: bool = ...) -> Entry[GeneratorInfo]: ...
@overload
def get_entry(kind: Literal["augmentation"], name: str, *, warn_alias: bool = ...) -> Entry[AugmentationInfo]: ...
@overload
def get_entry(kind: Literal["autoencoder"], name: str, *, warn_alias: bool = ...) -> Entry[AutoencoderInfo]: ...
@overload
def get_entry(kind: Literal["codec"], name: str, *, warn_alias: bool = ...) -> Entry[CodecInfo]: ...
@overload
def get_entry(kind: str, name: str, *, warn_alias: bool = ...) -> Entry[Any]: ...


def get_entry(kind: str, name: str, *, warn_alias: bool = True) -> Entry[Any]:
    """One entry; an old name (an alias) finds it with one warning line on stderr, unless
    `warn_alias=False` (names read back from saved model folders). An unknown name is a
    usage error listing what exists."""
    table = _table(kind)
    if name in table.entries:
        return table.entries[name]
    if name in table.aliases:
        current = table.aliases[name]
        if warn_alias:
            sys.stderr.write(f"synthmed: warning: {kind} {name!r} is deprecated; use {current!r} "
                             "(the old name goes in the next release)\n")
        return table.entries[current]
    available = ", ".join(table.entries) or "none"
    message = f"unknown {kind} {name!r}; available: {available}"
    broken = failed_plugins()
    if broken:
        message += "; plugins that failed to load: " + ", ".join(broken) + " (see `synthmed plugins`)"
    raise UnknownNameError(message)


def list_entries(kind: str) -> dict[str, Entry[Any]]:
    """All entries of one kind, by name, in registration order (aliases left out)."""
    return dict(_table(kind).entries)


# --------------------------------------------------------------------------- the public API


def list_generators() -> list[str]:
    """Names of the registered generators."""
    return list(_table("generator").entries)


def list_classifiers() -> list[str]:
    """Names of the registered classifiers."""
    return list(_table("classifier").entries)


def list_augmentations() -> list[str]:
    """Names of the registered augmentation policies (the parts a `--augment` spec joins)."""
    return list(_table("augmentation").entries)


def list_autoencoders() -> list[str]:
    """Names of the registered autoencoders."""
    return list(_table("autoencoder").entries)


def list_codecs() -> list[str]:
    """Names of the registered codecs."""
    return list(_table("codec").entries)


def create_generator(name: str, **args: Any) -> Any:
    """The generator registered as `name`, built with its factory's keyword arguments."""
    return get_entry("generator", name).factory(**args)


def create_classifier(name: str, *, num_classes: int, in_channels: int, image_size: Any, **args: Any) -> Any:
    """The classifier registered as `name`: a torch module mapping (N, in_channels, H, W) to logits."""
    return get_entry("classifier", name).factory(num_classes=num_classes, in_channels=in_channels,
                                                 image_size=image_size, **args)


def create_autoencoder(name: str, **args: Any) -> Any:
    """The autoencoder registered as `name` (`in_channels=`, `image_size=` and its own arguments)."""
    return get_entry("autoencoder", name).factory(**args)


def create_codec(name: str, **args: Any) -> Any:
    """The codec registered as `name` (an ImageCodec)."""
    return get_entry("codec", name).factory(**args)


def create_policy(spec: str, *, channels: int) -> Callable[..., Any]:
    """The augmentation policy a spec names, e.g. `hflip(p=0.5)+rotate(degrees=10)`, for images
    with `channels` channels. Unknown names or parameters, bad values, or a colour policy on
    grayscale raise a UsageError saying what exists."""
    from synthmed.policies import check_parameters, compose, parse_spec

    parts = []
    for component in parse_spec(spec):
        entry = get_entry("augmentation", component.name)
        accepted = entry.info.channels
        if accepted and channels not in accepted:
            need = " or ".join(str(c) for c in accepted)
            raise UsageError(
                f"augmentation policy {component.name!r} needs images with {need} channel(s) (RGB), these have "
                f"{channels}; choose a policy without colour operations (for example 'medical')"
            )
        params = check_parameters(component, entry.factory)
        try:
            parts.append(entry.factory(**params))
        except (UsageError, ValueError, TypeError) as exc:
            raise UsageError(f"augmentation policy {component.text()!r}: {str(exc).splitlines()[0]}") from None
    return compose(parts)
