"""`acgan` and `dcgan`: fit and sample loops around the networks in `synthmed.generate.gan_models`."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from synthmed.generate.fitted import FittedGenerator, noise_batch, positive_ints, standing_statistics
from synthmed.generate.gan_training import DEFAULT_AUGMENT, GanRecipe, check_betas, check_optimizer, make_optimizer



class AcganGenerator(FittedGenerator):
    """AC-GAN (Odena et al.) as in the cross-modality paper: noise + 50-d label embedding,
    a dense seed and 4 transposed convolutions; a discriminator with real/fake and class
    heads. The paper's batch norm, dropout and RMSProp 1e-4 are options (`d_norm`, `dropout`,
    `optimizer`); by default the discriminator has spectral norm and no batch norm, both
    networks Adam at 1e-4, and `GanRecipe`'s small-data stabilisers are on."""

    name = "acgan"
    def __init__(self, *, latent_dim: int = 100, label_dim: int = 50, width: int = 64, dropout: float = 0.0,
                 lr: float = 1e-4, batch_size: int = 32, augment: str = DEFAULT_AUGMENT, loss: str = "hinge",
                 spectral_norm: bool = True, r1: float = 0.0, d_norm: str = "none", mode_seeking: float = 0.3,
                 optimizer: str = "adam", beta1: float = 0.5, beta2: float = 0.999) -> None:
        super().__init__(batch_size=batch_size, lr=lr)
        self.recipe = GanRecipe.from_args(augment=augment, loss=loss, spectral_norm=spectral_norm, r1=r1, d_norm=d_norm,
                                          mode_seeking=mode_seeking)
        self.optimizer, self.beta1, self.beta2 = check_optimizer(optimizer, beta1, beta2)
        if not 0 <= dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        self.latent_dim, self.label_dim, self.width = positive_ints(latent_dim=latent_dim, label_dim=label_dim, width=width)
        self.dropout = dropout

    def _arch_extra(self, image_size: tuple[int, int]) -> dict[str, Any]:
        from synthmed.generate.gan_models import seed_size

        seed_size(image_size)  # fails early on sizes the network cannot make
        return {"latent_dim": self.latent_dim, "label_dim": self.label_dim, "width": self.width}

    def _build(self, arch: dict[str, Any]) -> None:
        from synthmed.generate.gan_models import UpsamplingGenerator, init_dcgan_weights

        self.net = UpsamplingGenerator(latent_dim=arch["latent_dim"], channels=arch["channels"],
                                       image_size=tuple(arch["image_size"]), width=arch["width"],
                                       num_classes=arch["num_classes"], label_dim=arch["label_dim"])
        init_dcgan_weights(self.net)

    def _training_setup(self, device: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        import torch

        from synthmed.generate.gan_models import Discriminator, init_dcgan_weights

        arch = self.arch
        self.disc = Discriminator(channels=arch["channels"], image_size=tuple(arch["image_size"]), width=arch["width"],
                                  num_classes=arch["num_classes"], dropout=self.dropout,
                                  batch_norm=self.recipe.d_norm == "batch")
        init_dcgan_weights(self.disc)
        self.recipe.prepare(self.disc)
        self.disc.to(device).train()
        self.net.train()
        betas = (self.beta1, self.beta2)
        self.opt_g = make_optimizer(self.optimizer, self.net.parameters(), lr=self.lr, betas=betas)
        self.opt_d = make_optimizer(self.optimizer, self.disc.parameters(), lr=self.lr, betas=betas)
        self._fitted = torch.tensor(arch["fitted_classes"], device=device)
        return {"generator": self.net, "discriminator": self.disc}, {"generator": self.opt_g, "discriminator": self.opt_d}

    def _train_step(self, group: Any, images: Any, labels: Any, device: Any) -> dict[str, float]:
        import torch
        from torch.nn import functional as F

        count = images.shape[0]
        noise = torch.randn(count, self.arch["latent_dim"], device=device)
        recipe = self.recipe
        fake_labels = self._fitted[torch.randint(len(self._fitted), (count,), device=device)]
        if recipe.mode_seeking:  # the mode-seeking pairs (first and second half) share a label
            fake_labels[count - count // 2 :] = fake_labels[: count // 2]
        fake = self.net(noise, fake_labels)

        real_view = recipe.view(images)
        real_score, real_class = self.disc(real_view)
        fake_score, fake_class = self.disc(recipe.view(fake.detach()))
        d_loss = (recipe.d_loss(real_score, fake_score) + recipe.r1_penalty(lambda v: self.disc(v)[0], real_view)
                  + F.cross_entropy(real_class, labels) + F.cross_entropy(fake_class, fake_labels))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        score, predicted = self.disc(recipe.view(fake))
        g_loss = (recipe.g_loss(score) + F.cross_entropy(predicted, fake_labels)
                  + recipe.mode_seeking_loss(fake, noise))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"d": d_loss.detach(), "g": g_loss.detach()}

    def _finish_fit(self) -> None:
        import torch

        self.disc = None
        device = self._fitted.device

        def draw() -> tuple:
            count = max(self.batch_size, 16)
            labels = self._fitted[torch.randint(len(self._fitted), (count,), device=device)]
            return torch.randn(count, self.arch["latent_dim"], device=device), labels

        standing_statistics(self.net, draw)

    def _generate(self, class_index: int, noises: Sequence[Any], device: Any) -> Any:
        import torch

        noise = noise_batch(noises, (self.arch["latent_dim"],), device)
        labels = torch.full((len(noises),), class_index, dtype=torch.long, device=device)
        return self.net(noise, labels)


class DcganGenerator(FittedGenerator):
    """DCGAN (Radford et al.), as the retina thesis used it: one unconditional GAN fitted
    per class; Adam, batch norm and ReLU in the generator, LeakyReLU 0.2 in the discriminator;
    the small-data stabilisers of `GanRecipe` as for acgan."""

    name = "dcgan"
    def __init__(self, *, latent_dim: int = 100, width: int = 64, lr: float = 4e-4, beta1: float = 0.5,
                 beta2: float = 0.999, batch_size: int = 16, augment: str = DEFAULT_AUGMENT, loss: str = "hinge",
                 spectral_norm: bool = True, r1: float = 0.0, d_norm: str = "none", mode_seeking: float = 1.0) -> None:
        super().__init__(batch_size=batch_size, lr=lr)
        self.recipe = GanRecipe.from_args(augment=augment, loss=loss, spectral_norm=spectral_norm, r1=r1, d_norm=d_norm,
                                          mode_seeking=mode_seeking)
        self.latent_dim, self.width = positive_ints(latent_dim=latent_dim, width=width)
        self.beta1, self.beta2 = check_betas(beta1, beta2)

    def _arch_extra(self, image_size: tuple[int, int]) -> dict[str, Any]:
        from synthmed.generate.gan_models import seed_size

        seed_size(image_size)
        return {"latent_dim": self.latent_dim, "width": self.width}

    def _new_generator(self, arch: dict[str, Any]) -> Any:
        from synthmed.generate.gan_models import UpsamplingGenerator, init_dcgan_weights

        net = UpsamplingGenerator(latent_dim=arch["latent_dim"], channels=arch["channels"],
                                  image_size=tuple(arch["image_size"]), width=arch["width"])
        init_dcgan_weights(net)
        return net

    def _build(self, arch: dict[str, Any]) -> None:
        from torch import nn

        self.net = nn.ModuleDict({str(k): self._new_generator(arch) for k in arch["fitted_classes"]})

    def _groups(self, labels: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        return [(str(k), np.flatnonzero(labels == k)) for k in sorted(set(labels.tolist()))]

    def _training_setup(self, device: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        import torch
        from torch import nn

        from synthmed.generate.gan_models import Discriminator, init_dcgan_weights

        arch = self.arch
        self.discs = nn.ModuleDict()
        for key in self.net:
            disc = Discriminator(channels=arch["channels"], image_size=tuple(arch["image_size"]), width=arch["width"],
                                 batch_norm=self.recipe.d_norm == "batch")
            init_dcgan_weights(disc)
            self.recipe.prepare(disc)
            self.discs[key] = disc
        self.discs.to(device).train()
        self.net.train()
        betas = (self.beta1, self.beta2)
        self.opts = {}
        for key in self.net:
            self.opts[f"g{key}"] = torch.optim.Adam(self.net[key].parameters(), lr=self.lr, betas=betas)
            self.opts[f"d{key}"] = torch.optim.Adam(self.discs[key].parameters(), lr=self.lr, betas=betas)
        return {"generators": self.net, "discriminators": self.discs}, self.opts

    def _train_step(self, group: Any, images: Any, labels: Any, device: Any) -> dict[str, float]:
        import torch

        gen, disc = self.net[group], self.discs[group]
        opt_g, opt_d = self.opts[f"g{group}"], self.opts[f"d{group}"]
        noise = torch.randn(images.shape[0], self.arch["latent_dim"], device=device)
        fake = gen(noise)
        recipe = self.recipe
        real_view = recipe.view(images)
        d_loss = (recipe.d_loss(disc(real_view)[0], disc(recipe.view(fake.detach()))[0])
                  + recipe.r1_penalty(lambda v: disc(v)[0], real_view))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = recipe.g_loss(disc(recipe.view(fake))[0]) + recipe.mode_seeking_loss(fake, noise)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return {"d": d_loss.detach(), "g": g_loss.detach()}

    def _finish_fit(self) -> None:
        import torch

        device = next(self.net.parameters()).device
        for key in self.net:
            draw = lambda: (torch.randn(max(self.batch_size, 16), self.arch["latent_dim"], device=device),)  # noqa: E731
            standing_statistics(self.net[key], draw)
        self.discs, self.opts = None, None

    def _generate(self, class_index: int, noises: Sequence[Any], device: Any) -> Any:
        noise = noise_batch(noises, (self.arch["latent_dim"],), device)
        return self.net[str(class_index)](noise)
