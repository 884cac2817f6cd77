"""The two trained models, loaded once per app process, in the background, and shared by every session.

``start_loading()`` (called by streamlit_app.py on every run; only the first call does anything)
begins loading on a worker thread as soon as the app serves its first page, so a visitor who goes
to "Try it" finds the models ready, or nearly. The load stops at what a prediction needs; the same
thread then imports pytorch-grad-cam and draws one map (``qcnn.cams``, about 2 s on a 2-core CPU),
so predictions are ready before the maps are. ``qcnn app`` starts the load with its process;
``qcnn app --preload`` calls ``preload()`` instead, and ``hold_pages_until_loaded()``
(streamlit_app.py, before each page) then holds the first page behind a spinner until both are
done. ``get_predictor()`` returns the loaded ``qcnn.inference.Predictor``, showing a spinner while
the load finishes, or raises ``ModelsUnavailable`` with a message the page shows as a warning. The load is keyed by the
checkpoint folder and the files' modification times (the optional out-of-distribution reference's
too), so a fresh ``qcnn reproduce`` or ``qcnn ood-reference`` is picked up without restarting the app
(the old models are then dropped). A failed load is not kept: the
next call tries again. torch is imported only on the worker thread.
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
from qcnn.constants import DEFAULT_CAM_METHOD
from qcnn.errors import QcnnError

if TYPE_CHECKING:  # pragma: no cover
    from qcnn.inference import Predictor

CHECKPOINT_FILES = ("backbone.safetensors", "qcnn.safetensors", "classical.safetensors")
LOADING_MESSAGE = "Loading the QCNN and the classical control (started when the app opened)…"
PRELOAD_MESSAGE = "Loading the QCNN, the classical control and Grad-CAM before the first page (qcnn app --preload)…"

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qcnn-models")
_LOCK = threading.Lock()
_current: tuple[tuple[str, tuple[int, ...]], Future] | None = None
_hold_pages = False  # set by preload()


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


def _load(directory: str) -> Predictor:
    from qcnn.inference import Predictor

    try:
        predictor = Predictor.from_checkpoints(Path(directory), os.environ.get("QCNN_DEVICE", "cpu"))
        predictor.warm_up()  # the first user should not pay for first-call allocations (the maps: later)
        return predictor
    except (QcnnError, FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        raise ModelsUnavailable(
            f"The checkpoints in `{directory}` could not be loaded ({err}). Run `qcnn reproduce` to "
            "train and export both models again."
        ) from err


def _prepare_cams(load: Future) -> None:
    """After the models: pytorch-grad-cam's import and one map, so the first user's map waits for neither."""
    with contextlib.suppress(ModelsUnavailable):  # the load's own failure is reported by get_predictor
        load.result().warm_up(cam_method=DEFAULT_CAM_METHOD)


def _future() -> Future:
    """The load of the current checkpoints: running, done, or started now (then the CAMs' preparation)."""
    global _current
    directory = paths.checkpoint_dir()
    key = (str(directory), _stamps(directory))
    with _LOCK:
        if _current is None or _current[0] != key:
            _current = (key, _EXECUTOR.submit(_load, key[0]))
            _EXECUTOR.submit(_prepare_cams, _current[1])  # one worker: it runs once the load is done
        return _current[1]


def check_available() -> None:
    """Raise ``ModelsUnavailable`` when a checkpoint file is missing (cheap: no loading)."""
    _stamps(paths.checkpoint_dir())


def start_loading() -> None:
    """Begin loading the models in the background; returns at once (missing checkpoints: nothing to do)."""
    with contextlib.suppress(ModelsUnavailable):
        _future()


def preload() -> None:
    """``start_loading``, and every page waits for the load (``hold_pages_until_loaded``): ``qcnn app --preload``."""
    global _hold_pages
    _hold_pages = True
    start_loading()


def hold_pages_until_loaded() -> None:
    """After ``preload``: a spinner until the models and the maps' library are loaded, then nothing, ever.

    The server answers at once and the visitor sees why the page waits; from then on every page, Try it
    and Grad-CAM included, is warm. A failed load is left for the pages to report, as without waiting.
    """
    global _hold_pages
    if not _hold_pages:
        return
    with st.spinner(PRELOAD_MESSAGE, show_time=True):
        with contextlib.suppress(ModelsUnavailable):
            _future().result()
        _EXECUTOR.submit(lambda: None).result()  # one worker, in order: done once the CAMs' preparation is
    _hold_pages = False


def is_loaded() -> bool:
    try:
        future = _future()
    except ModelsUnavailable:
        return False
    return future.done() and future.exception() is None


def get_predictor() -> Predictor:
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
