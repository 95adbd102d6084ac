"""Shared fixtures: a tiny sample dataset and an in-process CLI runner."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Installed third-party plugins must not change what the tests see, except where a test asks.
os.environ.setdefault("SYNTHMED_PLUGINS", "")
# Feature encoders the quality report fits are cached here, not in the user's cache.
os.environ.setdefault("SYNTHMED_CACHE_DIR", tempfile.mkdtemp(prefix="synthmed-test-cache-"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _torch_threads_kept():
    """A test that changes torch's thread count gets it put back: left changed, every later
    in-process run differs in the last digit from the same run in a subprocess, which the
    kill-and-rerun tests compare byte for byte."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys):
    """Run `synthmed ARGS...` in-process; returns exit code, stdout and stderr."""
    from synthmed.cli import main

    def _run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """A tiny sample dataset (32 px, 265 images) shared by the session. Do not modify it."""
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(tmp_path_factory.mktemp("sample") / "data", size=32, scale=0.05, seed=0)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """The sample dataset at 16 px (265 images), for tests that train many times (studies).
    Do not modify it."""
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(tmp_path_factory.mktemp("tiny") / "data", size=16, scale=0.05, seed=0)


@pytest.fixture
def fresh_plugins():
    """Reload plugins before and after a test that changes SYNTHMED_PLUGINS or installs plugins."""
    from synthmed.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (see ../shared/data/README.md)")
    return path
