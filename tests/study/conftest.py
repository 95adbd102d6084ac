"""A 16 px sample dataset for the study tests (a repeat trains in well under a second)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Sample data at 16 px (265 images); do not modify it."""
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(tmp_path_factory.mktemp("tiny") / "data", size=16, scale=0.05, seed=0)
