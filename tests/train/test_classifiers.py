"""Built-in classifiers: the studies' CNNs, pretrained weights, grayscale, frozen backbone (every
registered one is built and trained one step in tests/test_registry_smoke.py)."""

from __future__ import annotations

import pytest
import torch

from synthmed.errors import UsageError
from synthmed.registry import create_classifier

def test_builtin_cnns_match_the_studies():
    basic = create_classifier("cnn-basic", num_classes=4, in_channels=1, image_size=[32, 32])
    convs = [m for m in basic.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in basic.modules() if isinstance(m, torch.nn.Linear)]
    pools = [m for m in basic.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == 2 and len(pools) == 2 and len(linears) == 3  # 2 hidden FC layers + output
    assert linears[0].in_features == 64 * 8 * 8
    bn = create_classifier("cnn-bn", num_classes=5, in_channels=3, image_size=[64, 64])
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules()) == 3
    assert sum(isinstance(m, torch.nn.Linear) for m in bn.modules()) == 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in bn.modules()) == 2


def test_pth_weights_are_adapted_to_grayscale_and_a_new_class_count(tmp_path):
    from synthmed.train.models import load_pretrained

    torch.manual_seed(1)
    rgb = create_classifier("resnet18", num_classes=1000, in_channels=3, image_size=[32, 32])
    path = tmp_path / "resnet18.pth"
    torch.save(rgb.state_dict(), path)  # what torchvision's hub files hold
    gray = create_classifier("resnet18", num_classes=4, in_channels=1, image_size=[32, 32])
    fresh = load_pretrained(gray, path, head="fc")
    assert fresh == ["fc.bias", "fc.weight"]
    assert torch.allclose(gray.conv1.weight, rgb.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(gray.layer3[0].conv2.weight, rgb.layer3[0].conv2.weight)
    assert gray.fc.weight.shape == (4, 512)
    # A gray image gives the same first-layer response as the RGB image with equal channels.
    gray_image = torch.rand(1, 1, 32, 32)
    assert torch.allclose(gray.conv1(gray_image), rgb.conv1(gray_image.expand(1, 3, 32, 32)), atol=1e-5)


def test_safetensors_weights_and_vit_position_embeddings(tmp_path):
    from safetensors.torch import save_file

    from synthmed.train.models import load_pretrained

    small = create_classifier("vit-tiny", num_classes=10, in_channels=3, image_size=[32, 32], patch_size=4)
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, tmp_path / "vit.safetensors")
    large = create_classifier("vit-tiny", num_classes=2, in_channels=1, image_size=[64, 64], patch_size=4)
    fresh = load_pretrained(large, tmp_path / "vit.safetensors", head="heads.head")
    assert fresh == ["heads.head.bias", "heads.head.weight"]
    assert large.encoder.pos_embedding.shape == (1, 16 * 16 + 1, 192)
    assert torch.equal(large.encoder.pos_embedding[:, :1], small.encoder.pos_embedding[:, :1])  # class token kept
    assert large(torch.randn(2, 1, 64, 64)).shape == (2, 2)


def test_weights_of_another_architecture_are_refused(tmp_path):
    from synthmed.train.models import load_pretrained

    other = create_classifier("cnn-basic", num_classes=4, in_channels=1, image_size=[32, 32])
    torch.save(other.state_dict(), tmp_path / "cnn.pth")
    model = create_classifier("resnet18", num_classes=4, in_channels=1, image_size=[32, 32])
    with pytest.raises(UsageError, match="another architecture"):
        load_pretrained(model, tmp_path / "cnn.pth", head="fc")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="not a readable"):
        load_pretrained(model, tmp_path / "junk.pth", head="fc")


def test_freeze_backbone_trains_only_the_head():
    from synthmed.train.models import freeze_backbone, set_train_mode

    torch.manual_seed(0)
    model = create_classifier("cnn-bn", num_classes=3, in_channels=1, image_size=[16, 16])
    trainable = freeze_backbone(model, "classifier", name="cnn-bn")
    assert trainable == sum(p.numel() for p in model.classifier.parameters())
    features = {k: v.clone() for k, v in model.features.state_dict().items()}
    head = [p.clone() for p in model.classifier.parameters()]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    set_train_mode(model, head="classifier", frozen=True)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 16, 16)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    # Backbone weights and batch-norm running statistics are untouched; the head moved.
    assert all(torch.equal(v, model.features.state_dict()[k]) for k, v in features.items())
    assert all(not torch.equal(a, b) for a, b in zip(head, model.classifier.parameters()))
    with pytest.raises(UsageError, match="does not name its head"):
        freeze_backbone(model, None, name="custom")
