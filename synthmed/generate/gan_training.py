"""What keeps the built-in GANs from collapsing on small data: differentiable augmentation
(DiffAugment, Zhao et al. 2020) of every discriminator input, real and generated alike, and
the usual stabilisers (spectral norm in D, hinge or non-saturating loss, an R1 penalty), and a
mode-seeking term that keeps the generator from giving every noise vector the same image.

DiffAugment's three ops are written here rather than taken from kornia: kornia's colour
adjustments clamp to [0, 1], which zeroes the gradient the generator must receive through
them, and the ops are a few tensor lines on images in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AUGMENT_OPS = ("translation", "cutout", "color")
# Without colour: on grey slices with a black background, brightness and contrast jitter let
# the generator vary brightness freely instead of anatomy (docs/decisions.md).
DEFAULT_AUGMENT = "translation,cutout"
LOSSES = ("nonsaturating", "hinge")
D_NORMS = ("batch", "none")
OPTIMIZERS = ("adam", "rmsprop")


def parse_augment(spec: str) -> tuple[str, ...]:
    """"translation,cutout,color" (any subset) or "none"."""
    spec = str(spec).strip()
    if spec in ("", "none"):
        return ()
    ops = tuple(part.strip() for part in spec.split(","))
    unknown = [op for op in ops if op not in AUGMENT_OPS]
    if unknown:
        raise ValueError(f"augment: unknown op {unknown[0]!r}; use any of {', '.join(AUGMENT_OPS)} or none")
    return ops


def diff_augment(x: Any, ops: tuple[str, ...]) -> Any:
    """The same random ops, drawn per image, on a float batch in [-1, 1]; differentiable in x."""
    import torch
    from torch.nn import functional as F

    n, _, height, width = x.shape
    if "color" in ops:
        x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)  # brightness
        if x.shape[1] == 3:
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean  # saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean  # contrast
    if "translation" in ops:  # shift by up to 1/8 of the side, zero padding
        sy, sx = max(1, height // 8), max(1, width // 8)
        padded = F.pad(x, (sx, sx, sy, sy))
        dy = torch.randint(0, 2 * sy + 1, (n,), device=x.device)
        dx = torch.randint(0, 2 * sx + 1, (n,), device=x.device)
        rows = (dy[:, None] + torch.arange(height, device=x.device)[None, :])  # (n, H)
        cols = (dx[:, None] + torch.arange(width, device=x.device)[None, :])  # (n, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if "cutout" in ops:  # zero a square of half the side at a random place
        ch, cw = max(1, height // 2), max(1, width // 2)
        cy = torch.randint(0, height - ch + 1, (n, 1, 1), device=x.device)
        cx = torch.randint(0, width - cw + 1, (n, 1, 1), device=x.device)
        ys = torch.arange(height, device=x.device)[None, :, None]
        xs = torch.arange(width, device=x.device)[None, None, :]
        keep = ~((ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw))
        x = x * keep[:, None].to(x.dtype)
    return x


def as_bool(name: str, value: Any) -> bool:
    """A bool, or a string such as "true" / "false"; anything else is refused by `name`."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false (got {value!r})")


def make_optimizer(name: str, params: Any, *, lr: float, betas: tuple[float, float]) -> Any:
    """Adam with `betas`, or RMSProp (which has none) at `lr`."""
    import torch

    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=betas)


def check_betas(beta1: float, beta2: float) -> tuple[float, float]:
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError("beta1 and beta2 must be in [0, 1)")
    return float(beta1), float(beta2)


def check_optimizer(optimizer: str, beta1: float, beta2: float) -> tuple[str, float, float]:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
    return (optimizer, *check_betas(beta1, beta2))


@dataclass(frozen=True)
class GanRecipe:
    """How a GAN is trained on small data: the discriminator's `augment` ops, `loss`,
    `spectral_norm`, `r1` weight and `d_norm` (batch norm or none), and the weight of the
    generator's `mode_seeking` term. The registered defaults are the generators' own."""

    augment: tuple[str, ...] = AUGMENT_OPS
    loss: str = "nonsaturating"
    spectral_norm: bool = False
    r1: float = 0.0
    d_norm: str = "batch"
    mode_seeking: float = 0.0

    @classmethod
    def from_args(cls, *, augment: str, loss: str, spectral_norm: bool, r1: float, d_norm: str = "batch",
                  mode_seeking: float = 0.0) -> "GanRecipe":
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if r1 < 0:
            raise ValueError("r1 must be >= 0")
        if d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {', '.join(D_NORMS)}")
        if mode_seeking < 0:
            raise ValueError("mode_seeking must be >= 0")
        return cls(parse_augment(augment), loss, as_bool("spectral_norm", spectral_norm), float(r1), d_norm,
                   float(mode_seeking))

    def args(self) -> dict[str, Any]:
        return {"augment": ",".join(self.augment) or "none", "loss": self.loss, "spectral_norm": self.spectral_norm,
                "r1": self.r1, "d_norm": self.d_norm, "mode_seeking": self.mode_seeking}

    def prepare(self, disc: Any) -> Any:
        """Spectral norm on every conv and linear layer of `disc`, when asked."""
        from torch import nn
        from torch.nn.utils.parametrizations import spectral_norm

        if self.spectral_norm:
            for module in list(disc.modules()):
                for name, child in list(module.named_children()):
                    if isinstance(child, (nn.Conv2d, nn.Linear)):
                        setattr(module, name, spectral_norm(child))
        return disc

    def view(self, x: Any) -> Any:
        """What the discriminator sees of a batch, real or generated."""
        return diff_augment(x, self.augment) if self.augment else x

    def d_loss(self, real_score: Any, fake_score: Any) -> Any:
        from torch.nn import functional as F

        if self.loss == "hinge":
            return F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
        return F.softplus(-real_score).mean() + F.softplus(fake_score).mean()  # BCE with targets 1 and 0

    def g_loss(self, fake_score: Any) -> Any:
        from torch.nn import functional as F

        return -fake_score.mean() if self.loss == "hinge" else F.softplus(-fake_score).mean()

    def r1_penalty(self, score_of: Any, real_view: Any) -> Any:
        """r1 / 2 * E ||d score / d input||^2 on real inputs (Mescheder et al. 2018); 0 when off."""
        import torch

        if not self.r1:
            return 0.0
        real_view = real_view.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(score_of(real_view).sum(), real_view, create_graph=True)
        return self.r1 / 2 * grad.pow(2).flatten(1).sum(1).mean()

    def mode_seeking_loss(self, fake: Any, noise: Any) -> Any:
        """`mode_seeking` / (image distance / noise distance) between the two halves of a batch
        (Mao et al. 2019): large when the generator gives different noise the same image; 0 when off."""
        if not self.mode_seeking or fake.shape[0] < 2:
            return 0.0
        half = fake.shape[0] // 2
        images = (fake[:half] - fake[half : 2 * half]).abs().flatten(1).mean(1)
        noises = (noise[:half] - noise[half : 2 * half]).abs().mean(1)
        return self.mode_seeking / ((images / noises).mean() + 1e-5)
