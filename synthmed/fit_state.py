"""Fit checkpoints for `--resume` (generator fits, training epochs): module, optimizer and
extra tensor state in one safetensors file.

Tensors go in the file's tensor table; everything else (epoch, optimizer hyper-parameters,
scalar optimizer state, the caller's `meta`) goes as JSON in its metadata, so one `os.replace`
commits a checkpoint atomically and nothing is ever pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_FILE = "fit-state.safetensors"


def save_fit_state(folder: Path, *, modules: dict[str, Any], optimizers: dict[str, Any], meta: dict[str, Any],
                   tensors: dict[str, Any] | None = None) -> None:
    """Save modules, optimizers, `meta` (JSON) and named extra `tensors` (an RNG state, the
    best epoch's weights) into `folder/fit-state.safetensors`."""
    import torch
    from safetensors.torch import save_file

    from synthmed.checkpoint import write_safetensors

    # safetensors stores dense row-major tensors only: a channels-last copy is packed first.
    def packed(value):
        return value.detach().cpu().clone(memory_format=torch.contiguous_format)

    extra = tensors or {}
    tensors = {f"extra/{key}": packed(value) for key, value in extra.items()}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = packed(value)
    optimizer_meta: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, values in state["state"].items():
            for key, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"optim/{name}/{index}/{key}"] = packed(value)
                else:
                    scalars.setdefault(str(index), {})[key] = value
        optimizer_meta[name] = {"param_groups": state["param_groups"], "scalars": scalars}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"meta": meta, "optimizers": optimizer_meta}
    write_safetensors(folder / STATE_FILE, lambda name: save_file(tensors, name, metadata={"fit_state": json.dumps(record)}))


def has_fit_state(folder: Path | None) -> bool:
    return folder is not None and (Path(folder) / STATE_FILE).is_file()


def load_fit_state(folder: Path, *, modules: dict[str, Any], optimizers: dict[str, Any],
                   tensors: dict[str, Any] | None = None) -> dict[str, Any]:
    """Restore modules and optimizers in place and fill `tensors` (a dict) with the saved extra
    tensors; returns the saved `meta`."""
    from safetensors import safe_open

    from synthmed.errors import UsageError

    path = Path(folder) / STATE_FILE
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            record = json.loads((handle.metadata() or {})["fit_state"])
            saved_tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt checkpoint
        raise UsageError(f"{path}: corrupt fit checkpoint ({type(exc).__name__}); rerun without --resume") from None
    for name, module in modules.items():
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix):]: v for k, v in saved_tensors.items() if k.startswith(prefix)})
    for name, optimizer in optimizers.items():
        saved = record["optimizers"][name]
        prefix = f"optim/{name}/"
        state: dict[int, dict[str, Any]] = {}
        for key, value in saved_tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix):].split("/", 1)
                state.setdefault(int(index), {})[field] = value  # load_state_dict moves it
        for index, values in saved["scalars"].items():
            state.setdefault(int(index), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    if tensors is not None:
        tensors.update({key[len("extra/"):]: value for key, value in saved_tensors.items() if key.startswith("extra/")})
    return record["meta"]
