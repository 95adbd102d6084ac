"""What the built-in class-conditional generators share: the epoch loop, fit checkpoints,
model folders, and seeded per-image sampling.

Beyond `synthmed.protocols.ClassConditionalGenerator` they have every optional capability
declared there: `ResumableFit` (`fit(..., num_classes=, state_dir=)`), `StopsOnTime`,
`SelectsCheckpoint`, `CountsFitSteps`, `SamplesPerSeed`, `ChecksSize` and `LoadsModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from synthmed import __version__
from synthmed.seeding import derive_seed

MIN_BATCH = 2  # batch norm cannot train on a batch of one
LOSS_EVERY = 10  # steps between the losses shown: reading one waits for the device to catch up


def positive_ints(**values: Any) -> tuple[int, ...]:
    """The values as ints, refusing any under 1 by name (network widths and sizes)."""
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer (got {value})")
    return tuple(int(value) for value in values.values())


class FittedGenerator:
    """Subclasses set `name` and implement `_arch_extra`, `_build`, `_training_setup`,
    `_train_step` and `_generate`."""

    name = ""
    version = __version__
    resumable_fit = True  # synthmed.protocols.ResumableFit
    stops_on_time = True  # synthmed.protocols.StopsOnTime
    selects_checkpoint = True  # synthmed.protocols.SelectsCheckpoint
    epochs_done = 0
    selected_epoch: int | None = None  # the epoch whose weights the fit ended with
    scaler: Any = None  # a torch.amp.GradScaler where a subclass trains in fp16; kept in fit checkpoints

    def __init__(self, *, batch_size: int = 32, lr: float = 1e-4) -> None:
        if batch_size < MIN_BATCH:
            raise ValueError(f"batch_size must be at least {MIN_BATCH}")
        if lr <= 0:
            raise ValueError("lr must be positive")
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.arch: dict[str, Any] | None = None
        self.net: Any = None  # the network used for sampling

    # ---- to implement

    def _arch_extra(self, image_size: tuple[int, int]) -> dict[str, Any]:
        """Architecture facts beyond size, channels and classes (saved in config.json)."""
        return {}

    def _build(self, arch: dict[str, Any]) -> None:
        """Create `self.net` (on the CPU) from `arch`."""
        raise NotImplementedError

    def _training_setup(self, device: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Training-only networks and optimizers: (modules, optimizers) by name, for fit checkpoints."""
        raise NotImplementedError

    def _train_step(self, group: Any, images: Any, labels: Any, device: Any) -> dict[str, Any]:
        """One optimizer step on float images in [-1, 1]; returns losses to show, as detached
        0-d tensors (read on the host only now and then: each read waits for the device)."""
        raise NotImplementedError

    def _finish_fit(self) -> None:
        """Called once the last epoch is done (for example to keep the EMA weights)."""

    def _generate(self, class_index: int, noises: Sequence[Any], device: Any) -> Any:
        """Float images in [-1, 1] (N, C, H, W) from per-image CPU generators."""
        raise NotImplementedError

    def _groups(self, labels: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        """Subsets fitted one after another within an epoch: all images by default."""
        return [(None, np.arange(len(labels)))]

    # ---- fitting

    def check_size(self, image_size: tuple[int, int], channels: int) -> None:
        """Raise ValueError when this generator cannot make images of this size."""
        self._arch_extra(tuple(image_size))

    def fit_steps(self, labels: np.ndarray, epochs: int) -> int:
        steps = 0
        for _, indices in self._groups(labels):
            full, rest = divmod(len(indices), self.batch_size)
            steps += full + (1 if rest >= MIN_BATCH else 0)
        return steps * epochs

    def fit(self, images: np.ndarray, labels: np.ndarray, *, epochs: int, device: Any, seed: int,
            progress: Callable[..., None] | None = None, num_classes: int | None = None,
            state_dir: Path | None = None, minutes: float | None = None, check: Any = None) -> None:
        """`check`: a `synthmed.generate.selection.FitCheck`, called after every epoch it says is
        due (and after the last one) with the sampling network in place; it keeps the best
        weights, which the fit ends with, and may stop the fit early. `fit_history` gets one
        row per epoch (steps so far, mean losses)."""
        import time

        import torch

        from synthmed.batches import pixels_on_device, to_unit_float
        from synthmed.devices import holds_data
        from synthmed.errors import UsageError
        from synthmed.fit_state import (
            has_fit_state,
            load_fit_state,
            save_fit_state,
        )

        labels = np.asarray(labels, dtype=np.int64)
        image_size = (int(images.shape[2]), int(images.shape[3]))
        self.arch = {
            "channels": int(images.shape[1]),
            "image_size": list(image_size),
            "num_classes": int(num_classes if num_classes is not None else labels.max() + 1),
            "fitted_classes": sorted({int(k) for k in labels}),
            **self._arch_extra(image_size),
        }
        torch.manual_seed(derive_seed(seed, "init"))
        self._build(self.arch)
        self.net.to(device)
        modules, optimizers = self._training_setup(device)
        start, stopped = 0, False
        self.fit_history: list[dict[str, Any]] = []
        if has_fit_state(state_dir):
            saved: dict[str, Any] = {}
            meta = load_fit_state(state_dir, modules=modules, optimizers=optimizers, tensors=saved)
            if meta.get("arch") != self.arch or meta.get("seed") != seed:
                raise UsageError(f"{state_dir}: the fit checkpoint was made with other data, seed or generator arguments; rerun without --resume")
            if (check is None) != (meta.get("check") is None):
                raise UsageError(f"{state_dir}: the fit checkpoint was made with other best-checkpoint options; rerun without --resume")
            start, stopped = int(meta["epoch"]), bool(meta.get("stopped"))
            self.fit_history = list(meta.get("history") or [])
            if check is not None:
                check.restore(meta["check"], saved)
            if meta.get("scaler") and self.scaler is not None:
                self.scaler.load_state_dict(meta["scaler"])  # an fp16 fit resumes at its loss scale
        # Stored pixels (uint8, or 16-bit as int32) on the device when they fit beside the model,
        # else on the host; each batch becomes float in [-1, 1] on the device.
        stored_bytes = images.nbytes * (2 if images.dtype == np.uint16 else 1)
        data = pixels_on_device(images, device if holds_data(device, stored_bytes) else "cpu")
        targets = torch.from_numpy(labels).to(device)
        groups = self._groups(labels)
        if progress is not None and start:
            progress(self.fit_steps(labels, start))
        began = time.monotonic()
        steps = self.fit_history[-1]["steps"] if self.fit_history else 0
        self.epochs_done = start
        for epoch in range(start, epochs):
            if stopped:
                break
            if minutes is not None and epoch > start:
                spent = time.monotonic() - began
                if spent + spent / (epoch - start) > minutes * 60:  # the next epoch would end too late
                    break
            # Re-seeding per epoch makes a resumed fit draw what an uninterrupted one would.
            torch.manual_seed(derive_seed(seed, "fit", epoch))
            sums: dict[str, Any] = {}  # loss sums stay on the device: read once per epoch
            epoch_steps = 0
            for group, indices in groups:
                order = torch.from_numpy(indices)[torch.randperm(len(indices))]
                for chunk in order.split(self.batch_size):
                    if len(chunk) < MIN_BATCH:
                        continue
                    batch = to_unit_float(data[chunk.to(data.device)], device=device) * 2 - 1
                    losses = self._train_step(group, batch, targets[chunk.to(device)], device)
                    for name, value in losses.items():
                        sums[name] = sums[name] + value if name in sums else value
                    epoch_steps += 1
                    if progress is None:
                        continue
                    if (steps + epoch_steps) % LOSS_EVERY == 0:
                        progress(1, **{name: float(value) for name, value in losses.items()})
                    else:
                        progress(1)
            steps += epoch_steps
            self.fit_history.append({"epoch": epoch + 1, "steps": steps,
                                     "losses": {k: float(v) / max(epoch_steps, 1) for k, v in sums.items()}})
            if check is not None and check.due(epoch + 1):
                stopped = self._check(check, epoch + 1, seed)
            if state_dir is not None:
                scaler = self.scaler.state_dict() if self.scaler is not None and self.scaler.is_enabled() else None
                check_meta, check_tensors = check.state() if check is not None else (None, {})
                save_fit_state(state_dir, modules=modules, optimizers=optimizers, tensors=check_tensors,
                               meta={"epoch": epoch + 1, "arch": self.arch, "seed": seed, "scaler": scaler,
                                     "history": self.fit_history, "check": check_meta, "stopped": stopped})
            self.epochs_done = epoch + 1
        if check is not None and self.epochs_done and self.epochs_done not in check.scores:
            self._check(check, self.epochs_done, seed)  # the last weights are a candidate too
        torch.manual_seed(derive_seed(seed, "finish"))
        self._finish_fit()
        self.selected_epoch = self.epochs_done
        if check is not None and check.best_weights is not None:
            self.net.load_state_dict(check.best_weights)
            self.selected_epoch = check.best_epoch
        self.net.eval()

    def _check(self, check: Any, epoch: int, seed: int) -> bool:
        """`check(epoch, self)` with the network `_finish_fit` would leave in `self.net`, then
        the fit's own state back: `_finish_fit` may swap attributes (EMA weights in place of
        the trained ones), drop training networks or recompute buffers (standing statistics)."""
        import torch

        attributes = dict(self.__dict__)
        trained = {k: v.clone() for k, v in self.net.state_dict().items()}
        modes = [(m, m.training) for value in attributes.values() if isinstance(value, torch.nn.Module)
                 for m in value.modules()]
        torch.manual_seed(derive_seed(seed, "finish"))  # as at the end of a fit: the same network
        self._finish_fit()
        try:
            stop = check(epoch, self)
        finally:
            self.__dict__.clear()
            self.__dict__.update(attributes)
            self.net.load_state_dict(trained)
            for module, training in modes:
                module.training = training
        return stop

    # ---- sampling

    def sample_seeds(self, class_index: int, seeds: Sequence[int], *, device: Any) -> np.ndarray:
        """uint8 (len(seeds), C, H, W); image i depends only on seeds[i]."""
        import torch

        if self.net is None or self.arch is None:
            raise RuntimeError(f"{self.name}: fit or load a model before sampling")
        if class_index not in self.arch["fitted_classes"]:
            raise ValueError(f"{self.name}: the model was not fitted on class index {class_index}")
        noises = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        self.net.to(device).eval()
        with torch.no_grad():
            images = self._generate(class_index, noises, device)
        return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()

    def sample(self, class_index: int, count: int, *, seed: int, device: Any) -> np.ndarray:
        return self.sample_seeds(class_index, [derive_seed(seed, class_index, i) for i in range(count)], device=device)

    # ---- model folders

    def save(self, folder: Path) -> None:
        from synthmed.checkpoint import save_checkpoint

        save_checkpoint(Path(folder), self.net, {"kind": "generator", "arch": self.arch})

    def load(self, folder: Path) -> None:
        from synthmed.checkpoint import load_weights, read_config

        config = read_config(Path(folder), kind="generator")
        self.arch = config["arch"]
        self._build(self.arch)
        load_weights(self.net, Path(folder))
        self.net.eval()

    def to(self, device: Any) -> "FittedGenerator":
        self.net.to(device)
        return self


def standing_statistics(net: Any, draw_inputs: Callable[[], tuple], *, batches: int = 16) -> None:
    """Recompute batch-norm running statistics as averages over `batches` generated batches
    (BigGAN's "standing statistics"). Sampling runs the network in eval mode, so an image
    depends only on its own noise; after a short fit the running averages still remember
    their initial values, and eval-mode outputs would be flat grey."""
    import torch
    from torch import nn

    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for _ in range(batches):
            net(*draw_inputs())
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    net.eval()


def noise_batch(noises: Sequence[Any], shape: Sequence[int], device: Any) -> Any:
    """One standard-normal tensor per CPU generator, stacked and moved to `device`, so the
    noise of an image is the same on every device and in every batch."""
    import torch

    return torch.stack([torch.randn(*shape, generator=g) for g in noises]).to(device)
