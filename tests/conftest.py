"""Shared fixtures: a small real slice of HAM10000, and the torchvision remedy before anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import qcnn.compat  # noqa: F401  (before any torchvision import in the tests)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000_200x150"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data set: $QCNN_DATA_DIR, else ../shared/data/ham10000_200x150 beside the repo."""
    path = Path(os.environ.get("QCNN_DATA_DIR", DEFAULT_DATA_DIR))
    if not (path / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"HAM10000 not found at {path}; set QCNN_DATA_DIR")
    return path
