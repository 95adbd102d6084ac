"""Built-in augmentation policies."""

from synthmed.hookspecs import hookimpl


def _identity_policy():
    """`none`: the baseline every study compares against."""

    def apply(images):
        return images

    return apply


@hookimpl
def register_augmentations(register):
    register("none", _identity_policy)
