"""The whole plugin contract.

A plugin is any module or object with functions marked `@hookimpl` named as below. Built-ins
in `synthmed.default_plugins` are registered exactly like third-party plugins found through
the `synthmed` entry-point group.

Each `register_*` hook receives `register(name, factory, *, aliases=(), **keywords)`. The
keywords a kind takes are the fields of its record in `synthmed.registry` (ClassifierInfo,
GeneratorInfo, AugmentationInfo, AutoencoderInfo, CodecInfo); another keyword is an error
naming the plugin. `aliases` are old names that still find the entry, with a warning.
Names are lowercase words joined by `-`. Plugin modules and factories import heavy libraries
(numpy, torch, diffusers, ...) inside function bodies, so `synthmed --help` stays instant.
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
    """Generators: `register(name, factory, conditioning="class"|"image", min_images=4, fit_epochs=50)`.

    `factory(**args)` returns a `synthmed.protocols.ClassConditionalGenerator` (optionally with
    the capabilities in synthmed.protocols) or an `ImageConditionalGenerator`.
    """


@hookspec
def register_classifiers(register: Register) -> None:
    """Classifiers: `register(name, builder, input_size=224, head="fc", min_size=16, size_multiple=1, channels=None)`.

    `builder(num_classes=, in_channels=, image_size=, **args)` returns a `torch.nn.Module`
    mapping float (N, C, H, W) to logits (N, num_classes).
    """


@hookspec
def register_augmentations(register: Register) -> None:
    """Augmentation policies: `register(name, factory, channels=None)`; the factory takes the
    policy's keyword parameters and returns a `synthmed.protocols.BatchTransform`."""


@hookspec
def register_autoencoders(register: Register) -> None:
    """Autoencoders for `interpolate`: `register(name, builder, lr=1e-3)`; the module has
    `encode(x) -> z` and `decode(z) -> x` on float (N, C, H, W) in [0, 1]."""


@hookspec
def register_codecs(register: Register) -> None:
    """Image codecs for `compress`: `register(name, factory, learned=False)`; the factory
    returns a `synthmed.protocols.ImageCodec` (a `LearnedImageCodec` when learned=True)."""


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
