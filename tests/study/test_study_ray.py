"""The Ray executor against a real local Ray started here on 127.0.0.1: the same results as in
this process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from study_helpers import TINY_TRAIN, write_study

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'synthmed[ray]')")

BODY = """repeats = 2
controls = ["without", "steps"]

[sources.flips]
augment = "hflip"

[axes]
synthetic = [0.3]
synthetic_classes = [["MildDemented"]]
""" + TINY_TRAIN


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_ray():
    """`ray start --head` on 127.0.0.1 (2 CPUs); its address; stopped afterwards."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must stay under 108 characters
    ray_cli = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    start = [*ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_gives_the_results_of_the_in_process_executor(run, tiny_dataset, tmp_path, local_ray):
    import torch

    study = write_study(tmp_path, tiny_dataset, BODY)
    # Ray runs a 1-CPU task with OMP_NUM_THREADS=1, and training at another thread count differs
    # in the last digits; the in-process reference runs with one thread too.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run("study", study, "-o", tmp_path / "local", "--json", "--quiet")
    finally:
        torch.set_num_threads(threads)
    assert local.code == 0, local.err
    remote = run("study", study, "-o", tmp_path / "ray", "--executor", "ray", "--address", local_ray, "--json")
    assert remote.code == 0, remote.err
    assert json.loads(remote.out)["computed"] == 6  # scenario, without, steps-matched: 2 repeats each
    assert (tmp_path / "ray" / "results.csv").read_bytes() == (tmp_path / "local" / "results.csv").read_bytes()


def test_ray_options_need_the_ray_executor(run, tiny_dataset, tmp_path):
    from study_helpers import one_error_line

    line = one_error_line(run("study", write_study(tmp_path, tiny_dataset, BODY), "-o", tmp_path / "out",
                              "--address", "127.0.0.1:1"))
    assert "--executor ray" in line and not (tmp_path / "out").exists()
