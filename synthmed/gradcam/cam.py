"""Class activation maps of a classifier: which layer to explain, and the maps themselves.

The CAM arithmetic comes from pytorch-grad-cam (`grad-cam` on PyPI): it implements
Grad-CAM, Grad-CAM++ and their relatives behind one interface, takes a reshape function
for transformer tokens, and works batched on any device. What it does not do is choose
the layer for an arbitrary model, so that is done here by one dry run with forward hooks
(`find_layers`): every module's output is recorded, and a layer qualifies when

- its output is a feature map (N, C, h, w) or a token sequence (N, T, D) whose tokens,
  after dropping a class token, tile the image as a grid;
- it runs once per forward pass (a module reused in several places, like the ReLU of a
  torchvision BasicBlock, has no single output to explain);
- its output is not changed in place afterwards (the hooks would see the wrong values);
- the class score depends on its spatial positions (non-zero gradient). This is what
  rules out a ViT's last block output: only the class token reaches the head, so the
  patch tokens' gradients are zero there, and the layer picked for a ViT is the norm
  before the last block's attention (the last place where patch tokens feed the class
  token), as pytorch-grad-cam recommends.

The automatic choice is the last qualifying layer (in the order the forward pass finishes
them, so a block wins over its own last child) whose grid is larger than 1x1 and that is not
part way through a block which then shrinks the grid: for a CNN the last convolutional block
before global pooling; on tiny inputs where that block is already 1x1, the block before it
(ResNet-50 at 32 px: `layer3`, not `layer4.0.conv1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from synthmed.errors import SynthmedError, UsageError

# --method name -> pytorch-grad-cam class name (all take model, target_layers, reshape_transform).
METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
}
TARGET_KEYWORDS = ("predicted", "true")
SHOWN_CANDIDATES = 8


@dataclass(frozen=True)
class CamLayer:
    """A layer whose output can be turned into a map over the image."""

    name: str
    shape: tuple[int, ...]  # output shape of one image: (C, h, w) or (T, D)
    grid: tuple[int, int]  # (h, w) of the map at this layer
    class_tokens: int  # leading tokens dropped before reshaping tokens to the grid (0 for feature maps)
    problem: str = ""  # why it cannot be explained; empty when it can
    mid_block: bool = False  # inside a block that then shrinks the grid (ResNet's layer4.0.conv1 at 32 px)

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def kind(self) -> str:
        return "tokens" if len(self.shape) == 2 else "feature map"

    def describe(self) -> str:
        return f"{self.name} ({self.kind} {'x'.join(map(str, self.shape))})"


def token_grid(tokens: int, image_size: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
    """((rows, cols), class tokens) when `tokens` (after dropping 0 or 1 class token) tile an
    image of `image_size` with square patches, else None."""
    height, width = image_size
    for dropped in (0, 1):
        count = tokens - dropped
        rows = round(math.sqrt(max(count, 0) * height / width))
        if rows < 1 or count % rows:
            continue
        cols = count // rows
        if height % rows == 0 and width % cols == 0 and height // rows == width // cols:
            return (rows, cols), dropped
    return None


def find_layers(model: Any, *, channels: int, image_size: tuple[int, int], device: Any = None) -> list[CamLayer]:
    """Every module with a spatial output, in the order the forward pass finishes them.

    One forward and one backward pass on a fixed random batch; nothing in `model` changes."""
    import torch

    names = [name for name, _ in model.named_modules() if name]
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    inputs_of: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    versions: dict[str, int] = {}
    order: list[str] = []

    def recorder(name: str):
        def hook(module, inputs, output):  # noqa: ANN001 - torch's hook signature
            calls[name] = calls.get(name, 0) + 1
            if calls[name] == 1:
                order.append(name)
            if inputs and torch.is_tensor(inputs[0]):
                inputs_of[name] = inputs[0]
            if torch.is_tensor(output):
                outputs[name] = output
                versions[name] = output._version

        return hook

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, channels, *image_size, generator=generator).to(device).requires_grad_(True)
    handles = [modules[name].register_forward_hook(recorder(name)) for name in names]
    try:
        with torch.enable_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not torch.is_tensor(logits) or logits.ndim != 2:
        raise SynthmedError(f"the classifier returned {type(logits).__name__} instead of logits (N, classes)")

    layers: list[CamLayer] = []
    for name in order:
        output = outputs.get(name)
        if output is None or output.shape[0] != 2 or output.ndim not in (3, 4):
            continue
        shape = tuple(output.shape[1:])
        if output.ndim == 4:
            grid, dropped = (int(shape[1]), int(shape[2])), 0
        else:
            found = token_grid(int(shape[0]), image_size)
            if found is None:
                continue
            grid, dropped = found
        problem = ""
        if calls[name] > 1:
            problem = f"it runs {calls[name]} times per forward pass"
        elif output._version != versions[name]:
            problem = "a later layer changes its output in place"
        elif not output.requires_grad:
            problem = "its output does not depend on the input"
        layers.append(CamLayer(name, shape, grid, dropped, problem, _mid_block(name, grid, inputs_of, outputs, image_size)))

    # Which outputs the class score reaches at their spatial positions.
    scored = [layer for layer in layers if layer.usable]
    if scored:
        score = _dependency_score(logits, [inputs_of.get(name) for name in order if outputs.get(name) is logits])
        grads = torch.autograd.grad(score, [outputs[layer.name] for layer in scored], allow_unused=True)
        reached = {}
        for layer, grad in zip(scored, grads):
            if grad is not None and layer.class_tokens:
                grad = grad[:, layer.class_tokens :]
            reached[layer.name] = grad is not None and bool(grad.abs().sum() > 0)
        layers = [
            layer
            if not layer.usable or reached[layer.name]
            else replace(layer, problem="the class score does not depend on its positions")
            for layer in layers
        ]
    return layers


def _grid_of(tensor: Any, image_size: tuple[int, int]) -> tuple[int, int] | None:
    if tensor is None or not hasattr(tensor, "ndim"):
        return None
    if tensor.ndim == 4:
        return int(tensor.shape[2]), int(tensor.shape[3])
    if tensor.ndim == 3:
        found = token_grid(int(tensor.shape[1]), image_size)
        return found[0] if found else None
    return None


def _mid_block(name: str, grid: tuple[int, int], inputs_of: dict, outputs: dict, image_size: tuple[int, int]) -> bool:
    """True when an enclosing module takes this grid in and gives a smaller one out: the layer
    is part way through a downsampling block, not the end of one."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        ancestor = ".".join(parts[:depth])
        grid_in, grid_out = _grid_of(inputs_of.get(ancestor), image_size), _grid_of(outputs.get(ancestor), image_size)
        if grid_in == grid and grid_out is not None and grid_out[0] * grid_out[1] < grid[0] * grid[1]:
            return True
    return False


def _dependency_score(logits: Any, head_inputs: list[Any]) -> Any:
    """A scalar that depends on the input exactly where the logits can.

    A random projection of the head's input (the innermost module that returns the logits;
    it finishes first), not the logits themselves: torchvision's ViT starts with a zero
    head, whose logits depend on nothing although its features do."""
    import torch

    features = head_inputs[0] if head_inputs else None
    if features is None or not features.requires_grad or features.shape[0] != logits.shape[0]:
        return logits.max(dim=1).values.sum()
    weights = torch.randn(features.shape, generator=torch.Generator().manual_seed(1)).to(features.device)
    return (features.float() * weights).sum()


def candidate_list(layers: Sequence[CamLayer]) -> str:
    """Usable layer names for a one-line error: the automatic choice, then the outermost
    modules (blocks before their parts), later ones first; shortened."""
    usable = [layer for layer in layers if layer.usable]
    if not usable:
        return "none"
    position = {layer.name: i for i, layer in enumerate(usable)}
    ranked = sorted(usable, key=lambda layer: (layer.name.count("."), -position[layer.name]))
    automatic = _automatic(usable)
    names = [automatic.name] + [layer.name for layer in ranked if layer.name != automatic.name]
    shown = ", ".join(names[:SHOWN_CANDIDATES])
    more = len(names) - SHOWN_CANDIDATES
    return f"{shown} (and {more} more)" if more > 0 else shown


def _automatic(usable: Sequence[CamLayer]) -> CamLayer:
    spatial = [layer for layer in usable if layer.grid[0] * layer.grid[1] > 1]
    whole_blocks = [layer for layer in spatial if not layer.mid_block]
    return (whole_blocks or spatial or usable)[-1]


def choose_layer(layers: Sequence[CamLayer], name: str | None = None, *, model_name: str = "the model") -> CamLayer:
    """The layer named by --layer, or the automatic choice (see the module docstring)."""
    if name is not None:
        by_name = {layer.name: layer for layer in layers}
        if name not in by_name:
            raise UsageError(
                f"--layer {name!r}: {model_name} has no layer of that name with a spatial output; "
                f"candidates: {candidate_list(layers)}"
            )
        layer = by_name[name]
        if not layer.usable:
            raise UsageError(f"--layer {name!r}: cannot be explained because {layer.problem}; candidates: {candidate_list(layers)}")
        return layer
    usable = [layer for layer in layers if layer.usable]
    if not usable:
        raise UsageError(f"{model_name}: no layer gives a feature map or token grid to explain; pass --layer NAME")
    return _automatic(usable)


def resolve_targets(specs: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Split comma lists, drop repeats, check class names: the --target values to compute."""
    from synthmed.parsing import comma_list

    targets: list[str] = []
    for part in comma_list(specs) or []:
        if part not in TARGET_KEYWORDS and part not in classes:
            raise UsageError(
                f"--target {part!r}: not a class of the dataset; use predicted, true or one of {', '.join(classes)}"
            )
        if part not in targets:
            targets.append(part)
    if not targets:
        raise UsageError("--target: give predicted, true or a class name")
    return targets


def target_indices(target: str, *, predicted: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """The class index each image's map explains, for one --target value."""
    if target == "predicted":
        return predicted
    if target == "true":
        return labels
    return np.full_like(labels, list(classes).index(target))


class CamExtractor:
    """Maps for one layer and method, batched: `maps(x, class_indices) -> (N, H, W)` in [0, 1].

    Each map is pytorch-grad-cam's: ReLU of the method's weighted sum of activations,
    min-max scaled per image and resized bilinearly to the input size."""

    def __init__(self, model: Any, layer: CamLayer, method: str) -> None:
        import pytorch_grad_cam

        if method not in METHODS:
            raise UsageError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
        # Only activations need gradients: frozen weights save the weight-gradient work.
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        module = dict(model.named_modules())[layer.name]
        reshape = _token_reshape(layer) if layer.kind == "tokens" else None
        self._cam = getattr(pytorch_grad_cam, METHODS[method])(model=model, target_layers=[module], reshape_transform=reshape)

    def maps(self, x: Any, class_indices: Sequence[int]) -> np.ndarray:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        targets = [ClassifierOutputTarget(int(k)) for k in class_indices]
        # The input carries the gradient, since the weights do not.
        return self._cam(input_tensor=x.detach().requires_grad_(True), targets=targets)

    def close(self) -> None:
        # Not BaseCAM's context manager: its __exit__ swallows IndexError and prints to stdout.
        self._cam.activations_and_grads.release()


def _token_reshape(layer: CamLayer):
    rows, cols = layer.grid
    dropped = layer.class_tokens

    def reshape(tokens):  # (N, T, D) -> (N, D, rows, cols)
        grid = tokens[:, dropped:, :].reshape(tokens.shape[0], rows, cols, tokens.shape[2])
        return grid.permute(0, 3, 1, 2)

    return reshape


def predict(model: Any, x: Any) -> np.ndarray:
    """Softmax probabilities (N, classes) as numpy."""
    import torch

    with torch.no_grad():
        return torch.softmax(model(x).float(), dim=1).cpu().numpy()
