"""Tiny classifiers of each family for the gradcam tests, registered inline as a
classifier plugin would register them."""

from __future__ import annotations

from pathlib import Path

import synthmed

PLUGIN_NAME = "gradcam-test-classifiers"


def tiny_cnn(num_classes: int, in_channels: int, image_size: int, width: int = 8):
    """The MRI thesis's basic CNN, shrunk: 2 x (conv, ReLU, max-pool), then an MLP head."""
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            )  # fmt: skip
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(2 * width * (image_size // 4) ** 2, 16), nn.ReLU(), nn.Linear(16, num_classes)
            )

        def forward(self, x):  # noqa: ANN001
            return self.classifier(self.features(x))

    return TinyCNN()


def tiny_resnet(num_classes: int, in_channels: int, image_size: int):
    import torchvision
    from torch import nn

    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    return model


def tiny_efficientnet(num_classes: int, in_channels: int, image_size: int):
    import torchvision
    from torch import nn

    model = torchvision.models.efficientnet_v2_s(num_classes=num_classes)
    model.features[0][0] = nn.Conv2d(in_channels, 24, 3, 2, 1, bias=False)
    return model


def tiny_vit(num_classes: int, in_channels: int, image_size: int):
    import torch
    from torch import nn
    from torchvision.models import VisionTransformer

    model = VisionTransformer(
        image_size=image_size, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=num_classes
    )
    model.conv_proj = nn.Conv2d(in_channels, 16, 8, 8)
    # torchvision starts the head at zero (all maps would be zero before training).
    nn.init.normal_(model.heads.head.weight, std=0.5)
    with torch.no_grad():
        model.class_token.normal_(std=0.5)
    return model


BUILDERS = {"tiny-cnn": tiny_cnn, "tiny-resnet": tiny_resnet, "tiny-efficientnet": tiny_efficientnet, "tiny-vit": tiny_vit}


class TestClassifiers:
    @staticmethod
    @synthmed.hookimpl
    def register_classifiers(register):  # noqa: ANN001
        for name, builder in BUILDERS.items():
            register(name, builder, input_size=32)


def save_run(folder: Path, name: str, dataset_path: Path, *, seed: int = 0, classes=None, builder=None, **args) -> Path:
    """A trained-model folder as `train` writes it (model.safetensors + config.json),
    with untrained weights."""
    import torch

    from synthmed.checkpoint import save_checkpoint
    from synthmed.data import Dataset

    dataset = Dataset.open(dataset_path)
    size = dataset.require_uniform_size()
    args = {"num_classes": len(dataset.classes), "in_channels": dataset.channels, "image_size": size[0], **args}
    torch.manual_seed(seed)
    model = (builder or BUILDERS[name])(**args)
    save_checkpoint(
        folder,
        model,
        {
            "kind": "classifier",
            "name": name,
            "plugin": PLUGIN_NAME,
            "version": "0+inline",
            "args": args,
            "classes": classes or dataset.classes,
            "image_size": list(size),
            "channels": dataset.channels,
            "normalization": dataset.stats,
        },
    )
    return folder
