"""`torchrun --nproc_per_node 2 -m synthmed train`: real DistributedDataParallel with gloo on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_train_the_same_model_as_one(run, sample_dataset, tmp_path):
    from safetensors.torch import load_file

    args = ["train", str(sample_dataset), "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--seed", "5",
            "--quiet"]
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "SYNTHMED_PLUGINS": ""}
    out = tmp_path / "ddp"
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "synthmed", *args, "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == f"{out}\n"  # only rank 0 prints
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["processes"] == 2

    # Each rank trained on its half of every batch; the averaged gradients are those of one process.
    assert run(*args, "-o", tmp_path / "single").code == 0
    ddp, single = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "single" / "model.safetensors"))
    assert all(torch.allclose(ddp[k], single[k], atol=1e-4) for k in single)
    assert config["training"]["best_val_loss"] == pytest.approx(
        json.loads((tmp_path / "single" / "config.json").read_text())["training"]["best_val_loss"], rel=1e-4)
