"""Built-in augmentation policies (factories in synthmed.augment.builtin; docs/augment.md)."""

from synthmed.hookspecs import hookimpl


@hookimpl
def register_augmentations(register):
    from synthmed.augment.builtin import BUILTIN

    for name, (factory, meta) in BUILTIN.items():
        register(name, factory, **meta)
