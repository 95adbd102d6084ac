"""Built-in classifiers (synthmed.train.models), registered as a third-party plugin would.

The keywords are the fields of `synthmed.registry.ClassifierInfo`. Names are torchvision's
with `_` written `-` (`vit-b-16`); the old spellings stay as aliases for one release.
"""

from synthmed.hookspecs import hookimpl


def _lazy(builder_name: str):
    """A builder that imports torch only when a model is built (listing stays instant)."""

    def build(**kwargs):
        from synthmed.train import models as classifiers

        return getattr(classifiers, builder_name)(**kwargs)

    build.__name__ = builder_name
    build.__doc__ = f"synthmed.train.models.{builder_name}"
    return build


@hookimpl
def register_classifiers(register):
    register("cnn-basic", _lazy("build_cnn_basic"), input_size=128, head="classifier", min_size=4)
    register("cnn-bn", _lazy("build_cnn_bn"), input_size=256, head="classifier", min_size=8)
    register("resnet18", _lazy("build_resnet18"), input_size=224, head="fc", min_size=16)
    register("resnet50", _lazy("build_resnet50"), input_size=224, head="fc", min_size=16)
    register("vit-tiny", _lazy("build_vit_tiny"), input_size=64, head="heads.head", min_size=8)
    register("vit-b-16", _lazy("build_vit_b_16"), input_size=224, head="heads.head", min_size=16, size_multiple=16,
             aliases=("vit_b_16",))
    register("efficientnet-v2-s", _lazy("build_efficientnet_v2_s"), input_size=224, head="classifier.1", min_size=16,
             aliases=("efficientnet_v2_s",))
