"""Built-in class-conditional generators: `ddpm`, `acgan`, `dcgan` (see docs/generate.md).

Factories take the `-g KEY=VALUE` arguments of `synthmed generate`; heavy imports happen
only when a factory is called.
"""

from synthmed.hookspecs import hookimpl


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
    # A class needs 4 real train images (the default min_images) before it is fitted on.
    register("ddpm", ddpm, conditioning="class", fit_epochs=100)
    register("acgan", acgan, conditioning="class", fit_epochs=50)
    register("dcgan", dcgan, conditioning="class", fit_epochs=50)
