"""Class-activation maps through pytorch-grad-cam: one model, one image, one method.

A module of its own so that a prediction never waits for pytorch-grad-cam, which imports scikit-learn,
SciPy and OpenCV (about 2 s of a fresh process on a 2-core CPU): ``qcnn.inference`` imports it when
the first map is asked for, and the app's loader right after the models (``qcnn.app.model_cache``).

The maps are on the same layer for both models: the output of ``model.layer3``, the 14 x 14 grid of
256-channel patches the quantum layer (or its classical control) sees, targeting the malignancy
logit. How one call avoids duplicate work and stays safe when several users share the cached models:

- layer3 runs under ``no_grad`` inside a small per-call module (``_Layer3Output``) whose output is
  a fresh leaf tensor that requires grad: gradients flow from the logit back to the layer3 output
  and stop there (nothing is computed for weights), and pytorch-grad-cam's hooks are registered
  on that per-call module, never on the shared model, so one user's CAM cannot see another's
  activations. The CAM object is created per call and released by its context manager;
- the CAM's own forward pass records the logit, the per-patch distributions and the pooled features
  on the way, so one forward (and, for the gradient methods, one backward through the head) gives
  them all; conv1..layer2's output, when the caller has it, is reused for the image itself;
- the caller (``Predictor``) holds the model's lock for the whole call, so nothing depends on
  pytorch-grad-cam being re-entrant.

ScoreCAM's batches report to the calling thread's progress callback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

import qcnn.compat  # noqa: F401  (must precede pytorch_grad_cam, which imports torchvision)
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam import score_cam as score_cam_module
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from qcnn.models import LesionClassifier

CAM_CLASSES = {
    "GradCAM": GradCAM,
    "GradCAM++": GradCAMPlusPlus,
    "HiResCAM": HiResCAM,
    "XGradCAM": XGradCAM,
    "LayerCAM": LayerCAM,
    "EigenCAM": EigenCAM,
    "ScoreCAM": ScoreCAM,
}
# EigenCAM's SVD (NumPy, 196 x 256) takes ~10 ms on one thread, but over a second when OpenBLAS's
# threads compete with torch's on a busy 2-core machine: it runs with one BLAS thread. The limit
# is process-wide, so a lock keeps two calls from restoring each other's setting out of order.
SINGLE_BLAS_THREAD_METHODS = ("EigenCAM",)
_BLAS_LOCK = threading.Lock()

# Gradient-free methods: ScoreCAM runs the model once per layer3 channel (256 masked images).
SCORECAM_BATCH = 64
_PROGRESS = threading.local()  # .report: Callable[[float], None] | None, the current call's, on its own thread


@contextmanager
def _single_blas_thread(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        yield
        return
    with _BLAS_LOCK, threadpool_limits(limits=1, user_api="blas"):
        yield


class _ProgressTqdm:
    """ScoreCAM wraps its batches in ``tqdm.tqdm``: instead of a bar in the server's log, each batch done
    reports the fraction of this model's batches to the calling thread's ``_PROGRESS.report``, if any."""

    @staticmethod
    def tqdm(iterable, *args, **kwargs):
        report = getattr(_PROGRESS, "report", None)
        items = list(iterable)  # a range of batch starts
        for done, item in enumerate(items, 1):
            yield item
            if report is not None:
                report(done / len(items))


score_cam_module.tqdm = _ProgressTqdm


class _Layer3Output(nn.Module):
    """layer3 of a shared model, its output returned as a fresh leaf that requires grad.

    The CAM's target layer: its output is exactly ``model.layer3``'s, but gradients stop here
    and the CAM's hooks live on this per-call module instead of on the shared model.
    """

    def __init__(self, layer3: nn.Module) -> None:
        super().__init__()
        self.layer3 = layer3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.layer3(x)
        return out.requires_grad_(torch.is_grad_enabled())


class _CamModel(nn.Module):
    """One model as the CAM sees it: images -> (N, 1) malignancy logits.

    The first call (the CAM's own forward pass on the image) records the logit, the per-patch
    distributions and the pooled layer3 features; when its input is the image whose prefix features
    were computed already, it reuses them. Later calls (ScoreCAM's masked images) run the whole model.
    """

    def __init__(self, model: LesionClassifier, image: torch.Tensor, prefix_features: torch.Tensor | None) -> None:
        super().__init__()
        self.prefix, self.head = model.prefix, model.head
        self.target = _Layer3Output(model.layer3)
        self._image, self._prefix_features = image, prefix_features
        self.logits: torch.Tensor | None = None
        self.distributions: torch.Tensor | None = None
        self.pooled: torch.Tensor | None = None
        self.forward_seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.logits is None
        start = time.perf_counter()
        if x is self._image and self._prefix_features is not None:
            prefix_features = self._prefix_features
        else:
            with torch.no_grad():
                prefix_features = self.prefix(x)
        features = self.target(prefix_features)
        logits, distributions = self.head.outputs(features)
        logits = logits[:, None]
        if first:
            self.logits, self.distributions = logits.detach(), distributions.detach()
            self.pooled = features.detach().mean(dim=(2, 3))
            self.forward_seconds = time.perf_counter() - start
        return logits  # (N, 1): the malignancy logit is category 0


class CamResult(NamedTuple):
    """One model's map of one image, and what its forward pass saw on the way."""

    heatmap: np.ndarray  # (224, 224) float32 in [0, 1]
    logits: torch.Tensor  # (1, 1)
    distributions: torch.Tensor  # (1, 196, 256) per-patch outcome probabilities
    pooled: torch.Tensor  # (1, 256) layer3's output averaged over the grid
    forward_seconds: float  # the CAM's own forward pass on the image
    cam_seconds: float  # the rest: the backward pass, or ScoreCAM's masked images


def class_activation_map(
    model: LesionClassifier,
    x: torch.Tensor,
    prefix_features: torch.Tensor | None,
    cam_method: str,
    report: Callable[[float], None] | None = None,
) -> CamResult:
    """``cam_method``'s map of the malignancy logit on layer3's output for the (1, 3, 224, 224) image ``x``.

    ``prefix_features``: conv1..layer2's output for ``x``, if already computed. ``report(fraction)``
    follows ScoreCAM's batches. The caller holds the model's lock.
    """
    wrapper = _CamModel(model, x, prefix_features)
    start = time.perf_counter()
    _PROGRESS.report = report
    try:
        with (
            _single_blas_thread(cam_method in SINGLE_BLAS_THREAD_METHODS),
            CAM_CLASSES[cam_method](model=wrapper, target_layers=[wrapper.target]) as cam,
        ):
            if isinstance(cam, ScoreCAM):
                cam.batch_size = SCORECAM_BATCH
            heatmap = cam(input_tensor=x, targets=[ClassifierOutputTarget(0)])[0]
    finally:
        _PROGRESS.report = None
    total = time.perf_counter() - start
    if wrapper.logits is None or wrapper.distributions is None or wrapper.pooled is None:  # pragma: no cover
        raise RuntimeError(f"{cam_method} did not run the model")
    return CamResult(
        heatmap=np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0).clip(0.0, 1.0),
        logits=wrapper.logits,
        distributions=wrapper.distributions,
        pooled=wrapper.pooled,
        forward_seconds=wrapper.forward_seconds,
        cam_seconds=total - wrapper.forward_seconds,
    )
