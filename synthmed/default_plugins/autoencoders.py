"""Built-in autoencoders for `synthmed interpolate`.

Each builder takes `in_channels=` and `image_size=` (set by the command from the dataset)
plus its own keyword arguments (`-a KEY=VALUE` on the command line). A plugin may give the
default fitting learning rate as `register(name, builder, lr=...)`."""

from synthmed.hookspecs import hookimpl


def build_cnn_ae(*, in_channels: int = 1, image_size=64, width: int = 16):
    """`cnn-ae`: one conv + one transposed conv; `width` 8, 16 or 32 channels as in the report."""
    from synthmed.interpolate.models import ConvAutoencoder

    return ConvAutoencoder(in_channels=in_channels, image_size=image_size, width=width)


def build_unet_ae(*, in_channels: int = 1, image_size=64, base_width: int = 64, width_mult: float = 1.0,
                  levels: int | None = None):
    """`unet-ae`: U-Net without skips; widths base_width x (1, 2, 4, 8) x width_mult."""
    from synthmed.interpolate.models import NoSkipUNetAutoencoder

    widths = tuple(base_width * 2**i for i in range(4))
    return NoSkipUNetAutoencoder(
        in_channels=in_channels, image_size=image_size, base_widths=widths, width_mult=width_mult, levels=levels
    )


def build_vae(*, in_channels: int = 1, image_size=64, base_width: int = 32, latent_dim: int = 64, beta: float = 1.0):
    """`vae`: convolutional VAE with a `latent_dim` vector latent (KL weight `beta`)."""
    from synthmed.interpolate.models import ConvVAE

    return ConvVAE(in_channels=in_channels, image_size=image_size, base_width=base_width, latent_dim=latent_dim,
                   beta=beta)


def build_acai(*, in_channels: int = 1, image_size=64, base_width: int = 32, latent_channels: int = 16,
               critic_weight: float = 0.5):
    """`acai`: conv autoencoder with ACAI's adversarial interpolation critic."""
    from synthmed.interpolate.models import AdversarialInterpolationAutoencoder

    return AdversarialInterpolationAutoencoder(in_channels=in_channels, image_size=image_size, base_width=base_width,
                                               latent_channels=latent_channels, critic_weight=critic_weight)


@hookimpl
def register_autoencoders(register):
    # `lr`: the default Adam learning rate of `interpolate` (one shallow layer tolerates a large one).
    register("cnn-ae", build_cnn_ae, lr=1e-2)
    register("unet-ae", build_unet_ae, lr=1e-3)
    register("vae", build_vae, lr=3e-3)
    register("acai", build_acai, lr=1e-3)
