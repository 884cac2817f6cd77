"""The two trained models, loaded once per app process, in the background, and shared by every session.

The models live in a worker process (``qcnn.model_server``): torch's import and the CAMs' work never
hold this process's GIL, so pages stay fast while the models load and while someone runs ScoreCAM.
``start_loading()`` (called by streamlit_app.py on every run, and by ``qcnn app`` as the process
starts; only the first call does anything) launches the worker, so a visitor who goes to "Try it"
finds the models ready, or nearly. ``get_predictor()`` returns the worker's
``qcnn.model_server.RemotePredictor``, showing a spinner while the load finishes, or raises
``ModelsUnavailable`` with a message the page shows as a warning. The load is keyed by the
checkpoint folder and the files' modification times (the optional out-of-distribution reference's
too), so a fresh ``qcnn reproduce`` or ``qcnn ood-reference`` is picked up without restarting the app
(the old worker is then stopped). A failed load is not kept: the next call tries again. This
process never imports torch for the models.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from qcnn import paths

if TYPE_CHECKING:  # pragma: no cover
    from qcnn.model_server import RemotePredictor

CHECKPOINT_FILES = ("backbone.safetensors", "qcnn.safetensors", "classical.safetensors")
LOADING_MESSAGE = "Loading the QCNN and the classical control (started when the app opened)…"

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qcnn-models")
_LOCK = threading.Lock()
_current: tuple[tuple[str, tuple[int, ...]], Future] | None = None


class ModelsUnavailable(RuntimeError):
    """The trained checkpoints are missing or unusable; the message says what to run."""


def _stamps(directory: Path) -> tuple[int, ...]:
    missing = [name for name in CHECKPOINT_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelsUnavailable(
            f"The trained models are not available yet: {', '.join(missing)} missing in `{directory}`. "
            "Run `qcnn reproduce` to train and export both models (or set `QCNN_CHECKPOINT_DIR` to a "
            "folder holding them)."
        )
    optional = directory / paths.OOD_REFERENCE_FILE
    return (
        *((directory / name).stat().st_mtime_ns for name in CHECKPOINT_FILES),
        optional.stat().st_mtime_ns if optional.is_file() else 0,
    )


def _load(directory: str) -> RemotePredictor:
    """A worker for these checkpoints, returned once its models are loaded."""
    from qcnn import model_server

    predictor = None
    try:
        predictor = model_server.start(directory, os.environ.get("QCNN_DEVICE", "cpu"))
        predictor.wait()
        return predictor
    except model_server.ModelServerError as err:
        if predictor is not None:
            predictor.close()
        raise ModelsUnavailable(str(err)) from err


def _close_when_loaded(future: Future) -> None:
    """The worker of replaced checkpoints: stopped once its load has finished (it may still be loading)."""
    if future.exception() is None:
        future.result().close()


def _future() -> Future:
    """The load of the current checkpoints: running, done, or started now."""
    global _current
    directory = paths.checkpoint_dir()
    key = (str(directory), _stamps(directory))
    with _LOCK:
        if _current is None or _current[0] != key:
            if _current is not None:
                _current[1].add_done_callback(_close_when_loaded)
            _current = (key, _EXECUTOR.submit(_load, key[0]))
        return _current[1]


def check_available() -> None:
    """Raise ``ModelsUnavailable`` when a checkpoint file is missing (cheap: no loading)."""
    _stamps(paths.checkpoint_dir())


def start_loading() -> None:
    """Begin loading the models in the background; returns at once (missing checkpoints: nothing to do)."""
    with contextlib.suppress(ModelsUnavailable):
        _future()


def is_loaded() -> bool:
    try:
        future = _future()
    except ModelsUnavailable:
        return False
    return future.done() and future.exception() is None


def get_predictor() -> RemotePredictor:
    """The shared predictor, waiting (with a spinner) for the background load; raises ``ModelsUnavailable``."""
    global _current
    future = _future()
    if not future.done():
        with st.spinner(LOADING_MESSAGE, show_time=True):
            future.result()  # raises as below if the load failed
    try:
        return future.result()
    except ModelsUnavailable:
        with _LOCK:
            if _current is not None and _current[1] is future:
                _current = None  # retry on the next call
        raise
