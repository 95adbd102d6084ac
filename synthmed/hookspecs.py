"""The whole plugin contract.

A plugin is any module or object with functions marked `@hookimpl` named as
below. Built-ins in `synthmed.default_plugins` are registered exactly like
third-party plugins found through the `synthmed` entry-point group.

Each `register_*` hook receives a `register(name, factory, **meta)` callback;
the registry records which plugin (and which version of it) registered what.
Factories must import heavy libraries (torch, diffusers, ...) lazily, inside
the factory, so that listing plugins stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("synthmed")
hookimpl = pluggy.HookimplMarker("synthmed")

Register = Callable[..., None]


@hookspec
def register_generators(register: Register) -> None:
    """Register generators: `register(name, factory, conditioning="class"|"image")`.

    `factory(**args)` returns an object following `synthmed.protocols.ClassConditionalGenerator`
    or `synthmed.protocols.ImageConditionalGenerator`.
    """


@hookspec
def register_classifiers(register: Register) -> None:
    """Register classifiers: `register(name, builder, input_size=INT)`.

    `builder(num_classes=, in_channels=, image_size=, **args)` returns a `torch.nn.Module`
    mapping float (N, C, H, W) to logits (N, num_classes).
    """


@hookspec
def register_augmentations(register: Register) -> None:
    """Register augmentation policies: `register(name, factory)`; the factory takes the
    policy's keyword parameters and returns a batch transform (see synthmed.augment)."""


@hookspec
def register_autoencoders(register: Register) -> None:
    """Register autoencoders for `interpolate`: `register(name, builder)`; the module has
    `encode(x) -> z` and `decode(z) -> x` on float (N, C, H, W) in [0, 1]."""


@hookspec
def register_codecs(register: Register) -> None:
    """Register image codecs for `compress`: `register(name, factory, learned=BOOL)`."""


@hookspec(firstresult=True)
def read_image(path: Path, options: Any) -> Any:
    """Read a raw input file for `preprocess`.

    Return a list of `synthmed.data.imageio.RawImage` (one per frame or slice), or None
    when this plugin does not handle the file; the first non-None answer wins.
    `options` is a `synthmed.preprocess.reading.ReadOptions` (windowing, slicing); an
    implementation that needs none of it may take only `path`.
    """


@hookspec
def register_commands(app: Any) -> None:
    """Add subcommands to the `synthmed` Typer app: `app.command()(fn)` or
    `app.add_typer(typer_app, name=...)`. Pass Typer apps, never raw click objects."""
