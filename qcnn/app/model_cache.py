"""The two trained models, loaded once per app process and shared by every session.

``get_predictor()`` returns the cached ``qcnn.inference.Predictor`` or raises ``ModelsUnavailable``
with a message the page shows as a warning. The cache is keyed by the checkpoint folder and the
files' modification times, so a fresh ``qcnn reproduce`` is picked up without
restarting the app (the old models are then dropped: one entry only). torch is imported only
when the models are first loaded.
"""

from __future__ import annotations

import os

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from qcnn import paths
from qcnn.errors import QcnnError

if TYPE_CHECKING:  # pragma: no cover
    from qcnn.inference import Predictor

CHECKPOINT_FILES = ("backbone.safetensors", "qcnn.safetensors", "classical.safetensors")


class ModelsUnavailable(RuntimeError):
    """The trained checkpoints are missing or unusable; the message says what to run."""


def _stamps(directory: Path) -> tuple[int, ...]:
    missing = [name for name in CHECKPOINT_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelsUnavailable(
            f"The trained models are not available yet: {', '.join(missing)} missing in `{directory}`. "
            "Run `qcnn reproduce` to train and export both models (or set `QCNN_CHECKPOINT_DIR` to a "
            "folder holding them).")
    return tuple((directory / name).stat().st_mtime_ns for name in CHECKPOINT_FILES)


@st.cache_resource(show_spinner="Loading the QCNN and the classical control…", max_entries=1)
def _load_predictor(directory: str, stamps: tuple[int, ...]) -> Predictor:
    from qcnn.inference import Predictor

    try:
        predictor = Predictor.from_checkpoints(Path(directory), os.environ.get("QCNN_DEVICE", "cpu"))
        predictor.warm_up()  # the first user should not pay for first-call allocations
        return predictor
    except (QcnnError, FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        raise ModelsUnavailable(
            f"The checkpoints in `{directory}` could not be loaded ({err}). Run `qcnn reproduce` to "
            "train and export both models again.") from err


def get_predictor() -> Predictor:
    """The shared predictor; raises ``ModelsUnavailable`` (a failed load is not cached)."""
    directory = paths.checkpoint_dir()
    return _load_predictor(str(directory), _stamps(directory))
