"""Built-in class-conditional generators: `ddpm`, `acgan`, `dcgan` (see docs/generate.md).

Factories take the `-g KEY=VALUE` arguments of `synthmed generate`; heavy imports happen
only when a factory is called.
"""

from synthmed.hookspecs import hookimpl

# A class needs this many train images before a generator is fitted on it.
MIN_IMAGES_PER_CLASS = 4


def ddpm(**args):
    """Class-conditional diffusion (diffusers UNet2DModel, DDIM/DPM-Solver sampling, guidance, EMA)."""
    from synthmed.generate.ddpm import DdpmGenerator

    return DdpmGenerator(**args)


def acgan(**args):
    """AC-GAN of the cross-modality paper (label embedding, RMSProp 1e-4)."""
    from synthmed.generate.gans import AcganGenerator

    return AcganGenerator(**args)


def dcgan(**args):
    """DCGAN (Radford et al.; Adam 2e-4), one per class."""
    from synthmed.generate.gans import DcganGenerator

    return DcganGenerator(**args)


@hookimpl
def register_generators(register):
    for factory in (ddpm, acgan, dcgan):
        register(factory.__name__, factory, conditioning="class", min_images=MIN_IMAGES_PER_CLASS)
