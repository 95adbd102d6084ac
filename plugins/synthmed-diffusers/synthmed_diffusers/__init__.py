"""synthmed plugin: generator `sd-variation`, Stable Diffusion variations of real images from
a local diffusers model folder. diffusers and torch are imported only when the factory runs."""

from importlib import metadata

from synthmed import hookimpl

try:
    __version__ = metadata.version("synthmed-diffusers")
except metadata.PackageNotFoundError:  # imported from a source tree without installing
    __version__ = "0.1.0"


def _sd_variation_generator(**args):
    from synthmed_diffusers.generator import StableDiffusionVariationGenerator

    return StableDiffusionVariationGenerator(**args)


@hookimpl
def register_generators(register):
    register("sd-variation", _sd_variation_generator, conditioning="image")
