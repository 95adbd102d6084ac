"""Model folders: `model.safetensors` + `config.json`. Nothing is ever unpickled.

config.json holds what is needed to rebuild the module through the registry:

    {"format_version": 1, "kind": "classifier", "name": "cnn-basic", "plugin": ..., "version": ...,
     "args": {...factory keyword arguments...}, "classes": [...], "image_size": [H, W],
     "channels": C, "normalization": {"mean": [...], "std": [...]}, ...extra}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from synthmed.errors import UsageError
from synthmed.jsonio import read_json, write_json

CHECKPOINT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def write_safetensors(path: Path, save: Callable[[str], None]) -> None:
    """Run a safetensors writer (`save(filename)`) into a scratch file, make its header
    deterministic and its mode the usual one, then rename it into place.

    safetensors writes its `__metadata__` in hash order and creates files 0600; equal tensors
    must give equal files, readable like every other output. Sorting the header's keys by hand
    is what no safetensors API offers; tensor data and offsets are left as they are."""
    path = Path(path)
    scratch = path.with_name(path.name + ".tmp")
    save(str(scratch))
    with open(scratch, "r+b") as handle:
        length = int.from_bytes(handle.read(8), "little")
        raw = handle.read(length)
        header = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        padded = header + b" " * (-(8 + len(header)) % 8)
        if len(padded) == length:
            handle.seek(8)
            handle.write(padded)
        else:  # another JSON writer's escaping: rebuild the file around the new header
            data = handle.read()
            handle.seek(0)
            handle.write(len(padded).to_bytes(8, "little") + padded + data)
            handle.truncate()
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(scratch, 0o666 & ~umask)
    os.replace(scratch, path)


def save_checkpoint(folder: Path, module: Any, config: dict[str, Any]) -> None:
    """Write `module`'s weights and `config` into `folder` (created if needed); config.json
    records the sha256 of the weights, which loading verifies."""
    from safetensors.torch import save_model

    from synthmed.data.imageio import sha256_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # The architecture is also stored in the weights, so a config.json naming another one is caught.
    metadata = {key: str(config[key]) for key in ("kind", "name") if config.get(key)}
    # save_model (not save_file) handles tied weights, which safetensors otherwise refuses.
    write_safetensors(folder / WEIGHTS, lambda name: save_model(module, name, metadata=metadata))
    write_json(folder / CONFIG, {"format_version": CHECKPOINT_VERSION, **config, "sha256": sha256_file(folder / WEIGHTS)})


def read_config(folder: Path, *, kind: str | None = None) -> dict[str, Any]:
    """config.json of a model folder, checked for version and (optionally) kind."""
    folder = Path(folder)
    path = folder / CONFIG
    config = read_json(path, what="a model folder", where=str(folder), format_version=CHECKPOINT_VERSION)
    if kind is not None and config.get("kind") != kind:
        raise UsageError(f"{folder}: holds a {config.get('kind')!r} model, not a {kind}")
    return config


def check_weights(folder: Path, config: dict[str, Any]) -> None:
    """The weights file is the one config.json was written with (sha256) and holds the
    architecture config.json names; a one-line UsageError otherwise."""
    from safetensors import safe_open

    from synthmed.data.imageio import sha256_file

    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise UsageError(f"{Path(folder)}: no {WEIGHTS}")
    if config.get("sha256") and sha256_file(path) != config["sha256"]:
        raise UsageError(f"{path}: does not match the sha256 recorded in {CONFIG} (changed or corrupt); "
                         "refit the model or restore the file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = handle.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - any reader failure means unreadable weights
        raise UsageError(f"{path}: corrupt or unreadable weights ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    for key in ("kind", "name"):
        if stored.get(key) and config.get(key) and stored[key] != config[key]:
            raise UsageError(f"{path}: holds the weights of {key} {stored[key]!r}, but {CONFIG} expects "
                             f"{config[key]!r}; the two files come from different models")


def load_weights(module: Any, folder: Path, config: dict[str, Any] | None = None) -> None:
    """Load `model.safetensors` into `module` (strict) after `check_weights` (with `config`, or
    the folder's config.json when there is one); a mismatch is a one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    folder = Path(folder)
    path = folder / WEIGHTS
    if config is None and (folder / CONFIG).is_file():
        config = read_config(folder)
    check_weights(folder, config or {})
    expected = (config or {}).get("name") or type(module).__name__
    try:
        missing, unexpected = load_model(module, str(path), strict=False)
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: corrupt or unreadable weights ({str(exc).splitlines()[0]})") from None
    except RuntimeError as exc:
        raise UsageError(f"{path}: weights do not fit a {expected} built from {CONFIG} "
                         f"({str(exc).splitlines()[0]})") from None
    if missing or unexpected:
        found = f"{len(missing)} tensor(s) missing (first {sorted(missing)[0]!r})" if missing else \
            f"{len(unexpected)} unexpected tensor(s) (first {sorted(unexpected)[0]!r})"
        raise UsageError(f"{path}: weights do not fit a {expected} built from {CONFIG}: {found}")


def load_checkpoint(folder: Path, *, kind: str) -> tuple[Any, dict[str, Any]]:
    """Rebuild a registered model from its folder: (module in eval mode, config)."""
    from synthmed.registry import get_entry

    config = read_config(folder, kind=kind)
    entry = get_entry(kind, config["name"], warn_alias=False)  # a folder saved under an old name
    check_weights(folder, config)
    try:
        module = entry.factory(**config.get("args", {}))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{Path(folder) / CONFIG}: its arguments do not build a {config['name']} ({exc})") from None
    load_weights(module, folder, config)
    module.eval()
    return module, config


def model_folders(run: Path | Sequence[Path]) -> list[Path]:
    """The model folders of a training RUN: the RUN itself when it holds config.json,
    else its `run-XX/` subfolders (one per repeat), sorted.

    Several RUNs are the shards of one `train --shard K/N` run: they must record the same
    options (the shard aside) and the same dataset, and hold distinct repeats; their folders
    are returned in repeat order."""
    runs = [Path(run)] if isinstance(run, (str, os.PathLike)) else [Path(r) for r in run]
    if len(runs) > 1:
        from synthmed.data.resume import check_same_run

        check_same_run(runs)
    found: dict[int, Path] = {}
    for one in runs:
        if (one / CONFIG).is_file():
            folders = [one]
        else:
            folders = sorted(p for p in one.glob("run-*") if (p / CONFIG).is_file())
        if not folders:
            raise UsageError(f"{one}: not a training run (no config.json, no run-*/ folders)")
        if len(runs) == 1:
            return folders
        for folder in folders:
            repeat = int((read_config(folder).get("training") or {}).get("repeat", 0))
            if repeat in found:
                raise UsageError(f"repeat {repeat} is in both {found[repeat]} and {folder}; give each shard once")
            found[repeat] = folder
    return [found[repeat] for repeat in sorted(found)]


def load_classifier(run: Path) -> tuple[Any, dict[str, Any]]:
    """The classifier of a model folder, or the first repeat of a RUN: (module, config)."""
    return load_checkpoint(model_folders(run)[0], kind="classifier")
