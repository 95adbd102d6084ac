"""Image classifiers: the studies' small CNNs and torchvision backbones adapted to any channel count.

Every builder has the signature of the `register_classifiers` contract,
`builder(num_classes=, in_channels=, image_size=, **args) -> nn.Module`, mapping standardised
float (N, C, H, W) to logits (N, num_classes). torchvision models are returned as they are
(only their first conv and head replaced), so their parameter names stay those of torchvision's
pretrained `.pth` files and `load_pretrained` can load such files directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from synthmed.errors import UsageError


def image_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    """An int or [H, W] -> (H, W)."""
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


# --------------------------------------------------------------------------- the studies' CNNs


class BasicCNN(nn.Module):
    """The MRI thesis's basic CNN: 2 x [conv 3x3, ReLU, 2x2 max-pool], then an MLP with 2 hidden layers."""

    def __init__(self, num_classes: int, in_channels: int, image_size: Sequence[int],
                 conv_channels: Sequence[int] = (32, 64), hidden: Sequence[int] = (128, 64)) -> None:
        super().__init__()
        height, width = image_hw(image_size)
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels in conv_channels:
            layers += [nn.Conv2d(channels, out_channels, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = out_channels
            height, width = height // 2, width // 2
        self.features = nn.Sequential(*layers)
        sizes = [channels * height * width, *hidden]
        head: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes, sizes[1:]):
            head += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True)]
        head.append(nn.Linear(sizes[-1], num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BatchNormCNN(nn.Module):
    """The retina thesis's CNN: 3 x [conv 3x3, batch norm, ReLU, 2x2 max-pool], then 3 FC layers with dropout."""

    def __init__(self, num_classes: int, in_channels: int, image_size: Sequence[int],
                 conv_channels: Sequence[int] = (32, 64, 128), hidden: Sequence[int] = (256, 128),
                 dropout: float = 0.5) -> None:
        super().__init__()
        height, width = image_hw(image_size)
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels in conv_channels:
            layers += [
                nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out_channels
            height, width = height // 2, width // 2
        self.features = nn.Sequential(*layers)
        sizes = [channels * height * width, *hidden]
        head: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes, sizes[1:]):
            head += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        head.append(nn.Linear(sizes[-1], num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_cnn_basic(*, num_classes: int, in_channels: int, image_size, conv_channels=(32, 64), hidden=(128, 64)):
    return BasicCNN(num_classes, in_channels, image_size, tuple(conv_channels), tuple(hidden))


def build_cnn_bn(*, num_classes: int, in_channels: int, image_size, conv_channels=(32, 64, 128), hidden=(256, 128),
                 dropout: float = 0.5):
    return BatchNormCNN(num_classes, in_channels, image_size, tuple(conv_channels), tuple(hidden), dropout)


# --------------------------------------------------------------------------- torchvision backbones


def _replace_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """The same conv taking `in_channels` inputs (weights are re-initialised; pretrained ones
    are adapted when loaded, see `adapt_state_dict`)."""
    if conv.in_channels == in_channels:
        return conv
    return nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None)


def build_resnet18(*, num_classes: int, in_channels: int, image_size=None):
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_classes)
    model.conv1 = _replace_conv(model.conv1, in_channels)
    return model


def build_resnet50(*, num_classes: int, in_channels: int, image_size=None):
    from torchvision.models import resnet50

    model = resnet50(num_classes=num_classes)
    model.conv1 = _replace_conv(model.conv1, in_channels)
    return model


def build_efficientnet_v2_s(*, num_classes: int, in_channels: int, image_size=None, dropout: float = 0.2):
    from torchvision.models import efficientnet_v2_s

    model = efficientnet_v2_s(num_classes=num_classes, dropout=dropout)
    model.features[0][0] = _replace_conv(model.features[0][0], in_channels)
    return model


def _square(image_size, name: str) -> int:
    height, width = image_hw(image_size)
    if height != width:
        raise UsageError(f"--classifier {name}: needs square images, got {height}x{width}; run `synthmed preprocess --size N`")
    return height


def build_vit_b_16(*, num_classes: int, in_channels: int, image_size=224):
    from torchvision.models import vit_b_16

    model = vit_b_16(image_size=_square(image_size, "vit_b_16"), num_classes=num_classes)
    model.conv_proj = _replace_conv(model.conv_proj, in_channels)
    return model


def build_vit_tiny(*, num_classes: int, in_channels: int, image_size=64, patch_size: int | None = None,
                   num_layers: int = 4, num_heads: int = 3, hidden_dim: int = 192, mlp_dim: int = 384,
                   dropout: float = 0.1):
    """A small ViT for 28-128 px images: about 8 x 8 patches by default."""
    from torchvision.models import VisionTransformer

    side = _square(image_size, "vit-tiny")
    # The divisor of the side closest to 8 patches across (28 px -> 4 px patches, 64 -> 8).
    patch = patch_size or min((d for d in range(1, side + 1) if side % d == 0), key=lambda d: abs(side / d - 8))
    if side % patch:
        raise UsageError(f"--classifier vit-tiny: image side {side} is not a multiple of patch_size {patch}")
    model = VisionTransformer(image_size=side, patch_size=patch, num_layers=num_layers, num_heads=num_heads,
                              hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout, num_classes=num_classes)
    model.conv_proj = _replace_conv(model.conv_proj, in_channels)
    return model


# --------------------------------------------------------------------------- pretrained weights


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """A local state dict: safetensors, or a torchvision `.pth` read with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise UsageError(f"--weights {path}: not a readable safetensors or .pth state dict "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"--weights {path}: expected a dict of tensors (a state dict)")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _is_head(key: str, head: str | None) -> bool:
    return head is not None and (key == head or key.startswith(head + "."))


def adapt_state_dict(module: nn.Module, state: dict[str, torch.Tensor], *, head: str | None,
                     source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Fit pretrained `state` to `module`: RGB first-layer kernels summed for 1-channel input,
    ViT position embeddings interpolated to the image size, head tensors of another class count
    dropped. Returns (state to load, names of the head tensors left freshly initialised)."""
    own = module.state_dict()
    state = dict(state)
    if "encoder.pos_embedding" in state and "encoder.pos_embedding" in own \
            and state["encoder.pos_embedding"].shape != own["encoder.pos_embedding"].shape:
        from torchvision.models.vision_transformer import interpolate_embeddings

        state = dict(interpolate_embeddings(module.image_size, module.patch_size, state))
    fresh: list[str] = []
    for key, target in own.items():
        if key not in state:
            if _is_head(key, head):
                fresh.append(key)
                continue
            raise UsageError(f"--weights {source}: has no tensor {key!r}; it was saved from another architecture")
        value = state[key]
        if value.shape == target.shape:
            continue
        # Grayscale input: the RGB kernels summed keep the response to a gray image unchanged.
        if value.ndim == 4 and value.shape[1] == 3 and target.shape[1] == 1 and value.shape[0] == target.shape[0] \
                and value.shape[2:] == target.shape[2:]:
            state[key] = value.sum(dim=1, keepdim=True)
        elif _is_head(key, head):
            del state[key]
            fresh.append(key)
        else:
            raise UsageError(f"--weights {source}: tensor {key!r} has shape {tuple(value.shape)}, "
                             f"the model needs {tuple(target.shape)}")
    state = {key: value for key, value in state.items() if key in own}
    return state, sorted(set(fresh))


def load_pretrained(module: nn.Module, path: Path, *, head: str | None) -> list[str]:
    """Load a local pretrained state dict into `module`; returns the head tensors left untrained."""
    state, fresh = adapt_state_dict(module, read_weights_file(path), head=head, source=str(path))
    module.load_state_dict(state, strict=False)
    return fresh


def head_module(module: nn.Module, head: str) -> nn.Module:
    return module.get_submodule(head)


def freeze_backbone(module: nn.Module, head: str | None, *, name: str) -> int:
    """Train only the classification head: every other parameter gets requires_grad=False and
    batch-norm layers outside the head stay in eval mode (see `set_train_mode`). Returns the
    number of trainable parameters."""
    if head is None:
        raise UsageError(f"--freeze-backbone: classifier {name!r} does not name its head, so it cannot be frozen")
    trainable = 0
    for key, parameter in module.named_parameters():
        parameter.requires_grad_(_is_head(key, head))
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable


def set_train_mode(module: nn.Module, *, head: str | None, frozen: bool) -> None:
    """module.train(), except that a frozen backbone keeps its batch-norm statistics."""
    module.train()
    if frozen and head is not None:
        for key, child in module.named_modules():
            if not _is_head(key, head) and key:
                child.eval()
        head_module(module, head).train()


def describe(module: Any) -> dict[str, int]:
    parameters = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"parameters": parameters, "trainable_parameters": trainable}
