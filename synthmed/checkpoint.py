"""Model folders: `model.safetensors` + `config.json`. Nothing is ever unpickled.

config.json holds what is needed to rebuild the module through the registry:

    {"format_version": 1, "kind": "classifier", "name": "cnn-basic", "plugin": ..., "version": ...,
     "args": {...factory keyword arguments...}, "classes": [...], "image_size": [H, W],
     "channels": C, "normalization": {"mean": [...], "std": [...]}, ...extra}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthmed.errors import UsageError
from synthmed.jsonio import read_json, write_json

CHECKPOINT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_checkpoint(folder: Path, module: Any, config: dict[str, Any]) -> None:
    """Write `module`'s weights and `config` into `folder` (created if needed)."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # save_model (not save_file) handles tied weights, which safetensors otherwise refuses.
    save_model(module, str(folder / WEIGHTS))
    write_json(folder / CONFIG, {"format_version": CHECKPOINT_VERSION, **config})


def read_config(folder: Path, *, kind: str | None = None) -> dict[str, Any]:
    """config.json of a model folder, checked for version and (optionally) kind."""
    folder = Path(folder)
    path = folder / CONFIG
    config = read_json(path, what="a model folder", where=str(folder), format_version=CHECKPOINT_VERSION)
    if kind is not None and config.get("kind") != kind:
        raise UsageError(f"{folder}: holds a {config.get('kind')!r} model, not a {kind}")
    return config


def load_weights(module: Any, folder: Path) -> None:
    """Load `model.safetensors` into `module` (strict); a corrupt file is a one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise UsageError(f"{Path(folder)}: no {WEIGHTS}")
    try:
        missing, unexpected = load_model(module, str(path), strict=False)
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: corrupt or unreadable weights ({str(exc).splitlines()[0]})") from None
    except RuntimeError as exc:
        raise UsageError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0]})") from None
    if missing or unexpected:
        problem = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise UsageError(f"{path}: weights do not fit the model ({problem})")


def load_checkpoint(folder: Path, *, kind: str) -> tuple[Any, dict[str, Any]]:
    """Rebuild a registered model from its folder: (module in eval mode, config)."""
    from synthmed.registry import get_entry

    config = read_config(folder, kind=kind)
    entry = get_entry(kind, config["name"], warn_alias=False)  # a folder saved under an old name
    module = entry.factory(**config.get("args", {}))
    load_weights(module, folder)
    module.eval()
    return module, config


def model_folders(run: Path) -> list[Path]:
    """The model folders of a training RUN: the RUN itself when it holds config.json,
    else its `run-XX/` subfolders (one per repeat), sorted."""
    run = Path(run)
    if (run / CONFIG).is_file():
        return [run]
    folders = sorted(p for p in run.glob("run-*") if (p / CONFIG).is_file())
    if not folders:
        raise UsageError(f"{run}: not a training run (no config.json, no run-*/ folders)")
    return folders


def load_classifier(run: Path) -> tuple[Any, dict[str, Any]]:
    """The classifier of a model folder, or the first repeat of a RUN: (module, config)."""
    return load_checkpoint(model_folders(run)[0], kind="classifier")
